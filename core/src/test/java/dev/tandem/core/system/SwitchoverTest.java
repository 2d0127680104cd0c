package dev.tandem.core.system;

import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.failover.FileArbiter;
import dev.tandem.core.failover.Promotion;
import dev.tandem.core.metrics.ProtectionState;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.StateDigest;
import dev.tandem.vmm.sim.SimulatedReplicaTarget;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Planned switchover under load, over real loopback TCP: the guest moves to the standby's host with nothing lost
 * and no output taken back. The promoted guest must equal the active's guest at the checkpoint the switchover
 * paused it at, byte for byte; the old copy must stay stopped with nothing leaving it afterwards.
 */
@LeakCheck
class SwitchoverTest
{
    @TempDir
    Path dir;

    private SimulatedVmm.Builder guest(final String disk)
    {
        return SimulatedVmm.builder()
            .vmId("switchover")
            .memoryBytes(32L << 20)
            .workload(Workload.HOTSET)
            .hotsetPages(1024)
            .pagesPerMillisecond(200)
            .disk(dir.resolve(disk), 8L << 20)
            .diskEveryTicks(1)
            .packetEveryTicks(1)
            .seed(9);
    }

    @Test
    void aPlannedSwitchoverMovesTheGuestWithNothingLost() throws Exception
    {
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        try (ReplicationFixture fixture = new ReplicationFixture(guest("active-disk.img"), new TcpTransport(),
            "127.0.0.1:0", dir.resolve("standby"), true,
            (ctx, standby) -> ctx.promotionArbiter(arbiter).checkpointPeriodNs(Duration.ofMillis(5).toNanos()),
            standbyCtx -> standbyCtx.promotionArbiter(arbiter)
                .failureTimeoutNs(Duration.ofSeconds(2).toNanos())
                .replicaTarget(new SimulatedReplicaTarget(guest("promoted-disk.img"), false))))
        {
            fixture.awaitCommits(30, Duration.ofSeconds(60));
            final ActiveReplicator.Switchover switchover = fixture.active.switchover(Duration.ofSeconds(20));

            assertEquals(ProtectionState.FENCED, fixture.active.status().state());
            assertTrue(fixture.active.isGuestStopped(), "the old copy is stopped");
            // stopped on the standby's answer (the arbiter is the fallback when a reset loses it)
            assertTrue(String.valueOf(fixture.vmm.fencedReason()).contains("planned switchover: the standby won " +
                "generation 2 and resumes the guest from epoch " + switchover.epoch()), fixture.vmm.fencedReason());
            final Promotion promotion = awaitPromotion(fixture);
            try
            {
                assertEquals(switchover.epoch(), promotion.recoveryEpoch(),
                    "resumed from the switchover's checkpoint");
                assertEquals(switchover.generation(), promotion.generation());
                assertEquals(switchover.epoch(), fixture.active.lastAckedEpoch(),
                    "every checkpoint was acknowledged");
                assertEquals(fixture.activeDigests.get(switchover.epoch()), StateDigest.of(promotion.guest()),
                    "the promoted guest equals the active's at the switchover's checkpoint");
                assertEquals("[]", fixture.mismatches.toString());
                // no output taken back: everything the old guest made was released under acknowledged epochs, and
                // nothing leaves it any more
                final long onWire = fixture.vmm.framesOnWire();
                final long offered = fixture.vmm.txFrames();
                assertEquals(offered, onWire, "every frame the guest made before its last checkpoint was released " +
                    "on that checkpoint's ack, and the paused guest made none after it: " + fixture.active.status());
                Thread.sleep(200);
                assertEquals(onWire, fixture.vmm.framesOnWire(), "nothing leaves the stopped copy");
                assertEquals(offered, fixture.vmm.txFrames(), "the stopped copy makes nothing");
                assertTrue(switchover.stopNs() > 0);
                final IllegalStateException again = assertThrows(IllegalStateException.class,
                    () -> fixture.active.switchover(Duration.ofSeconds(1)));
                assertTrue(again.getMessage().contains("needs a PROTECTED active"), again.getMessage());
                System.out.printf("switchover at epoch %d: guest stopped %.1f ms until the standby owned it (pause p99 " +
                    "of a checkpoint %.1f ms)%n", switchover.epoch(), switchover.stopNs() / 1e6,
                    fixture.active.status().pauseP99Ns() / 1e6);
            }
            finally
            {
                ((SimulatedVmm)promotion.guest()).close();
            }
        }
    }

