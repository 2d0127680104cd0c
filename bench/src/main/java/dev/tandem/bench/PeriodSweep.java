package dev.tandem.bench;

import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.core.metrics.StageLatency;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.Locale;

/**
 * The table a user tunes the checkpoint period from: for each workload and fixed period, the guest's work (page
 * writes per second) relative to the same guest unprotected in the same run, the pause p99, bytes per second on the
 * wire, and the output-hold p99 (how long a network reply waits for its epoch's ack). Output is one Markdown table
 * plus CSV lines ({@code csv,...}) the report generator plots.
 * <pre>
 * java -cp bench/target/benchmarks.jar dev.tandem.bench.PeriodSweep [guestMiB] [seconds] [periodsMs] [workloads]
 *     periodsMs: comma-separated, default 5,10,20,50,100; workloads: comma-separated, default uniform,hotset,sequential
 * </pre>
 */
public final class PeriodSweep
{
    private static final int RATE = 200;

    private PeriodSweep()
    {
    }

    /**
     * @param args guest MiB (default 1024), seconds per cell (default 10: the library's window, so that the
     *             percentiles cover the cell and nothing before it), periods, workloads.
     * @throws Exception on failure.
     */
    public static void main(final String[] args) throws Exception
    {
        final long guestMiB = args.length > 0 ? Long.parseLong(args[0]) : 1024;
        final long seconds = args.length > 1 ? Long.parseLong(args[1]) :
            dev.tandem.core.metrics.LatencyDistribution.WINDOW_SECONDS;
        final long[] periods = Arrays.stream((args.length > 2 ? args[2] : "5,10,20,50,100").split(","))
            .mapToLong(Long::parseLong).toArray();
        final String[] workloads = (args.length > 3 ? args[3] : "uniform,hotset,sequential").split(",");
        run(guestMiB << 20, seconds, periods, workloads, System.out);
    }

    static void run(final long guestBytes, final long seconds, final long[] periods, final String[] workloads,
        final PrintStream out) throws Exception
    {
        out.printf(Locale.ROOT, "# Checkpoint-period sweep: %d MiB guest, %d page writes/ms, fixed policy, page " +
            "codec on, %d s per cell after the baseline and a second, pause and hold percentiles over the last %d s " +
            "(the library's window), JDK %s, %d cores%n", guestBytes >> 20, RATE, seconds,
            dev.tandem.core.metrics.LatencyDistribution.WINDOW_SECONDS, Runtime.version(),
            Runtime.getRuntime().availableProcessors());
        out.println("| workload | period ms | guest work vs unprotected | checkpoints/s | pause p50 us | pause p99 us |" +
            " wire MB/s | output hold p99 ms | output hold p99 since baseline ms |");
        out.println("|---|---|---|---|---|---|---|---|---|");
        final StringBuilder csv = new StringBuilder();
        for (final String name : workloads)
        {
            final Workload workload = Workload.parse(name);
            final double unprotected = unprotectedWritesPerSecond(guestBytes, workload, seconds);
            for (final long period : periods)
            {
                try (ProtectedGuest guest = ProtectedGuest.launch(builder(guestBytes, workload),
                    ctx -> ctx.checkpointPeriodNs(period * 1_000_000L)))
                {
                    final ProtectionStatus before = guest.active.status();
                    final long writesBefore = guest.vmm.pageWrites();
                    final long start = System.nanoTime();
                    guest.active.pauseHistogram();
                    Thread.sleep(seconds * 1000);
                    final ProtectionStatus after = guest.active.status();
                    final double elapsed = (System.nanoTime() - start) / 1e9;
                    final double work = (guest.vmm.pageWrites() - writesBefore) / elapsed / unprotected;
                    final double rate = (after.checkpoints() - before.checkpoints()) / elapsed;
                    final double wire = (after.bytesSent() - before.bytesSent()) / elapsed / 1e6;
                    // the pause and hold percentiles are the library's sliding window (the last seconds: this cell's
                    // steady state); the hold since the baseline keeps the warm-up after it, shown beside
                    final StageLatency pause = after.stage("pause");
                    out.printf(Locale.ROOT, "| %s | %d | %.3f | %.1f | %.0f | %.0f | %.1f | %.1f | %.1f |%n", name,
                        period, work, rate, pause.windowP50Ns() / 1e3, pause.windowP99Ns() / 1e3, wire,
                        after.outputHoldWindowP99Ns() / 1e6, after.outputHoldP99Ns() / 1e6);
                    csv.append(String.format(Locale.ROOT, "csv,%s,%d,%.4f,%.2f,%d,%d,%.3f,%.3f,%.3f%n", name, period,
                        work, rate, pause.windowP50Ns(), pause.windowP99Ns(), wire,
                        after.outputHoldWindowP99Ns() / 1e6, after.outputHoldP99Ns() / 1e6));
                }
            }
        }
        out.println();
        out.println("csv,workload,period_ms,work_ratio,checkpoints_per_s,pause_p50_ns,pause_p99_ns,wire_mb_s," +
            "output_hold_p99_ms,output_hold_p99_since_baseline_ms");
        out.print(csv);
    }

    private static SimulatedVmm.Builder builder(final long guestBytes, final Workload workload)
    {
        return SimulatedVmm.builder().vmId("sweep").memoryBytes(guestBytes).workload(workload)
            .pagesPerMillisecond(RATE).packetEveryTicks(1);
    }

    private static double unprotectedWritesPerSecond(final long guestBytes, final Workload workload,
        final long seconds) throws InterruptedException
    {
        try (SimulatedVmm vmm = builder(guestBytes, workload).build().start())
        {
            Thread.sleep(1000);
            final long before = vmm.pageWrites();
            final long start = System.nanoTime();
            Thread.sleep(seconds * 1000);
            return (vmm.pageWrites() - before) * 1e9 / (System.nanoTime() - start);
        }
    }
}
