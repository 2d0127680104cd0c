package dev.tandem.examples;

import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyListener;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.RecoveryPoint;
import dev.tandem.vmm.StateDigest;
import dev.tandem.vmm.VmmAdapter;
import dev.tandem.vmm.sim.SimulatedDisk;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The replication demo: a simulated guest protected over loopback TCP by a standby in the same JVM. Prints a live
 * progress line each second and a closing summary, and verifies at one checkpoint near the end that the standby's
 * recovery point is byte-equal to the active guest (memory, component state and disk).
 */
public final class ReplicationDemo
{
    /**
     * Demo settings.
     *
     * @param memoryBytes guest memory.
     * @param workload    guest workload.
     * @param periodMs    checkpoint period.
     * @param seconds     how long to run.
     * @param pagesPerMs  dirty rate of the guest.
     * @param seed        workload seed.
     */
    public record Options(long memoryBytes, Workload workload, long periodMs, long seconds, int pagesPerMs, long seed)
    {
    }

    /**
     * What the demo saw.
     *
     * @param verified     the standby equalled the active at {@code verifiedEpoch}.
     * @param verifiedEpoch the epoch compared.
     * @param last         the active's final status.
     */
    public record Result(boolean verified, long verifiedEpoch, ProtectionStatus last)
    {
    }

    private ReplicationDemo()
    {
    }

    /**
     * Runs the demo.
     *
     * @param options settings.
     * @param out     where progress and the summary go.
     * @return what it saw.
     * @throws IOException if loopback TCP or the temporary directory is unusable.
     * @throws InterruptedException if interrupted.
     */
    public static Result run(final Options options, final PrintStream out) throws IOException, InterruptedException
    {
        final Path dir = Files.createTempDirectory("tandem-demo");
        final AtomicLong digestEpoch = new AtomicLong(-1);
        final AtomicLong activeDigest = new AtomicLong();
        final AtomicLong standbyDigest = new AtomicLong();
        final AtomicLong verifiedEpoch = new AtomicLong(-1);
        final SimulatedVmm vmm = SimulatedVmm.builder()
            .vmId("demo-guest")
            .memoryBytes(options.memoryBytes())
            .workload(options.workload())
            .pagesPerMillisecond(options.pagesPerMs())
            .seed(options.seed())
            .disk(dir.resolve("active-disk.img"), 64L << 20)
            .build();
        try (StandbyReplica standby = StandbyReplica.launch(new StandbyContext()
            .transport(new TcpTransport())
            .listenEndpoint("127.0.0.1:0")
            .directory(dir.resolve("standby"))
            .vmId(vmm.vmId())
            .memory(vmm.memory().pageSize(), vmm.memory().pageCount())
            .disk(0, SimulatedDisk.BLOCK_SIZE, vmm.disk().sizeBytes())
            .listener(new StandbyListener()
            {
                @Override
                public void onCommit(final long epoch, final RecoveryPoint point)
                {
                    if (epoch == digestEpoch.get())
                    {
                        standbyDigest.set(StateDigest.of(point));
                        verifiedEpoch.set(epoch);
                    }
                }
            })))
        {
            vmm.start();
            final long totalMiB = options.memoryBytes() >> 20;
            out.printf(Locale.ROOT, "Tandem replication demo: %d MiB %s guest, checkpoint every %d ms, standby on %s%n",
                totalMiB, options.workload().name().toLowerCase(Locale.ROOT), options.periodMs(), standby.endpoint());
            final boolean[] wantDigest = {false};
            try (ActiveReplicator active = ActiveReplicator.launch(new ActiveContext()
                .adapter(vmm)
                .transport(new TcpTransport())
                .standbyEndpoint(standby.endpoint())
                .checkpointPeriodNs(options.periodMs() * 1_000_000L)
                .checkpointObserver((epoch, adapter) -> recordOnce(wantDigest, digestEpoch, activeDigest, epoch,
                    adapter))))
            {
                final long start = System.nanoTime();
                final long end = start + options.seconds() * 1_000_000_000L;
                ProtectionStatus status = active.status();
                while (System.nanoTime() < end && active.isProtecting())
                {
                    Thread.sleep(Math.min(1000, Math.max(1, (end - System.nanoTime()) / 1_000_000)));
                    status = active.status();
                    out.println(status.progressLine() + " | standby at " + standby.lastCommittedEpoch());
                }
                // one digest of the paused guest, compared with the standby's at the same commit
                synchronized (wantDigest)
                {
                    wantDigest[0] = true;
                }
                final long deadline = System.nanoTime() + 30_000_000_000L;
                while (verifiedEpoch.get() < 0 && System.nanoTime() < deadline && active.isProtecting())
                {
                    Thread.sleep(5);
                }
                status = active.status();
                final boolean verified = verifiedEpoch.get() > 0 && activeDigest.get() == standbyDigest.get();
                final double seconds = (System.nanoTime() - start) / 1e9;
                out.printf(Locale.ROOT, "%nSummary%n");
                out.printf(Locale.ROOT, "  checkpoints        %d in %.1f s (%.0f/s), last acked epoch %d%n",
                    status.checkpoints(), seconds, status.checkpoints() / seconds, status.lastAckedEpoch());
                out.printf(Locale.ROOT, "  guest pause        p50 %.0f us, p99 %.0f us, max %.0f us%n",
                    status.pauseP50Ns() / 1e3, status.pauseP99Ns() / 1e3, status.pauseMaxNs() / 1e3);
                out.printf(Locale.ROOT, "  baseline           %.0f ms paused for the full copy of memory and disk%n",
                    status.baselinePauseNs() / 1e6);
                out.printf(Locale.ROOT, "  checkpoint->ack    p50 %.2f ms, p99 %.2f ms%n",
                    status.commitP50Ns() / 1e6, status.commitP99Ns() / 1e6);
                out.printf(Locale.ROOT, "  replicated         %.1f MiB (%d dirty pages), %.1f MiB/s%n",
                    status.bytesSent() / 1048576.0, status.pagesCopied(), status.bytesSent() / 1048576.0 / seconds);
                out.printf(Locale.ROOT, "  output             %d frames released after their ack, %d dropped%n",
                    status.outputReleased(), status.outputDropped());
                out.printf(Locale.ROOT, "  verification       %s%n", verified ?
                    "standby == active at epoch " + verifiedEpoch.get() + " (memory, vCPU/device state, disk)" :
                    "FAILED: " + (verifiedEpoch.get() < 0 ? "no verified commit" : "digests differ") +
                        (active.failure() == null ? "" : " (" + active.failure() + ")"));
                return new Result(verified, verifiedEpoch.get(), status);
            }
        }
        finally
        {
            vmm.close();
            deleteRecursively(dir);
        }
    }

    private static void recordOnce(final boolean[] wantDigest, final AtomicLong digestEpoch,
        final AtomicLong activeDigest, final long epoch, final VmmAdapter adapter)
    {
        synchronized (wantDigest)
        {
            if (wantDigest[0] && digestEpoch.get() < 0)
            {
                activeDigest.set(StateDigest.of(adapter));
                digestEpoch.set(epoch);
            }
        }
    }

    private static void deleteRecursively(final Path dir) throws IOException
    {
        try (var paths = Files.walk(dir))
        {
            paths.sorted(java.util.Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
        }
    }
}
