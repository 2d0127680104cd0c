package dev.tandem.bench;

import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.HdrHistogram.Histogram;
import org.agrona.UnsafeApi;

import java.io.IOException;
import java.io.PrintStream;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * The real checkpoint pause of a running, protected guest (pause + harvest + copy to staging + barrier + resume,
 * over loopback TCP to a standby in the same JVM), beside the time a plain memcpy of the same number of scattered
 * pages takes in the same run on the same machine. Not JMH: the pause is a property of the whole running system,
 * so it is sampled from the replicator's own pause histogram.
 * <pre>
 * java -jar bench/target/benchmarks.jar is JMH; this one runs as
 * java -cp bench/target/benchmarks.jar dev.tandem.bench.PauseMeasurement [guestMiB] [seconds] [periodMs...]
 * </pre>
 */
public final class PauseMeasurement
{
    private static final int PAGE = 4096;

    private PauseMeasurement()
    {
    }

    /**
     * @param args guest MiB (default 1024), seconds per period (default 10), then periods in ms (default 10 50).
     * @throws Exception on failure.
     */
    public static void main(final String[] args) throws Exception
    {
        final long guestMiB = args.length > 0 ? Long.parseLong(args[0]) : 1024;
        final long seconds = args.length > 1 ? Long.parseLong(args[1]) : 10;
        final long[] periods = args.length > 2 ? new long[args.length - 2] : new long[] {10, 50};
        for (int i = 2; i < args.length; i++)
        {
            periods[i - 2] = Long.parseLong(args[i]);
        }
        final PrintStream out = System.out;
        out.printf(Locale.ROOT, "# Checkpoint pause, %d MiB hotset guest (200 page writes/ms, hot set 8 MiB), " +
            "%d s per period, JDK %s, %d cores%n", guestMiB, seconds, Runtime.version(),
            Runtime.getRuntime().availableProcessors());
        out.println("| period ms | checkpoints | dirty pages/epoch | pause p50 us | pause p99 us | " +
            "memcpy same pages p50 us | memcpy p99 us | ratio p50 | ratio p99 |");
        out.println("|---|---|---|---|---|---|---|---|---|");
        for (final long period : periods)
        {
            measure(guestMiB << 20, period, seconds, out);
        }
    }

    private static void measure(final long guestBytes, final long periodMs, final long seconds, final PrintStream out)
        throws IOException, InterruptedException
    {
        try (ProtectedGuest guest = ProtectedGuest.launch(SimulatedVmm.builder().vmId("pause").memoryBytes(guestBytes)
            .workload(Workload.HOTSET).pagesPerMillisecond(200), ctx -> ctx.checkpointPeriodNs(periodMs * 1_000_000L)))
        {
            final ActiveReplicator active = guest.active;
            final long checkpointsBefore = active.status().checkpoints();
            final long pagesBefore = active.status().pagesCopied();
            final Histogram before = active.pauseHistogram();
            Thread.sleep(seconds * 1000);
            final ProtectionStatus status = active.status();
            final Histogram pauses = active.pauseHistogram();
            pauses.subtract(before);
            final long checkpoints = status.checkpoints() - checkpointsBefore;
            final long dirtyPerEpoch = (status.pagesCopied() - pagesBefore) / Math.max(1, checkpoints);
            final Histogram memcpy = memcpyScattered(guestBytes, (int)dirtyPerEpoch, 2000);
            out.printf(Locale.ROOT, "| %d | %d | %d | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f |%n", periodMs,
                checkpoints, dirtyPerEpoch, pauses.getValueAtPercentile(50) / 1e3,
                pauses.getValueAtPercentile(99) / 1e3, memcpy.getValueAtPercentile(50) / 1e3,
                memcpy.getValueAtPercentile(99) / 1e3,
                (double)pauses.getValueAtPercentile(50) / Math.max(1, memcpy.getValueAtPercentile(50)),
                (double)pauses.getValueAtPercentile(99) / Math.max(1, memcpy.getValueAtPercentile(99)));
        }
    }

    /**
     * Copies {@code pages} pages, drawn like the hotset workload, of a guest-sized region into a staging buffer, {@code rounds}
     * times, with raw {@code Unsafe.copyMemory} and nothing else.
     */
    static Histogram memcpyScattered(final long guestBytes, final int pages, final int rounds)
    {
        final Histogram histogram = new Histogram(3);
        try (NativeMemory.Region guest = NativeMemory.allocate(guestBytes, PAGE);
            NativeMemory.Region staging = NativeMemory.allocate((long)Math.max(1, pages) * PAGE, PAGE))
        {
            final SplittableRandom random = new SplittableRandom(7);
            final long totalPages = guestBytes / PAGE;
            final long[] index = new long[pages];
            for (int round = 0; round < rounds; round++)
            {
                for (int i = 0; i < pages; i++)
                {
                    // drawn like the hotset workload: 230 of 256 writes land in the 2048-page hot set
                    index[i] = random.nextInt(256) < 230 ? random.nextLong(Math.min(2048, totalPages)) :
                        random.nextLong(totalPages);
                }
                java.util.Arrays.sort(index);
                final long start = System.nanoTime();
                for (int i = 0; i < pages; i++)
                {
                    UnsafeApi.copyMemory(guest.address() + index[i] * PAGE, staging.address() + (long)i * PAGE, PAGE);
                }
                histogram.recordValue(System.nanoTime() - start);
            }
        }
        return histogram;
    }
}
