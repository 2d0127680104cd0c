package dev.tandem.core.failover;

import dev.tandem.core.ConfigurationException;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.metrics.ProtectionState;
import dev.tandem.core.metrics.ReconnectStatus;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.system.LeakCheck;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.StateDigest;
import dev.tandem.vmm.VmmAdapter;
import dev.tandem.vmm.sim.SimulatedDisk;
import dev.tandem.vmm.sim.SimulatedReplicaTarget;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import dev.tandem.core.standby.Durability;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Quick failback over real loopback TCP (DESIGN.md "Initial sync, reconnect, failback"): after a planned switchover
 * from host A to host B, A's stopped guest is exactly the checkpoint B resumed from, so A becomes B's standby holding
 * it, and B's guest (whose target recorded every page and block it changed since the resume) sends only those: the
 * bytes resent grow with what changed, not with the guest. Every commit on A must equal B's guest at that
 * checkpoint, byte for byte, memory, devices and disk; and the guest must come back to A whole.
 */
@LeakCheck
class QuickFailbackTest
{
    private static final long MEMORY_BYTES = 64L << 20;
    private static final long DISK_BYTES = 16L << 20;

    @TempDir
    Path dir;

    private final Map<Long, Long> digestsA = new ConcurrentHashMap<>();
    private final Map<Long, Long> digestsB = new ConcurrentHashMap<>();
    private final List<String> mismatches = new CopyOnWriteArrayList<>();

    private SimulatedVmm.Builder guest(final String disk)
    {
        return SimulatedVmm.builder()
            .vmId("quick-failback")
            .memoryBytes(MEMORY_BYTES)
            .workload(Workload.HOTSET)
            .hotsetPages(512)
            .pagesPerMillisecond(10)
            .disk(dir.resolve(disk), DISK_BYTES)
            .diskEveryTicks(4)
            .packetEveryTicks(1)
            .seed(33);
    }

    /**
     * A standby on {@code host} checking every commit against the active's digests; its promoted guest runs at once
     * on host B (to change pages before it is protected), and stays stopped on host A (to be compared).
     */
    private StandbyContext standby(final String host, final FileArbiter arbiter, final Map<Long, Long> expected,
        final AtomicReference<Promotion> promoted)
    {
        return new StandbyContext()
            .transport(new TcpTransport())
            .listenEndpoint("127.0.0.1:0")
            .directory(dir.resolve(host).resolve("standby"))
            .vmId("quick-failback")
            .memory(SimulatedVmm.PAGE_SIZE, MEMORY_BYTES / SimulatedVmm.PAGE_SIZE)
            .disk(0, SimulatedDisk.BLOCK_SIZE, DISK_BYTES)
            .failureTimeoutNs(Duration.ofSeconds(5).toNanos())
            .promotionArbiter(arbiter)
            .replicaTarget(new SimulatedReplicaTarget(guest(host + "-promoted-disk.img"), "b".equals(host)))
            .promotionListener(Hosts.keepingPromotion(promoted))
            .listener(Hosts.checkingCommits(host, expected, mismatches));
    }

