package dev.tandem.core.failover;

import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.active.UnprotectedOutput;
import dev.tandem.core.metrics.ProtectionState;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.system.LeakCheck;
import dev.tandem.core.transport.LoopbackRelay;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.core.wire.ProtocolException;
import dev.tandem.vmm.StateDigest;
import dev.tandem.vmm.sim.SimulatedDisk;
import dev.tandem.vmm.sim.SimulatedReplicaTarget;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Exactly one owner, over real loopback TCP: each test checks the property (is the old guest still running with
 * output leaving?), not a proxy for it. The partition is a {@link LoopbackRelay} that stops moving bytes with every
 * socket open, so each side's own socket keeps accepting writes: liveness must come from the peer's answers.
 */
@LeakCheck
class OwnershipTest
{
    private static final long FAILURE_TIMEOUT_MS = 200;

    @TempDir
    Path dir;

    private final ConcurrentSkipListMap<Long, Long> lastFrameOfEpoch = new ConcurrentSkipListMap<>();
    private final Map<Long, Long> activeDigests = new ConcurrentHashMap<>();
    /** Every frame the old active let out: {sequence, System.nanoTime() of its release}. */
    private final List<long[]> released = new CopyOnWriteArrayList<>();
    private final AtomicReference<Promotion> promoted = new AtomicReference<>();
    private final AtomicLong promotedAtNs = new AtomicLong();

    @Test
    void tcpPartitionStopsTheOldActiveAndItReleasesNothingAfterThePromotion() throws Exception
    {
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        try (SimulatedVmm vmm = guest("tcp-partition-vm").build();
            StandbyReplica standby = StandbyReplica.launch(standby(vmm, arbiter));
            LoopbackRelay relay = relayTo(standby))
        {
            vmm.start();
            // the active's own silence timeout is long: it must learn from the arbiter, not from its timeout
            try (ActiveReplicator active = ActiveReplicator.launch(active(vmm, arbiter, relay.endpoint())
                .standbySilenceTimeoutNs(Duration.ofSeconds(30).toNanos())))
            {
                Await.until(() -> standby.lastCommittedEpoch() >= 30, "30 commits");
                relay.partition();
                Await.until(() -> promoted.get() != null, "the standby promotes");
                Await.until(active::isGuestStopped, "the old active stops its guest");
                try
                {
                    assertEquals(ProtectionState.FENCED, active.status().state());
                    assertTrue(vmm.isPaused(), "the fenced guest stays paused");
                    assertNotNull(vmm.fencedReason(), "the VMM was told through fenced()");
                    assertNoReleaseAfterThePromotion();
                    assertOnlyAcknowledgedOutputLeft(promoted.get());
                    assertEquals(activeDigests.get(promoted.get().recoveryEpoch()),
                        StateDigest.of(promoted.get().guest()));
                }
                finally
                {
                    ((SimulatedVmm)promoted.get().guest()).close();
                }
            }
        }
    }

    @Test
    void passThroughLetsNothingOutBeforeTheArbiterAnswersAndEndsFencedWhenTheStandbyPromoted() throws Exception
    {
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        try (SimulatedVmm vmm = guest("pass-through-vm").build();
            StandbyReplica standby = StandbyReplica.launch(standby(vmm, arbiter)
                .failureTimeoutNs(Duration.ofMillis(600).toNanos()));
            LoopbackRelay relay = relayTo(standby))
        {
            vmm.start();
            // the active detects first (100 ms), long before the standby may promote (600 ms)
            try (ActiveReplicator active = ActiveReplicator.launch(active(vmm, arbiter, relay.endpoint())
                .standbySilenceTimeoutNs(Duration.ofMillis(100).toNanos())
                .unprotectedOutput(UnprotectedOutput.PASS_THROUGH)))
            {
                Await.until(() -> standby.lastCommittedEpoch() >= 30, "30 commits");
                relay.partition();
                Await.until(() -> promoted.get() != null, "the standby promotes");
                Await.until(active::isGuestStopped, "the old active stops its guest");
                try
                {
                    assertEquals(ProtectionState.FENCED, active.status().state(), "FENCED, not FAILED");
                    assertOnlyAcknowledgedOutputLeft(promoted.get());
                }
                finally
                {
                    ((SimulatedVmm)promoted.get().guest()).close();
                }
            }
        }
    }

