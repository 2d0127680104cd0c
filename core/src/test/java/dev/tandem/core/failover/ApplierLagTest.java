package dev.tandem.core.failover;

import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.metrics.ProtectionState;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyListener;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.system.LeakCheck;
import dev.tandem.vmm.FileVirtualDisk;
import dev.tandem.vmm.RecoveryPoint;
import dev.tandem.vmm.StateDigest;
import dev.tandem.vmm.sim.SimulatedDisk;
import dev.tandem.vmm.sim.SimulatedReplicaTarget;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Ack before apply (MEMORY mode): the standby acks an epoch once it is received whole and verified, and its applier
 * follows behind. The applier is held inside a disk write of the epoch it applies (the standby's disk image is the
 * seam), so the lag is made by the test, not by timing. The ack of that epoch still leaves; the lag stays within the
 * epoch logs (the receiver stops reading); and a promotion, whether the active vanished or an operator asked, first
 * applies every acknowledged epoch and then resumes a guest byte-equal to the active at that checkpoint
 * (invariants 1 and 3).
 */
@LeakCheck
class ApplierLagTest
{
    @TempDir
    Path dir;

    private final Map<Long, Long> activeDigests = new ConcurrentHashMap<>();
    private final Map<Long, Long> mismatches = new ConcurrentHashMap<>();
    private final List<Long> applied = new CopyOnWriteArrayList<>();
    private final List<String> steps = new CopyOnWriteArrayList<>();
    private final AtomicReference<Promotion> promoted = new AtomicReference<>();
    /** The next disk write the applier makes waits for {@link #release}. */
    private final AtomicBoolean holdNextWrite = new AtomicBoolean();
    private final CountDownLatch release = new CountDownLatch(1);
    private final CountDownLatch held = new CountDownLatch(1);

    private SimulatedVmm guest(final String vmId)
    {
        return SimulatedVmm.builder()
            .vmId(vmId)
            .memoryBytes(8L << 20)
            .workload(Workload.HOTSET)
            .pagesPerMillisecond(30)
            .disk(dir.resolve("active-disk.img"), 1L << 20)
            .diskEveryTicks(1)
            .packetEveryTicks(1)
            .build();
    }

    private StandbyContext standbyContext(final PartitionableTransport transport, final SimulatedVmm vmm,
        final PromotionArbiter arbiter)
    {
        return new StandbyContext()
            .transport(transport)
            .listenEndpoint("standby")
            .directory(dir.resolve("standby"))
            .vmId(vmm.vmId())
            .memory(vmm.memory().pageSize(), vmm.memory().pageCount())
            .disk(0, SimulatedDisk.BLOCK_SIZE, vmm.disk().sizeBytes())
            .failureTimeoutNs(Duration.ofMillis(200).toNanos())
            .autoPromote(true)
            .promotionArbiter(arbiter)
            .replicaTarget(new SimulatedReplicaTarget(vmm.config().copy().diskPath(dir.resolve("promoted-disk.img")),
                false))
            .diskImageOpener((path, disk) -> new FileVirtualDisk(path, disk.id(), disk.blockSize(), disk.sizeBytes(),
                false)
            {
                @Override
                public void write(final long offset, final ByteBuffer data) throws IOException
                {
                    // only the applier writes the standby's disk image
                    if (holdNextWrite.compareAndSet(true, false))
                    {
                        held.countDown();
                        awaitQuietly(release);
                    }
                    super.write(offset, data);
                }
            })
            .listener(new StandbyListener()
            {
                @Override
                public void onCommit(final long epoch, final RecoveryPoint point)
                {
                    if (point.epoch() != epoch)
                    {
                        mismatches.put(epoch, -point.epoch());
                    }
                    final Long expected = activeDigests.get(epoch);
                    if (expected == null || expected != StateDigest.of(point))
                    {
                        mismatches.put(epoch, expected == null ? 0 : expected);
                    }
                    applied.add(epoch);
                }
            })
            .promotionListener(new PromotionListener()
            {
                @Override
                public void onStep(final String step, final long sinceStartNs)
                {
                    steps.add(step);
                }

                @Override
                public void onPromoted(final Promotion promotion)
                {
                    promoted.set(promotion);
                }
            });
    }

