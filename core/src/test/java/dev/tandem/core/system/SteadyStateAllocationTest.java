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

import static org.junit.jupiter.api.Assertions.assertTrue;
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
            // the JIT settles at its own pace (one-off allocations of a few hundred bytes were seen during tier
            // changes on JDK 25, and on JDK 17 right after a first clean window: 0/0 then 0/248 0/104): wait for two
            // clean windows in a row. A real per-checkpoint allocation never gives a clean window and fails below
            // with the bytes per window.
            final StringBuilder windows = new StringBuilder();
            int cleanInARow = 0;
            for (int window = 0; window < 20 && cleanInARow < 2; window++)
            {
                final long[] bytes = allocatedOverCheckpoints(fixture, threads, ids, 200);
                windows.append(bytes[0]).append('/').append(bytes[1]).append(' ');
                cleanInARow = bytes[0] == 0 && bytes[1] == 0 ? cleanInARow + 1 : 0;
            }
            final boolean settled = cleanInARow == 2;
            assertTrue(settled, "no window of 200 checkpoints without allocation (scheduler/sender bytes): " +
                windows);
            // then at least two of the next three windows of 300 checkpoints must be clean on both threads. A
            // deoptimisation can still make the VM allocate a burst of Strings on the thread it deoptimises (seen with
            // JFR under -XX:-UseTLAB in HdrHistogram's normalizeIndex); that is the VM's, not the cycle's, and it does
            // not repeat. An allocation of the cycle itself, even one every few hundred checkpoints, fails here.
            int clean = 0;
            final StringBuilder measured = new StringBuilder();
            for (int window = 0; window < 3; window++)
            {
                final long[] bytes = allocatedOverCheckpoints(fixture, threads, ids, 300);
                measured.append(bytes[0]).append('/').append(bytes[1]).append(' ');
                clean += bytes[0] == 0 && bytes[1] == 0 ? 1 : 0;
            }
            assertTrue(clean >= 2, "scheduler/sender bytes allocated per window of 300 checkpoints: " + measured +
                "(settling windows: " + windows + ")");
        }
    }

    private static long[] allocatedOverCheckpoints(
        final ReplicationFixture fixture,
        final com.sun.management.ThreadMXBean threads,
        final long[] ids,
        final int checkpoints) throws InterruptedException
    {
        final long schedulerBefore = threads.getThreadAllocatedBytes(ids[0]);
        final long senderBefore = threads.getThreadAllocatedBytes(ids[1]);
        fixture.awaitCommits(fixture.standby.lastCommittedEpoch() + checkpoints, Duration.ofSeconds(60));
        return new long[] {threads.getThreadAllocatedBytes(ids[0]) - schedulerBefore,
            threads.getThreadAllocatedBytes(ids[1]) - senderBefore};
    }
}
