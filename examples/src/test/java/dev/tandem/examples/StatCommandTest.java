package dev.tandem.examples;

import dev.tandem.core.metrics.CounterType;
import dev.tandem.core.metrics.CountersFile;
import dev.tandem.core.metrics.ProcessCounters;
import org.agrona.concurrent.status.AtomicCounter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code stat}: shows the counters of a running process with their labels, reports a file of a dead process as
 * stale and removes it with {@code --clean}, and says in one line naming the file what is wrong with one it cannot
 * read.
 */
class StatCommandTest
{
    @TempDir
    Path dir;

    @Test
    void onceShowsTheCountersOfARunningProcessWithTheirLabels()
    {
        final ProcessCounters counters = ProcessCounters.acquire(dir);
        try
        {
            final AtomicCounter checkpoints = counters.newCounter(CounterType.ACTIVE_CHECKPOINTS, "vm-stat");
            final AtomicCounter refusals = counters.newCounter(CounterType.STANDBY_REFUSALS, "vm-stat");
            checkpoints.setRelease(1234567);
            refusals.setRelease(3);

            final Run run = run("stat", "--once", "--dir", dir.toString());
            assertEquals(TandemExamples.OK, run.status, run.toString());
            final long pid = ProcessHandle.current().pid();
            assertTrue(run.out.startsWith("pid " + pid + " running, started "), run.out);
            assertTrue(run.out.contains(CountersFile.fileOf(dir, pid).toString()), run.out);
            assertTrue(run.out.contains("1,234,567 - active vm-stat: checkpoints"), run.out);
            assertTrue(run.out.contains("3 - standby vm-stat: refusals"), run.out);
            assertEquals("", run.err);

            final Run byPid = run("stat", "--once", "--dir", dir.toString(), "--pid", Long.toString(pid));
            assertEquals(run.out.lines().count(), byPid.out.lines().count(), byPid.toString());

            counters.free(refusals);
            final Run freed = run("stat", "--once", "--dir", dir.toString());
            assertFalse(freed.out.contains("refusals"), "a freed counter is no longer shown: " + freed.out);
            counters.free(checkpoints);
        }
        finally
        {
            counters.release();
        }
        assertFalse(Files.exists(CountersFile.fileOf(dir, ProcessHandle.current().pid())), "the last user deletes it");
        final Run none = run("stat", "--once", "--dir", dir.toString());
        assertEquals("no Tandem process has counters in " + dir + System.lineSeparator(), none.out);
    }

    @Test
    void aFileOfADeadProcessIsReportedAsSuchAndCleaned() throws Exception
    {
        final String java = ProcessHandle.current().info().command().orElse("java");
        final Process process = new ProcessBuilder(java, "-version").redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        process.waitFor();
        final long deadPid = process.pid();
        final Path file = CountersFile.fileOf(dir, deadPid);
        CountersFile.create(file, deadPid, System.currentTimeMillis(), 8).close();

        final Run run = run("stat", "--once", "--dir", dir.toString());
        assertEquals(TandemExamples.OK, run.status, run.toString());
        assertTrue(run.out.startsWith("pid " + deadPid + " NOT RUNNING (stale file; remove with --clean)"), run.out);

        final Run clean = run("stat", "--clean", "--dir", dir.toString());
        assertEquals(TandemExamples.OK, clean.status, clean.toString());
        assertEquals("removed " + file + " (pid " + deadPid + " is not running)", clean.out.strip());
        assertFalse(Files.exists(file));
    }

    @Test
    void aFileThatIsNoCountersFileOrAMissingPidIsOneLineNamingIt() throws Exception
    {
        final Path bad = CountersFile.fileOf(dir, 4242);
        Files.write(bad, new byte[256]);
        final Run run = run("stat", "--once", "--dir", dir.toString(), "--pid", "4242");
        assertEquals(TandemExamples.FAILED, run.status, run.toString());
        assertEquals(List.of("error: " + bad + ": not a Tandem counters file (bad magic 0x0, or still being created)"),
            run.err.lines().toList());

        final Run missing = run("stat", "--once", "--dir", dir.toString(), "--pid", "4243");
        assertEquals(TandemExamples.FAILED, missing.status, missing.toString());
        assertEquals(List.of("error: no Tandem process with pid 4243: " + CountersFile.fileOf(dir, 4243) +
            " does not exist"), missing.err.lines().toList());

        final Run interval = run("stat", "--interval", "1ms", "--dir", dir.toString());
        assertEquals(TandemExamples.USAGE, interval.status, interval.toString());
        assertTrue(interval.err.startsWith("error: --interval must be at least 10ms"), interval.err);
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
