package dev.tandem.examples;

import dev.tandem.vmm.sim.Workload;

import java.io.PrintStream;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.Locale;

/**
 * Command-line entry of {@code tandem-examples.jar}.
 * <pre>
 * java -jar examples/target/tandem-examples.jar [failover] [--guest-memory 64m] [--period 10ms] [--kill-after 2s]
 *      [--seed 1] [--transfers 600] [--no-digests] [--report report.json]
 * java -jar examples/target/tandem-examples.jar demo [--guest-memory 256m] [--workload hotset]
 *      [--period 10ms] [--duration 10s] [--dirty-rate 200] [--seed 1]
 * java -jar examples/target/tandem-examples.jar simulate [--seeds 1..200] [--work-dir DIR] [--list] [--verbose]
 * </pre>
 */
public final class TandemExamples
{
    private static final String USAGE = String.join("\n",
        "usage: java -jar tandem-examples.jar [failover|demo|simulate] [options]",
        "  failover                kill the active of a protected bank guest and verify the standby took over",
        "                          (three JVMs on loopback: standby, active, client) (default)",
        "  demo                    protect a simulated guest over loopback TCP in one JVM",
        "  simulate                run seeded fault schedules deterministically on one thread and check the",
        "                          invariants after each; exits 1 if any seed violates one",
        "failover options:",
        "  --guest-memory SIZE     guest memory (default 64m)",
        "  --workload NAME         background workload beside the bank (default hotset)",
        "  --period TIME           checkpoint period (default 10ms)",
        "  --kill-after TIME       kill the active this long after the client starts (default: 1.5-3.5s by seed)",
        "  --kill-phase PHASE      mid-epoch (SIGKILL, default) | delta-send | epoch-end (the active halts there)",
        "  --seed N                seed of workload, transfers and kill moment (default 1)",
        "  --transfers N           most transfers the client makes (default 100000; it stops 2 s after the kill)",
        "  --no-digests            do not digest the guest at every checkpoint (faster pauses, no digest check)",
        "  --policy NAME           fixed (default) | adaptive checkpoint period (2-100 ms, pause 2 ms, output 100 ms)",
        "  --report FILE           write the report as JSON",
        "demo options:",
        "  --guest-memory SIZE     guest memory, e.g. 256m, 1g (default 256m)",
        "  --workload NAME         uniform | hotset | sequential | idle (default hotset)",
        "  --period TIME           checkpoint period, e.g. 10ms (default 10ms)",
        "  --duration TIME         how long to run, e.g. 10s (default 10s)",
        "  --dirty-rate N          pages the guest writes per millisecond (default 200)",
        "  --seed N                workload seed (default 1)",
        "simulate options:",
        "  --seeds FROM..TO        seed range, inclusive (default 1..200); one seed replays one run",
        "  --work-dir DIR          where runs keep their disk images (default: a temporary directory)",
        "  --list                  print every seed's faults and outcome, not only the failing ones",
        "  --verbose               keep the library's log (off by default: every seed injects faults)",
        "  --mutation NAME         test-only: run with a deliberate defect the checks must report",
        "                          (pass-through-judged-as-hold | split-arbiter); failing seeds print it");

    private TandemExamples()
    {
    }

    /**
     * @param args command line.
     * @throws Exception if the demo fails to start.
     */
    public static void main(final String[] args) throws Exception
    {
        final int status = run(args, System.out, System.err);
        if (status != 0)
        {
            System.exit(status);
        }
    }

    /**
     * @param args command line.
     * @param out  standard output.
     * @param err  standard error.
     * @return the exit status: 0 verified, 1 verification failed, 2 bad usage.
     * @throws Exception if the demo fails to start.
     */
    public static int run(final String[] args, final PrintStream out, final PrintStream err) throws Exception
    {
        if (args.length > 0 && "simulate".equals(args[0]))
        {
            return simulate(args, out, err);
        }
        if (args.length == 0 || !"demo".equals(args[0]))
        {
            // failover is the default command
            final boolean named = args.length > 0 && "failover".equals(args[0]);
            return failover(named ? java.util.Arrays.copyOfRange(args, 1, args.length) : args, out, err);
        }
        final long memory;
        final Workload workload;
        final long periodMs;
        final long seconds;
        final int dirtyRate;
        final long seed;
        try
        {
            final Map<String, String> options = CommandLine.parse(args, 1,
                Set.of("guest-memory", "workload", "period", "duration", "dirty-rate", "seed"), Set.of());
            if (options.containsKey(CommandLine.HELP))
            {
                out.println(USAGE);
                return 0;
            }
            memory = CommandLine.size(options.getOrDefault("guest-memory", "256m"));
            workload = Workload.parse(options.getOrDefault("workload", "hotset"));
            periodMs = CommandLine.millis(options.getOrDefault("period", "10ms"));
            seconds = Math.max(1, CommandLine.millis(options.getOrDefault("duration", "10s")) / 1000);
            dirtyRate = Integer.parseInt(options.getOrDefault("dirty-rate", "200"));
            seed = Long.parseLong(options.getOrDefault("seed", "1"));
            CommandLine.checkGuest(memory, periodMs);
        }
        catch (final IllegalArgumentException ex)
        {
            err.println("error: " + ex.getMessage());
            err.println(USAGE);
            return 2;
        }
        final ReplicationDemo.Result result = ReplicationDemo.run(
            new ReplicationDemo.Options(memory, workload, periodMs, seconds, dirtyRate, seed), out);
        return result.verified() ? 0 : 1;
    }

