package dev.tandem.examples;

import dev.tandem.vmm.sim.Workload;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The whole failover story with three real JVMs and a SIGKILL: nothing the client was told is lost or
 * contradicted, the total of balances holds, and the promoted guest equals the active at the recovery checkpoint.
 */
class FailoverHarnessTest
{
    @TempDir
    Path dir;

    @ParameterizedTest(name = "kill at {3} after {0} ms, seed {1}, {2}, {4} policy")
    @CsvSource({"900, 1, hotset, mid-epoch, fixed", "1700, 2, uniform, mid-epoch, adaptive",
        "1200, 3, hotset, delta-send, fixed", "1200, 4, sequential, epoch-end, fixed"})
    void killedActiveLosesNothingTheClientSaw(final long killAfterMs, final long seed, final String workload,
        final String phase, final String policy) throws Exception
    {
        final ByteArrayOutputStream output = new ByteArrayOutputStream();
        final FailoverHarness.Report report = FailoverHarness.run(new FailoverHarness.Options(32L << 20,
            Workload.parse(workload), 5, killAfterMs, seed, 100_000, 128, true, phase, policy), dir,
            new PrintStream(output, true, StandardCharsets.UTF_8));
        final String text = output.toString(StandardCharsets.UTF_8);
        assertTrue(report.verified(), report.failures() + "\n" + text);
        assertEquals(0, report.lostTransfers());
        assertTrue(report.ackedTransfers() > 0, text);
        assertTrue(report.recoveryEpoch() >= report.lastAckedEpoch(), text);
        if ("epoch-end".equals(phase))
        {
            // the end of an epoch went out but its ack never came back: the standby committed it without the
            // active, so it resumes from a checkpoint the active never saw acknowledged
            assertTrue(report.recoveryEpoch() > report.lastAckedEpoch(), text);
        }
        assertTrue(report.rtoMs() > 0 && report.rtoMs() < 10_000, "rto " + report.rtoMs());
        assertTrue(report.toJson().contains("\"verified\": true"), report.toJson());
        assertTrue(report.toJson().contains("\"policy\": \"" + policy + "\""), report.toJson());
        assertTrue(Long.parseLong(report.activeStatus().get("raw_bytes")) > 0, report.toJson());
    }
}
