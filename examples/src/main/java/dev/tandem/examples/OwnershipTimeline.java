package dev.tandem.examples;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The harness's view of who owned the guest when, read from the records the nodes keep (see
 * {@link ReleaseRecorder}), all on one clock: wall-clock microseconds since the epoch ({@link #wallMicros()}). The
 * nodes share one machine and so one system clock; a monotonic clock would not do, because each JVM's
 * {@code nanoTime} has its own origin.
 * <p>
 * Record lines, one per fact, in a node's {@link FailoverNode#OWNERSHIP} file:
 * <pre>
 * release FIRST_US LAST_US COUNT   output left the guest: first and last release of one millisecond, and how many
 * stopped US WHY                   the active saw its guest stopped (fenced) at US
 * killed US PHASE                  the active halted itself at a kill point at US
 * decided US                       the standby decided to promote at US
 * resumed US                       the promoted guest runs from US
 * </pre>
 * Two questions are answered from them. Ownership (invariant 7): the old active counts as an owner at instant t if
 * output left it at or after t; the promoted side from the instant its guest resumed. {@link #ownersMax} is the
 * most owners at any one instant, and must be 1. False takeover: a standby that decided to promote before the fault
 * was injected took over from a live active.
 */
public final class OwnershipTimeline
{
    /** No such instant in the records. */
    public static final long NONE = Long.MIN_VALUE;

    private OwnershipTimeline()
    {
    }

    /**
     * @return now, in microseconds since the epoch on the system clock: the one clock every node and the harness
     *         time their records with.
     */
    public static long wallMicros()
    {
        final Instant now = Instant.now();
        return now.getEpochSecond() * 1_000_000L + now.getNano() / 1000;
    }

    /**
     * The facts one node recorded.
     *
     * @param releases  {first, last} microseconds of each run of releases, in the order recorded.
     * @param stoppedUs when the active saw its guest stopped, or {@link #NONE}.
     * @param killedUs  when the active halted itself at a kill point, or {@link #NONE}.
     * @param decidedUs when the standby decided to promote, or {@link #NONE}.
     * @param resumedUs when the promoted guest started running, or {@link #NONE}.
     */
    public record Records(List<long[]> releases, long stoppedUs, long killedUs, long decidedUs, long resumedUs)
    {
        /** Nothing recorded. */
        public static final Records EMPTY = new Records(List.of(), NONE, NONE, NONE, NONE);

        /**
         * @param lines the lines of an ownership file.
         * @return what they record; unknown or torn lines (a node killed mid-write) are skipped.
         */
        public static Records parse(final List<String> lines)
        {
            final List<long[]> releases = new ArrayList<>();
            long stopped = NONE;
            long killed = NONE;
            long decided = NONE;
            long resumed = NONE;
            for (final String line : lines)
            {
                final String[] words = line.trim().split(" ");
                try
                {
                    switch (words[0])
                    {
                        case "release" -> releases.add(new long[] {Long.parseLong(words[1]), Long.parseLong(words[2])});
                        case "stopped" -> stopped = stopped == NONE ? Long.parseLong(words[1]) : stopped;
                        case "killed" -> killed = Long.parseLong(words[1]);
                        case "decided" -> decided = Long.parseLong(words[1]);
                        case "resumed" -> resumed = Long.parseLong(words[1]);
                        default ->
                        {
                            // not a record line
                        }
                    }
                }
                catch (final RuntimeException ex)
                {
                    // a line cut short by a kill: the records before it stand
                }
            }
            return new Records(List.copyOf(releases), stopped, killed, decided, resumed);
        }

        /**
         * @return the last instant output left this side, or {@link #NONE}.
         */
        public long lastReleaseUs()
        {
            long last = NONE;
            for (final long[] run : releases)
            {
                last = Math.max(last, run[1]);
            }
            return last;
        }
    }

    /**
     * How many sides owned the guest at once.
     *
     * @param owners  the most sides that ran the guest with output leaving at one instant.
     * @param overlap when {@code owners} is not 1, what overlapped (or that nobody owned it); empty otherwise.
     */
    public record Ownership(int owners, String overlap)
    {
    }

    /**
     * One side's life as a holder of the guest, for {@link #ownersMax(List)}.
     *
     * @param name    how a message names it ("the old active", "the promoted guest").
     * @param records what it recorded.
     */
    public record Life(String name, Records records)
    {
    }

    /**
     * Counts owners from the records of one failover. The old active is an owner at t if output left it at or after
     * t: a release after its guest was stopped counts too, because the output left all the same (a fence that does
     * not hold output back fences nothing). The promoted side is an owner from the instant its guest resumed, for
     * good.
     *
     * @param oldActive the active's records.
     * @param promoted  the standby's records.
     * @return the most owners at one instant, with the overlap named.
     */
    public static Ownership ownersMax(final Records oldActive, final Records promoted)
    {
        return ownersMax(List.of(new Life("the old active", oldActive), new Life("the promoted guest", promoted)));
    }

    /**
     * Counts owners over a chain of handovers (a failover or switchover, then a failback and another): the lives in
     * the order they held the guest. The first owns it until its last release, as an old active does; each later
     * one from the instant its guest resumed, until its last release (or that instant, if nothing left it) if a
     * later life took over from it, for good if it is the last.
     *
     * @param lives the holders of the guest, first to last; at least one.
     * @return the most owners at one instant, with the first overlap named.
     */
    public static Ownership ownersMax(final List<Life> lives)
    {
        final int count = lives.size();
        // {start, end} per life; null where the life never held the guest
        final long[][] held = new long[count][];
        for (int i = 0; i < count; i++)
        {
            final Records records = lives.get(i).records();
            final long lastRelease = records.lastReleaseUs();
            if (i == 0)
            {
                held[i] = lastRelease == NONE ? null : new long[] {Long.MIN_VALUE + 1, lastRelease};
            }
            else if (records.resumedUs() != NONE)
            {
                held[i] = new long[] {records.resumedUs(), i == count - 1 ? Long.MAX_VALUE :
                    Math.max(records.resumedUs(), lastRelease)};
            }
        }
        final List<long[]> intervals = new ArrayList<>();
        for (final long[] interval : held)
        {
            if (interval != null)
            {
                intervals.add(interval);
            }
        }
        final int owners = maxOverlap(intervals);
        if (owners == 1)
        {
            return new Ownership(1, "");
        }
        if (owners == 0)
        {
            return new Ownership(0, "no side let output leave the guest and none resumed it");
        }
        for (int earlier = 0; earlier < count; earlier++)
        {
            for (int later = earlier + 1; later < count; later++)
            {
                if (held[earlier] != null && held[later] != null && held[earlier][1] >= held[later][0])
                {
                    return new Ownership(owners, overlap(lives.get(earlier), lives.get(later)));
                }
            }
        }
        return new Ownership(owners, "");
    }

    private static String overlap(final Life earlier, final Life later)
    {
        final Records old = earlier.records();
        final long oldEnd = old.lastReleaseUs();
        final long newStart = later.records().resumedUs();
        return String.format(Locale.ROOT, "%s let output leave until %s, %.3f ms after %s resumed at %s%s",
            earlier.name(), instant(oldEnd), (oldEnd - newStart) / 1000.0, later.name(), instant(newStart),
            old.stoppedUs() == NONE ? " (its guest was never stopped)" : old.stoppedUs() > newStart ?
            String.format(Locale.ROOT, " (its guest stopped only %.3f ms after that)",
            (old.stoppedUs() - newStart) / 1000.0) : "");
    }

    /**
     * @param intervals closed intervals {start, end} of microseconds.
     * @return the most intervals that hold one instant.
     */
    static int maxOverlap(final List<long[]> intervals)
    {
        int best = 0;
        for (final long[] candidate : intervals)
        {
            // the deepest overlap of closed intervals includes the start of one of them
            int count = 0;
            for (final long[] other : intervals)
            {
                if (other[0] <= candidate[0] && candidate[0] <= other[1])
                {
                    count++;
                }
            }
            best = Math.max(best, count);
        }
        return best;
    }

    /**
     * Classifies a takeover: the standby must decide to promote after the fault, never before it.
     *
     * @param faultUs  when the harness injected the fault (the kill, or the partition).
     * @param fault    what the fault was, for the message ("kill", "partition").
     * @param promoted the standby's records.
     * @return null if the promotion (if any) came after the fault; otherwise the reason, starting
     *         "false takeover: ".
     */
    public static String falseTakeover(final long faultUs, final String fault, final Records promoted)
    {
        final long decided = promoted.decidedUs() != NONE ? promoted.decidedUs() : promoted.resumedUs();
        if (decided == NONE || decided >= faultUs)
        {
            return null;
        }
        return String.format(Locale.ROOT, "false takeover: the standby %s %.3f ms before the %s, while the active " +
            "was alive", promoted.decidedUs() != NONE ? "decided to promote" : "resumed the guest",
            (faultUs - decided) / 1000.0, fault);
    }

    private static String instant(final long micros)
    {
        return Instant.ofEpochSecond(micros / 1_000_000, (micros % 1_000_000) * 1000).toString();
    }
}