    @Test
    void aSwitchoverNeedsAnArbiter() throws Exception
    {
        try (ReplicationFixture fixture = new ReplicationFixture(guest("idle-disk.img"), new TcpTransport(),
            "127.0.0.1:0", dir.resolve("idle-standby"), false, (ctx, standby) -> { }))
        {
            fixture.awaitCommits(3, Duration.ofSeconds(60));
            // the standby's commits may run ahead of the acks the active has read: wait for the baseline's
            final long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (fixture.active.status().state() != ProtectionState.PROTECTED && System.nanoTime() < deadline)
            {
                Thread.sleep(1);
            }
            final IllegalStateException refused = assertThrows(IllegalStateException.class,
                () -> fixture.active.switchover(Duration.ofSeconds(1)));
            assertTrue(refused.getMessage().contains("needs a promotionArbiter"), refused.getMessage());
            assertEquals(ProtectionState.PROTECTED, fixture.active.status().state(), "nothing was paused or dropped");
        }
    }

    /**
     * A standby that cannot take over (it has no ReplicaTarget, so it refuses to promote) leaves the switchover
     * unanswered: the active claims the next generation itself, resumes the guest, and protection reconnects to the
     * same standby at that generation; the standby stays exact.
     */
    @Test
    void aSwitchoverTheStandbyCannotTakeIsAbandonedAndTheGuestRunsOn() throws Exception
    {
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        try (ReplicationFixture fixture = new ReplicationFixture(guest("kept-disk.img"), new TcpTransport(),
            "127.0.0.1:0", dir.resolve("kept-standby"), true,
            (ctx, standby) -> ctx.promotionArbiter(arbiter).checkpointPeriodNs(Duration.ofMillis(5).toNanos()),
            standbyCtx -> standbyCtx.promotionArbiter(arbiter).failureTimeoutNs(Duration.ofSeconds(5).toNanos())))
        {
            fixture.awaitCommits(20, Duration.ofSeconds(60));
            final IllegalStateException abandoned = assertThrows(IllegalStateException.class,
                () -> fixture.active.switchover(Duration.ofSeconds(2)));
            assertTrue(abandoned.getMessage().contains("this side won generation 2"), abandoned.getMessage());
            assertTrue(fixture.standby.promotion() == null, "the standby did not take over");
            // the guest runs again here (the scheduler resumed it) and protection comes back at generation 2
            final long writes = fixture.vmm.pageWrites();
            final long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (fixture.active.status().state() != ProtectionState.PROTECTED ||
                fixture.active.status().reconnect().reconnects() < 1 || fixture.vmm.pageWrites() == writes)
            {
                if (System.nanoTime() > deadline)
                {
                    fail("protection did not come back: " + fixture.active.status());
                }
                Thread.sleep(5);
            }
            assertEquals(2, fixture.active.generation());
            final long epoch = fixture.standby.lastCommittedEpoch();
            while (fixture.standby.lastCommittedEpoch() < epoch + 10)
            {
                if (System.nanoTime() > deadline)
                {
                    fail("no commits after the abandoned switchover: " + fixture.standby.status());
                }
                Thread.sleep(5);
            }
            assertEquals("[]", fixture.mismatches.toString(), "the standby differs from the active");
            assertEquals(2, arbiter.currentGeneration("switchover"));
        }
    }

    private static Promotion awaitPromotion(final ReplicationFixture fixture) throws InterruptedException
    {
        final long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (fixture.standby.promotion() == null)
        {
            if (System.nanoTime() > deadline)
            {
                fail("the standby did not promote: " + fixture.standby.status());
            }
            Thread.sleep(2);
        }
        final Promotion promotion = fixture.standby.promotion();
        assertNotNull(promotion.guest());
        return promotion;
    }
}
