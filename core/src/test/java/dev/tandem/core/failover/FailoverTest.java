package dev.tandem.core.failover;

import dev.tandem.core.ConfigurationException;
import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.metrics.ProtectionState;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.system.LeakCheck;
import dev.tandem.core.wire.ProtocolException;
import dev.tandem.vmm.StateDigest;
import dev.tandem.vmm.sim.SimulatedDisk;
import dev.tandem.vmm.sim.SimulatedReplicaTarget;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.core.wire.Handshake;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Failure detection, fencing and promotion in one JVM: a partition with both sides alive, a health report, and the
 * configurations that must be refused. After each failover exactly one side runs the guest, it resumed from a whole
 * checkpoint at or after the last ack, byte-equal to the active at that checkpoint, and no output of a later
 * epoch ever left the active.
 */
@LeakCheck
class FailoverTest
{
    @TempDir
    Path dir;

    private final Map<Long, Long> activeDigests = new ConcurrentHashMap<>();
    private final ConcurrentSkipListMap<Long, Long> lastFrameOfEpoch = new ConcurrentSkipListMap<>();
    private final List<Long> released = new CopyOnWriteArrayList<>();
    private final List<String> steps = new CopyOnWriteArrayList<>();
    private final AtomicReference<Promotion> promoted = new AtomicReference<>();

    private SimulatedVmm.Builder guest(final String vmId, final dev.tandem.vmm.HealthProbe probe)
    {
        return SimulatedVmm.builder()
            .vmId(vmId)
            .memoryBytes(8L << 20)
            .workload(Workload.HOTSET)
            .pagesPerMillisecond(30)
            .disk(dir.resolve("active-disk.img"), 1L << 20)
            .diskEveryTicks(1)
            .packetEveryTicks(1)
            .healthProbe(probe)
            .packetSink((frame, index, length) ->
            {
                if (Thread.currentThread().getName().startsWith("tandem-"))
                {
                    released.add(frame.getLong(index));
                }
            });
    }

