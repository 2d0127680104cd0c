package dev.tandem.examples;

import dev.tandem.examples.simulation.SimulationSuite;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine.TypeConversionException;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code simulate}: the {@link SimulationSuite} from the command line. The summary goes to standard output,
 * progress to standard error.
 */
@Command(name = "simulate", sortOptions = false, usageHelpWidth = 110,
    description = {"Run seeded fault schedules deterministically on one thread and check the invariants after " +
        "each. Progress (seeds done, violations so far, ETA) goes to standard error at most once a second."},
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {"0:no seed violated an invariant (or help printed)", "1:a seed violated an invariant",
        TandemExamples.EXIT_USAGE})
final class SimulateCommand implements Callable<Integer>
{
    private final PrintStream out;
    private final PrintStream err;

    @Spec
    CommandSpec spec;

    @Option(names = "--seeds", paramLabel = "FROM..TO", defaultValue = "1..200", converter = SeedRange.Reader.class,
        description = "seed range, inclusive, or one seed (default ${DEFAULT-VALUE}); one seed replays one run")
    SeedRange seeds;

    @Option(names = "--work-dir", paramLabel = "DIR",
        description = "where runs keep their disk images (default: a temporary directory)")
    Path workDir;

    @Option(names = "--list", description = "print every seed's faults and outcome, not only the failing ones")
    boolean list;

    @Option(names = "--verbose", description = "keep the library's log (off by default: every seed injects faults)")
    boolean verbose;

    @Option(names = "--mutation", paramLabel = "NAME", defaultValue = "none",
        description = "test-only: run with a deliberate defect the checks must report (none | " +
            "pass-through-judged-as-hold | split-arbiter | lying-disk); failing seeds print it in their replay command")
    String mutation;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "show this help")
    boolean help;

    SimulateCommand(final PrintStream out, final PrintStream err)
    {
        this.out = out;
        this.err = err;
    }

    /**
     * A range of seeds.
     *
     * @param from first seed.
     * @param to   last seed, inclusive.
     */
    record SeedRange(long from, long to)
    {
        /**
         * Reads {@code FROM..TO} or a single seed.
         */
        static final class Reader implements ITypeConverter<SeedRange>
        {
            @Override
            public SeedRange convert(final String text)
            {
                final int dots = text.indexOf("..");
                try
                {
                    final long from = Long.parseLong((dots < 0 ? text : text.substring(0, dots)).trim());
                    return new SeedRange(from, dots < 0 ? from : Long.parseLong(text.substring(dots + 2).trim()));
                }
                catch (final NumberFormatException ex)
                {
                    throw new TypeConversionException("'" + text + "' is not a seed range FROM..TO of whole numbers");
                }
            }
        }
    }

    @Override
    public Integer call()
    {
        if (seeds.to() < seeds.from())
        {
            throw new ParameterException(spec.commandLine(), "--seeds " + seeds.from() + ".." + seeds.to() +
                " is an empty range");
        }
        if (workDir != null && Files.exists(workDir) && !Files.isDirectory(workDir))
        {
            throw new ParameterException(spec.commandLine(), "--work-dir " + workDir + " is a file, not a directory");
        }
        try
        {
            SimulationSuite.checkMutation(mutation);
        }
        catch (final IllegalArgumentException ex)
        {
            throw new ParameterException(spec.commandLine(), "--mutation: " + ex.getMessage());
        }
        if (!verbose)
        {
            // every seed fails something on purpose: the library's own warnings would bury the summary
            TandemExamples.quietLibraryLogs();
        }
        final SimulationSuite.Summary summary =
            SimulationSuite.run(seeds.from(), seeds.to(), workDir, out, list, err, mutation);
        summary.print(out);
        return summary.ok() ? TandemExamples.OK : TandemExamples.FAILED;
    }
}
