package dev.tandem.examples;

import dev.tandem.vmm.sim.Workload;

import java.io.PrintStream;
import java.util.List;
import java.util.Locale;

/**
 * Command-line entry of {@code tandem-examples.jar}.
 * <pre>
 * java -jar examples/target/tandem-examples.jar [failover] [--guest-memory 64m] [--period 10ms] [--kill-after 2s]
 *      [--seed 1] [--transfers 600] [--no-digests] [--report report.json]
 * java -jar examples/target/tandem-examples.jar demo [--guest-memory 256m] [--workload hotset]
 *      [--period 10ms] [--duration 10s] [--dirty-rate 200] [--seed 1]
 * </pre>
 */
public final class TandemExamples
{
    private static final String USAGE = String.join("\n",
        "usage: java -jar tandem-examples.jar [failover|demo] [options]",
        "  failover                kill the active of a protected bank guest and verify the standby took over",
        "                          (three JVMs on loopback: standby, active, client) (default)",
        "  demo                    protect a simulated guest over loopback TCP in one JVM",
        "failover options:",
        "  --guest-memory SIZE     guest memory (default 64m)",
        "  --workload NAME         background workload beside the bank (default hotset)",
        "  --period TIME           checkpoint period (default 10ms)",
        "  --kill-after TIME       kill the active this long after the client starts (default: 1.5-3.5s by seed)",
        "  --kill-phase PHASE      mid-epoch (SIGKILL, default) | delta-send | epoch-end (the active halts there)",
        "  --seed N                seed of workload, transfers and kill moment (default 1)",
        "  --transfers N           most transfers the client makes (default 100000; it stops 2 s after the kill)",
        "  --no-digests            do not digest the guest at every checkpoint (faster pauses, no digest check)",
        "  --report FILE           write the report as JSON",
        "demo options:",
        "  --guest-memory SIZE     guest memory, e.g. 256m, 1g (default 256m)",
        "  --workload NAME         uniform | hotset | sequential | idle (default hotset)",
        "  --period TIME           checkpoint period, e.g. 10ms (default 10ms)",
        "  --duration TIME         how long to run, e.g. 10s (default 10s)",
        "  --dirty-rate N          pages the guest writes per millisecond (default 200)",
        "  --seed N                workload seed (default 1)");

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
        if (args.length == 0 || !"demo".equals(args[0]))
        {
            // failover is the default command
            final boolean named = args.length > 0 && "failover".equals(args[0]);
            return failover(named ? java.util.Arrays.copyOfRange(args, 1, args.length) : args, out, err);
        }
        long memory = 256L << 20;
        Workload workload = Workload.HOTSET;
        long periodMs = 10;
        long seconds = 10;
        int dirtyRate = 200;
        long seed = 1;
        try
        {
            for (int i = 0; i < args.length; i++)
            {
                final String arg = args[i];
                if ("demo".equals(arg))
                {
                    continue;
                }
                if ("--help".equals(arg) || "-h".equals(arg))
                {
                    out.println(USAGE);
                    return 0;
                }
                if (i + 1 >= args.length)
                {
                    throw new IllegalArgumentException("missing value after " + arg);
                }
                final String value = args[++i];
                switch (arg)
                {
                    case "--guest-memory" -> memory = parseSize(value);
                    case "--workload" -> workload = Workload.parse(value);
                    case "--period" -> periodMs = parseMillis(value);
                    case "--duration" -> seconds = Math.max(1, parseMillis(value) / 1000);
                    case "--dirty-rate" -> dirtyRate = Integer.parseInt(value);
                    case "--seed" -> seed = Long.parseLong(value);
                    default -> throw new IllegalArgumentException("unknown option " + arg);
                }
            }
            if (memory < (16L << 20) || memory % 4096 != 0)
            {
                throw new IllegalArgumentException("--guest-memory must be a multiple of 4 KiB from 16m");
            }
            if (periodMs < 1 || periodMs > 10_000)
            {
                throw new IllegalArgumentException("--period must be from 1ms to 10s");
            }
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

    private static int failover(final String[] args, final PrintStream out, final PrintStream err) throws Exception
    {
        long memory = 64L << 20;
        Workload workload = Workload.HOTSET;
        long periodMs = 10;
        long killAfterMs = -1;
        long seed = 1;
        int transfers = 100_000;
        boolean digests = true;
        String report = null;
        String killPhase = FailoverHarness.Options.MID_EPOCH;
        try
        {
            for (int i = 0; i < args.length; i++)
            {
                final String arg = args[i];
                if ("--no-digests".equals(arg))
                {
                    digests = false;
                    continue;
                }
                if ("--help".equals(arg) || "-h".equals(arg))
                {
                    out.println(USAGE);
                    return 0;
                }
                if (i + 1 >= args.length)
                {
                    throw new IllegalArgumentException("missing value after " + arg);
                }
                final String value = args[++i];
                switch (arg)
                {
                    case "--guest-memory" -> memory = parseSize(value);
                    case "--workload" -> workload = Workload.parse(value);
                    case "--period" -> periodMs = parseMillis(value);
                    case "--kill-after" -> killAfterMs = parseMillis(value);
                    case "--seed" -> seed = Long.parseLong(value);
                    case "--transfers" -> transfers = Integer.parseInt(value);
                    case "--report" -> report = value;
                    case "--kill-phase" -> killPhase = value;
                    default -> throw new IllegalArgumentException("unknown option " + arg);
                }
            }
            if (memory < (16L << 20) || memory % 4096 != 0)
            {
                throw new IllegalArgumentException("--guest-memory must be a multiple of 4 KiB from 16m");
            }
            if (!List.of("mid-epoch", "delta-send", "epoch-end").contains(killPhase))
            {
                throw new IllegalArgumentException("--kill-phase must be mid-epoch, delta-send or epoch-end");
            }
            if (periodMs < 1 || periodMs > 10_000 || transfers < 1 || killAfterMs < -1)
            {
                throw new IllegalArgumentException("--period must be 1ms to 10s, --transfers and --kill-after positive");
            }
        }
        catch (final IllegalArgumentException ex)
        {
            err.println("error: " + ex.getMessage());
            err.println(USAGE);
            return 2;
        }
        final java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("tandem-failover");
        final FailoverHarness.Report result = FailoverHarness.run(new FailoverHarness.Options(memory, workload,
            periodMs, killAfterMs, seed, transfers, 256, digests, killPhase), dir, out);
        if (report != null)
        {
            java.nio.file.Files.writeString(java.nio.file.Path.of(report), result.toJson());
            out.println("  report             " + report);
        }
        out.println("  logs               " + dir);
        return result.verified() ? 0 : 1;
    }

    static long parseSize(final String text)
    {
        final String lower = text.trim().toLowerCase(Locale.ROOT);
        final char unit = lower.charAt(lower.length() - 1);
        final long scale = unit == 'g' ? 1L << 30 : unit == 'm' ? 1L << 20 : unit == 'k' ? 1L << 10 : 1;
        final String digits = scale == 1 ? lower : lower.substring(0, lower.length() - 1);
        try
        {
            return Long.parseLong(digits) * scale;
        }
        catch (final NumberFormatException ex)
        {
            throw new IllegalArgumentException("size '" + text + "' is not a number with k, m or g");
        }
    }

    static long parseMillis(final String text)
    {
        final String lower = text.trim().toLowerCase(Locale.ROOT);
        try
        {
            if (lower.endsWith("ms"))
            {
                return Long.parseLong(lower.substring(0, lower.length() - 2));
            }
            if (lower.endsWith("s"))
            {
                return Long.parseLong(lower.substring(0, lower.length() - 1)) * 1000;
            }
            return Long.parseLong(lower);
        }
        catch (final NumberFormatException ex)
        {
            throw new IllegalArgumentException("time '" + text + "' is not a number with ms or s");
        }
    }
}
