package dev.tandem.bench;

import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.metrics.BaselineProgress;
import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.HdrHistogram.Histogram;
import org.agrona.CloseHelper;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * How long the guest stops for the baseline, live (copy rounds while the guest runs, then one short pause) against
 * paused (the guest stopped while all memory and the disks are copied and sent), on the same guest in the same run,
 * each beside the p99 of the normal checkpoint pauses that follow it. Target: the longest stop of a live baseline
 * within 2x the p99 of a normal checkpoint pause. Not JMH: the baseline is a property of the whole running system.
 * <pre>
 * java -cp bench/target/benchmarks.jar dev.tandem.bench.BaselineMeasurement [guestMiB] [diskMiB] [steadySeconds]
 * </pre>
 */
public final class BaselineMeasurement
{
    private BaselineMeasurement()
    {
    }

    /**
     * @param args guest MiB (default 1024), disk MiB (default 64), seconds of steady state after (default 5).
     * @throws Exception on failure.
     */
    public static void main(final String[] args) throws Exception
    {
        final long guestMiB = args.length > 0 ? Long.parseLong(args[0]) : 1024;
        final long diskMiB = args.length > 1 ? Long.parseLong(args[1]) : 64;
        final long seconds = args.length > 2 ? Long.parseLong(args[2]) : 5;
        final PrintStream out = System.out;
        out.printf(Locale.ROOT, "# Baseline, %d MiB hotset guest (200 page writes/ms, hot set 8 MiB, a disk write every " +
            "tick) with a %d MiB disk, 10 ms period, JDK %s, %d cores%n", guestMiB, diskMiB, Runtime.version(),
            Runtime.getRuntime().availableProcessors());
        out.println("| baseline | launch to ack ms | rounds | pages copied | longest guest stop ms | steady pause p99 ms " +
            "| stop / pause p99 | target |");
        out.println("|---|---|---|---|---|---|---|---|");
        for (final boolean live : new boolean[] {true, false})
        {
            measure(guestMiB << 20, diskMiB << 20, seconds, live, out);
        }
    }

    private static void measure(final long guestBytes, final long diskBytes, final long seconds, final boolean live,
        final PrintStream out) throws Exception
    {
        final Path dir = Files.createTempDirectory("tandem-baseline");
        final SimulatedVmm vmm = SimulatedVmm.builder().vmId("baseline").memoryBytes(guestBytes)
            .workload(Workload.HOTSET).pagesPerMillisecond(200).disk(dir.resolve("guest-disk.img"), diskBytes)
            .diskEveryTicks(1).build();
        StandbyReplica standby = null;
        ActiveReplicator active = null;
        try
        {
            standby = StandbyReplica.launch(new StandbyContext().transport(new TcpTransport())
                .listenEndpoint("127.0.0.1:0").directory(dir.resolve("standby")).vmId(vmm.vmId())
                .memory(vmm.memory().pageSize(), vmm.memory().pageCount())
                .disk(vmm.disk().id(), vmm.disk().blockSize(), vmm.disk().sizeBytes()));
            vmm.start();
            final long start = System.nanoTime();
            active = ActiveReplicator.launch(new ActiveContext().adapter(vmm).transport(new TcpTransport())
                .standbyEndpoint(standby.endpoint()).baselineRounds(live ? ActiveContext.BASELINE_ROUNDS_DEFAULT : 0));
            while (active.lastAckedEpoch() < 1)
            {
                Thread.sleep(1);
            }
            final long baselineMs = (System.nanoTime() - start) / 1_000_000;
            final Histogram before = active.pauseHistogram();
            Thread.sleep(seconds * 1000);
            final ProtectionStatus status = active.status();
            final Histogram pauses = active.pauseHistogram();
            pauses.subtract(before);
            final BaselineProgress baseline = status.baseline();
            final double stopMs = baseline.longestPauseNs() / 1e6;
            final double p99Ms = pauses.getValueAtPercentile(99) / 1e6;
            final double ratio = stopMs / Math.max(1e-6, p99Ms);
            out.printf(Locale.ROOT, "| %s | %d | %d | %d | %.1f | %.1f | %.1f | %s |%n", live ? "live" : "paused",
                baselineMs, baseline.round(), baseline.pagesCopied(), stopMs, p99Ms, ratio,
                live ? (ratio <= 2 ? "met" : "missed") : "(reference)");
        }
        finally
        {
            CloseHelper.quietCloseAll(active, standby, vmm);
            ProtectedGuest.delete(dir);
        }
    }
}
