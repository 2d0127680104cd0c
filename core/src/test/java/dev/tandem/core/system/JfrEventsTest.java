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
 * With a recording on, every checkpoint and every commit is a JFR event carrying what an engineer filters on.
 */
@LeakCheck
class JfrEventsTest
{
    @TempDir
    Path dir;

    @Test
    void checkpointsAndCommitsAreRecorded() throws Exception
    {
        final Path file = dir.resolve("tandem.jfr");
        try (Recording recording = new Recording())
        {
            recording.enable("dev.tandem.Checkpoint");
            recording.enable("dev.tandem.Commit");
            recording.start();
            final SimulatedVmm.Builder guest = SimulatedVmm.builder().vmId("jfr-vm").memoryBytes(8L << 20)
                .workload(Workload.HOTSET).pagesPerMillisecond(20);
            try (ReplicationFixture fixture = new ReplicationFixture(guest, new InJvmTransport(), "jfr", dir.resolve("s"),
                false, (ctx, standby) -> { }))
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
        assertTrue(checkpoints >= 25, "checkpoint events: " + checkpoints);
        assertTrue(commits >= 25, "commit events: " + commits);
    }
}