    /**
     * With the old host's standby in either durability mode: a DURABLE one forces the held checkpoint and records
     * its epoch before the reverse protection starts.
     */
    @ParameterizedTest
    @EnumSource(Durability.class)
    void afterASwitchoverTheOldActiveHoldsTheCheckpointAndGetsOnlyWhatChanged(final Durability durability)
        throws Exception
    {
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        final AtomicReference<Promotion> onB = new AtomicReference<>();
        final AtomicReference<Promotion> onA = new AtomicReference<>();
        VmmAdapter promotedOnB = null;
        VmmAdapter backOnA = null;
        try (SimulatedVmm original = guest("a-disk.img").build())
        {
            // 1. host A protects the guest onto host B, then hands it over in a planned switchover
            final ActiveReplicator.Switchover switchover;
            try (StandbyReplica standbyB = StandbyReplica.launch(standby("b", arbiter, digestsA, onB)))
            {
                original.start();
                try (ActiveReplicator activeA = ActiveReplicator.launch(Hosts.active(original, standbyB, arbiter, 0,
                    digestsA)))
                {
                    Await.until(() -> standbyB.lastCommittedEpoch() >= 30, "30 commits on B");
                    switchover = activeA.switchover(Duration.ofSeconds(20));
                    Await.until(() -> onB.get() != null, "B promotes");
                    assertEquals(ProtectionState.FENCED, activeA.status().state());
                }
            }
            final Promotion first = onB.get();
            promotedOnB = first.guest();
            assertEquals(switchover.epoch(), first.recoveryEpoch());
            assertEquals(switchover.epoch(), first.resumedFrom().epoch());
            assertEquals(switchover.fingerprint(), first.resumedFrom().fingerprint(),
                "both sides name the checkpoint alike");
            assertTrue(first.resumedFrom().tracked(), "the simulated target records what the guest changes");
            assertTrue(original.isPaused(), "A's copy stays stopped at the checkpoint");
            assertEquals(digestsA.get(switchover.epoch()), StateDigest.of(original),
                "A's stopped guest is the checkpoint B resumed from");

            // B's guest runs unprotected a while: what it changes must reach A's standby, and nothing else
            final SimulatedVmm runningOnB = (SimulatedVmm)promotedOnB;
            final long resumedTxFrames = runningOnB.txFrames();
            Await.until(() -> runningOnB.txFrames() > resumedTxFrames + 50,
                "B's guest to run after the resume");

            // 2. A's stopped guest seeds A's standby; B's guest is protected onto it, in reverse
            final ActiveReplicator.Switchover back;
            try (StandbyReplica standbyA = StandbyReplica.launch(standby("a", arbiter, digestsB, onA)
                .durability(durability).heldCheckpoint(original, switchover.epoch(), switchover.fingerprint())))
            {
                if (durability == Durability.DURABLE)
                {
                    assertTrue(java.nio.file.Files.exists(dir.resolve("a").resolve("standby").resolve("image.meta")),
                        "the held checkpoint is recorded in the DURABLE image");
                }
                assertEquals(switchover.epoch(), standbyA.lastCommittedEpoch(), "A starts holding the checkpoint");
                try (ActiveReplicator activeB = ActiveReplicator.launch(Hosts.active(promotedOnB, standbyA, arbiter,
                    first.generation(), digestsB).resumedFrom(first.resumedFrom())))
                {
                    Await.until(() -> standbyA.lastCommittedEpoch() >= switchover.epoch() + 30, "30 commits on A");
                    final ReconnectStatus resync = activeB.status().reconnect();
                    assertTrue(resync.lastResync().startsWith("quick: the standby holds epoch " +
                        switchover.epoch()), resync.lastResync());
                    assertFalse(resync.lastResync().contains("whole"), resync.lastResync());
                    final long pages = MEMORY_BYTES / SimulatedVmm.PAGE_SIZE;
                    assertTrue(resync.lastResyncPages() > 0 && resync.lastResyncPages() < pages / 2,
                        "the resync sends the pages changed since the resume, not the guest: " + resync);
                    assertTrue(resync.lastResyncBytes() > 0 &&
                        resync.lastResyncBytes() < (MEMORY_BYTES + DISK_BYTES) / 2,
                        "bytes resent grow with what changed: " + resync);
                    assertEquals(1, resync.quickResyncs());
                    assertEquals(0, resync.reconnects(), "a launch, not a reconnect");
                    System.out.printf("quick failback: %d of %d pages, %d bytes resent for a %d MiB guest with a %d " +
                        "MiB disk (%.2f%%)%n", resync.lastResyncPages(), pages, resync.lastResyncBytes(),
                        MEMORY_BYTES >> 20, DISK_BYTES >> 20,
                        100.0 * resync.lastResyncBytes() / (MEMORY_BYTES + DISK_BYTES));

                    // 3. and the guest goes back to A whole
                    back = activeB.switchover(Duration.ofSeconds(20));
                    Await.until(() -> onA.get() != null, "A promotes");
                }
            }
            backOnA = onA.get().guest();
            assertEquals(back.epoch(), onA.get().recoveryEpoch());
            assertEquals(digestsB.get(back.epoch()), StateDigest.of(backOnA),
                "A's guest equals B's at the checkpoint it moved back at");
            assertEquals(3, onA.get().generation());
            assertEquals("[]", mismatches.toString(), "a standby differed from its active at a commit");
        }
        finally
        {
            if (promotedOnB != null)
            {
                ((SimulatedVmm)promotedOnB).close();
            }
            if (backOnA != null)
            {
                ((SimulatedVmm)backOnA).close();
            }
        }
    }

    @Test
    void aHeldCheckpointMustBeAStoppedGuestOfThisVmAndGeometry() throws Exception
    {
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        try (SimulatedVmm running = guest("running-disk.img").build().start();
            SimulatedVmm other = SimulatedVmm.builder().vmId("other").memoryBytes(MEMORY_BYTES).build())
        {
            final ConfigurationException notStopped = assertThrows(ConfigurationException.class,
                () -> StandbyReplica.launch(standby("x", arbiter, digestsA, new AtomicReference<>())
                    .heldCheckpoint(running, 5, 1)));
            assertTrue(notStopped.getMessage().contains("is running"), notStopped.getMessage());
            final ConfigurationException otherVm = assertThrows(ConfigurationException.class,
                () -> StandbyReplica.launch(standby("y", arbiter, digestsA, new AtomicReference<>())
                    .heldCheckpoint(other, 5, 1)));
            assertTrue(otherVm.getMessage().contains("VM other"), otherVm.getMessage());
        }
    }
}
