package dev.tandem.examples;

import dev.tandem.vmm.sim.Workload;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintStream;
import java.util.concurrent.Callable;

/**
 * {@code demo}: the {@link ReplicationDemo} from the command line.
 */
@Command(name = "demo", sortOptions = false, usageHelpWidth = 110,
    description = "Protect a simulated guest over loopback TCP in one JVM and verify the standby equals it.",
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {TandemExamples.EXIT_OK, TandemExamples.EXIT_FAILED, TandemExamples.EXIT_USAGE})
final class DemoCommand implements Callable<Integer>
{
    private final PrintStream out;

    @Spec
    CommandSpec spec;

    @Option(names = "--guest-memory", paramLabel = "SIZE", defaultValue = "256m", converter = CommandLine.Size.class,
        description = "guest memory, a multiple of 4k from 16m, e.g. 256m, 1g (default ${DEFAULT-VALUE})")
    long memoryBytes;

    @Option(names = "--workload", paramLabel = "NAME", defaultValue = "hotset",
        description = "uniform | hotset | sequential | idle (default ${DEFAULT-VALUE})")
    String workload;

    @Option(names = "--period", paramLabel = "TIME", defaultValue = "10ms", converter = CommandLine.Millis.class,
        description = "checkpoint period, 1ms to 10s (default ${DEFAULT-VALUE})")
    long periodMs;

    @Option(names = "--duration", paramLabel = "TIME", defaultValue = "10s", converter = CommandLine.Millis.class,
        description = "how long to run, whole seconds from 1s (default ${DEFAULT-VALUE})")
    long durationMs;

    @Option(names = "--dirty-rate", paramLabel = "N", defaultValue = "200",
        description = "pages the guest writes per millisecond, 0 or more (default ${DEFAULT-VALUE})")
    int dirtyRate;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "1", description = "workload seed (default ${DEFAULT-VALUE})")
    long seed;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "show this help")
    boolean help;

    DemoCommand(final PrintStream out)
    {
        this.out = out;
    }

    @Override
    public Integer call() throws IOException, InterruptedException
    {
        final ReplicationDemo.Result result = ReplicationDemo.run(options(), out);
        return result.verified() ? TandemExamples.OK : TandemExamples.FAILED;
    }

    /**
     * Every check of the command line, before the guest is built.
     */
    ReplicationDemo.Options options()
    {
        final Workload parsed;
        try
        {
            CommandLine.checkGuest(memoryBytes, periodMs);
            parsed = Workload.parse(workload);
        }
        catch (final IllegalArgumentException ex)
        {
            throw refuse(ex.getMessage().startsWith("--") ? ex.getMessage() : "--workload: " + ex.getMessage());
        }
        // the demo counts whole seconds: 0 or 1500ms would silently become something else
        if (durationMs < 1000 || durationMs % 1000 != 0)
        {
            throw refuse("--duration must be whole seconds from 1s, not " + durationMs + "ms");
        }
        if (dirtyRate < 0)
        {
            throw refuse("--dirty-rate must be 0 or more, not " + dirtyRate);
        }
        return new ReplicationDemo.Options(memoryBytes, parsed, periodMs, durationMs / 1000, dirtyRate, seed);
    }

    private ParameterException refuse(final String message)
    {
        return new ParameterException(spec.commandLine(), message);
    }
}
