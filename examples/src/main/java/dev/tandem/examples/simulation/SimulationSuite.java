package dev.tandem.examples.simulation;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Runs a range of seeds, prints each failing one with the command that replays it, and sums up.
 */
public final class SimulationSuite
{
    /** Progress lines come at most this often: often enough to see a run move, rare enough to read. */
    private static final long PROGRESS_INTERVAL_NS = 1_000_000_000L;

    private SimulationSuite()
    {
    }

    /**
     * What a range of runs found.
     *
     * @param runs        how many seeds ran.
     * @param failures    the runs that violated an invariant.
     * @param outcomes    how many runs ended each way (failover, protected to the end, ...).
     * @param faults      how many runs had each kind of fault.
     * @param killsPlanned runs whose plan kills a node.
     * @param killsReached of those, runs that reached the kill point.
     * @param simulatedMs simulated time covered by all runs.
     * @param wallMs      real time the range took.
     * @param activeEnds  how many runs left the old active each way (died, protecting, fenced, owner, ...).
     * @param superseded  runs in which the standby claimed a newer generation over an active that lived on.
     * @param stopNs      of those, the time from the claim to the old guest stopped, one entry per stopped guest.
     * @param unackedOwnerFrames unacknowledged frames released by an active owning a generation it won.
     * @param reconnectedRuns runs in which the active resumed a session after a lost link.
     * @param reconnects  sessions resumed after a lost link, in all runs.
     * @param quickResyncs of those, the ones that resent only what changed since the standby's recovery point.
     * @param switchovers how the planned switchovers ended (completed, abandoned, never began), by count.
     */
    public record Summary(long runs, List<SimulationResult> failures, Map<String, Long> outcomes,
        Map<String, Long> faults, long killsPlanned, long killsReached, long simulatedMs, long wallMs,
        Map<String, Long> activeEnds, long superseded, long[] stopNs, long unackedOwnerFrames, long reconnectedRuns,
        long reconnects, long quickResyncs, Map<String, Long> switchovers)
    {
        /**
         * @param percentile 0..100.
         * @return that percentile of the claim-to-stop times in simulated milliseconds, -1 if none.
         */
        public double stopMs(final double percentile)
        {
            if (stopNs.length == 0)
            {
                return -1;
            }
            final long[] sorted = stopNs.clone();
            Arrays.sort(sorted);
            final int at = (int)Math.min(sorted.length - 1, Math.ceil(percentile / 100.0 * sorted.length) - 1);
            return sorted[Math.max(0, at)] / 1e6;
        }

        /**
         * @return true if no run violated an invariant.
         */
        public boolean ok()
        {
            return failures.isEmpty();
        }

        /**
         * @param out where to print the summary.
         */
        public void print(final PrintStream out)
        {
            out.printf(Locale.ROOT, "simulated %d seeds (%.1f s of simulated time) in %.1f s: %d with invariant " +
                "violations%n", runs, simulatedMs / 1000.0, wallMs / 1000.0, failures.size());
            // one column width for both tables, from their longest name and largest count: a fixed width let a
            // long fault name push its count out of line
            int nameWidth = 0;
            long most = 0;
            for (final Map<String, Long> table : List.of(faults, outcomes, activeEnds))
            {
                for (final Map.Entry<String, Long> row : table.entrySet())
                {
                    nameWidth = Math.max(nameWidth, row.getKey().length());
                    most = Math.max(most, row.getValue());
                }
            }
            final String rowFormat = "  %-" + Math.max(1, nameWidth) + "s  %" + Long.toString(most).length() + "d%n";
            out.println("faults drawn:");
            faults.forEach((name, count) -> out.printf(Locale.ROOT, rowFormat, name, count));
            out.printf(Locale.ROOT, "kills reached: %d of %d planned (the others named an epoch or write the run " +
                "never got to)%n", killsReached, killsPlanned);
            out.println("outcomes:");
            outcomes.forEach((name, count) -> out.printf(Locale.ROOT, rowFormat, name, count));
            out.println("the old active at the end:");
            activeEnds.forEach((name, count) -> out.printf(Locale.ROOT, rowFormat, name, count));
            out.printf(Locale.ROOT, "superseded while alive: %d; stopped their guest: %d; claim to guest stopped " +
                "(simulated ms): p50 %.1f, p99 %.1f, max %.1f%n", superseded, stopNs.length, stopMs(50), stopMs(99),
                stopMs(100));
            out.printf(Locale.ROOT, "unacknowledged frames released under a generation the active won " +
                "(pass-through): %d%n", unackedOwnerFrames);
            out.printf(Locale.ROOT, "sessions resumed after a lost link: %d in %d runs (%d quick resyncs, the rest " +
                "whole baselines)%n", reconnects, reconnectedRuns, quickResyncs);
            // never began: the active was not PROTECTED between the switchover's time and the run's end
            out.printf(Locale.ROOT, "planned switchovers: %d; how they ended: %s%n",
                switchovers.values().stream().mapToLong(Long::longValue).sum(), switchovers);
            for (final SimulationResult failure : failures)
            {
                out.println("FAILED seed " + failure.seed() + ": " + failure.violations().get(0) + "  -> replay: " +
                    failure.replayCommand());
            }
        }
    }

