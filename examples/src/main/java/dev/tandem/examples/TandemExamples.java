package dev.tandem.examples;

import picocli.CommandLine.Command;
import picocli.CommandLine.HelpCommand;
import picocli.CommandLine.IExecutionExceptionHandler;
import picocli.CommandLine.IParameterExceptionHandler;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParseResult;

import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.util.List;

/**
 * Command-line entry of {@code tandem-examples.jar}: the commands {@code failover} (the default), {@code demo},
 * {@code simulate}, {@code embed}, {@code stat} and {@code restore}. Every option is checked before any work starts; a bad one is
 * refused with one line naming it and a hint to the command's help, and exit status 2.
 * <pre>
 * java -jar examples/target/tandem-examples.jar [failover] [--guest-memory 64m] [--period 10ms] [--kill-after 2s]
 *      [--seed 1] [--transfers 100000] [--no-digests] [--report report.json] [--work-dir DIR] [--keep]
 * java -jar examples/target/tandem-examples.jar failover --partition-after 2s [--arbiter file|zookeeper]
 * java -jar examples/target/tandem-examples.jar demo [--guest-memory 256m] [--workload hotset]
 *      [--period 10ms] [--duration 10s] [--dirty-rate 200] [--seed 1]
 * java -jar examples/target/tandem-examples.jar simulate [--seeds 1..200] [--work-dir DIR] [--list] [--verbose]
 * java -jar examples/target/tandem-examples.jar stat [--pid PID] [--dir DIR] [--interval 1s] [--once] [--clean]
 * java -jar examples/target/tandem-examples.jar restore --from STANDBY_DIR --at EPOCH|TIME --to DIR
 * java -jar examples/target/tandem-examples.jar --help [COMMAND]
 * </pre>
 * {@code embed} runs {@link EmbeddingExample}, the README's embedding program, in this JVM.
 */
public final class TandemExamples
{
    /** Exit status: the run completed and verified (or help was asked for). */
    public static final int OK = 0;
    /** Exit status: a verification or invariant check failed, or the run could not complete. */
    public static final int FAILED = 1;
    /** Exit status: the command line was refused; nothing ran. */
    public static final int USAGE = 2;

    /** How the jar is started, for usage lines and hints. */
    static final String JAR = "java -jar tandem-examples.jar";
    /** Exit code 0 in every command's help. */
    static final String EXIT_OK = "0:verified (or help printed)";
    /** Exit code 1 in every command's help. */
    static final String EXIT_FAILED = "1:a verification or invariant check failed, or the run could not complete";
    /** Exit code 2 in every command's help. */
    static final String EXIT_USAGE = "2:bad command line (one line says which option); nothing ran";

    private static final List<String> COMMANDS = List.of("failover", "demo", "simulate", "embed", "stat", "restore",
        "help");

    /**
     * The top of the command tree: only help; the work is in the subcommands.
     */
    @Command(name = JAR, sortOptions = false, synopsisSubcommandLabel = "[COMMAND]",
        description = "Tandem's runnable examples. Without a command, runs failover.",
        exitCodeListHeading = "%nExit codes:%n", exitCodeList = {EXIT_OK, EXIT_FAILED, EXIT_USAGE},
        footer = "%nSee '" + JAR + " --help COMMAND' for a command's options.")
    static final class Top
    {
        @Option(names = {"-h", "--help"}, usageHelp = true, description = "show this help, or a command's")
        boolean help;
    }

    private TandemExamples()
    {
    }

    /**
     * @param args command line.
     */
    public static void main(final String[] args)
    {
        final int status = run(args, System.out, System.err);
        if (status != 0)
        {
            System.exit(status);
        }
    }

