package dev.tandem.core.system;

import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.StateDigest;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Output commit (no frame of epoch N reaches the wire before ack N) and the disk barrier (no write issued after
 * checkpoint N is in the standby's image at commit N).
 */
@LeakCheck
class OutputCommitAndBarrierTest
{
    @TempDir
    Path dir;

    @Test
    void noFrameOfEpochNLeavesBeforeCommitN() throws Exception
    {
        // frame sequence numbers sent up to each checkpoint, recorded while the guest is paused
        final ConcurrentSkipListMap<Long, Long> lastFrameOfEpoch = new ConcurrentSkipListMap<>();
        final AtomicReference<StandbyReplica> standbyRef = new AtomicReference<>();
        final List<String> violations = new CopyOnWriteArrayList<>();
        final AtomicLong released = new AtomicLong();
        final AtomicLong lastSequence = new AtomicLong();
        final SimulatedVmm.Builder guest = SimulatedVmm.builder()
            .vmId("output-commit")
            .memoryBytes(8L << 20)
            .workload(Workload.HOTSET)
            .pagesPerMillisecond(20)
            .packetEveryTicks(1)
            .tickMicros(200)
            .packetSink((frame, index, length) ->
            {
                final long sequence = frame.getLong(index);
                if (!Thread.currentThread().getName().startsWith("tandem-"))
                {
                    return; // sent by the vCPU before protection started: nothing held it
                }
                final long committed = standbyRef.get().lastCommittedEpoch();
                final Map.Entry<Long, Long> epochOfFrame = lastFrameOfEpochFor(lastFrameOfEpoch, sequence);
                if (epochOfFrame == null || epochOfFrame.getKey() > committed)
                {
                    violations.add("frame " + sequence + " of epoch " +
                        (epochOfFrame == null ? "(not yet checkpointed)" : epochOfFrame.getKey()) +
                        " released with standby at commit " + committed);
                }
                if (lastSequence.get() > 0 && sequence != lastSequence.get() + 1)
                {
                    violations.add("frame " + sequence + " released out of order after " + lastSequence.get());
                }
                lastSequence.set(sequence);
                released.incrementAndGet();
            });
        try (ReplicationFixture fixture = new ReplicationFixture(guest, new TcpTransport(), "127.0.0.1:0",
            dir.resolve("standby"), false,
            (ctx, standby) ->
            {
                standbyRef.set(standby);
                ctx.checkpointObserver((epoch, adapter) ->
                    lastFrameOfEpoch.put(epoch, ((SimulatedVmm)adapter).txFrames()));
            }))
        {
            fixture.awaitCommits(200, Duration.ofSeconds(60));
            assertEquals("[]", violations.toString());
            assertTrue(released.get() > 100, "frames released: " + released.get());
            assertTrue(fixture.vmm.txFrames() > released.get() - 1, "held frames are not all released early");
        }
    }

    private static Map.Entry<Long, Long> lastFrameOfEpochFor(
        final ConcurrentSkipListMap<Long, Long> lastFrameOfEpoch, final long sequence)
    {
        for (final Map.Entry<Long, Long> entry : lastFrameOfEpoch.entrySet())
        {
            if (entry.getValue() >= sequence)
            {
                return entry;
            }
        }
        return null;
    }

    @Test
    void diskWritesAfterCheckpointNAreNotInTheImageAtCommitN() throws Exception
    {
        final Map<Long, Long> activeDiskDigests = new ConcurrentHashMap<>();
        final SimulatedVmm.Builder guest = SimulatedVmm.builder()
            .vmId("barrier")
            .memoryBytes(4L << 20)
            .workload(Workload.IDLE)
            .disk(dir.resolve("active-disk.img"), 1L << 20)
            .diskEveryTicks(1)
            .tickMicros(100);
        try (ReplicationFixture fixture = new ReplicationFixture(guest, new TcpTransport(), "127.0.0.1:0",
            dir.resolve("standby"), false,
            (ctx, standby) -> ctx.checkpointObserver((epoch, adapter) ->
            {
                final StateDigest digest = new StateDigest();
                digest.addDisks(adapter.disks());
                activeDiskDigests.put(epoch, digest.value());
            })))
        {
            final List<String> mismatches = new CopyOnWriteArrayList<>();
            final AtomicLong checked = new AtomicLong();
            fixture.onCommit((epoch, point) ->
            {
                final StateDigest digest = new StateDigest();
                digest.addDisks(point.disks());
                if (!Long.valueOf(digest.value()).equals(activeDiskDigests.get(epoch)))
                {
                    mismatches.add("disk image at commit " + epoch + " differs from the active's at checkpoint " +
                        epoch);
                }
                checked.incrementAndGet();
            });
            final long start = fixture.standby.lastCommittedEpoch();
            fixture.awaitCommits(start + 200, Duration.ofSeconds(60));
            while (checked.get() < 150)
            {
                Thread.sleep(1);
            }
            assertEquals("[]", mismatches.toString());
            assertTrue(fixture.vmm.diskWrites() > 1000, "disk writes racing the checkpoints: " +
                fixture.vmm.diskWrites());
        }
    }
}
