package dev.tandem.core.system;

import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.core.standby.DiskImageOpener;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.FileVirtualDisk;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The standby's disk fails while its applier applies an epoch (a full disk, injected through
 * {@link DiskImageOpener}). In MEMORY mode that epoch was already acknowledged when it verified (ack before apply),
 * so the active may have released its output: the standby acknowledges nothing after it, says it is torn and why,
 * refuses the active's session with that reason, and refuses to be inspected or promoted; the active keeps its guest
 * running and releases no output of an epoch that was not acknowledged. Writes the device accepts only in pieces
 * (short writes) still commit byte-exact.
 */
@LeakCheck
class StandbyDiskFaultTest
{
    @TempDir
    Path dir;

    /** A disk image whose device can fill up, and which takes writes in pieces of at most one block. */
    static final class FaultyDisk extends FileVirtualDisk
    {
        final AtomicBoolean full = new AtomicBoolean();
        final AtomicLong pieces = new AtomicLong();

        FaultyDisk(final Path path, final int id, final int blockSize, final long sizeBytes)
        {
            super(path, id, blockSize, sizeBytes, false);
        }

        @Override
        public void write(final long offset, final ByteBuffer data) throws IOException
        {
            if (full.get())
            {
                throw new IOException("No space left on device (injected)");
            }
            final int limit = data.limit();
            long position = offset;
            while (data.position() < limit)
            {
                final int piece = Math.min(blockSize(), limit - data.position());
                data.limit(data.position() + piece);
                super.write(position, data);
                position += piece;
                pieces.incrementAndGet();
                data.limit(limit);
            }
        }
    }

    private SimulatedVmm.Builder guest()
    {
        return SimulatedVmm.builder().vmId("disk-fault").memoryBytes(8L << 20).workload(Workload.HOTSET)
            .pagesPerMillisecond(20).disk(dir.resolve("active-disk.img"), 2L << 20).diskEveryTicks(1)
            .packetEveryTicks(1).seed(23);
    }

    @Test
    void writesTakenInPiecesStillCommitByteExact() throws Exception
    {
        final FaultyDisk[] opened = new FaultyDisk[1];
        try (ReplicationFixture fixture = new ReplicationFixture(guest(), new TcpTransport(), "127.0.0.1:0",
            dir.resolve("standby"), true, (ctx, standby) -> { },
            standby -> standby.diskImageOpener((path, disk) ->
                opened[0] = new FaultyDisk(path, disk.id(), disk.blockSize(), disk.sizeBytes()))))
        {
            fixture.awaitCommits(40, Duration.ofSeconds(60));
            assertEquals("[]", fixture.mismatches.toString(), "standby differs from the active at a checkpoint");
            assertTrue(opened[0].pieces.get() > fixture.vmm.diskWrites(), "writes were split: " + opened[0].pieces);
        }
    }

    @Test
    void aFullDiskDuringApplyTearsTheStandbyWhichAcknowledgesNothingMoreAndSaysWhy() throws Exception
    {
        final FaultyDisk[] opened = new FaultyDisk[1];
        try (ReplicationFixture fixture = new ReplicationFixture(guest(), new TcpTransport(), "127.0.0.1:0",
            dir.resolve("standby"), true, (ctx, standby) -> ctx.standbySilenceTimeoutNs(Duration.ofMinutes(1).toNanos()),
            standby -> standby.diskImageOpener((path, disk) ->
                opened[0] = new FaultyDisk(path, disk.id(), disk.blockSize(), disk.sizeBytes()))))
        {
            fixture.awaitCommits(10, Duration.ofSeconds(60));
            opened[0].full.set(true);
            final long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (fixture.standby.tornReason() == null && System.nanoTime() < deadline)
            {
                Thread.sleep(5);
            }
            final String torn = fixture.standby.tornReason();
            assertTrue(torn != null && torn.contains("No space left on device") && torn.startsWith("applying epoch"),
                "the standby says why it holds no whole recovery point: " + torn);
            final long lastCommitted = fixture.standby.lastCommittedEpoch();
            Thread.sleep(300);
            final ProtectionStatus status = fixture.active.status();
            assertEquals(lastCommitted, fixture.standby.lastCommittedEpoch(), "nothing committed after the fault");
            assertTrue(status.lastAckedEpoch() <= lastCommitted, "no ack after the epoch that failed: " + status);
            assertTrue(fixture.standby.appliedEpoch() < lastCommitted, "the failed epoch is not applied");
            final Throwable heard = fixture.active.failure();
            assertTrue(heard != null && String.valueOf(heard.getMessage()).contains("torn"),
                "the active hears why the standby refuses it: " + heard);
            assertTrue(!fixture.vmm.isPaused(), "the active's guest keeps running");
            final long released = status.outputReleased();
            Thread.sleep(200);
            assertEquals(released, fixture.active.status().outputReleased(),
                "no output of an unacknowledged epoch released");
            final IllegalStateException refused = assertThrows(IllegalStateException.class,
                () -> fixture.standby.inspect(adapter -> 0L));
            assertTrue(refused.getMessage().contains("torn"), refused.getMessage());
            assertEquals("[]", fixture.mismatches.toString(), "every commit before the fault was byte-exact");
            opened[0].full.set(false);
        }
    }
}