    private static int simulate(final String[] args, final PrintStream out, final PrintStream err)
    {
        final long from;
        final long to;
        final java.nio.file.Path workDir;
        final boolean list;
        final String mutation;
        try
        {
            final Map<String, String> options =
                CommandLine.parse(args, 1, Set.of("seeds", "work-dir", "mutation"), Set.of("verbose", "list"));
            if (options.containsKey(CommandLine.HELP))
            {
                out.println(USAGE);
                return 0;
            }
            final String seeds = options.getOrDefault("seeds", "1..200");
            final int dots = seeds.indexOf("..");
            from = Long.parseLong(dots < 0 ? seeds : seeds.substring(0, dots));
            to = dots < 0 ? from : Long.parseLong(seeds.substring(dots + 2));
            if (to < from)
            {
                throw new IllegalArgumentException("--seeds " + seeds + " is an empty range");
            }
            workDir = options.containsKey("work-dir") ? java.nio.file.Path.of(options.get("work-dir")) : null;
            list = options.containsKey("list");
            mutation = options.getOrDefault("mutation", "none");
            dev.tandem.examples.simulation.SimulationSuite.checkMutation(mutation);
            if (!options.containsKey("verbose"))
            {
                // every seed fails something on purpose: the library's own warnings would bury the summary
                quietLibraryLogs();
            }
        }
        catch (final IllegalArgumentException ex)
        {
            err.println("error: " + ex.getMessage());
            err.println(USAGE);
            return 2;
        }
        final dev.tandem.examples.simulation.SimulationSuite.Summary summary =
            dev.tandem.examples.simulation.SimulationSuite.run(from, to, workDir, out, list, mutation);
        summary.print(out);
        return summary.ok() ? 0 : 1;
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

    private static int failover(final String[] args, final PrintStream out, final PrintStream err) throws Exception
    {
        final FailoverHarness.Options options;
        final String report;
        try
        {
            final Map<String, String> values = CommandLine.parse(args, 0, Set.of("guest-memory", "workload", "period",
                "kill-after", "kill-phase", "seed", "transfers", "report", "policy"), Set.of("no-digests"));
            if (values.containsKey(CommandLine.HELP))
            {
                out.println(USAGE);
                return 0;
            }
            final long memory = CommandLine.size(values.getOrDefault("guest-memory", "64m"));
            final long periodMs = CommandLine.millis(values.getOrDefault("period", "10ms"));
            CommandLine.checkGuest(memory, periodMs);
            final long killAfterMs = values.containsKey("kill-after") ? CommandLine.millis(values.get("kill-after")) : -1;
            final int transfers = Integer.parseInt(values.getOrDefault("transfers", "100000"));
            final String killPhase = values.getOrDefault("kill-phase", FailoverHarness.Options.MID_EPOCH);
            if (!List.of("mid-epoch", "delta-send", "epoch-end").contains(killPhase))
            {
                throw new IllegalArgumentException("--kill-phase must be mid-epoch, delta-send or epoch-end");
            }
            if (!List.of("fixed", "adaptive").contains(values.getOrDefault("policy", "fixed")))
            {
                throw new IllegalArgumentException("--policy must be fixed or adaptive");
            }
            if (transfers < 1 || killAfterMs < -1)
            {
                throw new IllegalArgumentException("--transfers and --kill-after must be positive");
            }
            options = new FailoverHarness.Options(memory, Workload.parse(values.getOrDefault("workload", "hotset")),
                periodMs, killAfterMs, Long.parseLong(values.getOrDefault("seed", "1")), transfers, 256,
                !values.containsKey("no-digests"), killPhase, values.getOrDefault("policy", "fixed"));
            report = values.get("report");
        }
        catch (final IllegalArgumentException ex)
        {
            err.println("error: " + ex.getMessage());
            err.println(USAGE);
            return 2;
        }
        final java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("tandem-failover");
        final FailoverHarness.Report result = FailoverHarness.run(options, dir, out);
        if (report != null)
        {
            java.nio.file.Files.writeString(java.nio.file.Path.of(report), result.toJson());
            out.println("  report             " + report);
        }
        out.println("  logs               " + dir);
        return result.verified() ? 0 : 1;
    }
}