    @Test
    void anActiveThatWinsTheArbiterOwnsTheGuestAndPassesOutputThrough() throws Exception
    {
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        try (SimulatedVmm vmm = guest("winner-vm").build())
        {
            final StandbyReplica standby = StandbyReplica.launch(standby(vmm, arbiter));
            vmm.start();
            try (ActiveReplicator active = ActiveReplicator.launch(active(vmm, arbiter, standby.endpoint())
                .unprotectedOutput(UnprotectedOutput.PASS_THROUGH)))
            {
                Await.until(() -> standby.lastCommittedEpoch() >= 10, "10 commits");
                standby.close();
                Await.until(() -> active.status().state() == ProtectionState.FAILED, "the active owns the guest");
                assertEquals(2, active.generation(), "it won the next generation");
                assertEquals(2, arbiter.currentGeneration("winner-vm"));
                assertEquals(2, new GenerationFile(dir.resolve("active-generation")).read(), "persisted");
                final int before = released.size();
                Await.until(() -> released.size() > before + 10, "output passes through once owned");
                assertFalse(vmm.isPaused());
            }
        }
    }

    @Test
    void closeWithoutADeliveredGoodbyeClaimsFirstAndTheStandbyThenCannotPromote() throws Exception
    {
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        try (SimulatedVmm vmm = guest("close-vm").build();
            StandbyReplica standby = StandbyReplica.launch(standby(vmm, arbiter)
                .failureTimeoutNs(Duration.ofSeconds(2).toNanos()));
            LoopbackRelay relay = relayTo(standby))
        {
            vmm.start();
            final ActiveReplicator active = ActiveReplicator.launch(active(vmm, arbiter, relay.endpoint()));
            Await.until(() -> standby.lastCommittedEpoch() >= 10, "10 commits");
            relay.partition();
            active.close();
            // the GOODBYE sat in a socket nobody reads: close() claimed generation 2 before detaching
            assertEquals(2, arbiter.currentGeneration("close-vm"));
            assertEquals(2, active.generation());
            assertFalse(active.isGuestStopped(), "the owner's guest runs on");
            Await.until(() -> standby.status().ownership().startsWith("superseded"), "the standby finds itself superseded");
            assertNull(standby.promotion(), "a superseded standby never promotes");
            assertTrue(standby.promotionRefused().contains("another side"), standby.promotionRefused());
        }
    }

    @Test
    void closeAfterTheStandbyPromotedStopsTheGuestInsteadOfDetaching() throws Exception
    {
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        try (SimulatedVmm vmm = guest("late-close-vm").build();
            StandbyReplica standby = StandbyReplica.launch(standby(vmm, arbiter));
            LoopbackRelay relay = relayTo(standby))
        {
            vmm.start();
            final ActiveReplicator active = ActiveReplicator.launch(active(vmm, arbiter, relay.endpoint())
                .standbySilenceTimeoutNs(Duration.ofSeconds(30).toNanos()));
            try
            {
                Await.until(() -> standby.lastCommittedEpoch() >= 10, "10 commits");
                relay.partition();
                Await.until(() -> promoted.get() != null, "the standby promotes");
                active.close();
                assertTrue(active.isGuestStopped(), "a superseded side never detaches its guest to run on");
                assertEquals(ProtectionState.FENCED, active.status().state());
                assertNoReleaseAfterThePromotion();
            }
            finally
            {
                active.close();
                if (promoted.get() != null)
                {
                    ((SimulatedVmm)promoted.get().guest()).close();
                }
            }
        }
    }

    @Test
    void operatorPromotionClaimsBeforeItDropsTheSessionAndRetriesAnUnreachableArbiter() throws Exception
    {
        final FlakyArbiter arbiter = new FlakyArbiter(new FileArbiter(dir.resolve("arbiter"), "test"));
        try (SimulatedVmm vmm = guest("operator-vm").build();
            StandbyReplica standby = StandbyReplica.launch(standby(vmm, arbiter)))
        {
            vmm.start();
            try (ActiveReplicator active = ActiveReplicator.launch(active(vmm, arbiter, standby.endpoint())))
            {
                Await.until(() -> standby.lastCommittedEpoch() >= 10, "10 commits");
                arbiter.down.set(true);
                standby.promote("operator moves the guest");
                Await.until(() -> standby.status().ownership().contains("unreachable"), "the standby retries the arbiter");
                final long commits = standby.status().commits();
                Await.until(() -> standby.status().commits() > commits + 5, "the session goes on while the claim waits");
                assertTrue(standby.status().connected(), "not dropped before the claim is won");
                assertNull(promoted.get(), "never promotes blind");
                assertTrue(standby.status().arbiterError() != null);
                arbiter.down.set(false);
                Await.until(() -> promoted.get() != null, "promotes once the arbiter answers");
                Await.until(active::isGuestStopped, "the old active stops its guest");
                try
                {
                    assertEquals(2, promoted.get().generation());
                    assertOnlyAcknowledgedOutputLeft(promoted.get());
                }
                finally
                {
                    ((SimulatedVmm)promoted.get().guest()).close();
                }
            }
        }
    }

