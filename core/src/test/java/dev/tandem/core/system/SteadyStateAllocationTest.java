package dev.tandem.core.system;

import dev.tandem.core.transport.InJvmTransport;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.core.transport.Transport;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Invariant 5: once warmed up, checkpointing allocates zero heap bytes on the scheduler and sender threads.
 */
@LeakCheck
class SteadyStateAllocationTest
{
    @TempDir
    Path dir;

    @ParameterizedTest(name = "over {0}")
    @ValueSource(strings = {"tcp", "in-jvm"})
    void checkpointCycleAllocatesNothing(final String transportName) throws Exception
    {
        final com.sun.management.ThreadMXBean threads =
            (com.sun.management.ThreadMXBean)ManagementFactory.getThreadMXBean();
        assumeTrue(threads.isThreadAllocatedMemorySupported(), "this JVM cannot measure per-thread allocation");
        threads.setThreadAllocatedMemoryEnabled(true);
        final Transport transport = "tcp".equals(transportName) ? new TcpTransport() : new InJvmTransport();
        final SimulatedVmm.Builder guest = SimulatedVmm.builder()
            .vmId("allocation")
            .memoryBytes(16L << 20)
            .workload(Workload.HOTSET)
            .pagesPerMillisecond(100)
            .disk(dir.resolve("disk.img"), 1L << 20)
            .diskEveryTicks(1)
            .packetEveryTicks(1);
        try (ReplicationFixture fixture = new ReplicationFixture(guest, transport,
            "tcp".equals(transportName) ? "127.0.0.1:0" : "allocation", dir.resolve("standby"), false,
            (ctx, standby) -> { }))
        {
            fixture.awaitCommits(1000, Duration.ofSeconds(60));
            final long[] ids = fixture.active.threadIds();
            final long schedulerBefore = threads.getThreadAllocatedBytes(ids[0]);
            final long senderBefore = threads.getThreadAllocatedBytes(ids[1]);
            final long from = fixture.standby.lastCommittedEpoch();
            fixture.awaitCommits(from + 300, Duration.ofSeconds(60));
            final long schedulerBytes = threads.getThreadAllocatedBytes(ids[0]) - schedulerBefore;
            final long senderBytes = threads.getThreadAllocatedBytes(ids[1]) - senderBefore;
            assertEquals(0, schedulerBytes, "scheduler thread allocated over 300 checkpoints");
            assertEquals(0, senderBytes, "sender thread allocated over 300 checkpoints");
        }
    }
}
