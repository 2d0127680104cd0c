package dev.tandem.bench;

import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.failover.FileArbiter;
import dev.tandem.core.metrics.ProtectionState;
import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.core.metrics.ReconnectStatus;
import dev.tandem.core.transport.LoopbackRelay;
import dev.tandem.vmm.sim.SimulatedReplicaTarget;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Bytes resent after a link drop against the guest's size: a hotset guest (200 page writes/ms, 10 ms checkpoints,
 * a 64 MiB disk written every tick) is protected over loopback TCP through a relay; after steady state the relay
 * resets every connection and refuses new ones for the drop; the active reconnects and resends what changed since
 * the standby's recovery point. Prints, per guest size, the resync's bytes on the wire beside the guest's size and
 * beside the bytes sent from the launch to one second after the baseline's ack (the whole first copy), the pages
 * in the resync set, and the time unprotected. Then a planned switchover of the same guest: its stop (the guest
 * paused here until the standby owns it) beside the run's normal checkpoint pause p99.
 * <p>
 * Usage: {@code ResyncMeasurement [dropMs] [guestMiB...]} (default 1000 ms, 256 and 1024 MiB).
 */
public final class ResyncMeasurement
{
    private ResyncMeasurement()
    {
    }

    /**
     * @param args drop in ms, then guest sizes in MiB.
     * @throws Exception if a run fails.
     */
    public static void main(final String[] args) throws Exception
    {
        final long dropMs = args.length > 0 ? Long.parseLong(args[0]) : 1000;
        final long[] sizesMiB = args.length > 1 ? java.util.Arrays.stream(args, 1, args.length)
            .mapToLong(Long::parseLong).toArray() : new long[] {256, 1024};
        System.out.printf(Locale.ROOT, "%-9s %-8s %14s %12s %14s %10s %12s %14s %15s %13s%n", "guest", "drop",
            "resync bytes", "of guest", "launch+1s bytes", "resync/that", "resync pages", "unprotected ms",
            "switchover ms", "pause p99 ms");
        for (final long mib : sizesMiB)
        {
            run(mib << 20, dropMs);
        }
    }

    private static void run(final long guestBytes, final long dropMs) throws Exception
    {
        final Path disk = Files.createTempFile("tandem-resync", ".img");
        final AtomicReference<LoopbackRelay> relay = new AtomicReference<>();
        final Path arbiterDir = Files.createTempDirectory("tandem-resync-arbiter");
        final FileArbiter arbiter = new FileArbiter(arbiterDir, "resync");
        final Path promotedDisk = Files.createTempFile("tandem-resync-promoted", ".img");
        try (ProtectedGuest guest = ProtectedGuest.launch(SimulatedVmm.builder().vmId("resync")
                .memoryBytes(guestBytes).workload(Workload.HOTSET).pagesPerMillisecond(200)
                .disk(disk, 64L << 20).diskEveryTicks(1).packetEveryTicks(1).seed(3),
            // the standby waits longer than the drop before it promotes: the link heals, no failover
            standbyCtx -> standbyCtx.failureTimeoutNs(Duration.ofMillis(dropMs + 5_000).toNanos())
                .promotionArbiter(arbiter)
                .replicaTarget(new SimulatedReplicaTarget(SimulatedVmm.builder().vmId("resync").memoryBytes(guestBytes)
                    .disk(promotedDisk, 64L << 20), false)),
            (ctx, standby) ->
            {
                try
                {
                    relay.set(LoopbackRelay.to(standby.endpoint()));
                }
                catch (final java.io.IOException ex)
                {
                    throw new java.io.UncheckedIOException(ex);
                }
                ctx.standbyEndpoint(relay.get().endpoint()).checkpointPeriodNs(Duration.ofMillis(10).toNanos())
                    .promotionArbiter(arbiter)
                    .reconnectWindowNs(Duration.ofSeconds(60).toNanos());
            }))
        {
            try
            {
                final long baselineBytes = guest.active.status().bytesSent();
                Thread.sleep(2000);
                relay.get().reset(Duration.ofMillis(dropMs));
                final long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
                ProtectionStatus status = guest.active.status();
                while (status.reconnect().reconnects() < 1 || status.state() != ProtectionState.PROTECTED)
                {
                    if (System.nanoTime() > deadline)
                    {
                        throw new IllegalStateException("no reconnected session within 120 s: " + status);
                    }
                    Thread.sleep(10);
                    status = guest.active.status();
                }
                final ReconnectStatus reconnect = status.reconnect();
                // steady state again before the planned switchover; its pause p99 is the figure to compare with
                Thread.sleep(2000);
                final long pauseP99Ns = guest.active.status().pauseP99Ns();
                final ActiveReplicator.Switchover switchover = guest.active.switchover(Duration.ofSeconds(60));
                System.out.printf(Locale.ROOT, "%-9s %-8s %14d %11.2f%% %14d %9.2f%% %12d %14.0f %15.1f %13.1f%n",
                    (guestBytes >> 20) + " MiB", dropMs + " ms", reconnect.lastResyncBytes(),
                    100.0 * reconnect.lastResyncBytes() / guestBytes, baselineBytes,
                    100.0 * reconnect.lastResyncBytes() / baselineBytes, reconnect.lastResyncPages(),
                    reconnect.unprotectedNs() / 1e6, switchover.stopNs() / 1e6, pauseP99Ns / 1e6);
                System.out.println("  " + reconnect.lastResync());
                while (guest.standby.promotion() == null)
                {
                    Thread.sleep(1);
                }
                ((SimulatedVmm)guest.standby.promotion().guest()).close();
            }
            finally
            {
                relay.get().close();
            }
        }
        finally
        {
            Files.deleteIfExists(disk);
            Files.deleteIfExists(promotedDisk);
            ProtectedGuest.delete(arbiterDir);
        }
    }
}
