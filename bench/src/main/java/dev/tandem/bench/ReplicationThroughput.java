package dev.tandem.bench;

import dev.tandem.core.codec.PageCodec;
import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.agrona.concurrent.UnsafeBuffer;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Sustained replication throughput beside its baselines, measured in the same run: checkpointed page bytes per
 * second a protected guest gets committed on the standby over loopback TCP, with raw pages and with the page codec,
 * beside plain NIO over loopback TCP moving bytes from a direct buffer to a draining reader (no framing, no CRC, no
 * apply), and beside the page codec alone encoding the same kind of pages on one thread. The guest dirties pages far
 * faster than any of them can carry, so the pipeline, not the guest, is the limit.
 * <pre>
 * java -cp bench/target/benchmarks.jar dev.tandem.bench.ReplicationThroughput [guestMiB] [seconds]
 * </pre>
 */
public final class ReplicationThroughput
{
    private static final int PAGE = 4096;

    private ReplicationThroughput()
    {
    }

    /**
     * @param args guest MiB (default 256), seconds per measurement (default 10).
     * @throws Exception on failure.
     */
    public static void main(final String[] args) throws Exception
    {
        final long guestMiB = args.length > 0 ? Long.parseLong(args[0]) : 256;
        final long seconds = args.length > 1 ? Long.parseLong(args[1]) : 10;
        run(guestMiB << 20, seconds, System.out);
    }

    static void run(final long guestBytes, final long seconds, final PrintStream out) throws Exception
    {
        out.printf(Locale.ROOT, "# Replication throughput: %d MiB guest, uniform workload at 2000 page writes/ms, " +
            "10 ms period, %d s per row after the baseline, JDK %s, %d cores%n", guestBytes >> 20, seconds,
            Runtime.version(), Runtime.getRuntime().availableProcessors());
        final double tcp = rawTcpBytesPerSecond(seconds);
        final double codec = codecBytesPerSecond(Math.max(1, seconds / 2));
        out.println("| path | MB/s of guest pages | ratio to raw loopback TCP | ratio to the slower of TCP and codec |");
        out.println("|---|---|---|---|");
        out.printf(Locale.ROOT, "| raw loopback TCP (plain NIO, same machine) | %.0f | 1.00 | |%n", tcp / 1e6);
        out.printf(Locale.ROOT, "| page codec alone, one thread | %.0f | %.2f | |%n", codec / 1e6, codec / tcp);
        for (final boolean encoded : new boolean[] {false, true})
        {
            final double replicated = replicatedBytesPerSecond(guestBytes, seconds, encoded);
            final double floor = encoded ? Math.min(tcp, codec) : tcp;
            out.printf(Locale.ROOT, "| Tandem, %s | %.0f | %.2f | %.2f |%n", encoded ? "page codec" : "raw pages",
                replicated / 1e6, replicated / tcp, replicated / floor);
        }
    }

    /**
     * Guest page bytes per second through a protected guest (sent and acknowledged: the epochs in flight at the end
     * are bounded and excluded by measuring between acknowledged epochs' counters).
     */
    private static double replicatedBytesPerSecond(final long guestBytes, final long seconds, final boolean encoded)
        throws IOException, InterruptedException
    {
        try (ProtectedGuest guest = ProtectedGuest.launch(SimulatedVmm.builder().vmId("throughput")
            .memoryBytes(guestBytes).workload(Workload.UNIFORM).pagesPerMillisecond(2000),
            ctx -> ctx.checkpointPeriodNs(10_000_000L).pageCodec(encoded)))
        {
            return ackedPageBytesPerSecond(guest, seconds, null);
        }
    }

    /**
     * Runs the protected guest for {@code seconds} and measures what was replicated: pages of acknowledged epochs
     * only (the raw bytes sent, scaled by the share of epochs acknowledged), per second.
     *
     * @param guest   the running, protected guest.
     * @param seconds how long to measure.
     * @param after   receives the status at the end, or null.
     * @return bytes of guest pages per second.
     * @throws InterruptedException if interrupted while measuring.
     */
    static double ackedPageBytesPerSecond(final ProtectedGuest guest, final long seconds,
        final java.util.function.Consumer<ProtectionStatus> after) throws InterruptedException
    {
        final ProtectionStatus first = guest.active.status();
        final long start = System.nanoTime();
        Thread.sleep(seconds * 1000);
        final ProtectionStatus last = guest.active.status();
        final long elapsed = System.nanoTime() - start;
        final double sent = last.pageBytesRaw() - first.pageBytesRaw();
        final double epochs = Math.max(1, last.lastCheckpointEpoch() - first.lastCheckpointEpoch());
        final double acked = last.lastAckedEpoch() - first.lastAckedEpoch();
        if (after != null)
        {
            after.accept(last);
        }
        return sent * Math.min(1, acked / epochs) * 1e9 / elapsed;
    }

    /**
     * Plain NIO over loopback: one thread writes a 1 MiB direct buffer again and again, another drains it.
     */
    static double rawTcpBytesPerSecond(final long seconds) throws IOException
    {
        try (LoopbackLink link = new LoopbackLink())
        {
            final ByteBuffer data = ByteBuffer.allocateDirect(1 << 20);
            new SplittableRandom(1).ints(data.capacity() / 4).forEach(data::putInt);
            final long start = System.nanoTime();
            final long deadline = start + seconds * 1_000_000_000L;
            final long startReceived = link.received();
            while (System.nanoTime() < deadline)
            {
                link.send(data.clear());
            }
            return (link.received() - startReceived) * 1e9 / (System.nanoTime() - start);
        }
    }

    /**
     * The page codec alone on one thread over pages like the uniform workload's: mostly zero with a few words
     * written, changing between rounds (so XOR deltas find their bases).
     */
    static double codecBytesPerSecond(final long seconds)
    {
        final int pages = 4096;
        try (NativeMemory.Region region = NativeMemory.allocateDirect(pages * PAGE, PAGE);
            NativeMemory.Region out = NativeMemory.allocateDirect(PAGE + PageCodec.ENTRY_HEADER, 64);
            PageCodec codec = new PageCodec(PAGE, 64L << 20))
        {
            final UnsafeBuffer buffer = new UnsafeBuffer(region.byteBuffer());
            final ByteBuffer view = region.byteBuffer().duplicate();
            final UnsafeBuffer outBuffer = new UnsafeBuffer(out.byteBuffer());
            final SplittableRandom random = new SplittableRandom(3);
            long bytes = 0;
            final long start = System.nanoTime();
            final long deadline = start + seconds * 1_000_000_000L;
            long elapsed = 0;
            while (elapsed < deadline - start)
            {
                // not timed apart: the writes stand for the guest and are a small share of the loop
                for (int i = 0; i < pages * 4; i++)
                {
                    buffer.putLong(random.nextInt(pages) * PAGE + random.nextInt(PAGE / 8) * 8, random.nextLong());
                }
                for (int page = 0; page < pages; page++)
                {
                    codec.encode(page, buffer, view, page * PAGE, outBuffer, 0);
                }
                bytes += (long)pages * PAGE;
                elapsed = System.nanoTime() - start;
            }
            return bytes * 1e9 / elapsed;
        }
    }
}
