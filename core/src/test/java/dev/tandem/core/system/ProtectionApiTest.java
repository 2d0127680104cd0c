package dev.tandem.core.system;

import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.core.transport.InJvmTransport;
import dev.tandem.vmm.DirtyBitmap;
import dev.tandem.vmm.DirtyLog;
import dev.tandem.vmm.DiskWriteSink;
import dev.tandem.vmm.OutputGate;
import dev.tandem.vmm.VmmAdapter;
import dev.tandem.vmm.sim.SimulatedVmm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What an embedding VMM asks of the control API: wait for an epoch to commit on either side, the epoch of a write
 * or frame issued now, and the dirty pages of the newest checkpoint.
 */
@LeakCheck
class ProtectionApiTest
{
    private static final Duration LONG = Duration.ofSeconds(20);

    @TempDir
    Path dir;

    private static SimulatedVmm.Builder guest(final String vmId)
    {
        return SimulatedVmm.builder().vmId(vmId).memoryBytes(8L << 20).pagesPerMillisecond(20).packetEveryTicks(1)
            .tickMicros(200);
    }

    @Test
    void awaitCommittedReturnsOnceBothSidesHoldTheEpochAndFalseAfterTheTimeout() throws Exception
    {
        try (ReplicationFixture fixture = new ReplicationFixture(guest("await-committed"), new InJvmTransport(),
            "await-committed", dir, false, (ctx, standby) -> { }))
        {
            final long epoch = fixture.active.currentEpoch() + 3;
            assertTrue(fixture.active.awaitCommitted(epoch, LONG), () -> "active: " + fixture.active.status());
            assertTrue(fixture.active.lastAckedEpoch() >= epoch);
            assertTrue(fixture.standby.lastCommittedEpoch() >= epoch, "an ack means the standby committed");
            assertTrue(fixture.standby.awaitCommitted(epoch + 2, LONG), () -> "standby: " + fixture.standby.status());
            assertTrue(fixture.standby.lastCommittedEpoch() >= epoch + 2);

            final long far = fixture.active.currentEpoch() + 1_000_000;
            final long start = System.nanoTime();
            assertFalse(fixture.active.awaitCommitted(far, Duration.ofMillis(50)));
            assertFalse(fixture.standby.awaitCommitted(far, Duration.ofMillis(50)));
            assertTrue(System.nanoTime() - start >= Duration.ofMillis(100).toNanos(), "waited both timeouts");
        }
    }

    /**
     * The checkpoint rate is measured over windows of at least a second, kept as checkpoints are taken: a status()
     * read right after another (a watcher polling every few ms) sees the same rate, not the handful of checkpoints
     * since that other read (which was 0/s and made the harness's progress lines lie).
     */
    @Test
    void theCheckpointRateDoesNotDependOnWhoElseReadsTheStatus() throws Exception
    {
        try (ReplicationFixture fixture = new ReplicationFixture(guest("rate"), new InJvmTransport(), "rate", dir,
            false, (ctx, standby) -> { }))
        {
            final long start = System.nanoTime();
            // past the first window: its rate is then a closed window's
            while (System.nanoTime() - start < Duration.ofMillis(1500).toNanos())
            {
                fixture.active.status();
                Thread.sleep(5);
            }
            ProtectionStatus first = null;
            ProtectionStatus second = null;
            // a window may close between two reads (once a second, microseconds apart): three tries
            for (int i = 0; i < 3 && (first == null || first.checkpointsPerSecond() != second.checkpointsPerSecond());
                i++)
            {
                first = fixture.active.status();
                second = fixture.active.status();
            }
            assertTrue(first.checkpointsPerSecond() > 0, first.toString());
            assertEquals(first.checkpointsPerSecond(), second.checkpointsPerSecond(), 0.0,
                "a read right after another sees the same window");
        }
    }

    @Test
    void awaitCommittedFailsOnceNoFurtherEpochCanCommit() throws Exception
    {
        try (ReplicationFixture fixture = new ReplicationFixture(guest("await-ended"), new InJvmTransport(),
            "await-ended", dir, false, (ctx, standby) -> { }))
        {
            assertTrue(fixture.active.awaitCommitted(fixture.active.currentEpoch(), LONG));
            final long next = fixture.active.currentEpoch() + 1_000;
            fixture.active.close();
            final IllegalStateException activeEnded = assertThrows(IllegalStateException.class,
                () -> fixture.active.awaitCommitted(next, LONG));
            assertTrue(activeEnded.getMessage().contains("protection of VM await-ended ended (STOPPED)"),
                activeEnded.getMessage());
            // already committed epochs still answer true after the end
            assertTrue(fixture.active.awaitCommitted(fixture.active.lastAckedEpoch(), Duration.ZERO));

            fixture.standby.close();
            final IllegalStateException standbyEnded = assertThrows(IllegalStateException.class,
                () -> fixture.standby.awaitCommitted(next, LONG));
            assertTrue(standbyEnded.getMessage().contains("standby for VM await-ended is closed"),
                standbyEnded.getMessage());
        }
    }