    /**
     * @param from    first seed.
     * @param to      last seed, inclusive.
     * @param workDir where runs keep their disk images, or null for a temporary directory.
     * @param out     where each failing seed is printed as it is found, and nothing else.
     * @return the summary.
     */
    public static Summary run(final long from, final long to, final Path workDir, final PrintStream out)
    {
        return run(from, to, workDir, out, false);
    }

    /**
     * @param from    first seed.
     * @param to      last seed, inclusive.
     * @param workDir where runs keep their disk images, or null for a temporary directory.
     * @param out     where each failing seed is printed as it is found, and nothing else.
     * @param listAll also print every passing seed's faults and outcome.
     * @return the summary.
     */
    public static Summary run(final long from, final long to, final Path workDir, final PrintStream out,
        final boolean listAll)
    {
        return run(from, to, workDir, out, listAll, null, Simulation.Mutation.NONE);
    }

    /**
     * @param from     first seed.
     * @param to       last seed, inclusive.
     * @param workDir  where runs keep their disk images, or null for a temporary directory.
     * @param out      where each failing seed is printed as it is found.
     * @param listAll  also print every passing seed's faults and outcome.
     * @param progress where a progress line (seeds done, violations so far, ETA) goes at most once a second and
     *                 once at the end, or null for none. Standard error on the command line: the summary on
     *                 standard output stays clean to read or diff.
     * @param mutation a deliberate defect every run carries (to show the checks bite), or null for none.
     * @return the summary.
     * @throws IllegalArgumentException naming the valid mutations if {@code mutation} is none of them.
     */
    public static Summary run(final long from, final long to, final Path workDir, final PrintStream out,
        final boolean listAll, final PrintStream progress, final String mutation)
    {
        return run(from, to, workDir, out, listAll, progress,
            mutation == null ? Simulation.Mutation.NONE : Simulation.Mutation.of(mutation));
    }

    /**
     * @param mutation a name given to {@code simulate --mutation}.
     * @throws IllegalArgumentException naming the valid ones if it is none of them.
     */
    public static void checkMutation(final String mutation)
    {
        Simulation.Mutation.of(mutation);
    }

