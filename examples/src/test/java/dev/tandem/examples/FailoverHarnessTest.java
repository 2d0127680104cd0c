package dev.tandem.examples;

import dev.tandem.vmm.sim.Workload;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The whole failover story with three real JVMs: after a SIGKILL (or a halt at a point of the cycle), nothing the
 * client was told is lost or contradicted, the total of balances holds, the promoted guest equals the active at the
 * recovery checkpoint, the promotion came after the kill, and one side owned the guest at a time. After a network
 * partition, the same, and the old active stopped its guest. A link drop shorter than the standby's failure timeout
 * heals: the active reconnects before the kill, and the kill is a failover like any other. A planned switchover,
 * or a kill, followed by the old host protecting the promoted guest and a kill of that: two failovers, each
 * verified, the bank once over the whole run.
 */
class FailoverHarnessTest
{
    /** An active that reported nothing of its link, and no drop asked for. */
    private static final FailoverHarness.LinkFigures NO_LINK_FIGURES = new FailoverHarness.LinkFigures(200, null,
        FailoverHarness.LinkFigures.UNMEASURED, FailoverHarness.LinkFigures.UNMEASURED,
        FailoverHarness.LinkFigures.UNMEASURED, FailoverHarness.LinkFigures.UNMEASURED, Double.NaN);

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
        assertFalse(report.falseTakeover(), text);
        assertEquals(1, report.ownersMax(), text);
        assertTimesAddUp(report, text);
        assertTrue(report.toJson().contains("\"verified\": true"), report.toJson());
        assertTrue(report.toJson().contains("\"scenario\": \"kill\""), report.toJson());
        assertTrue(report.toJson().contains("\"owners_max\": 1"), report.toJson());
        assertTrue(report.toJson().contains("\"policy\": \"" + policy + "\""), report.toJson());
        assertTrue(Long.parseLong(report.activeStatus().get("raw_bytes")) > 0, report.toJson());
        assertTrue(report.toJson().contains("\"transport\": \"tls\""), "TLS is the default link: " + report.toJson());
        assertTrue(text.contains("file arbiter, tls link"), text);
        assertSteadyStateSane(report);
    }

    /**
     * The comparison run: {@code --plaintext} replicates over plaintext TCP, the report and the summary say so, and
     * the run makes no certificates.
     */
    @Test
    void plaintextRunSaysSoInItsReport() throws Exception
    {
        final ByteArrayOutputStream output = new ByteArrayOutputStream();
        final FailoverHarness.Report report = FailoverHarness.run(new FailoverHarness.Options(16L << 20,
            Workload.parse("hotset"), 5, 900, 9, 100_000, 128, true, FailoverHarness.Options.MID_EPOCH, "fixed", -1,
            FailoverHarness.Options.FILE_ARBITER, FailoverHarness.Options.FAILURE_TIMEOUT_MS_DEFAULT, null, -1,
            false, true), dir, new PrintStream(output, true, StandardCharsets.UTF_8));
        final String text = output.toString(StandardCharsets.UTF_8);
        assertTrue(report.verified(), report.failures() + "\n" + text);
        assertTrue(report.toJson().contains("\"transport\": \"plaintext\""), report.toJson());
        assertTrue(text.contains("file arbiter, plaintext link"), text);
        try (var files = java.nio.file.Files.walk(dir))
        {
            assertFalse(files.anyMatch(file -> file.toString().endsWith(".p12")), "no certificates were made");
        }
    }

    /**
     * A partition with both hosts alive, with each arbiter (ZooKeeper: a real server the harness starts): the
     * standby takes over, the old active stops its guest, and at no instant did two sides let output leave. Before
     * the ownership rework the old active ran on with its guest (invariant 7).
     */
    @ParameterizedTest(name = "{0} arbiter")
    @ValueSource(strings = {FailoverHarness.Options.FILE_ARBITER, FailoverHarness.Options.ZOOKEEPER_ARBITER})
    void partitionedActiveIsFencedAndTheStandbyTakesOver(final String arbiter) throws Exception
    {
        final ByteArrayOutputStream output = new ByteArrayOutputStream();
        // no digest at each checkpoint: its full read of the guest can stretch a pause past the standby's 200 ms
        // timeout on a loaded machine, and that is a false takeover, not the partition this test is about
        final FailoverHarness.Report report = FailoverHarness.run(new FailoverHarness.Options(32L << 20,
            Workload.parse("hotset"), 5, -1, 5, 100_000, 128, false, FailoverHarness.Options.MID_EPOCH, "fixed", 1200,
            arbiter), dir, new PrintStream(output, true, StandardCharsets.UTF_8));
        final String text = output.toString(StandardCharsets.UTF_8);
        assertEquals("partition", report.scenario());
        assertTrue(report.toJson().contains("\"arbiter\": \"" + arbiter + "\""), report.toJson());
        assertTrue(report.recoveryEpoch() >= 1, "the standby promoted\n" + text);
        assertFalse(report.falseTakeover(), text);
        assertEquals(1, report.ownersMax(), text);
        assertFalse(Double.isNaN(report.oldActiveStoppedMs()), "the old active stopped its guest\n" + text);
        assertTrue(report.verified(), report.failures() + "\n" + text);
        assertTimesAddUp(report, text);
        assertTrue(report.toJson().contains("\"partition_after_ms\": 1200"), report.toJson());
        assertTrue(report.toJson().contains("\"kill_after_ms\": null"), report.toJson());
    }

    @Test
    void badFailoverOptionsAreRefusedNamingTheOption() throws Exception
    {
        assertRefused("--partition-after", "--partition-after", "-5s");
        assertRefused("--kill-after", "--kill-after", "-1ms");
        assertRefused("--partition-after replaces the kill: drop --kill-after", "--partition-after", "2s",
            "--kill-after", "1s");
        assertRefused("--partition-after replaces the kill: drop --kill-phase", "--partition-after", "2s",
            "--kill-phase", "delta-send");
        assertRefused("--arbiter must be file or zookeeper, not 'etcd'", "--arbiter", "etcd");
        assertRefused("'--partition-after': time 'soon'", "--partition-after", "soon");
        assertRefused("--link-drop does not go with --partition-after", "--link-drop", "1s:100ms",
            "--partition-after", "2s");
        assertRefused("--kill-after 1000ms comes before the link drop heals (--link-drop 800ms:300ms ends 1100ms " +
            "after the client starts)", "--link-drop", "800ms:300ms", "--failure-timeout", "1s", "--kill-after",
            "1s");
        assertRefused("--link-drop 1000ms:2000ms keeps the link down 2000ms, not shorter than the standby's " +
            "--failure-timeout of 2000ms: the standby would promote", "--link-drop", "1s:2s", "--failure-timeout",
            "2s");
    }

    @Test
    void switchoverAndFailbackOptionsThatCannotRunAreRefused() throws Exception
    {
        assertRefused("--switchover does not go with --partition-after", "--switchover", "1s", "--partition-after",
            "2s");
        assertRefused("--switchover does not go with --link-drop", "--switchover", "2s", "--link-drop",
            "800ms:100ms", "--failure-timeout", "1s");
        assertRefused("--kill-after does not go with --switchover: the new active is killed 1000 ms after the old " +
            "host's standby acknowledged its baseline", "--switchover", "1s", "--kill-after", "3s");
        assertRefused("--switchover does not go with --failback", "--switchover", "1s", "--failback");
        assertRefused("--failback does not go with --partition-after", "--failback", "--partition-after", "2s");
        assertRefused("--switchover must be more than 0", "--switchover", "0ms");
        // through run() too, before any process starts
        final IllegalArgumentException withPartition = org.junit.jupiter.api.Assertions.assertThrows(
            IllegalArgumentException.class, () -> FailoverHarness.run(new FailoverHarness.Options(16L << 20,
                Workload.parse("hotset"), 10, -1, 7, 100_000, 128, false, FailoverHarness.Options.MID_EPOCH, "fixed",
                2000, FailoverHarness.Options.FILE_ARBITER, 1000, null, 1500, false), dir, System.out));
        assertTrue(withPartition.getMessage().contains("--switchover does not go with --partition-after"),
            withPartition.getMessage());
        try (java.util.stream.Stream<Path> files = java.nio.file.Files.list(dir))
        {
            assertEquals(List.of(), files.toList(), "nothing started");
        }
    }

    /**
     * A planned switchover, then the failback: the active hands the guest over at an acknowledged checkpoint, the
     * standby promotes on its word (not a false takeover: the promotion is expected then) and resumes from that very
     * checkpoint, digest-equal; the old active becomes the new active's standby holding its stopped guest (that very
     * checkpoint), so the reverse protection starts with a quick resync of what changed since, not a baseline; the
     * new active is killed once protected and the old host takes the guest back. Nothing the client saw is lost, one
     * owner at a time.
     */
    @Test
    void aSwitchoverThenAKillOfTheNewActiveAreTwoVerifiedFailovers() throws Exception
    {
        final ByteArrayOutputStream output = new ByteArrayOutputStream();
        final FailoverHarness.Report report = FailoverHarness.run(twoHandoverOptions(1500, false), dir,
            new PrintStream(output, true, StandardCharsets.UTF_8));
        final String text = output.toString(StandardCharsets.UTF_8);
        assertTrue(report.verified(), report.failures() + "\n" + text);
        assertEquals("switchover", report.scenario());
        assertEquals(2, report.failovers(), text);
        assertEquals(List.of("switchover", "kill"), report.handovers().stream()
            .map(FailoverHarness.HandoverFigures::kind).toList());
        final FailoverHarness.HandoverFigures switchover = report.handovers().get(0);
        // handed over at an acknowledged checkpoint: nothing the client saw came after it
        assertEquals(switchover.lastAckedEpoch(), switchover.recoveryEpoch(), text);
        assertEquals(List.of(2L, 3L), report.handovers().stream().map(FailoverHarness.HandoverFigures::generation)
            .toList(), text);
        assertTrue(report.switchoverPauseMs() > 0, text);
        assertFalse(report.falseTakeover(), text);
        assertEquals(1, report.ownersMax(), text);
        assertEquals(0, report.lostTransfers());
        assertTwoHandoversTimed(report, text);
        final String json = report.toJson();
        for (final String field : List.of("\"scenario\": \"switchover\",", "\"failovers\": 2,",
            "\"switchover_at_ms\": 1500,", "\"kill_after_ms\": null,", "\"handovers\": [{\"kind\": \"switchover\", "))
        {
            assertTrue(json.contains(field), field + " in " + json);
        }
        assertTrue(Pattern.compile("\"switchover_pause_ms\": [0-9]+\\.[0-9]{3},").matcher(json).find(), json);
        assertTrue(text.contains("standby promoted: planned switchover"), text);
        assertEquals("whole", switchover.firstSession(), "the first active's protection began with a baseline");
        final FailoverHarness.HandoverFigures back = report.handovers().get(1);
        assertEquals("quick", back.firstSession(), "the reverse protection resent only what changed: " + text);
        assertTrue(back.firstSessionBytes() > 0 && back.firstSessionBytes() < switchover.firstSessionBytes() / 2,
            "the quick resync is a fraction of the baseline: " + back + " beside " + switchover + "\n" + text);
        assertTrue(json.contains("\"first_session\": \"quick\""), json);
    }

    /**
     * A failback: after the kill, the killed host restarts as a fresh standby and the promoted guest protects itself
     * onto it (a full baseline, at its generation); then the promoted side is killed and the restarted standby takes
     * the guest back.
     */
    @Test
    void aFailbackProtectsThePromotedGuestOntoTheRestartedHostAndSurvivesASecondKill() throws Exception
    {
        final ByteArrayOutputStream output = new ByteArrayOutputStream();
        final FailoverHarness.Report report = FailoverHarness.run(twoHandoverOptions(-1, true), dir,
            new PrintStream(output, true, StandardCharsets.UTF_8));
        final String text = output.toString(StandardCharsets.UTF_8);
        assertTrue(report.verified(), report.failures() + "\n" + text);
        assertEquals("failback", report.scenario());
        assertEquals(2, report.failovers(), text);
        assertEquals(List.of("kill", "kill"), report.handovers().stream()
            .map(FailoverHarness.HandoverFigures::kind).toList());
        assertEquals(List.of(2L, 3L), report.handovers().stream().map(FailoverHarness.HandoverFigures::generation)
            .toList(), text);
        for (final FailoverHarness.HandoverFigures handover : report.handovers())
        {
            assertTrue(handover.recoveryEpoch() >= handover.lastAckedEpoch(), handover + "\n" + text);
        }
        assertTrue(Double.isNaN(report.switchoverPauseMs()), text);
        assertFalse(report.falseTakeover(), text);
        assertEquals(1, report.ownersMax(), text);
        assertEquals(0, report.lostTransfers());
        assertTwoHandoversTimed(report, text);
        final String json = report.toJson();
        assertTrue(json.contains("\"failovers\": 2,") && json.contains("\"switchover_pause_ms\": null,") &&
            json.contains("\"kill_after_ms\": 1500,"), json);
        // the killed active's memory died with its process: the restarted host gets a whole baseline
        assertEquals(List.of("whole", "whole"), report.handovers().stream()
            .map(FailoverHarness.HandoverFigures::firstSession).toList(), text);
    }

    /**
     * Two handovers with a small guest: the file arbiter, a digest at every checkpoint (the promoted guest must
     * equal the active at each recovery point), and a 1 s failure timeout, room for a loaded machine's pauses.
     */
    private static FailoverHarness.Options twoHandoverOptions(final long switchoverAtMs, final boolean failback)
    {
        return new FailoverHarness.Options(16L << 20, Workload.parse("hotset"), 10, failback ? 1500 : -1, 8, 100_000,
            128, true, FailoverHarness.Options.MID_EPOCH, "fixed", -1, FailoverHarness.Options.FILE_ARBITER, 1000,
            null, switchoverAtMs, failback);
    }

    private static void assertTwoHandoversTimed(final FailoverHarness.Report report, final String text)
    {
        assertTimesAddUp(report, text);
        final FailoverHarness.HandoverFigures first = report.handovers().get(0);
        assertTrue(first.detectionMs() > 0 && first.promotionMs() >= 0 && first.reconnectMs() >= 0, text);
        assertEquals(first.recoveryMs(), first.detectionMs() + first.promotionMs() + first.reconnectMs(), 0.01, text);
        assertTrue(report.handovers().get(1).faultAfterMs() > first.faultAfterMs(), text);
        assertTrue(report.transfersAfter() > 0, text);
    }

    /**
     * The harness's own entry refuses what the command line does: a test or an embedding that builds the options
     * itself gets the same words before any process starts.
     */
    @Test
    void linkDropsTheStandbyWouldNotOutlastAreRefusedBeforeAnythingStarts() throws Exception
    {
        final IllegalArgumentException tooLong = org.junit.jupiter.api.Assertions.assertThrows(
            IllegalArgumentException.class, () -> FailoverHarness.run(linkDropOptions(3000, 200,
                new FailoverHarness.LinkDrop(800, 200)), dir, System.out));
        assertTrue(tooLong.getMessage().contains("the standby would promote"), tooLong.getMessage());
        final IllegalArgumentException killFirst = org.junit.jupiter.api.Assertions.assertThrows(
            IllegalArgumentException.class, () -> FailoverHarness.run(linkDropOptions(900, 2000,
                new FailoverHarness.LinkDrop(800, 200)), dir, System.out));
        assertTrue(killFirst.getMessage().contains("the kill must come after it"), killFirst.getMessage());
        try (java.util.stream.Stream<Path> files = java.nio.file.Files.list(dir))
        {
            assertEquals(List.of(), files.toList(), "nothing started");
        }
    }

    /**
     * A link drop shorter than the standby's failure timeout heals: the relay resets every connection and refuses
     * new ones for 200 ms, the active reconnects and resends what changed, the standby does not promote; the kill
     * that follows is a failover like any other, with nothing the client saw lost. The standby waits 2 s before it
     * promotes, room for the active's back-off and a loaded machine.
     */
    @Test
    void aLinkDropThatHealsBeforeTheKillReconnectsWithoutAFailover() throws Exception
    {
        final ByteArrayOutputStream output = new ByteArrayOutputStream();
        final FailoverHarness.Report report = FailoverHarness.run(linkDropOptions(3000, 2000,
            new FailoverHarness.LinkDrop(800, 200)), dir, new PrintStream(output, true, StandardCharsets.UTF_8));
        final String text = output.toString(StandardCharsets.UTF_8);
        final FailoverHarness.LinkFigures link = report.link();
        assertTrue(link.reconnects() >= 1, "the active reconnected before the kill: " + link + "\n" + text);
        assertFalse(report.falseTakeover(), text);
        assertTrue(report.verified(), report.failures() + "\n" + text);
        // the resync's bytes count once its epoch went out, which on a loaded machine may come after the kill
        assertTrue(link.resyncBytes() >= 0 && link.baselineBytes() > 0 && link.unprotectedMs() > 0, link.toString());
        assertEquals(1, report.ownersMax(), text);
        assertTimesAddUp(report, text);
        final String json = report.toJson();
        for (final String field : List.of("\"link_drop_at_ms\": 800,", "\"link_drop_for_ms\": 200,",
            "\"failure_timeout_ms\": 2000,", "\"reconnects\": " + link.reconnects() + ",",
            "\"resync_bytes\": " + link.resyncBytes() + ",", "\"baseline_bytes\": " + link.baselineBytes() + ","))
        {
            assertTrue(json.contains(field), field + " in " + json);
        }
        assertTrue(Pattern.compile("\"unprotected_ms\": [0-9]").matcher(json).find(), json);
        assertTrue(text.contains("link dropped: ") && text.contains("  link               dropped at 800 ms for " +
            "200 ms; "), text);
    }

    /**
     * A kill run with a small guest, the file arbiter and a link drop.
     */
    private static FailoverHarness.Options linkDropOptions(final long killAfterMs, final long failureTimeoutMs,
        final FailoverHarness.LinkDrop drop)
    {
        // no digest at each checkpoint: the run is about the link, and its reads lengthen every pause
        return new FailoverHarness.Options(16L << 20, Workload.parse("hotset"), 10, killAfterMs, 6, 100_000, 128,
            false, FailoverHarness.Options.MID_EPOCH, "fixed", -1, FailoverHarness.Options.FILE_ARBITER,
            failureTimeoutMs, drop);
    }

    /**
     * The link's figures come from the active's status file; a run whose active reported none has nulls in the
     * JSON, not zeros that would read as "no reconnect".
     */
    @Test
    void linkFiguresAreReadFromTheActivesStatusAndMissingOnesAreNull()
    {
        final FailoverHarness.Options options = linkDropOptions(3000, 2000, new FailoverHarness.LinkDrop(800, 200));
        final FailoverHarness.LinkFigures link = FailoverHarness.LinkFigures.of(options, Map.of("reconnects", "1",
            "quick_resyncs", "1", "resync_bytes", "6252522", "baseline_bytes", "25193925", "unprotected_ns",
            "554365000"));
        assertEquals(new FailoverHarness.LinkFigures(2000, new FailoverHarness.LinkDrop(800, 200), 1, 1, 6_252_522,
            25_193_925, 554.365), link);
        assertEquals("  \"failure_timeout_ms\": 2000,\n  \"link_drop_at_ms\": 800,\n  \"link_drop_for_ms\": 200,\n" +
            "  \"reconnects\": 1,\n  \"quick_resyncs\": 1,\n  \"resync_bytes\": 6252522,\n" +
            "  \"baseline_bytes\": 25193925,\n  \"unprotected_ms\": 554.365,\n  \"durability\": \"memory\",\n" +
            "  \"standby_restart\": null,\n", link.jsonFields());
        final String none = FailoverHarness.LinkFigures.of(new FailoverHarness.Options(16L << 20,
            Workload.parse("hotset"), 10, 900, 1, 100, 128, false, FailoverHarness.Options.MID_EPOCH, "fixed"),
            Map.of()).jsonFields();
        assertEquals("  \"failure_timeout_ms\": 200,\n  \"link_drop_at_ms\": null,\n  \"link_drop_for_ms\": null,\n" +
            "  \"reconnects\": null,\n  \"quick_resyncs\": null,\n  \"resync_bytes\": null,\n" +
            "  \"baseline_bytes\": null,\n  \"unprotected_ms\": null,\n  \"durability\": \"memory\",\n" +
            "  \"standby_restart\": null,\n", none);
    }

    private static void assertRefused(final String message, final String... args) throws Exception
    {
        final ByteArrayOutputStream err = new ByteArrayOutputStream();
        final int status = TandemExamples.run(args, System.out, new PrintStream(err, true, StandardCharsets.UTF_8));
        final String text = err.toString(StandardCharsets.UTF_8);
        assertEquals(2, status, text);
        final String first = text.lines().findFirst().orElse("");
        assertTrue(first.startsWith("error: ") && first.contains(message), first);
    }

    /**
     * The report's latencies come from both nodes' status files: every figure is there, none negative, no p50 above
     * its p99, and the baseline and the checkpoint rate were measured.
     */
    private static void assertSteadyStateSane(final FailoverHarness.Report report)
    {
        final String json = report.toJson();
        final FailoverHarness.SteadyState steady = report.steady();
        assertEquals(FailoverHarness.SteadyState.STAGES, List.copyOf(steady.stages().keySet()), json);
        for (final Map.Entry<String, FailoverHarness.StageFigures> stage : steady.stages().entrySet())
        {
            final FailoverHarness.StageFigures figures = stage.getValue();
            assertTrue(figures.p50Us() >= 0 && figures.p50Us() <= figures.p99Us(), stage.getKey() + " " + json);
            assertTrue(Pattern.compile("\"" + stage.getKey() + "\": \\{\"p50_us\": " + figures.p50Us() +
                ", \"p99_us\": " + figures.p99Us() + "}").matcher(json).find(), stage.getKey() + " " + json);
        }
        assertTrue(steady.outputHoldP50Us() >= 0 && steady.outputHoldP50Us() <= steady.outputHoldP99Us(), json);
        assertTrue(steady.commitP50Us() >= 0 && steady.commitP50Us() <= steady.commitP99Us(), json);
        // the baseline's one pause copies the whole guest: measurable, and shorter than its commit
        assertTrue(steady.baselineMs() > 0, json);
        assertTrue(steady.baselineMaxPauseUs() > 0 && steady.baselineMaxPauseUs() <= steady.baselineMs() * 1000,
            json);
        assertTrue(report.checkpointsPerSecond() > 0, json);
        for (final String key : List.of("output_hold_p50_us", "output_hold_p99_us", "commit_p50_us", "commit_p99_us",
            "baseline_ms", "baseline_max_pause_us", "checkpoints_per_s"))
        {
            assertTrue(Pattern.compile("\"" + key + "\": [0-9]").matcher(json).find(), key + " " + json);
        }
    }

    /**
     * Without the JVMs: the figures are read from the nodes' status lines into microseconds, a stage no node
     * reported is left out, and a figure missing from the status is null in the JSON rather than a made-up 0.
     */
    @Test
    void steadyStateIsReadFromBothNodesStatusAndMissingFiguresAreNull()
    {
        final Map<String, String> active = new java.util.HashMap<>(Map.of("output_hold_p50_ns", "7000000",
            "output_hold_p99_ns", "9500000", "commit_p50_ns", "3000000", "commit_p99_ns", "4000000",
            "baseline_elapsed_ns", "250000000", "baseline_pause_ns", "120000000"));
        for (final String stage : List.of("pause", "encode", "send", "ack"))
        {
            active.put("stage_" + stage + "_p50_ns", "1000");
            active.put("stage_" + stage + "_p99_ns", "2000");
        }
        final FailoverHarness.SteadyState steady = FailoverHarness.SteadyState.of(active,
            Map.of("stage_receive_p50_ns", "5000", "stage_receive_p99_ns", "6000"));
        assertEquals(List.of("pause", "encode", "send", "ack", "receive"), List.copyOf(steady.stages().keySet()));
        assertEquals(new FailoverHarness.StageFigures(5, 6), steady.stages().get("receive"));
        assertEquals(250.0, steady.baselineMs());
        assertEquals(120_000, steady.baselineMaxPauseUs());
        assertEquals(7000, steady.outputHoldP50Us());
        final String json = new FailoverHarness.Report("kill", "file", true, false, List.of(), 5, 5, 1, 0, 1, 1, 0, 0,
            1, Double.NaN, 10, 900, Map.of(), 1, 0, 100, List.of(), steady, NO_LINK_FIGURES, 1, Double.NaN,
            List.of(), "tls").toJson();
        assertTrue(json.contains("\"transport\": \"tls\","), json);
        assertTrue(json.contains("\"stages\": { \"pause\": {\"p50_us\": 1, \"p99_us\": 2}, "), json);
        assertTrue(json.contains("\"receive\": {\"p50_us\": 5, \"p99_us\": 6} },"), json);
        assertTrue(json.contains("\"commit_p99_us\": 4000,"), json);
        assertTrue(json.contains("\"baseline_ms\": 250.000,"), json);
        assertTrue(json.contains("\"baseline_max_pause_us\": 120000,"), json);
        assertTrue(json.contains("\"output_hold_p99_since_baseline_us\": 9500,"), json);
        // the library's sliding window is the steady state where a node reports it; an empty one (0) falls back
        active.put("output_hold_window_p99_ns", "3000000");
        active.put("stage_ack_window_p99_ns", "2500000");
        active.put("stage_ack_window_p50_ns", "0");
        final FailoverHarness.SteadyState windowed = FailoverHarness.SteadyState.of(active, Map.of());
        assertEquals(3000, windowed.outputHoldP99Us());
        assertEquals(9500, windowed.outputHoldP99SinceBaselineUs());
        assertEquals(2500, windowed.commitP99Us());
        assertEquals(3000, windowed.commitP50Us());
        assertEquals(4000, windowed.commitP99SinceBaselineUs());
        assertEquals(new FailoverHarness.StageFigures(1, 2500), windowed.stages().get("ack"));
        final String empty = new FailoverHarness.Report("kill", "file", true, false, List.of(), 5, 5, 1, 0, 1, 1, 0, 0,
            1, Double.NaN, 10, 900, Map.of(), 1, 0, Double.NaN, List.of(),
            FailoverHarness.SteadyState.of(Map.of(), Map.of()), NO_LINK_FIGURES, 1, Double.NaN, List.of(),
            "plaintext").toJson();
        assertTrue(empty.contains("\"transport\": \"plaintext\","), empty);
        assertTrue(empty.contains("\"output_hold_p50_us\": null,") && empty.contains("\"stages\": {},") &&
            empty.contains("\"baseline_ms\": null,") && empty.contains("\"checkpoints_per_s\": null,"), empty);
    }

    private static void assertTimesAddUp(final FailoverHarness.Report report, final String text)
    {
        assertTrue(report.detectionMs() > 0, "detection " + report.detectionMs() + "\n" + text);
        assertTrue(report.promotionMs() >= 0 && report.reconnectMs() >= 0, text);
        assertTrue(report.recoveryMs() > 0 && report.recoveryMs() < 10_000, "recovery " + report.recoveryMs());
        assertEquals(report.recoveryMs(), report.detectionMs() + report.promotionMs() + report.reconnectMs(), 0.01,
            text);
        assertTrue(report.recoveryMs() >= report.detectionMs(), text);
    }
}