    @Test
    void currentEpochIsTheEpochOfEachFrameAndDirtyPagesAreThoseOfTheNewestCheckpoint() throws Exception
    {
        final AtomicReference<ActiveReplicator> activeRef = new AtomicReference<>();
        final AtomicLong offers = new AtomicLong();
        // epoch read by the vCPU just before each frame, by offer number
        final AtomicLongArray epochOfOffer = new AtomicLongArray(1 << 16);
        // offers made before checkpoint N paused the guest, by N; and pages harvested at checkpoint N
        final ConcurrentHashMap<Long, Long> offersBeforeCheckpoint = new ConcurrentHashMap<>();
        final ConcurrentHashMap<Long, Long> harvested = new ConcurrentHashMap<>();
        final AtomicLong lastHarvest = new AtomicLong();
        final List<String> violations = new CopyOnWriteArrayList<>();
        try (ReplicationFixture fixture = new ReplicationFixture(guest("current-epoch"), new InJvmTransport(),
            "current-epoch", dir, false, (ctx, standby) ->
            {
                ctx.adapter(new Tagging(ctx.adapter(), activeRef, offers, epochOfOffer, lastHarvest));
                ctx.checkpointObserver((epoch, adapter) ->
                {
                    // paused, on the scheduler thread, before checkpoint `epoch` is published
                    offersBeforeCheckpoint.put(epoch, offers.get());
                    harvested.put(epoch, lastHarvest.get());
                    final ActiveReplicator active = activeRef.get();
                    if (active != null && active.currentEpoch() != epoch)
                    {
                        violations.add("at checkpoint " + epoch + " currentEpoch() was " + active.currentEpoch());
                    }
                });
            }))
        {
            activeRef.set(fixture.active);
            assertTrue(fixture.active.awaitCommitted(fixture.active.currentEpoch() + 20, LONG));
            // status() names the newest checkpoint's dirty pages: exactly what the dirty log handed over at it
            int nonZero = 0;
            for (int i = 0; i < 200 && nonZero < 5; i++)
            {
                final ProtectionStatus status = fixture.active.status();
                final long newest = status.lastCheckpointEpoch();
                if (newest > 1)
                {
                    assertEquals(harvested.get(newest), status.lastCheckpointDirtyPages(), "epoch " + newest);
                    nonZero += status.lastCheckpointDirtyPages() > 0 ? 1 : 0;
                }
                Thread.sleep(3);
            }
            assertEquals(5, nonZero, "checkpoints seen with dirty pages");
            fixture.active.close();
            assertEquals(List.of(), violations);

            // each frame's epoch E, read on the vCPU, is exactly the epoch it was offered in: after checkpoint E-1
            // and before checkpoint E
            final long total = Math.min(offers.get(), epochOfOffer.length());
            assertTrue(total > 20, "frames offered: " + total);
            int checked = 0;
            for (int offer = 1; offer < total; offer++)
            {
                final long epoch = epochOfOffer.get(offer);
                final Long before = offersBeforeCheckpoint.get(epoch);
                final Long after = epoch == 1 ? Long.valueOf(0) : offersBeforeCheckpoint.get(epoch - 1);
                if (before == null)
                {
                    continue; // the epoch still running at close
                }
                assertTrue(after != null && after < offer && offer <= before, "offer " + offer + " tagged epoch " +
                    epoch + ", but checkpoints " + (epoch - 1) + " and " + epoch + " saw " + after + " and " +
                    before + " offers");
                checked++;
            }
            assertTrue(checked > 20, "frames checked " + checked);

        }
    }

    /**
     * The guest, with every frame tagged by {@link ActiveReplicator#currentEpoch()} on the vCPU that offers it, and
     * the pages harvested at each checkpoint counted.
     */
    private static final class Tagging extends ForwardingAdapter
    {
        private final AtomicReference<ActiveReplicator> active;
        private final AtomicLong offers;
        private final AtomicLongArray epochOfOffer;
        private final AtomicLong lastHarvest;

        Tagging(final VmmAdapter guest, final AtomicReference<ActiveReplicator> active, final AtomicLong offers,
            final AtomicLongArray epochOfOffer, final AtomicLong lastHarvest)
        {
            super(guest);
            this.active = active;
            this.offers = offers;
            this.epochOfOffer = epochOfOffer;
            this.lastHarvest = lastHarvest;
        }

        @Override
        public void attach(final DiskWriteSink diskWrites, final OutputGate output)
        {
            guest.attach(diskWrites, (frame, index, length) ->
            {
                final ActiveReplicator replicator = active.get();
                if (replicator != null)
                {
                    final long offer = offers.incrementAndGet();
                    if (offer < epochOfOffer.length())
                    {
                        epochOfOffer.set((int)offer, replicator.currentEpoch());
                    }
                }
                return output.offer(frame, index, length);
            });
        }

        @Override
        public DirtyLog dirtyLog()
        {
            return new ForwardingDirtyLog()
            {
                @Override
                public void harvest(final DirtyBitmap into)
                {
                    // the scheduler harvests into a cleared bitmap while the guest is paused; the observer files
                    // the count under the checkpoint's epoch
                    log.harvest(into);
                    lastHarvest.set(into.cardinality());
                }
            };
        }
    }
}
