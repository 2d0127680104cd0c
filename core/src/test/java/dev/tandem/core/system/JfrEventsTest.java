package dev.tandem.core.system;

import dev.tandem.core.transport.InJvmTransport;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * With a recording on, every checkpoint and every commit is a JFR event carrying what an engineer filters on, and so
 * is every change of period the policy makes.
 */
@LeakCheck
class JfrEventsTest
{
    private static final long MS = 1_000_000L;

    @TempDir
    Path dir;

    @Test
    void checkpointsCommitsAndPolicyDecisionsAreRecorded() throws Exception
    {
        final Path file = dir.resolve("tandem.jfr");
        try (Recording recording = new Recording())
        {
            recording.enable("dev.tandem.Checkpoint");
            recording.enable("dev.tandem.Commit");
            recording.enable("dev.tandem.StandbyCommit");
            recording.enable("dev.tandem.PolicyDecision");
            recording.start();
            final SimulatedVmm.Builder guest = SimulatedVmm.builder().vmId("jfr-vm").memoryBytes(8L << 20)
                .workload(Workload.HOTSET).pagesPerMillisecond(20);
            try (ReplicationFixture fixture = new ReplicationFixture(guest, new InJvmTransport(), "jfr", dir.resolve("s"),
                false, (ctx, standby) -> ctx.checkpointPeriodNs(20 * MS).checkpointPolicy(
                    // nothing this guest does comes near these targets: the policy lengthens from 2 ms
                    new dev.tandem.core.policy.AdaptivePolicy(2 * MS, 50 * MS, 2 * MS, 100 * MS, 1_000 * MS))))
            {
                fixture.awaitCommits(30, Duration.ofSeconds(30));
            }
            recording.stop();
            recording.dump(file);
        }
        final List<RecordedEvent> events = RecordingFile.readAllEvents(file);
        final long checkpoints = events.stream().filter(e -> e.getEventType().getName().equals("dev.tandem.Checkpoint"))
            .peek(e -> assertEquals("jfr-vm", e.getString("vmId"))).count();
        final long commits = events.stream().filter(e -> e.getEventType().getName().equals("dev.tandem.Commit"))
            .peek(e -> assertTrue(e.getLong("latencyNs") > 0)).count();
        final List<RecordedEvent> decisions = events.stream()
            .filter(e -> e.getEventType().getName().equals("dev.tandem.PolicyDecision")).toList();
        assertTrue(checkpoints >= 25, "checkpoint events: " + checkpoints);
        assertTrue(!decisions.isEmpty(), "policy decision events");
        for (final RecordedEvent decision : decisions)
        {
            assertEquals("adaptive", decision.getString("policy"));
            final dev.tandem.core.policy.CheckpointPolicy.Decision why =
                dev.tandem.core.policy.CheckpointPolicy.Decision.valueOf(decision.getString("decision"));
            assertTrue(why != dev.tandem.core.policy.CheckpointPolicy.Decision.HOLD, decision.toString());
            assertTrue(decision.getLong("nextPeriodNs") != decision.getLong("previousPeriodNs"), decision.toString());
            assertTrue(decision.getLong("nextPeriodNs") >= 2 * MS && decision.getLong("nextPeriodNs") <= 50 * MS,
                decision.toString());
            assertEquals("jfr-vm", decision.getString("vmId"));
        }
        assertTrue(commits >= 25, "commit events: " + commits);
        final long standbyCommits = events.stream()
            .filter(e -> e.getEventType().getName().equals("dev.tandem.StandbyCommit"))
            .peek(e -> assertTrue(e.getLong("commitNs") >= e.getLong("receiveNs") && e.getLong("receiveNs") >= 0 &&
                e.getLong("applyNs") >= 0, e.toString()))
            .count();
        assertTrue(standbyCommits >= 24, "standby commit events: " + standbyCommits);
    }
}
