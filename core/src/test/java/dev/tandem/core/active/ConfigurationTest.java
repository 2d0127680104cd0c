package dev.tandem.core.active;

import dev.tandem.core.ConfigurationException;
import dev.tandem.core.JvmAccess;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.system.LeakCheck;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.sim.SimulatedVmm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bad configuration fails at start with the setting named; nothing is left running.
 */
@LeakCheck
class ConfigurationTest
{
    @TempDir
    Path dir;

    private void assertRefused(final String setting, final Consumer<ActiveContext> change)
    {
        try (SimulatedVmm vmm = SimulatedVmm.builder().memoryBytes(1 << 20).build())
        {
            final ActiveContext ctx = new ActiveContext().adapter(vmm).transport(new TcpTransport())
                .standbyEndpoint("127.0.0.1:1");
            change.accept(ctx);
            final ConfigurationException ex = assertThrows(ConfigurationException.class, ctx::conclude);
            assertTrue(ex.getMessage().startsWith(setting), ex.getMessage());
        }
    }

    @Test
    void activeSettingsOutOfRangeAreNamed()
    {
        assertRefused("checkpointPeriodNs", c -> c.checkpointPeriodNs(0));
        assertRefused("maxEpochsInFlight", c -> c.maxEpochsInFlight(0));
        assertRefused("stagingAreas", c -> c.stagingAreas(1));
        assertRefused("stagingAreaBytes", c -> c.stagingAreaBytes(1000));
        assertRefused("diskStreamBytes", c -> c.diskStreamBytes(3 << 20));
        assertRefused("outputHoldBytes", c -> c.outputHoldBytes(1));
        assertRefused("heartbeatIntervalNs", c -> c.heartbeatIntervalNs(-1));
        assertRefused("standbyEndpoint", c -> c.standbyEndpoint(null));
        assertRefused("transport", c -> c.transport(null));
        assertRefused("encoderThreads", c -> c.encoderThreads(0));
        assertRefused("encoderThreads", c -> c.encoderThreads(65));
        assertRefused("sentPageCacheBytes", c -> c.sentPageCacheBytes(-1));
        assertRefused("encoderThreads", c -> c.useAgentInvoker(true).encoderThreads(2));
        assertRefused("waitStrategy", c -> c.waitStrategy(null));
        assertRefused("nanoClock", c -> c.nanoClock(null));
    }

    @Test
    void unreachableStandbyIsAClearErrorAndLeavesTheGuestAlone() throws Exception
    {
        try (SimulatedVmm vmm = SimulatedVmm.builder().memoryBytes(1 << 20).build().start())
        {
            final IOException ex = assertThrows(IOException.class, () -> ActiveReplicator.launch(new ActiveContext()
                .adapter(vmm).transport(new TcpTransport()).standbyEndpoint("127.0.0.1:1").connectTimeoutMs(500)));
            assertTrue(ex.getMessage().contains("127.0.0.1:1"), ex.getMessage());
            assertTrue(!vmm.isPaused(), "guest keeps running");
        }
    }

    @Test
    void standbyRefusesAnotherVmsDiskImage() throws Exception
    {
        Files.write(dir.resolve("disk-0.img"), new byte[4096]);
        final IllegalStateException ex = assertThrows(IllegalStateException.class, () -> StandbyReplica.launch(
            new StandbyContext().transport(new TcpTransport()).listenEndpoint("127.0.0.1:0").directory(dir)
                .vmId("vm").memory(4096, 256).disk(0, 512, 1 << 20)));
        assertTrue(ex.getMessage().contains("disk-0.img"), ex.getMessage());
        final ConfigurationException config = assertThrows(ConfigurationException.class, () -> new StandbyContext()
            .transport(new TcpTransport()).listenEndpoint("127.0.0.1:0").directory(dir).vmId("vm")
            .memory(4096, 256).disk(0, 500, 1 << 20).conclude());
        assertTrue(config.getMessage().startsWith("disk"), config.getMessage());
    }

    @Test
    void theBuildGrantsTheJvmAccessTheLibraryNeeds()
    {
        assertEquals("[]", JvmAccess.missingFlags().toString());
        assertEquals("[]", JvmAccess.missingRecommendedFlags().toString());
    }
}
