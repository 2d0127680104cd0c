package dev.tandem.bench;

import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.core.policy.AdaptivePolicy;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;

import java.util.Locale;

/**
 * Bytes on the wire per epoch with the page codec against the raw bytes of the same pages, and the period the
 * adaptive policy settles on, per workload, for a protected guest over loopback TCP (active and standby in one
 * JVM). Raw and encoded bytes are counted by the sender on the same pages in the same run.
 * <pre>
 * java [-Dtandem.encoderThreads=N] -cp bench/target/benchmarks.jar dev.tandem.bench.CodecPolicyMeasurement \
 *     [guestMiB] [seconds] [workload...]
 * </pre>
 * The table gains the encoder threads used and the encode time per epoch (p99, summed over the threads).
 */
public final class CodecPolicyMeasurement
{
    private CodecPolicyMeasurement()
    {
    }

    /**
     * @param args guest MiB (default 1024), seconds per workload (default 10), workloads (default uniform hotset
     *             sequential).
     * @throws Exception on failure.
     */
    public static void main(final String[] args) throws Exception
    {
        final long guestMiB = args.length > 0 ? Long.parseLong(args[0]) : 1024;
        final long seconds = args.length > 1 ? Long.parseLong(args[1]) : 10;
        final String[] workloads = args.length > 2 ? java.util.Arrays.copyOfRange(args, 2, args.length) :
            new String[] {"uniform", "hotset", "sequential"};
        System.out.printf(Locale.ROOT, "# Page codec and adaptive policy: %d MiB guest, 200 page writes/ms, adaptive " +
            "policy 2-100 ms (pause target 2 ms, output-hold target 100 ms), %d s per workload after the baseline, " +
            "pause and hold p99 over the last %d s (the library's window), JDK %s, %d cores%n", guestMiB, seconds,
            dev.tandem.core.metrics.LatencyDistribution.WINDOW_SECONDS, Runtime.version(), Runtime.getRuntime().availableProcessors());
        System.out.println("| workload | epochs | raw KiB/epoch | wire KiB/epoch | ratio | period settled ms | " +
            "pause p99 us | output hold p99 ms | encoder threads | encode p99 ms/epoch | pages zero/raw/lz4/delta % |");
        System.out.println("|---|---|---|---|---|---|---|---|---|---|---|");
        for (final String workload : workloads)
        {
            run(guestMiB << 20, Workload.parse(workload), seconds);
        }
    }

    private static void run(final long guestBytes, final Workload workload, final long seconds) throws Exception
    {
        final long ms = 1_000_000L;
        try (ProtectedGuest guest = ProtectedGuest.launch(SimulatedVmm.builder().vmId("codec").memoryBytes(guestBytes)
            .workload(workload).pagesPerMillisecond(200).packetEveryTicks(1), ctx -> ctx.checkpointPeriodNs(20 * ms)
            .checkpointPolicy(new AdaptivePolicy(2 * ms, 100 * ms, 20 * ms, 2 * ms, 100 * ms))
            .encoderThreads(Integer.getInteger("tandem.encoderThreads", 1))))
        {
            final ActiveReplicator active = guest.active;
            final ProtectionStatus before = active.status();
            active.pauseHistogram();
            Thread.sleep(seconds * 1000);
            final ProtectionStatus after = active.status();
            final long epochs = Math.max(1, after.checkpoints() - before.checkpoints());
            final double raw = (after.pageBytesRaw() - before.pageBytesRaw()) / 1024.0 / epochs;
            final double wire = (after.bytesSent() - before.bytesSent()) / 1024.0 / epochs;
            final double pages = Math.max(1, after.zeroPages() + after.rawPages() + after.lz4Pages() +
                after.deltaPages());
            System.out.printf(Locale.ROOT,
                "| %s | %d | %.0f | %.0f | %.1fx | %.1f | %.0f | %.1f | %d | %.1f | %.0f/%.0f/%.0f/%.0f |%n",
                workload.name().toLowerCase(Locale.ROOT), epochs, raw, wire, raw / Math.max(1e-9, wire),
                after.periodNs() / 1e6, after.stage("pause").windowP99Ns() / 1e3, after.outputHoldWindowP99Ns() / 1e6,
                after.encoderThreads(), after.encodeP99Ns() / 1e6, 100 * after.zeroPages() / pages,
                100 * after.rawPages() / pages, 100 * after.lz4Pages() / pages, 100 * after.deltaPages() / pages);
        }
    }
}
