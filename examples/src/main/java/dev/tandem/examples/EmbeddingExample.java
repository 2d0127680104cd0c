package dev.tandem.examples;

import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.VmmAdapter;
import dev.tandem.vmm.VirtualDisk;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The smallest embedding of Tandem, quoted in the README: a standby on one host, protection of a guest on another.
 * Compiled by the build so the README's code cannot rot.
 */
public final class EmbeddingExample
{
    private EmbeddingExample()
    {
    }

    /**
     * On the standby host: hold a replica of the guest {@code vmId} with the given geometry.
     *
     * @param vmId      identity of the guest.
     * @param pageSize  guest page size.
     * @param pageCount guest pages.
     * @param diskBytes size of the guest's one disk (block size 512).
     * @param dir       where the standby keeps disk images.
     * @return the running standby; close it to stop.
     * @throws IOException if the port cannot be bound.
     */
    public static StandbyReplica standby(
        final String vmId, final int pageSize, final long pageCount, final long diskBytes, final Path dir)
        throws IOException
    {
        return StandbyReplica.launch(new StandbyContext()
            .transport(new TcpTransport())
            .listenEndpoint("0.0.0.0:7400")
            .directory(dir)
            .vmId(vmId)
            .memory(pageSize, pageCount)
            .disk(0, 512, diskBytes));
    }

    /**
     * On the active host: protect a running guest, given its adapter.
     *
     * @param guest   the VMM's adapter of the guest.
     * @param standby {@code host:port} of the standby.
     * @return the running replicator; close it to stop protection (the guest keeps running).
     * @throws IOException if the standby cannot be reached.
     */
    public static ActiveReplicator protect(final VmmAdapter guest, final String standby) throws IOException
    {
        return ActiveReplicator.launch(new ActiveContext()
            .adapter(guest)
            .transport(new TcpTransport())
            .standbyEndpoint(standby)
            .checkpointPeriodNs(Duration.ofMillis(10).toNanos()));
    }

    /**
     * @param guest a guest.
     * @return the size of its first disk, for the standby's configuration.
     */
    public static long firstDiskBytes(final VmmAdapter guest)
    {
        final VirtualDisk disk = guest.disks().get(0);
        return disk.sizeBytes();
    }
}
