package dev.tandem.bench;

import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.sim.SimulatedVmm;
import org.agrona.CloseHelper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * A simulated guest protected over loopback TCP, active and standby in this JVM, for the measurements: launched,
 * waited on until the baseline is committed, and torn down with its standby directory.
 */
final class ProtectedGuest implements AutoCloseable
{
    final SimulatedVmm vmm;
    final StandbyReplica standby;
    final ActiveReplicator active;
    private final Path dir;

    private ProtectedGuest(final SimulatedVmm vmm, final StandbyReplica standby, final ActiveReplicator active,
        final Path dir)
    {
        this.vmm = vmm;
        this.standby = standby;
        this.active = active;
        this.dir = dir;
    }

    /**
     * Builds and starts the guest, launches its standby and the active, and waits for the baseline's ack plus a
     * second of steady state.
     *
     * @param guest     the guest (its vmId names the standby's VM).
     * @param configure active settings beyond adapter, transport and endpoint.
     * @return the protected guest.
     * @throws IOException          if launching fails.
     * @throws InterruptedException if interrupted while waiting.
     */
    static ProtectedGuest launch(final SimulatedVmm.Builder guest, final Consumer<ActiveContext> configure)
        throws IOException, InterruptedException
    {
        return launch(guest, standbyCtx -> { }, (ctx, standby) -> configure.accept(ctx));
    }

    /**
     * As {@link #launch(SimulatedVmm.Builder, Consumer)}, with standby settings and active settings that may depend
     * on the launched standby (its endpoint, to put a relay in between).
     *
     * @param guest            the guest.
     * @param configureStandby standby settings beyond transport, endpoint, directory and geometry.
     * @param configure        active settings; the standby is launched already.
     * @return the protected guest.
     * @throws IOException          if launching fails.
     * @throws InterruptedException if interrupted while waiting.
     */
    static ProtectedGuest launch(final SimulatedVmm.Builder guest, final Consumer<StandbyContext> configureStandby,
        final java.util.function.BiConsumer<ActiveContext, StandbyReplica> configure)
        throws IOException, InterruptedException
    {
        final Path dir = Files.createTempDirectory("tandem-bench");
        final SimulatedVmm vmm = guest.build();
        StandbyReplica standby = null;
        ActiveReplicator active = null;
        try
        {
            final StandbyContext standbyCtx = new StandbyContext().transport(new TcpTransport())
                .listenEndpoint("127.0.0.1:0").directory(dir).vmId(vmm.vmId())
                .memory(vmm.memory().pageSize(), vmm.memory().pageCount());
            if (vmm.disk() != null)
            {
                standbyCtx.disk(vmm.disk().id(), vmm.disk().blockSize(), vmm.disk().sizeBytes());
            }
            configureStandby.accept(standbyCtx);
            standby = StandbyReplica.launch(standbyCtx);
            vmm.start();
            final ActiveContext ctx = new ActiveContext().adapter(vmm).transport(new TcpTransport())
                .standbyEndpoint(standby.endpoint());
            configure.accept(ctx, standby);
            active = ActiveReplicator.launch(ctx);
            while (active.lastAckedEpoch() < 1)
            {
                Thread.sleep(10);
            }
            Thread.sleep(1000);
            return new ProtectedGuest(vmm, standby, active, dir);
        }
        catch (final IOException | InterruptedException | RuntimeException ex)
        {
            CloseHelper.quietCloseAll(active, standby, vmm);
            delete(dir);
            throw ex;
        }
    }

    @Override
    public void close()
    {
        CloseHelper.closeAll(active, standby, vmm);
        delete(dir);
    }

    /**
     * Deletes a directory tree a measurement made (best effort per file: a measurement's leftovers must not fail it).
     */
    static void delete(final Path dir)
    {
        try (Stream<Path> paths = Files.walk(dir))
        {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
    }
}