    /**
     * @param args command line.
     * @param out  standard output: progress, summaries, help.
     * @param err  standard error: errors, warnings and the simulation's progress.
     * @return the exit status: {@link #OK}, {@link #FAILED} or {@link #USAGE}.
     */
    public static int run(final String[] args, final PrintStream out, final PrintStream err)
    {
        final picocli.CommandLine commandLine = commandLine(out, err);
        final String first = args.length == 0 ? "" : args[0];
        if (("--help".equals(first) || "-h".equals(first)) && args.length > 1)
        {
            // "--help failover" asks for one command's help, as the hints say
            final picocli.CommandLine command = commandLine.getSubcommands().get(args[1]);
            if (command == null)
            {
                return refuse(err, "unknown command '" + args[1] + "'", null);
            }
            command.usage(out);
            return OK;
        }
        if (!first.isEmpty() && !first.startsWith("-") && !COMMANDS.contains(first))
        {
            return refuse(err, "unknown command '" + first + "' (commands: failover, demo, simulate, embed, stat, " +
                "restore)", null);
        }
        // failover is the default command: its options may come first, as they always could
        final boolean defaultCommand = first.isEmpty() || first.startsWith("-") && !"--help".equals(first) &&
            !"-h".equals(first);
        final String[] full = defaultCommand ? prepend("failover", args) : args;
        return commandLine.execute(full);
    }

    private static picocli.CommandLine commandLine(final PrintStream out, final PrintStream err)
    {
        final picocli.CommandLine commandLine = new picocli.CommandLine(new Top())
            .addSubcommand("failover", new FailoverCommand(out))
            .addSubcommand("demo", new DemoCommand(out))
            .addSubcommand("simulate", new SimulateCommand(out, err))
            .addSubcommand("embed", new EmbedCommand())
            .addSubcommand("stat", new StatCommand(out, err))
            .addSubcommand("restore", new RestoreCommand(out, err))
            .addSubcommand("help", new HelpCommand());
        commandLine.setOut(writer(out));
        commandLine.setErr(writer(err));
        commandLine.setParameterExceptionHandler(usageError(err));
        commandLine.setExecutionExceptionHandler(runError(err));
        commandLine.setExitCodeExceptionMapper(ex -> FAILED);
        return commandLine;
    }

    /**
     * One line naming what is wrong, one pointing to the command's help: the help of every command would bury the
     * line that matters.
     */
    private static IParameterExceptionHandler usageError(final PrintStream err)
    {
        return (final ParameterException ex, final String[] args) ->
        {
            final picocli.CommandLine command = ex.getCommandLine();
            return refuse(err, firstLine(ex.getMessage()),
                command == null || command.getParent() == null ? null : command.getCommandName());
        };
    }

    /**
     * A run that could not complete (a node did not start, a file could not be read) is said in one line; a bug
     * keeps its stack trace.
     */
    private static IExecutionExceptionHandler runError(final PrintStream err)
    {
        return (final Exception ex, final picocli.CommandLine command, final ParseResult parseResult) ->
        {
            if (ex instanceof IOException || ex instanceof UncheckedIOException || ex instanceof InterruptedException)
            {
                err.println("error: " + ex.getMessage());
            }
            else
            {
                err.print("error: ");
                ex.printStackTrace(err);
            }
            return FAILED;
        };
    }

    private static int refuse(final PrintStream err, final String message, final String command)
    {
        err.println("error: " + message);
        err.println("see: " + JAR + " --help" + (command == null ? "" : " " + command));
        return USAGE;
    }

    private static String firstLine(final String message)
    {
        final String text = message == null ? "bad command line" : message.strip();
        final int newline = text.indexOf('\n');
        return newline < 0 ? text : text.substring(0, newline).strip();
    }

    private static PrintWriter writer(final PrintStream stream)
    {
        return new PrintWriter(stream, true);
    }

    private static String[] prepend(final String first, final String[] rest)
    {
        final String[] all = new String[rest.length + 1];
        all[0] = first;
        System.arraycopy(rest, 0, all, 1, rest.length);
        return all;
    }

    /**
     * Silences the library's logging for loggers not created yet (slf4j-simple reads the level when a logger is
     * made); used where faults are injected on purpose and the caller reports what matters itself.
     */
    public static void quietLibraryLogs()
    {
        System.setProperty("org.slf4j.simpleLogger.log.dev.tandem", "off");
        System.setProperty("org.slf4j.simpleLogger.log.net.openhft", "off");
    }
}