    private ActiveContext activeContext(final PartitionableTransport transport, final SimulatedVmm vmm,
        final PromotionArbiter arbiter)
    {
        return new ActiveContext()
            .adapter(vmm)
            .transport(transport)
            .standbyEndpoint("standby")
            .stagingAreaBytes(4 << 20)
            .checkpointPeriodNs(Duration.ofMillis(3).toNanos())
            // a vanished active never claims: only the standby's claim is under test
            .standbySilenceTimeoutNs(Duration.ofSeconds(5).toNanos())
            .promotionArbiter(arbiter)
            .generationFile(dir.resolve("active-generation"))
            .checkpointObserver((epoch, adapter) -> activeDigests.put(epoch, StateDigest.of(adapter)));
    }

    private static void awaitQuietly(final CountDownLatch latch)
    {
        try
        {
            if (!latch.await(60, TimeUnit.SECONDS))
            {
                throw new IllegalStateException("the test never released the applier");
            }
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Holds the applier inside a disk write of the next epoch it applies, and waits until the active has that
     * epoch's ack (and {@code beyond} more).
     *
     * @return the epoch the applier is held in.
     */
    private long holdTheApplierAndAwaitItsAck(final StandbyReplica standby, final ActiveReplicator active,
        final int beyond) throws InterruptedException
    {
        Await.until(() -> standby.appliedEpoch() >= 20, "20 epochs applied");
        holdNextWrite.set(true);
        assertTrue(held.await(30, TimeUnit.SECONDS), "the applier writes the disk image");
        // the applier is inside this epoch: nothing of it is finished
        final long heldEpoch = standby.appliedEpoch() + 1;
        Await.until(() -> active.lastAckedEpoch() >= heldEpoch + beyond, "ack " + (heldEpoch + beyond) +
            " while the applier is held in epoch " + heldEpoch);
        final long acked = active.lastAckedEpoch();
        assertEquals(heldEpoch - 1, standby.appliedEpoch(), "the applier did not move");
        assertTrue(standby.status().appliedEpoch() < acked, "acked " + acked + " while applied " +
            standby.status().appliedEpoch());
        return heldEpoch;
    }

    @Test
    void acksLeaveWhileTheApplierLagsAndTheLagStaysWithinTheEpochLogs() throws Exception
    {
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        final PartitionableTransport transport = new PartitionableTransport();
        try (SimulatedVmm vmm = guest("lagging-applier-vm");
            StandbyReplica standby = StandbyReplica.launch(standbyContext(transport, vmm, arbiter)))
        {
            vmm.start();
            // no XOR deltas: the receiver need not wait for the applier's base, only for a free epoch log
            try (ActiveReplicator active = ActiveReplicator.launch(activeContext(transport, vmm, arbiter)
                .sentPageCacheBytes(0)))
            {
                final long heldEpoch = holdTheApplierAndAwaitItsAck(standby, active,
                    StandbyContext.EPOCH_LOGS_DEFAULT - 1);
                final long acked = active.lastAckedEpoch();
                // back-pressure: with every log taken the receiver stops reading, so nothing more commits
                for (int i = 0; i < 50; i++)
                {
                    Thread.sleep(4);
                    assertTrue(standby.lastCommittedEpoch() <= heldEpoch + StandbyContext.EPOCH_LOGS_DEFAULT - 1,
                        "committed " + standby.lastCommittedEpoch() + " with the applier held at " + heldEpoch);
                }
                assertEquals(acked, active.lastAckedEpoch(), "no ack without a log to receive into");
                assertNull(promoted.get(), "a busy applier is not a failed active");
                release.countDown();
                Await.until(() -> standby.appliedEpoch() >= acked + 10, "the applier catches up and goes on");
                assertEquals(ProtectionState.PROTECTED, active.status().state());
                assertEquals(Map.of(), mismatches, "every applied epoch equals the active's checkpoint");
                for (int i = 1; i < applied.size(); i++)
                {
                    assertEquals(applied.get(i - 1) + 1, (long)applied.get(i), "applied in epoch order");
                }
            }
        }
    }

    @Test
    void anActiveThatVanishesWhileTheApplierLagsIsResumedFromTheLastAckedEpochByteEqual() throws Exception
    {
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        final PartitionableTransport transport = new PartitionableTransport();
        try (SimulatedVmm vmm = guest("vanishing-active-vm");
            StandbyReplica standby = StandbyReplica.launch(standbyContext(transport, vmm, arbiter)))
        {
            vmm.start();
            // XOR deltas on (the default): the next epoch's pages wait for the applier's base
            try (ActiveReplicator active = ActiveReplicator.launch(activeContext(transport, vmm, arbiter)))
            {
                final long acked = holdTheApplierAndAwaitItsAck(standby, active, 0);
                // from the standby's side the active is gone: nothing of it arrives any more
                transport.partition();
                final long lastAcked = active.lastAckedEpoch();
                assertTrue(standby.appliedEpoch() < lastAcked, "the applier lags the acks at the failure");
                release.countDown();
                Await.until(() -> promoted.get() != null, "standby promotes");
                final Promotion promotion = promoted.get();
                try
                {
                    assertTrue(promotion.recoveryEpoch() >= lastAcked && lastAcked >= acked,
                        "recovery epoch " + promotion.recoveryEpoch() + " < last ack " + lastAcked);
                    assertEquals(standby.lastCommittedEpoch(), promotion.recoveryEpoch());
                    assertEquals(promotion.recoveryEpoch(), standby.appliedEpoch(), "every committed epoch applied");
                    assertEquals(activeDigests.get(promotion.recoveryEpoch()), StateDigest.of(promotion.guest()),
                        "promoted guest equals the active at checkpoint " + promotion.recoveryEpoch());
                    assertEquals(Map.of(), mismatches);
                    assertEquals(List.of("claim generation", "persist generation", "stop receiving",
                        "discard partial epoch", "finish applying", "build guest", "resume guest"), steps);
                }
                finally
                {
                    ((SimulatedVmm)promotion.guest()).close();
                }
            }
        }
    }

    @Test
    void aPromotionWaitsForTheApplierToFinishEveryAckedEpoch() throws Exception
    {
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        final PartitionableTransport transport = new PartitionableTransport();
        try (SimulatedVmm vmm = guest("operator-promotion-vm");
            StandbyReplica standby = StandbyReplica.launch(standbyContext(transport, vmm, arbiter)))
        {
            vmm.start();
            try (ActiveReplicator active = ActiveReplicator.launch(activeContext(transport, vmm, arbiter)))
            {
                holdTheApplierAndAwaitItsAck(standby, active, 0);
                standby.promote("operator, with the applier behind");
                Await.until(() -> steps.contains("discard partial epoch"), "the claim is won and receiving stopped");
                final long lastAcked = active.lastAckedEpoch();
                Thread.sleep(50);
                // claimed and let go of the active, but not resumed: the applier still holds acked epochs
                assertNull(promoted.get(), "resumed before the applier finished");
                assertTrue(standby.status().ownership().startsWith("promoting at generation 2"),
                    standby.status().ownership());
                assertTrue(standby.appliedEpoch() < lastAcked);
                release.countDown();
                Await.until(() -> promoted.get() != null, "standby promotes");
                final Promotion promotion = promoted.get();
                try
                {
                    assertTrue(promotion.recoveryEpoch() >= lastAcked,
                        "recovery epoch " + promotion.recoveryEpoch() + " < last ack " + lastAcked);
                    assertEquals(promotion.recoveryEpoch(), standby.appliedEpoch());
                    assertEquals(activeDigests.get(promotion.recoveryEpoch()), StateDigest.of(promotion.guest()),
                        "promoted guest equals the active at checkpoint " + promotion.recoveryEpoch());
                    assertEquals(List.of("claim generation", "persist generation", "stop receiving",
                        "discard partial epoch", "finish applying", "build guest", "resume guest"), steps);
                    Await.until(active::isGuestStopped, "the superseded active stops its guest");
                }
                finally
                {
                    ((SimulatedVmm)promotion.guest()).close();
                }
            }
        }
    }
}
