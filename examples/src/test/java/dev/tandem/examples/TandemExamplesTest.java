package dev.tandem.examples;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The examples jar's command lines: a bad option is refused before anything runs, in one line naming it plus a hint
 * to the command's help, with exit status 2; help is per command and lists the exit codes; {@code simulate} shows
 * progress and an aligned summary; a failover run's directory goes unless kept.
 */
class TandemExamplesTest
{
    @TempDir
    Path dir;

    /**
     * @param args     the command line, words separated by spaces.
     * @param message  what the one error line must say.
     * @param command  the command the hint names.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "--kill-after 0                              | --kill-after must be more than 0                      | failover",
        "failover --kill-after -1s                   | --kill-after must be more than 0                      | failover",
        "--partition-after 0                         | --partition-after must be more than 0                 | failover",
        "--seed abc                                  | '--seed': 'abc'                                       | failover",
        "--transfers 0                               | --transfers must be at least 1                        | failover",
        "--period 0                                  | --period must be from 1ms to 10s                      | failover",
        "--guest-memory 1m                           | --guest-memory must be a multiple of 4 KiB from 16m   | failover",
        "--kill-phase later                          | --kill-phase must be mid-epoch, delta-send or epoch-end | failover",
        "--policy greedy                             | --policy must be fixed or adaptive                    | failover",
        "--workload chaos                            | --workload: unknown workload 'chaos'                  | failover",
        "--link-drop 1s                              | is not AT:FOR, two times such as 1s:100ms            | failover",
        "--link-drop 1s:soon                         | is not a number with ms or s                          | failover",
        "--link-drop 0:100ms                         | --link-drop 0ms:100ms: both times must be more than 0 | failover",
        "--link-drop 1s:200ms                        | --failure-timeout of 200ms: the standby would promote | failover",
        "--link-drop 1s:1s --failure-timeout 800ms   | --failure-timeout of 800ms: the standby would promote | failover",
        "--failure-timeout 10ms                      | --failure-timeout must be from 60ms                   | failover",
        "--switchover 0                              | --switchover must be more than 0                      | failover",
        "--switchover soon                           | '--switchover': time 'soon'                           | failover",
        "--switchover 1s --partition-after 2s        | --switchover does not go with --partition-after       | failover",
        "--switchover 1s --link-drop 500ms:100ms     | --switchover does not go with --link-drop             | failover",
        "--switchover 1s --kill-after 3s             | --kill-after does not go with --switchover            | failover",
        "--switchover 1s --failback                  | --switchover does not go with --failback              | failover",
        "--failback --partition-after 2s             | --failback does not go with --partition-after         | failover",
        "--durability disk                           | --durability must be memory or durable                | failover",
        "--kill-standby-after 1s --partition-after 2s | --kill-standby-after goes only with a kill           | failover",
        "--kill-standby-after 2s --kill-after 3s     | must come at least 2 s after --kill-standby-after     | failover",
        "restore --from /nonexistent --at 5 --to x   | --from /nonexistent is not a directory                | restore",
        "restore --from / --at yesterday --to x      | --at yesterday is neither an epoch number nor         | restore",
        "restore --from / --at 0 --to x              | --at 0: an epoch is at least 1                        | restore",
        "restore --from /                            | Missing required options                              | restore",
        "--no-such-option                            | Unknown option: '--no-such-option'                    | failover",
        "demo --duration 0                           | --duration must be whole seconds from 1s              | demo",
        "demo --duration 1500ms                      | --duration must be whole seconds from 1s              | demo",
        "demo --dirty-rate -1                        | --dirty-rate must be 0 or more                        | demo",
        "demo --seed abc                             | '--seed': 'abc'                                       | demo",
        "demo --period                               | '--period'                                            | demo",
        "simulate --seeds 9..3                       | --seeds 9..3 is an empty range                        | simulate",
        "simulate --seeds 1..x                       | '--seeds': '1..x'                                     | simulate"})
    void badOptionsAreRefusedInOneLineWithAHint(final String args, final String message, final String command)
    {
        final Run run = run(args.trim().split(" +"));
        assertEquals(2, run.status, run.err);
        final List<String> lines = run.err.lines().toList();
        assertEquals(2, lines.size(), "one error line and one hint, not the help:\n" + run.err);
        assertTrue(lines.get(0).startsWith("error: ") && lines.get(0).contains(message), lines.get(0));
        assertEquals("see: java -jar tandem-examples.jar --help " + command, lines.get(1));
        assertEquals("", run.out, "nothing ran");
    }

    @Test
    void embedRunsTheReadmesEmbeddingProgramToACleanClose()
    {
        final Run run = run("embed", dir.resolve("embed").toString());
        assertEquals(TandemExamples.OK, run.status(), run.toString());
        assertTrue(java.nio.file.Files.exists(dir.resolve("embed").resolve("vm-1.img")), run.toString());
    }

    @Test
    void anUnknownCommandIsCalledOne()
    {
        final Run run = run("deploy", "--fast");
        assertEquals(2, run.status);
        assertTrue(run.err.startsWith("error: unknown command 'deploy'"), run.err);
        assertEquals(2, run.err.lines().count(), run.err);
    }

    @Test
    void aReportIntoAMissingDirectoryIsRefusedBeforeTheRun()
    {
        final Path report = dir.resolve("missing").resolve("r.json");
        final long start = System.nanoTime();
        final Run run = run("failover", "--report", report.toString(), "--work-dir", dir.resolve("work").toString());
        assertEquals(2, run.status, run.err);
        assertTrue(run.err.startsWith("error: --report " + report + ": directory " + report.getParent() +
            " does not exist"), run.err);
        assertEquals("", run.out, "no harness started");
        assertFalse(Files.exists(dir.resolve("work")), "no run directory made");
        assertTrue(System.nanoTime() - start < 5_000_000_000L, "refused at once, not after a run");
    }

    @Test
    void helpIsPerCommandAndListsTheExitCodes()
    {
        final Run demo = run("--help", "demo");
        assertEquals(0, demo.status);
        assertTrue(demo.out.contains("--duration=TIME") && !demo.out.contains("--kill-after"), demo.out);
        assertTrue(demo.out.contains("Exit codes:") && demo.out.contains("2   bad command line"), demo.out);
        final Run failover = run("failover", "--help");
        assertTrue(failover.out.contains("--partition-after") && failover.out.contains("--keep"), failover.out);
        assertTrue(failover.out.contains("--link-drop=AT:FOR") && failover.out.contains("--failure-timeout=TIME"),
            failover.out);
        assertTrue(failover.out.contains("--switchover=AT") && failover.out.contains("--failback"), failover.out);
        final Run top = run("--help");
        assertTrue(top.out.contains("failover") && top.out.contains("simulate") && top.out.contains("Exit codes:"),
            top.out);
    }

    @Test
    void simulateShowsProgressAndAnAlignedSummary()
    {
        final Run run = run("simulate", "--seeds", "1..3", "--work-dir", dir.resolve("sim").toString());
        // whether a seed finds a violation is the simulation's business; this is about what the command prints
        assertTrue(run.status == 0 || run.status == 1, run.out + run.err);
        final long violations = run.out.lines().filter(line -> line.startsWith("FAILED seed ")).count();
        // progress on standard error, the summary alone on standard output
        assertTrue(run.err.lines().anyMatch(line -> line.startsWith("simulate: 3/3 seeds, " + violations +
            " with violations") && line.endsWith("done")), run.err);
        assertFalse(run.out.contains("simulate: "), run.out);
        final List<String> rows = tableRows(run.out);
        assertTrue(rows.size() >= 3, run.out);
        // names left, counts right-aligned in one column: every row ends at the same place
        for (final String row : rows)
        {
            assertEquals(rows.get(0).length(), row.length(), "misaligned row '" + row + "' in\n" + run.out);
            assertTrue(Character.isDigit(row.charAt(row.length() - 1)), row);
        }
    }

    @Test
    void simulateProgressSaysSeedsViolationsAndEta()
    {
        assertEquals("simulate: 40/200 seeds, 1 with violations, 10 s elapsed, ETA 40 s",
            dev.tandem.examples.simulation.SimulationSuite.progressLine(40, 200, 1, 10_000_000_000L));
    }

    @Test
    void theHarnessWarnsWhenThePeriodIsNotHeld()
    {
        // 7 checkpoints/s and a 120 ms pause p99 at a 10 ms period: both far off, as the issue saw
        assertEquals(2, new FailoverHarness.Pace(7, 10, 120).warnings().size());
        assertTrue(new FailoverHarness.Pace(7, 10, 1).warnings().get(0).contains("7/s where a 10.0 ms period " +
            "asks for 100/s"));
        assertTrue(new FailoverHarness.Pace(95, 10, 2).warnings().isEmpty());
        assertTrue(new FailoverHarness.Pace(Double.NaN, 10, 2).warnings().isEmpty(), "no rate, no rate warning");
    }

    /**
     * One short kill run kept, one removed: the kept directory holds the logs and the children's extracted native
     * library (not /tmp's); the removed one leaves nothing under the work directory.
     */
    @Test
    void theRunDirectoryIsRemovedUnlessKept() throws Exception
    {
        final Path kept = dir.resolve("kept");
        final Run keep = run("failover", "--guest-memory", "16m", "--kill-after", "400ms", "--no-digests",
            "--transfers", "2000", "--seed", "3", "--work-dir", kept.toString(), "--keep");
        assertEquals(0, keep.status, keep.out + keep.err);
        assertTrue(keep.out.contains("before the kill") && keep.out.contains("after it by the promoted guest"),
            keep.out);
        final List<Path> runs = list(kept);
        assertEquals(1, runs.size(), runs.toString());
        assertTrue(keep.out.contains("  logs               " + runs.get(0)), keep.out);
        assertTrue(Files.exists(runs.get(0).resolve("active.out")), "logs kept");
        assertTrue(list(runs.get(0).resolve("tmp")).stream()
            .anyMatch(path -> path.getFileName().toString().startsWith("liblz4-java-")),
            "the killed active's native library is in the run directory: " + list(runs.get(0).resolve("tmp")));

        final Path removed = dir.resolve("removed");
        final Run clean = run("failover", "--guest-memory", "16m", "--kill-after", "400ms", "--no-digests",
            "--transfers", "2000", "--seed", "4", "--work-dir", removed.toString());
        assertEquals(0, clean.status, clean.out + clean.err);
        assertEquals(List.of(), list(removed), "nothing left after a passing run without --keep");
        assertFalse(clean.out.contains("  logs "), clean.out);
    }

    /**
     * @return the rows under the summary's "faults drawn:" and "outcomes:" headings.
     */
    private static List<String> tableRows(final String summary)
    {
        final List<String> rows = new java.util.ArrayList<>();
        boolean inTable = false;
        for (final String line : summary.lines().toList())
        {
            if ("faults drawn:".equals(line) || "outcomes:".equals(line))
            {
                inTable = true;
            }
            else if (inTable && line.startsWith("  "))
            {
                rows.add(line);
            }
            else
            {
                inTable = false;
            }
        }
        return rows;
    }

    private static List<Path> list(final Path dir) throws Exception
    {
        try (Stream<Path> paths = Files.list(dir))
        {
            return paths.toList();
        }
    }

    private static Run run(final String... args)
    {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        final ByteArrayOutputStream err = new ByteArrayOutputStream();
        final int status = TandemExamples.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private record Run(int status, String out, String err)
    {
    }
}
