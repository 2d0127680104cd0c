package dev.tandem.core.active;

import dev.tandem.core.ConfigurationException;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.system.LeakCheck;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.DirtyLog;
import dev.tandem.vmm.DiskWriteSink;
import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.JvmAccess;
import dev.tandem.vmm.OutputGate;
import dev.tandem.vmm.PacketSink;
import dev.tandem.vmm.StatefulComponent;
import dev.tandem.vmm.VcpuControl;
import dev.tandem.vmm.VirtualDisk;
import dev.tandem.vmm.VmmAdapter;
import dev.tandem.vmm.sim.SimulatedVmm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
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

    /**
     * The handshake carries at most {@link dev.tandem.core.wire.Handshake#MAX_VM_ID_BYTES} UTF-8 bytes of vmId, and
     * 200 three-byte characters are 600 of them: once accepted by a character count and refused only deep in the
     * handshake, now refused at configuration on both sides, in bytes.
     */
    @Test
    void aVmIdOverTheByteLimitIsRefusedAtConfigurationInBytes()
    {
        final String tooLong = "\u4e91".repeat(200);
        final String longest = "\u4e91".repeat(85) + "a";
        try (SimulatedVmm vmm = SimulatedVmm.builder().memoryBytes(1 << 20).build())
        {
            final ConfigurationException active = assertThrows(ConfigurationException.class, () -> new ActiveContext()
                .adapter(renamed(vmm, tooLong)).transport(new TcpTransport()).standbyEndpoint("127.0.0.1:1")
                .conclude());
            assertTrue(active.getMessage().startsWith("vmId") && active.getMessage().contains("600 bytes") &&
                active.getMessage().contains("256"), active.getMessage());
            new ActiveContext().adapter(renamed(vmm, longest)).transport(new TcpTransport())
                .standbyEndpoint("127.0.0.1:1").conclude();
            assertThrows(ConfigurationException.class, () -> new ActiveContext().adapter(renamed(vmm, ""))
                .transport(new TcpTransport()).standbyEndpoint("127.0.0.1:1").conclude());
        }
        final ConfigurationException standby = assertThrows(ConfigurationException.class, () -> new StandbyContext()
            .transport(new TcpTransport()).listenEndpoint("127.0.0.1:0").directory(dir).vmId(tooLong)
            .memory(4096, 256).conclude());
        assertTrue(standby.getMessage().startsWith("vmId") && standby.getMessage().contains("600 bytes") &&
            standby.getMessage().contains("256"), standby.getMessage());
        new StandbyContext().transport(new TcpTransport()).listenEndpoint("127.0.0.1:0").directory(dir)
            .vmId(longest).memory(4096, 256).conclude();
        final IllegalArgumentException simulated = assertThrows(IllegalArgumentException.class,
            () -> SimulatedVmm.builder().vmId(tooLong));
        assertTrue(simulated.getMessage().contains("600 bytes"), simulated.getMessage());
    }

    /**
     * @return the guest under another identity (an adapter of a VMM that does not check it).
     */
    private static VmmAdapter renamed(final SimulatedVmm vmm, final String vmId)
    {
        return new VmmAdapter()
        {
            @Override
            public String vmId()
            {
                return vmId;
            }

            @Override
            public GuestMemory memory()
            {
                return vmm.memory();
            }

            @Override
            public DirtyLog dirtyLog()
            {
                return vmm.dirtyLog();
            }

            @Override
            public VcpuControl vcpus()
            {
                return vmm.vcpus();
            }

            @Override
            public List<StatefulComponent> components()
            {
                return vmm.components();
            }

            @Override
            public List<VirtualDisk> disks()
            {
                return vmm.disks();
            }

            @Override
            public PacketSink packetSink()
            {
                return vmm.packetSink();
            }

            @Override
            public void attach(final DiskWriteSink diskWrites, final OutputGate output)
            {
                vmm.attach(diskWrites, output);
            }

            @Override
            public void detach()
            {
                vmm.detach();
            }
        };
    }
}
