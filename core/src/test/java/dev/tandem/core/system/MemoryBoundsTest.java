package dev.tandem.core.system;

import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Memory pressure: a guest that dirties far more than a staging area per epoch and writes its disk every tick. The
 * bounds hold: deltas overflow staging, disk writes wait for room in the stream, the guest is held back, and the
 * off-heap memory of active and standby (guest included) does not grow after the first commits, while the standby
 * still equals the active at every checkpoint.
 */
@LeakCheck
class MemoryBoundsTest
{
    @TempDir
    Path dir;

    @Test
    void stagingDiskStreamAndEpochLogStayWithinTheirBoundsUnderADirtyEverythingGuest() throws Exception
    {
        final SimulatedVmm.Builder guest = SimulatedVmm.builder()
            .vmId("pressure")
            .memoryBytes(32L << 20)
            .workload(Workload.UNIFORM)
            .pagesPerMillisecond(2_000)
            .disk(dir.resolve("active-disk.img"), 4L << 20)
            .diskEveryTicks(1)
            .packetEveryTicks(1)
            .seed(17);
        try (ReplicationFixture fixture = new ReplicationFixture(guest, new TcpTransport(), "127.0.0.1:0",
            dir.resolve("standby"), true,
            (ctx, standby) -> ctx.stagingAreaBytes(1 << 20).stagingAreas(2).diskStreamBytes(64 << 10)
                .maxEpochsInFlight(2).checkpointPeriodNs(Duration.ofMillis(5).toNanos()),
            standby -> standby.epochLogMemoryBytes(1 << 20)))
        {
            fixture.awaitCommits(10, Duration.ofSeconds(60));
            final long settled = NativeMemory.liveBytes();
            long peak = settled;
            final long deadline = System.nanoTime() + Duration.ofSeconds(3).toNanos();
            while (System.nanoTime() < deadline)
            {
                peak = Math.max(peak, NativeMemory.liveBytes());
                Thread.sleep(2);
            }
            fixture.awaitCommits(fixture.standby.lastCommittedEpoch() + 10, Duration.ofSeconds(60));
            final ProtectionStatus status = fixture.active.status();
            assertEquals("[]", fixture.mismatches.toString(), "standby differs from the active at a checkpoint");
            assertEquals("[]", fixture.standbyErrors.toString());
            assertTrue(status.stagingOverflows() > 0, "deltas overflowed the 1 MiB staging areas: " + status);
            assertTrue(status.diskBackPressure() > 0 || status.inFlightWaits() > 0,
                "the guest was held back by the bounds: " + status);
            assertEquals(settled, peak, "off-heap memory grew under pressure: settled " + settled + ", peak " + peak);
        }
    }
}