    @Test
    void anActiveBelowTheArbitersGenerationIsRefusedOnBothSides() throws Exception
    {
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        assertTrue(arbiter.tryClaim("stale-vm", 2));
        try (SimulatedVmm vmm = guest("stale-vm").build();
            StandbyReplica standby = StandbyReplica.launch(standby(vmm, arbiter)))
        {
            vmm.start();
            // an active at generation 0 asks the arbiter too
            final IllegalStateException atZero = assertThrows(IllegalStateException.class,
                () -> ActiveReplicator.launch(active(vmm, arbiter, standby.endpoint()).generationFile(null)));
            assertTrue(atZero.getMessage().contains("owned elsewhere"), atZero.getMessage());
            // an active that does not ask (no arbiter of its own) is refused by the standby's arbiter
            final ProtocolException refused = assertThrows(ProtocolException.class,
                () -> ActiveReplicator.launch(active(vmm, null, standby.endpoint()).generation(1)));
            assertTrue(refused.getMessage().contains("arbiter holds generation 2"), refused.getMessage());
            assertEquals(0, standby.lastCommittedEpoch());
        }
    }

    @Test
    void generationsMoveUpSoTheNextFailoverCanClaim() throws Exception
    {
        // after a failover the promoted side (generation 2) protects onto a fresh standby (generation 1)
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        assertTrue(arbiter.tryClaim("moving-vm", 2));
        try (SimulatedVmm vmm = guest("moving-vm").build();
            StandbyReplica standby = StandbyReplica.launch(standby(vmm, arbiter));
            LoopbackRelay relay = relayTo(standby))
        {
            vmm.start();
            try (ActiveReplicator active = ActiveReplicator.launch(active(vmm, arbiter, relay.endpoint())
                .generation(2)))
            {
                Await.until(() -> standby.lastCommittedEpoch() >= 10, "10 commits");
                assertEquals(2, standby.generation(), "the standby moved up to the active's generation");
                assertEquals(2, new GenerationFile(dir.resolve("standby").resolve("generation")).read());
                relay.partition();
                Await.until(() -> promoted.get() != null, "the next failover claims generation 3");
                try
                {
                    assertEquals(3, promoted.get().generation());
                    Await.until(active::isGuestStopped, "the old active stops its guest");
                }
                finally
                {
                    ((SimulatedVmm)promoted.get().guest()).close();
                }
            }
        }
    }

    @Test
    void aSecondActiveIsRefusedWithAReason() throws Exception
    {
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        try (SimulatedVmm vmm = guest("busy-vm").build();
            SimulatedVmm second = guest("busy-vm").build();
            StandbyReplica standby = StandbyReplica.launch(standby(vmm, arbiter)))
        {
            vmm.start();
            second.start();
            try (ActiveReplicator active = ActiveReplicator.launch(active(vmm, arbiter, standby.endpoint())))
            {
                Await.until(() -> standby.lastCommittedEpoch() >= 5, "5 commits");
                final ProtocolException refused = assertThrows(ProtocolException.class,
                    () -> ActiveReplicator.launch(active(second, arbiter, standby.endpoint())
                        .generationFile(dir.resolve("second-generation"))));
                assertEquals(ProtocolException.Fault.REFUSED, refused.fault());
                assertTrue(refused.getMessage().contains("already serves an active"), refused.getMessage());
                final long commits = standby.lastCommittedEpoch();
                Await.until(() -> standby.lastCommittedEpoch() > commits + 5, "the first active is still protected");
                assertEquals(ProtectionState.PROTECTED, active.status().state());
            }
        }
    }

