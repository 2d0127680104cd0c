package dev.tandem.core.failover;

import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.metrics.ProtectionState;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.system.LeakCheck;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.StateDigest;
import dev.tandem.vmm.VmmAdapter;
import dev.tandem.vmm.sim.SimulatedReplicaTarget;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Failback over real loopback TCP: after a failover from host A to host B, host A comes back as a standby on its own
 * directory and the promoted guest on B is protected onto it, in reverse, with the same machinery; then B fails
 * and A resumes the guest. Generations move up through both (1, then 2 on B, then 3 on A), the old active's memory
 * is no checkpoint, so A's first session is a whole baseline; every commit on either standby and each promoted
 * guest must equal its active at that checkpoint.
 */
@LeakCheck
class FailbackTest
{
    @TempDir
    Path dir;

    private final Map<Long, Long> digestsA = new ConcurrentHashMap<>();
    private final Map<Long, Long> digestsB = new ConcurrentHashMap<>();
    private final List<String> mismatches = new CopyOnWriteArrayList<>();

    private SimulatedVmm.Builder guest(final String disk)
    {
        return SimulatedVmm.builder()
            .vmId("failback")
            .memoryBytes(16L << 20)
            .workload(Workload.HOTSET)
            .pagesPerMillisecond(50)
            .disk(dir.resolve(disk), 2L << 20)
            .diskEveryTicks(1)
            .packetEveryTicks(1)
            .seed(21);
    }

    /**
     * A standby on {@code host}, checking every commit against the active's digests in {@code expected}.
     */
    private StandbyContext standby(final String host, final FileArbiter arbiter, final Map<Long, Long> expected,
        final AtomicReference<dev.tandem.core.failover.Promotion> promoted)
    {
        final SimulatedVmm.Builder template = guest(host + "-promoted-disk.img");
        return new StandbyContext()
            .transport(new TcpTransport())
            .listenEndpoint("127.0.0.1:0")
            .directory(dir.resolve(host).resolve("standby"))
            .vmId("failback")
            .memory(SimulatedVmm.PAGE_SIZE, (16L << 20) / SimulatedVmm.PAGE_SIZE)
            .disk(0, dev.tandem.vmm.sim.SimulatedDisk.BLOCK_SIZE, 2L << 20)
            .failureTimeoutNs(Duration.ofSeconds(2).toNanos())
            .promotionArbiter(arbiter)
            .replicaTarget(new SimulatedReplicaTarget(template, false))
            .promotionListener(Hosts.keepingPromotion(promoted))
            .listener(Hosts.checkingCommits(host, expected, mismatches));
    }

    @Test
    void theRepairedHostBecomesTheStandbyOfThePromotedGuestAndTakesItBack() throws Exception
    {
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        final AtomicReference<dev.tandem.core.failover.Promotion> onB = new AtomicReference<>();
        final AtomicReference<dev.tandem.core.failover.Promotion> onA = new AtomicReference<>();
        VmmAdapter promotedOnB = null;
        VmmAdapter promotedOnA = null;
        try
        {
            // 1. host A protects the guest onto host B; host A fails (B's operator promotes: A is fenced)
            try (SimulatedVmm original = guest("a-disk.img").build();
                StandbyReplica standbyB = StandbyReplica.launch(standby("b", arbiter, digestsA, onB)))
            {
                original.start();
                try (ActiveReplicator activeA = ActiveReplicator.launch(Hosts.active(original, standbyB, arbiter, 0,
                    digestsA)))
                {
                    Await.until(() -> standbyB.lastCommittedEpoch() >= 20, "20 commits on B");
                    standbyB.promote("host A failed");
                    Await.until(() -> onB.get() != null, "B promotes");
                    Await.until(activeA::isGuestStopped, "A's copy stops");
                    assertEquals(ProtectionState.FENCED, activeA.status().state());
                }
            }
            final dev.tandem.core.failover.Promotion first = onB.get();
            promotedOnB = first.guest();
            assertEquals(digestsA.get(first.recoveryEpoch()), StateDigest.of(promotedOnB),
                "B's guest equals A's at checkpoint " + first.recoveryEpoch());
            assertEquals(2, first.generation());

            // 2. host A is back as a standby on its own directory; B's guest is protected onto it, in reverse
            ((SimulatedVmm)promotedOnB).start();
            try (StandbyReplica standbyA = StandbyReplica.launch(standby("a", arbiter, digestsB, onA));
                ActiveReplicator activeB = ActiveReplicator.launch(Hosts.active(promotedOnB, standbyA, arbiter,
                    first.generation(), digestsB)))
            {
                Await.until(() -> standbyA.lastCommittedEpoch() >= first.recoveryEpoch() + 20, "20 commits on A");
                assertEquals(ProtectionState.PROTECTED, activeB.status().state());
                assertEquals(2, activeB.generation(), "the reverse session runs at B's generation");
                assertTrue(activeB.status().baseline().done(), "A's first session is a whole baseline");

                // 3. host B fails: A takes the guest back at the next generation
                standbyA.promote("host B failed");
                Await.until(() -> onA.get() != null, "A promotes");
                Await.until(activeB::isGuestStopped, "B's copy stops");
            }
            final dev.tandem.core.failover.Promotion second = onA.get();
            promotedOnA = second.guest();
            assertEquals(3, second.generation());
            assertEquals(3, arbiter.currentGeneration("failback"));
            assertEquals(digestsB.get(second.recoveryEpoch()), StateDigest.of(promotedOnA),
                "A's guest equals B's at checkpoint " + second.recoveryEpoch());
            assertEquals("[]", mismatches.toString(), "a standby differed from its active at a commit");
        }
        finally
        {
            if (promotedOnB != null)
            {
                ((SimulatedVmm)promotedOnB).close();
            }
            if (promotedOnA != null)
            {
                ((SimulatedVmm)promotedOnA).close();
            }
        }
    }
}