    static Summary run(final long from, final long to, final Path workDir, final PrintStream out,
        final boolean listAll, final PrintStream progress, final Simulation.Mutation mutation)
    {
        if (to < from)
        {
            throw new IllegalArgumentException("seed range " + from + ".." + to + " is empty");
        }
        final Path dir;
        try
        {
            dir = workDir != null ? Files.createDirectories(workDir) : Files.createTempDirectory("tandem-sim");
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException("cannot create the simulation's work directory", ex);
        }
        final long start = System.nanoTime();
        final List<SimulationResult> failures = new ArrayList<>();
        final Map<String, Long> outcomes = new TreeMap<>();
        final Map<String, Long> faults = new TreeMap<>();
        long simulatedMs = 0;
        long killsPlanned = 0;
        long killsReached = 0;
        long lastProgress = start;
        final Map<String, Long> activeEnds = new TreeMap<>();
        long superseded = 0;
        long unackedOwnerFrames = 0;
        long reconnectedRuns = 0;
        long reconnects = 0;
        long quickResyncs = 0;
        final Map<String, Long> switchovers = new TreeMap<>();
        final List<Long> stops = new ArrayList<>();
        for (long seed = from; seed <= to; seed++)
        {
            final SimulationResult result = Simulation.run(seed, dir, mutation);
            simulatedMs += result.simulatedMs();
            activeEnds.merge(result.activeEnd(), 1L, Long::sum);
            if (result.superseded() && !result.activeEnd().equals("died") || result.claimToStopNs() >= 0)
            {
                superseded++;
            }
            if (result.claimToStopNs() >= 0)
            {
                stops.add(result.claimToStopNs());
            }
            unackedOwnerFrames += result.unackedOwnerFrames();
            reconnectedRuns += result.reconnects() > 0 ? 1 : 0;
            reconnects += result.reconnects();
            quickResyncs += result.quickResyncs();
            if (!result.switchover().isEmpty())
            {
                switchovers.merge(result.switchover(), 1L, Long::sum);
            }
            killsPlanned += result.killPlanned() ? 1 : 0;
            killsReached += result.killReached() ? 1 : 0;
            outcomes.merge(category(result.outcome()), 1L, Long::sum);
            for (final String fault : result.plan().split("; "))
            {
                faults.merge(category(fault), 1L, Long::sum);
            }
            if (!result.ok())
            {
                failures.add(result);
                out.println("seed " + seed + " [" + result.plan() + "] -> " + result.outcome());
                result.violations().forEach(v -> out.println("  VIOLATION " + v));
                out.println("  replay: " + result.replayCommand());
            }
            else if (listAll)
            {
                out.println("seed " + seed + " [" + result.plan() + "] -> " + result.outcome() +
                    (result.killPlanned() && !result.killReached() ? " (kill not reached)" : ""));
            }
            final long now = System.nanoTime();
            if (progress != null && (now - lastProgress >= PROGRESS_INTERVAL_NS || seed == to))
            {
                lastProgress = now;
                progress.println(progressLine(seed - from + 1, to - from + 1, failures.size(), now - start));
            }
            if ((seed - from + 1) % 2000 == 0 && seed < to)
            {
                // a long soak stopped early still leaves its figures so far
                out.println("--- partial summary, seeds " + from + ".." + seed + ":");
                new Summary(seed - from + 1, failures, outcomes, faults, killsPlanned, killsReached, simulatedMs,
                    (System.nanoTime() - start) / 1_000_000, activeEnds, superseded,
                    stops.stream().mapToLong(Long::longValue).toArray(), unackedOwnerFrames, reconnectedRuns, reconnects,
                    quickResyncs, switchovers).print(out);
                out.println("---");
            }
        }
        if (workDir == null)
        {
            dir.toFile().delete();
        }
        return new Summary(to - from + 1, failures, outcomes, faults, killsPlanned, killsReached, simulatedMs,
            (System.nanoTime() - start) / 1_000_000, activeEnds, superseded,
            stops.stream().mapToLong(Long::longValue).toArray(), unackedOwnerFrames, reconnectedRuns, reconnects,
            quickResyncs, switchovers);
    }

    /**
     * @param done       seeds run.
     * @param total      seeds in the range.
     * @param violations seeds that violated an invariant so far.
     * @param elapsedNs  time since the first seed started.
     * @return e.g. {@code "simulate: 40/200 seeds, 0 with violations, 12 s elapsed, ETA 48 s"}.
     */
    public static String progressLine(final long done, final long total, final long violations, final long elapsedNs)
    {
        final double elapsedS = elapsedNs / 1e9;
        final String eta = done >= total ? "done" :
            String.format(Locale.ROOT, "ETA %.0f s", elapsedS / done * (total - done));
        return String.format(Locale.ROOT, "simulate: %d/%d seeds, %d with violations, %.0f s elapsed, %s", done,
            total, violations, elapsedS, eta);
    }

    /**
     * @return the words of a description before its first number or parenthesis: its kind.
     */
    private static String category(final String text)
    {
        final StringBuilder kind = new StringBuilder();
        for (final String word : text.split(" "))
        {
            if (word.isEmpty() || Character.isDigit(word.charAt(0)) || word.charAt(0) == '(' ||
                word.charAt(0) == '+' || word.charAt(0) == '#' || word.contains(","))
            {
                if (word.contains(",") && !Character.isDigit(word.charAt(0)))
                {
                    kind.append(kind.length() > 0 ? " " : "").append(word, 0, word.indexOf(','));
                }
                break;
            }
            kind.append(kind.length() > 0 ? " " : "").append(word);
        }
        return kind.toString();
    }
}