    private void assertNoReleaseAfterThePromotion()
    {
        final long at = promotedAtNs.get();
        for (final long[] frame : released)
        {
            assertTrue(frame[1] <= at, "frame #" + frame[0] + " left the old active " + (frame[1] - at) / 1000 +
                " us after the promotion");
        }
    }

    private void assertOnlyAcknowledgedOutputLeft(final Promotion promotion)
    {
        final long lastReleasable = lastFrameOfEpoch.get(promotion.recoveryEpoch());
        for (final long[] frame : released)
        {
            assertTrue(frame[0] <= lastReleasable, "frame #" + frame[0] + " of an epoch after the recovery point " +
                promotion.recoveryEpoch() + " reached the wire");
        }
    }

    private SimulatedVmm.Builder guest(final String vmId)
    {
        return SimulatedVmm.builder()
            .vmId(vmId)
            .memoryBytes(8L << 20)
            .workload(Workload.HOTSET)
            .pagesPerMillisecond(30)
            .disk(dir.resolve(vmId + "-" + System.nanoTime() + ".img"), 1L << 20)
            .diskEveryTicks(1)
            .packetEveryTicks(1)
            .packetSink((frame, index, length) ->
            {
                if (Thread.currentThread().getName().startsWith("tandem-"))
                {
                    released.add(new long[] {frame.getLong(index), System.nanoTime()});
                }
            });
    }

    private StandbyContext standby(final SimulatedVmm vmm, final PromotionArbiter arbiter)
    {
        return new StandbyContext()
            .transport(new TcpTransport())
            .listenEndpoint("127.0.0.1:0")
            .directory(dir.resolve("standby"))
            .vmId(vmm.vmId())
            .memory(vmm.memory().pageSize(), vmm.memory().pageCount())
            .disk(0, SimulatedDisk.BLOCK_SIZE, vmm.disk().sizeBytes())
            .failureTimeoutNs(Duration.ofMillis(FAILURE_TIMEOUT_MS).toNanos())
            .autoPromote(true)
            .promotionArbiter(arbiter)
            .replicaTarget(new SimulatedReplicaTarget(vmm.config().copy().diskPath(dir.resolve("promoted-disk.img")),
                false))
            .promotionListener(new PromotionListener()
            {
                @Override
                public void onPromoted(final Promotion promotion)
                {
                    promotedAtNs.set(System.nanoTime());
                    promoted.set(promotion);
                }
            });
    }

    private ActiveContext active(final SimulatedVmm vmm, final PromotionArbiter arbiter, final String endpoint)
    {
        return new ActiveContext()
            .adapter(vmm)
            .transport(new TcpTransport())
            .standbyEndpoint(endpoint)
            .stagingAreaBytes(4 << 20)
            .checkpointPeriodNs(Duration.ofMillis(3).toNanos())
            .standbySilenceTimeoutNs(Duration.ofMillis(500).toNanos())
            .promotionArbiter(arbiter)
            .generationFile(dir.resolve("active-generation"))
            .checkpointObserver((epoch, adapter) ->
            {
                activeDigests.put(epoch, StateDigest.of(adapter));
                lastFrameOfEpoch.put(epoch, ((SimulatedVmm)adapter).txFrames());
            });
    }

    private static LoopbackRelay relayTo(final StandbyReplica standby) throws java.io.IOException
    {
        final String endpoint = standby.endpoint();
        final int colon = endpoint.lastIndexOf(':');
        return new LoopbackRelay(new java.net.InetSocketAddress(endpoint.substring(0, colon),
            Integer.parseInt(endpoint.substring(colon + 1))));
    }

    /**
     * An arbiter that can be made unreachable for a while, as a lock service is during an outage.
     */
    static final class FlakyArbiter implements PromotionArbiter
    {
        final AtomicBoolean down = new AtomicBoolean();
        private final PromotionArbiter delegate;

        FlakyArbiter(final PromotionArbiter delegate)
        {
            this.delegate = delegate;
        }

        @Override
        public boolean tryClaim(final String vmId, final long generation)
        {
            check();
            return delegate.tryClaim(vmId, generation);
        }

        @Override
        public long currentGeneration(final String vmId)
        {
            check();
            return delegate.currentGeneration(vmId);
        }

        private void check()
        {
            if (down.get())
            {
                throw new UncheckedIOException(new java.io.IOException("arbiter unreachable (test outage)"));
            }
        }
    }
}