    private StandbyContext standbyContext(final InJvmOrPartition transport, final SimulatedVmm vmm,
        final PromotionArbiter arbiter)
    {
        return new StandbyContext()
            .transport(transport.transport)
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

    private ActiveContext activeContext(final InJvmOrPartition transport, final SimulatedVmm vmm,
        final PromotionArbiter arbiter)
    {
        return new ActiveContext()
            .adapter(vmm)
            .transport(transport.transport)
            .standbyEndpoint("standby")
            .stagingAreaBytes(4 << 20)
            .checkpointPeriodNs(Duration.ofMillis(3).toNanos())
            .standbySilenceTimeoutNs(Duration.ofMillis(300).toNanos())
            .promotionArbiter(arbiter)
            .generationFile(dir.resolve("active-generation"))
            .checkpointObserver((epoch, adapter) ->
            {
                activeDigests.put(epoch, StateDigest.of(adapter));
                lastFrameOfEpoch.put(epoch, ((SimulatedVmm)adapter).txFrames());
            });
    }

    /**
     * Wraps either transport so one test body serves both.
     */
    private static final class InJvmOrPartition
    {
        final dev.tandem.core.transport.Transport transport;
        final PartitionableTransport partitionable;

        InJvmOrPartition(final PartitionableTransport partitionable)
        {
            this.transport = partitionable;
            this.partitionable = partitionable;
        }

        InJvmOrPartition(final dev.tandem.core.transport.Transport transport)
        {
            this.transport = transport;
            this.partitionable = null;
        }
    }

    @Test
    void partitionWithBothSidesAliveLeavesExactlyOneGuestRunning() throws Exception
    {
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        final InJvmOrPartition transport = new InJvmOrPartition(new PartitionableTransport());
        try (SimulatedVmm vmm = guest("partition-vm", dev.tandem.vmm.HealthProbe.ALWAYS_HEALTHY).build();
            StandbyReplica standby = StandbyReplica.launch(standbyContext(transport, vmm, arbiter)))
        {
            vmm.start();
            try (ActiveReplicator active = ActiveReplicator.launch(activeContext(transport, vmm, arbiter)))
            {
                Await.until(() -> standby.lastCommittedEpoch() >= 40, "40 commits");
                transport.partitionable.partition();
                Await.until(() -> promoted.get() != null, "standby promotes");
                Await.until(active::isGuestStopped, "former active stops its guest");
                final Promotion promotion = promoted.get();
                try
                {
                    assertEquals(ProtectionState.FENCED, active.status().state());
                    assertTrue(vmm.isPaused(), "the fenced active's guest stays stopped");
                    assertTrue(promotion.recoveryEpoch() >= active.lastAckedEpoch(),
                        "recovery epoch " + promotion.recoveryEpoch() + " < last ack " + active.lastAckedEpoch());
                    assertEquals(activeDigests.get(promotion.recoveryEpoch()), StateDigest.of(promotion.guest()),
                        "promoted guest equals the active at checkpoint " + promotion.recoveryEpoch());
                    final long lastReleasable = lastFrameOfEpoch.get(promotion.recoveryEpoch());
                    for (final long frame : released)
                    {
                        assertTrue(frame <= lastReleasable, "frame " + frame + " of an epoch after the recovery " +
                            "point reached the wire");
                    }
                    final int releasedAtFence = released.size();
                    Thread.sleep(100);
                    assertEquals(releasedAtFence, released.size(), "a fenced active releases nothing");
                    assertEquals(2, promotion.generation());
                    assertEquals(2, arbiter.currentGeneration("partition-vm"));
                    assertEquals(2, new GenerationFile(dir.resolve("standby").resolve("generation")).read());
                    assertTrue(promotion.detectionNs() >= Duration.ofMillis(200).toNanos(), "detected by silence");
                    // the claim comes first: the standby lets go of the active only once it owns the next generation
                    assertEquals(List.of("claim generation", "persist generation", "stop receiving",
                        "discard partial epoch", "finish applying", "build guest", "resume guest"), steps);
                    // zero-copy promotion: the promoted guest runs on the replica's memory, which the standby gave up
                    final IllegalStateException adopted = assertThrows(IllegalStateException.class,
                        () -> standby.inspect(StateDigest::of));
                    assertTrue(String.valueOf(adopted.getMessage()).contains("adopted") ||
                        String.valueOf(adopted.getCause()).contains("adopted"), adopted.toString());
                    final SimulatedVmm resumed = (SimulatedVmm)promotion.guest();
                    resumed.start();
                    final long writes = resumed.pageWrites();
                    Await.until(() -> resumed.pageWrites() > writes, "the promoted guest runs");
                }
                finally
                {
                    ((SimulatedVmm)promotion.guest()).close();
                }
            }
            // the fenced side persisted generation 1 and cannot come back under it
            assertEquals(1, new GenerationFile(dir.resolve("active-generation")).read());
            final IllegalStateException fenced = assertThrows(IllegalStateException.class, () ->
                ActiveReplicator.launch(activeContext(transport, vmm, arbiter)));
            assertTrue(fenced.getMessage().contains("fenced"), fenced.getMessage());
        }
    }

    @Test
    void healthProbeReportMakesTheStandbyPromote() throws Exception
    {
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        final InJvmOrPartition transport = new InJvmOrPartition(new PartitionableTransport());
        final AtomicReference<String> health = new AtomicReference<>();
        try (SimulatedVmm vmm = guest("sick-vm", health::get).build();
            StandbyReplica standby = StandbyReplica.launch(standbyContext(transport, vmm, arbiter)))
        {
            vmm.start();
            try (ActiveReplicator active = ActiveReplicator.launch(activeContext(transport, vmm, arbiter)))
            {
                Await.until(() -> standby.lastCommittedEpoch() >= 20, "20 commits");
                health.set("watchdog: guest kernel stopped scheduling");
                Await.until(() -> promoted.get() != null, "standby promotes on the report");
                Await.until(active::isGuestStopped, "the reporting active stops its guest");
                final Promotion promotion = promoted.get();
                try
                {
                    assertTrue(promotion.reason().contains("watchdog: guest kernel stopped scheduling"),
                        promotion.reason());
                    assertEquals(0, promotion.detectionNs(), "a report needs no timeout");
                    assertEquals(activeDigests.get(promotion.recoveryEpoch()), StateDigest.of(promotion.guest()));
                    assertEquals(ProtectionState.FENCED, active.status().state());
                }
                finally
                {
                    ((SimulatedVmm)promotion.guest()).close();
                }
            }
        }
    }

    /**
     * A report longer than one frame's reason field (a probe may return a whole stack or log excerpt) is still the
     * planned hand-over: it once overflowed the sender's header buffer and turned into the lost-link path, so the
     * standby promoted only after the silence timeout and without the reason. The reason arrives cut at a character
     * boundary to {@link Handshake#MAX_REASON_BYTES}.
     */
    @ParameterizedTest(name = "{0} reason over {1}")
    @CsvSource({"ascii, in-jvm", "ascii, tcp", "multibyte, in-jvm", "multibyte, tcp"})
    void aHealthReportOfAnyLengthMakesTheStandbyPromoteWithIt(final String text, final String transportName)
        throws Exception
    {
        final StringBuilder reason = new StringBuilder("watchdog: guest kernel stopped scheduling; ");
        while (reason.length() < 5000)
        {
            // 3-byte characters and a 4-byte one (a surrogate pair) so the byte limit falls inside a character
            reason.append("ascii".equals(text) ? "0123456789" : "\u770b\u95e8\u72d7\ud83d\udc15");
        }
        final String expected = longestPrefixWithin(reason.toString(), Handshake.MAX_REASON_BYTES);
        assertTrue(expected.length() < reason.length(), "the reason is longer than a frame carries");
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        final boolean tcp = "tcp".equals(transportName);
        final InJvmOrPartition transport = tcp ? new InJvmOrPartition(new TcpTransport()) :
            new InJvmOrPartition(new PartitionableTransport());
        final AtomicReference<String> health = new AtomicReference<>();
        try (SimulatedVmm vmm = guest("long-report-vm", health::get).build();
            StandbyReplica standby = StandbyReplica.launch(standbyContext(transport, vmm, arbiter)
                .listenEndpoint(tcp ? "127.0.0.1:0" : "standby")))
        {
            vmm.start();
            try (ActiveReplicator active = ActiveReplicator.launch(activeContext(transport, vmm, arbiter)
                .standbyEndpoint(standby.endpoint())))
            {
                Await.until(() -> standby.lastCommittedEpoch() >= 10, "10 commits");
                health.set(reason.toString());
                Await.until(() -> promoted.get() != null, "standby promotes on the report");
                Await.until(active::isGuestStopped, "the reporting active stops its guest");
                final Promotion promotion = promoted.get();
                try
                {
                    assertTrue(promotion.reason().endsWith(": " + expected), promotion.reason());
                    assertEquals(0, promotion.detectionNs(), "a report needs no timeout: " + promotion.reason());
                    assertEquals(activeDigests.get(promotion.recoveryEpoch()), StateDigest.of(promotion.guest()));
                    assertEquals(ProtectionState.FENCED, active.status().state());
                }
                finally
                {
                    ((SimulatedVmm)promotion.guest()).close();
                }
            }
        }
    }

    private static String longestPrefixWithin(final String text, final int maxBytes)
    {
        int end = 0;
        int bytes = 0;
        while (end < text.length())
        {
            final int codePoint = text.codePointAt(end);
            final int size = new String(Character.toChars(codePoint)).getBytes(StandardCharsets.UTF_8).length;
            if (bytes + size > maxBytes)
            {
                break;
            }
            bytes += size;
            end += Character.charCount(codePoint);
        }
        return text.substring(0, end);
    }

    @Test
    void aRefusalOfTheStandbyReachesTheActiveWithItsReason() throws Exception
    {
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        final InJvmOrPartition transport = new InJvmOrPartition(new PartitionableTransport());
        try (SimulatedVmm vmm = guest("refused-vm", dev.tandem.vmm.HealthProbe.ALWAYS_HEALTHY).build();
            StandbyReplica standby = StandbyReplica.launch(standbyContext(transport, vmm, arbiter)))
        {
            vmm.start();
            // a larger frame limit than the standby accepts is refused at handshake, naming both
            final ProtocolException tooLarge = assertThrows(ProtocolException.class, () -> ActiveReplicator.launch(
                activeContext(transport, vmm, arbiter).maxFramePayload(4 << 20)));
            assertTrue(tooLarge.getMessage().contains("at most " +
                dev.tandem.core.wire.FrameCodec.MAX_PAYLOAD_DEFAULT), tooLarge.getMessage());
            try (ActiveReplicator active = ActiveReplicator.launch(activeContext(transport, vmm, arbiter)))
            {
                Await.until(() -> standby.lastCommittedEpoch() >= 10, "10 commits");
                transport.partitionable.corruptNextStandbyRead();
                Await.until(() -> active.failure() != null, "the active learns of the refusal");
                // not just "connection lost": the standby's REFUSE names the fault
                assertTrue(active.failure().getMessage().contains("standby refused"), active.failure().toString());
                assertTrue(standby.status().rejectedFrames() >= 1);
                assertTrue(active.failure().getMessage().contains(standby.status().lastError()),
                    active.failure() + " vs " + standby.status().lastError());
            }
            finally
            {
                if (promoted.get() != null)
                {
                    ((SimulatedVmm)promoted.get().guest()).close();
                }
            }
        }
    }

    @Test
    void aLongApplyOnTheStandbyIsNotSilenceOfTheActive() throws Exception
    {
        // a 128 MiB baseline takes the standby far longer to apply than the 100 ms failure timeout (30 ms, then
        // 60 ms, made a promotion on a loaded two-core box out of a stall of the shared JVM right after the
        // baseline, JIT warm-up and a young collection, not out of the apply: seen once in six runs at 60 ms)
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        final InJvmOrPartition transport = new InJvmOrPartition(new PartitionableTransport());
        try (SimulatedVmm vmm = guest("busy-standby-vm", dev.tandem.vmm.HealthProbe.ALWAYS_HEALTHY)
            .memoryBytes(128L << 20).build();
            StandbyReplica standby = StandbyReplica.launch(standbyContext(transport, vmm, arbiter)
                .failureTimeoutNs(Duration.ofMillis(100).toNanos())))
        {
            vmm.start();
            try (ActiveReplicator active = ActiveReplicator.launch(activeContext(transport, vmm, arbiter)
                .checkpointObserver(null)
                .heartbeatIntervalNs(Duration.ofMillis(5).toNanos())))
            {
                Await.until(() -> standby.lastCommittedEpoch() >= 30, "30 commits");
                assertEquals(null, promoted.get(), "the standby promoted while the active was alive");
                assertEquals(ProtectionState.PROTECTED, active.status().state());
            }
        }
    }

    @Test
    void unsafeOrInconsistentFailoverSettingsAreRefusedAtStart() throws Exception
    {
        final InJvmOrPartition transport = new InJvmOrPartition(new PartitionableTransport());
        try (SimulatedVmm vmm = guest("config-vm", dev.tandem.vmm.HealthProbe.ALWAYS_HEALTHY).build())
        {
            final ConfigurationException noArbiter = assertThrows(ConfigurationException.class,
                () -> standbyContext(transport, vmm, null).conclude());
            assertTrue(noArbiter.getMessage().contains("promotionArbiter"), noArbiter.getMessage());
            try (StandbyReplica standby = StandbyReplica.launch(standbyContext(transport, vmm, null)
                .unsafeAutoPromoteWithoutArbiter(true)
                .failureTimeoutNs(Duration.ofMillis(40).toNanos())))
            {
                vmm.start();
                final ProtocolException tooSlow = assertThrows(ProtocolException.class, () -> ActiveReplicator.launch(
                    activeContext(transport, vmm, null).heartbeatIntervalNs(Duration.ofMillis(20).toNanos())));
                assertTrue(tooSlow.getMessage().contains("TIMING_MISMATCH"), tooSlow.getMessage());
                assertEquals(0, standby.lastCommittedEpoch());
            }
        }
    }
}
