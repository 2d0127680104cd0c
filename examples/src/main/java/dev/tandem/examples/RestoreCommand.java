package dev.tandem.examples;

import dev.tandem.core.ConfigurationException;
import dev.tandem.core.standby.PointInTimeRestore;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.concurrent.Callable;

/**
 * {@code restore}: materialises a replica as of an earlier epoch or time from a DURABLE standby's directory kept
 * with a retention window ({@link PointInTimeRestore}), into a new directory that holds a DURABLE image of that
 * epoch.
 */
@Command(name = "restore", sortOptions = false, usageHelpWidth = 110,
    description = "Restore a guest's replica as of an earlier epoch or time from a DURABLE standby directory kept " +
        "with a retention window, into a new directory (a DURABLE image of that epoch, which a standby can start on).",
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {"0:restored (or help printed)", "1:the epoch or time is outside the retained window, or a file " +
        "could not be read or written", TandemExamples.EXIT_USAGE})
final class RestoreCommand implements Callable<Integer>
{
    private final PrintStream out;
    private final PrintStream err;

    @Spec
    CommandSpec spec;

    @Option(names = "--from", paramLabel = "DIR", required = true,
        description = "the DURABLE standby's directory (it may be running)")
    Path from;

    @Option(names = "--at", paramLabel = "EPOCH|TIME", required = true,
        description = "an epoch number, or an ISO-8601 instant (2026-11-30T03:17:04Z): the newest epoch committed " +
            "at or before it")
    String at;

    @Option(names = "--to", paramLabel = "DIR", required = true, description = "a new or empty directory")
    Path to;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "show this help")
    boolean help;

    RestoreCommand(final PrintStream out, final PrintStream err)
    {
        this.out = out;
        this.err = err;
    }

    @Override
    public Integer call()
    {
        if (!Files.isDirectory(from))
        {
            throw new ParameterException(spec.commandLine(), "--from " + from + " is not a directory");
        }
        long epoch = -1;
        Instant time = null;
        try
        {
            epoch = Long.parseLong(at);
            if (epoch < 1)
            {
                throw new ParameterException(spec.commandLine(), "--at " + at + ": an epoch is at least 1");
            }
        }
        catch (final NumberFormatException notEpoch)
        {
            try
            {
                time = Instant.parse(at);
            }
            catch (final DateTimeParseException notTime)
            {
                throw new ParameterException(spec.commandLine(), "--at " + at + " is neither an epoch number nor " +
                    "an ISO-8601 instant such as 2026-11-30T03:17:04Z");
            }
        }
        try
        {
            final PointInTimeRestore.Restored restored = time == null ? PointInTimeRestore.restore(from, epoch, to) :
                PointInTimeRestore.restoreAt(from, time, to);
            out.println("restored epoch " + restored.epoch() + " (committed " + restored.committedAt() + ") into " +
                restored.directory() + ": " + restored.report());
            return TandemExamples.OK;
        }
        catch (final ConfigurationException ex)
        {
            err.println("error: " + ex.getMessage());
            return TandemExamples.FAILED;
        }
    }
}
