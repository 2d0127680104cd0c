package dev.tandem.core.system;

import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.core.metrics.StageLatency;
import dev.tandem.core.standby.StandbyStatus;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The figures are honest: every stage of the pipeline is measured on both sides, the baseline's full copy is
 * reported apart from the steady state (so a p99 does not keep the first copy for ever), and a sliding window of the
 * last seconds sits beside the totals.
 */
@LeakCheck
class StageLatencyTest
{
    @TempDir
    Path dir;

    @Test
    void everyStageIsMeasuredAndTheBaselineIsReportedApart() throws Exception
    {
        final SimulatedVmm.Builder guest = SimulatedVmm.builder()
            .vmId("stages")
            .memoryBytes(32L << 20)
            .workload(Workload.HOTSET)
            .pagesPerMillisecond(50)
            .disk(dir.resolve("active-disk.img"), 2L << 20)
            .diskEveryTicks(1)
            .packetEveryTicks(1);
        try (ReplicationFixture fixture = new ReplicationFixture(guest, new TcpTransport(), "127.0.0.1:0",
            dir.resolve("standby"), false, (ctx, standby) -> ctx.checkpointPeriodNs(Duration.ofMillis(5).toNanos())))
        {
            fixture.awaitCommits(60, Duration.ofSeconds(60));
            final ProtectionStatus active = fixture.active.status();
            final StandbyStatus standby = fixture.standby.status();
            final Map<String, StageLatency> activeStages = byName(active.stages());
            final Map<String, StageLatency> standbyStages = byName(standby.stages());
            assertEquals(List.of("pause", "encode", "send", "ack"), List.copyOf(activeStages.keySet()));
            assertEquals(List.of("receive", "apply", "commit"), List.copyOf(standbyStages.keySet()));

            // the baseline (epoch 1) is in none of the steady-state stages: one epoch fewer than were acknowledged
            final long acked = active.lastAckedEpoch();
            final long ackCount = activeStages.get("ack").count();
            assertTrue(ackCount <= acked - 1 && ackCount >= acked - 2, "ack stage counted " + ackCount +
                " of " + acked + " acks: the baseline's must not be among them");
            // (not compared with a steady-state delta's time: on a loaded CI host a delta's p50 exceeded the whole
            // 32 MiB first copy's commit; that the baseline is kept out of the stages is the count above)
            assertTrue(active.baselineCommitNs() > 0, "the baseline's commit is reported apart");
            final long commits = standby.commits();
            assertTrue(standbyStages.get("commit").count() == commits - 1 ||
                standbyStages.get("commit").count() == commits - 2, "standby commit stage " +
                standbyStages.get("commit").count() + " of " + commits + " commits");
            for (final StageLatency stage : standbyStages.values())
            {
                assertTrue(stage.count() > 0 && stage.p99Ns() >= stage.p50Ns() && stage.maxNs() >= stage.p99Ns(),
                    stage.toString());
            }
            // what the standby adds (barrier read to ack written) is part of what the active waits (checkpoint to ack)
            assertTrue(standbyStages.get("commit").p50Ns() <= activeStages.get("ack").p50Ns(),
                standbyStages.get("commit") + " vs " + activeStages.get("ack"));
            assertTrue(active.outputHoldP99Ns() >= active.outputHoldP50Ns());

            // the sliding window: all of this run is inside it, and a reader does not shrink it for the next one
            fixture.awaitCommits(active.lastAckedEpoch() + 20, Duration.ofSeconds(60));
            final StageLatency windowAck = byName(fixture.active.status().stages()).get("ack");
            final StageLatency again = byName(fixture.active.status().stages()).get("ack");
            assertTrue(windowAck.windowCount() > 20 && windowAck.windowP99Ns() >= windowAck.windowP50Ns() &&
                windowAck.windowP50Ns() > 0, windowAck.toString());
            assertTrue(again.windowCount() >= windowAck.windowCount(), "a second reader sees the whole window: " +
                again + " after " + windowAck);
            assertTrue(fixture.active.status().outputHoldWindowP99Ns() > 0, "output held in the window");
        }
    }

    private static Map<String, StageLatency> byName(final List<StageLatency> stages)
    {
        return stages.stream().collect(Collectors.toMap(StageLatency::stage, stage -> stage, (a, b) -> a,
            java.util.LinkedHashMap::new));
    }
}
