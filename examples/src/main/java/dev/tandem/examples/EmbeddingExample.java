package dev.tandem.examples;

import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.sim.SimulatedVmm;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The smallest complete embedding: a guest, its standby and its active in one JVM over loopback TCP, a few
 * committed epochs, a clean close. README.md quotes this file verbatim; EmbeddingExampleTest fails the build when
 * they differ or when this program does not run to a clean end.
 */
public final class EmbeddingExample
{
    private EmbeddingExample()
    {
    }

    /**
     * @param args the directory for the guest's disk and the standby's files (default {@code tandem-embedding}).
     * @throws Exception if protection cannot start, or an epoch does not commit in time.
     */
    public static void main(final String[] args) throws Exception
    {
        final Path dir = Files.createDirectories(Path.of(args.length > 0 ? args[0] : "tandem-embedding"));
        // the guest: the reference simulated VMM (your VMM's VmmAdapter in its place), 32 MiB and a 16 MiB disk
        try (SimulatedVmm guest = SimulatedVmm.builder()
                .vmId("vm-1")
                .memoryBytes(32L << 20)
                .disk(dir.resolve("vm-1.img"), 16L << 20)
                .build()
                .start();
            // on the standby host: a replica of the guest, restating its geometry exactly (else the standby
            // refuses the active's handshake, naming what differs)
            StandbyReplica standby = StandbyReplica.launch(new StandbyContext()
                .transport(new TcpTransport())
                .listenEndpoint("127.0.0.1:0")                // e.g. "0.0.0.0:7400" on a standby host
                .directory(dir.resolve("standby"))
                .vmId(guest.vmId())
                .memory(SimulatedVmm.PAGE_SIZE, guest.memory().pageCount())
                .disk(0, guest.disk().blockSize(), guest.disk().sizeBytes()));
            // on the active host: protect the running guest
            ActiveReplicator active = ActiveReplicator.launch(new ActiveContext()
                .adapter(guest)
                .transport(new TcpTransport())
                .standbyEndpoint(standby.endpoint())          // "host:port", e.g. "standby-host:7400"
                .checkpointPeriodNs(Duration.ofMillis(10).toNanos())))
        {
            // a disk write or frame the guest issues now belongs to currentEpoch(): wait until the standby holds it
            final long epoch = active.currentEpoch() + 5;
            if (!active.awaitCommitted(epoch, Duration.ofSeconds(30)))
            {
                throw new IllegalStateException("epoch " + epoch + " not committed within 30 s: " + active.status());
            }
            final ProtectionStatus status = active.status();
            System.out.println(status.progressLine());   // state, epochs, pause p50/p99, commit p99, lag, held
            System.out.println("checkpoint " + status.lastCheckpointEpoch() + " copied " +
                status.lastCheckpointDirtyPages() + " dirty pages; the standby's recovery point is epoch " +
                standby.lastCommittedEpoch());
        }   // closes the active (it says GOODBYE, so the standby does not promote), then the standby, then the guest
    }
}
