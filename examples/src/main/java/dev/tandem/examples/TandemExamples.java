package dev.tandem.examples;

import dev.tandem.vmm.sim.Workload;

import java.io.PrintStream;
import java.util.Locale;

/**
 * Command-line entry of {@code tandem-examples.jar}.
 * <pre>
 * java -jar examples/target/tandem-examples.jar [demo] [--guest-memory 256m] [--workload hotset]
 *      [--period 10ms] [--duration 10s] [--dirty-rate 200] [--seed 1]
 * </pre>
 */
public final class TandemExamples
{
    private static final String USAGE = String.join("\n",
        "usage: java -jar tandem-examples.jar [demo] [options]",
        "  demo                    protect a simulated guest over loopback TCP (default)",
        "options:",
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
