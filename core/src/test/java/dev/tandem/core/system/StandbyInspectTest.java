package dev.tandem.core.system;

import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.sim.SimulatedVmm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code inspect()} from a standby listener (on the applier's thread) is refused at once with a message saying
 * why, instead of waiting 60 s for the receiver, which runs inspections only once that very applier caught up.
 */
@LeakCheck
class StandbyInspectTest
{
    @TempDir
    Path dir;

    @Test
    void inspectFromAListenerIsRefusedAtOnce() throws Exception
    {
        final AtomicReference<Throwable> refused = new AtomicReference<>();
        final AtomicReference<StandbyReplica> standby = new AtomicReference<>();
        final long inspectedEpoch;
        // the hook is installed before the launch: one set afterwards can miss the first commits on a loaded machine
        try (ReplicationFixture fixture = new ReplicationFixture(SimulatedVmm.builder().vmId("inspect")
            .memoryBytes(4L << 20), new TcpTransport(), "127.0.0.1:0", dir.resolve("standby"), false,
            (ctx, launched) -> standby.set(launched), standbyCtx -> { }, (epoch, point) ->
            {
                if (refused.get() == null)
                {
                    try
                    {
                        standby.get().inspect(recoveryPoint -> recoveryPoint.epoch());
                        refused.set(new AssertionError("inspect() returned on the applier's thread"));
                    }
                    catch (final IllegalStateException ex)
                    {
                        refused.set(ex);
                    }
                }
            }))
        {
            fixture.awaitCommits(5, Duration.ofSeconds(30));
            final long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (refused.get() == null && System.nanoTime() < deadline)
            {
                Thread.sleep(2);
            }
            // from any other thread it runs
            inspectedEpoch = fixture.standby.inspect(recoveryPoint -> recoveryPoint.epoch());
        }
        assertNotNull(refused.get(), "the listener ran");
        assertTrue(refused.get() instanceof IllegalStateException &&
            refused.get().getMessage().contains("tandem-standby-applier"), String.valueOf(refused.get()));
        assertTrue(inspectedEpoch >= 1, "inspected epoch " + inspectedEpoch);
    }
}
