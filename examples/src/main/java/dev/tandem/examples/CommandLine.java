package dev.tandem.examples;

import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Option values of the examples: the failover nodes' own {@code --name value} parser (the harness writes their
 * command lines, so it needs no help or errors for people) and the sizes and times every command line reads, with
 * their picocli converters.
 */
final class CommandLine
{
    /** Key under which {@code --help} or {@code -h} is reported. */
    static final String HELP = "help";

    private CommandLine()
    {
    }

    /**
     * @param args    the arguments.
     * @param from    first argument to read.
     * @param options names (without dashes) that take a value.
     * @param flags   names that take none (reported as "true").
     * @return name to value.
     * @throws IllegalArgumentException naming an unknown option or a missing value.
     */
    static Map<String, String> parse(final String[] args, final int from, final Set<String> options,
        final Set<String> flags)
    {
        final Map<String, String> values = new HashMap<>();
        for (int i = from; i < args.length; i++)
        {
            final String arg = args[i];
            if ("--help".equals(arg) || "-h".equals(arg))
            {
                values.put(HELP, "true");
                continue;
            }
            final String name = arg.startsWith("--") ? arg.substring(2) : "";
            if (flags.contains(name))
            {
                values.put(name, "true");
                continue;
            }
            if (!options.contains(name))
            {
                throw new IllegalArgumentException("unknown option " + arg);
            }
            if (i + 1 >= args.length)
            {
                throw new IllegalArgumentException("missing value after " + arg);
            }
            values.put(name, args[++i]);
        }
        return values;
    }

    /**
     * @param text a size with an optional k, m or g suffix.
     * @return bytes.
     */
    static long size(final String text)
    {
        final String lower = text.trim().toLowerCase(Locale.ROOT);
        final char unit = lower.isEmpty() ? ' ' : lower.charAt(lower.length() - 1);
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

    /**
     * @param text a time with an ms or s suffix (plain numbers are milliseconds).
     * @return milliseconds.
     */
    static long millis(final String text)
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

    /**
     * @param option the option's name without dashes, for the message.
     * @param text   a time with an ms or s suffix (plain numbers are milliseconds).
     * @return milliseconds, zero or more.
     * @throws IllegalArgumentException naming the option if the time is not a number or negative.
     */
    static long duration(final String option, final String text)
    {
        final long millis;
        try
        {
            millis = millis(text);
        }
        catch (final IllegalArgumentException ex)
        {
            throw new IllegalArgumentException("--" + option + ": " + ex.getMessage());
        }
        if (millis < 0)
        {
            throw new IllegalArgumentException("--" + option + " must not be negative, not '" + text + "'");
        }
        return millis;
    }

    /**
     * @param memory guest memory asked for.
     * @param periodMs checkpoint period asked for.
     * @throws IllegalArgumentException naming the option out of range.
     */
    static void checkGuest(final long memory, final long periodMs)
    {
        if (memory < (16L << 20) || memory % 4096 != 0)
        {
            throw new IllegalArgumentException("--guest-memory must be a multiple of 4 KiB from 16m");
        }
        if (periodMs < 1 || periodMs > 10_000)
        {
            throw new IllegalArgumentException("--period must be from 1ms to 10s");
        }
    }

    /**
     * Reads a size ({@code 64m}, {@code 1g}) for picocli, which names the option in the error.
     */
    static final class Size implements picocli.CommandLine.ITypeConverter<Long>
    {
        @Override
        public Long convert(final String value)
        {
            try
            {
                return size(value);
            }
            catch (final IllegalArgumentException ex)
            {
                throw new picocli.CommandLine.TypeConversionException(ex.getMessage());
            }
        }
    }

    /**
     * @param text {@code AT:FOR}, two times with an ms or s suffix (plain numbers are milliseconds).
     * @return the link drop they name, times not checked.
     * @throws IllegalArgumentException if the text is not two times around a colon.
     */
    static FailoverHarness.LinkDrop linkDrop(final String text)
    {
        final String[] times = text.split(":", -1);
        if (times.length != 2)
        {
            throw new IllegalArgumentException("'" + text + "' is not AT:FOR, two times such as 1s:100ms");
        }
        return new FailoverHarness.LinkDrop(millis(times[0]), millis(times[1]));
    }

    /**
     * Reads a link drop {@code AT:FOR} ({@code 1s:100ms}) for picocli, which names the option in the error. Times
     * that are not positive are read: the command refuses them with the rest of its checks.
     */
    static final class LinkDropTimes implements picocli.CommandLine.ITypeConverter<FailoverHarness.LinkDrop>
    {
        @Override
        public FailoverHarness.LinkDrop convert(final String value)
        {
            try
            {
                return linkDrop(value);
            }
            catch (final IllegalArgumentException ex)
            {
                throw new picocli.CommandLine.TypeConversionException(ex.getMessage());
            }
        }
    }

    /**
     * Reads a time ({@code 10ms}, {@code 2s}) as milliseconds for picocli, which names the option in the error.
     * Negative times are read: the command says which of its options must be positive.
     */
    static final class Millis implements picocli.CommandLine.ITypeConverter<Long>
    {
        @Override
        public Long convert(final String value)
        {
            try
            {
                return millis(value);
            }
            catch (final IllegalArgumentException ex)
            {
                throw new picocli.CommandLine.TypeConversionException(ex.getMessage());
            }
        }
    }
}
