package dev.tandem.examples;

import dev.tandem.core.metrics.CountersFile;
import org.agrona.concurrent.status.CountersReader;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

/**
 * {@code stat}: the counters of every running Tandem process (actives and standbys), read from their counters files
 * as Aeron's {@code AeronStat} reads the CnC file; refreshed every {@code --interval} until Ctrl-C, or printed once.
 * A file whose process is gone (killed before it could delete it) is reported as such and removed by
 * {@code --clean}.
 */
@Command(name = "stat", sortOptions = false, usageHelpWidth = 110,
    description = "Show the counters of running Tandem processes live (epochs, acks, bytes, refusals, promotions, " +
        "pause and hold percentiles), from their counters files.",
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {"0:counters shown (or files cleaned, or help printed)",
        "1:a counters file could not be read, or no process has the given pid", TandemExamples.EXIT_USAGE})
final class StatCommand implements Callable<Integer>
{
    /** Tolerance between a file's start time and its process's, beyond which the pid belongs to another process. */
    private static final long START_TIME_TOLERANCE_MS = 1000;

    private final PrintStream out;
    private final PrintStream err;

    @Spec
    CommandSpec spec;

    @Option(names = "--dir", paramLabel = "DIR",
        description = "directory of the counters files (default: -Dtandem.counters.dir, else " +
            "<java.io.tmpdir>/tandem-<user>)")
    Path dir;

    @Option(names = "--pid", paramLabel = "PID", description = "show only this process")
    Long pid;

    @Option(names = "--interval", paramLabel = "TIME", defaultValue = "1s", converter = CommandLine.Millis.class,
        description = "refresh period, from 10ms (default ${DEFAULT-VALUE})")
    long intervalMs;

    @Option(names = "--once", description = "print the counters once and exit")
    boolean once;

    @Option(names = "--clean", description = "remove the counters files of processes that are no longer running")
    boolean clean;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "show this help")
    boolean help;

    StatCommand(final PrintStream out, final PrintStream err)
    {
        this.out = out;
        this.err = err;
    }

    @Override
    public Integer call()
    {
        if (intervalMs < 10)
        {
            throw new ParameterException(spec.commandLine(), "--interval must be at least 10ms, not " + intervalMs +
                "ms");
        }
        final Path directory = dir == null ? CountersFile.defaultDirectory() : dir;
        if (clean)
        {
            return clean(directory);
        }
        if (once)
        {
            return show(directory);
        }
        try
        {
            while (true)
            {
                // home and clear, as top does: the table is redrawn in place
                out.print("\033[H\033[2J");
                out.println(Instant.now() + "  (every " + intervalMs + " ms, Ctrl-C to stop)");
                show(directory);
                out.flush();
                Thread.sleep(intervalMs);
            }
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
            return TandemExamples.OK;
        }
    }

    /**
     * Prints every process's counters once.
     *
     * @return {@link TandemExamples#FAILED} if a file could not be read or the pid has no file.
     */
    private int show(final Path directory)
    {
        final List<Path> files;
        if (pid != null)
        {
            final Path file = CountersFile.fileOf(directory, pid);
            if (!Files.exists(file))
            {
                err.println("error: no Tandem process with pid " + pid + ": " + file + " does not exist");
                return TandemExamples.FAILED;
            }
            files = List.of(file);
        }
        else
        {
            try
            {
                files = counterFiles(directory);
            }
            catch (final IOException ex)
            {
                err.println("error: cannot list " + directory + ": " + ex.getMessage());
                return TandemExamples.FAILED;
            }
            if (files.isEmpty())
            {
                out.println("no Tandem process has counters in " + directory);
                return TandemExamples.OK;
            }
        }
        int status = TandemExamples.OK;
        for (final Path file : files)
        {
            try (CountersFile counters = CountersFile.openReadOnly(file))
            {
                print(counters);
            }
            catch (final IOException ex)
            {
                err.println("error: " + ex.getMessage());
                status = TandemExamples.FAILED;
            }
        }
        return status;
    }

    private void print(final CountersFile counters)
    {
        final boolean alive = isRunning(counters.pid(), counters.startTimeMs());
        out.println("pid " + counters.pid() + (alive ? " running" : " NOT RUNNING (stale file; remove with --clean)") +
            ", started " + Instant.ofEpochMilli(counters.startTimeMs()) + "  " + counters.file());
        final CountersReader reader = counters.reader();
        final int[] shown = {0};
        reader.forEach((id, typeId, key, label) ->
        {
            out.println(String.format(Locale.ROOT, "  %3d: %,22d - %s", id, reader.getCounterValue(id), label));
            shown[0]++;
        });
        if (shown[0] == 0)
        {
            out.println("  (no counters: no active or standby is open in this process)");
        }
    }

    private int clean(final Path directory)
    {
        final List<Path> files;
        try
        {
            files = counterFiles(directory);
        }
        catch (final IOException ex)
        {
            err.println("error: cannot list " + directory + ": " + ex.getMessage());
            return TandemExamples.FAILED;
        }
        int status = TandemExamples.OK;
        int removed = 0;
        for (final Path file : files)
        {
            final long filePid = CountersFile.pidOfName(file);
            if (pid != null && filePid != pid)
            {
                continue;
            }
            long startMs = -1;
            try (CountersFile counters = CountersFile.openReadOnly(file))
            {
                startMs = counters.startTimeMs();
            }
            catch (final IOException ex)
            {
                // unreadable: judged by the pid its name carries alone
            }
            if (isRunning(filePid, startMs))
            {
                continue;
            }
            try
            {
                Files.deleteIfExists(file);
                out.println("removed " + file + " (pid " + filePid + " is not running)");
                removed++;
            }
            catch (final IOException ex)
            {
                err.println("error: cannot remove " + file + ": " + ex.getMessage());
                status = TandemExamples.FAILED;
            }
        }
        if (removed == 0 && status == TandemExamples.OK)
        {
            out.println("no stale counters files in " + directory);
        }
        return status;
    }

    /**
     * @param pid     a process id.
     * @param startMs when the file says its process started, or -1 if unknown.
     * @return whether that process runs (not merely another process that was given the same pid since).
     */
    static boolean isRunning(final long pid, final long startMs)
    {
        final ProcessHandle process = ProcessHandle.of(pid).filter(ProcessHandle::isAlive).orElse(null);
        if (process == null)
        {
            return false;
        }
        final Instant started = process.info().startInstant().orElse(null);
        return startMs < 0 || started == null ||
            Math.abs(started.toEpochMilli() - startMs) <= START_TIME_TOLERANCE_MS;
    }

    private static List<Path> counterFiles(final Path directory) throws IOException
    {
        if (!Files.isDirectory(directory))
        {
            return List.of();
        }
        try (Stream<Path> listing = Files.list(directory))
        {
            final List<Path> files = new ArrayList<>(listing.filter(f -> CountersFile.pidOfName(f) >= 0).toList());
            files.sort(Comparator.comparingLong(CountersFile::pidOfName));
            return files;
        }
    }
}
