package dev.tandem.examples.simulation;

import java.util.List;

/**
 * What one simulated run did and which invariants it broke.
 *
 * @param seed        the seed; it alone replays the run.
 * @param plan        the faults drawn from the seed, in one line.
 * @param outcome     how the run ended (failover, still protected, never protected, ...).
 * @param violations  every invariant violation found, empty when the run was correct.
 * @param simulatedMs simulated time the run covered.
 * @param killPlanned whether the plan kills a node.
 * @param killReached whether the run reached the planned kill point (a late epoch may never come).
 */
public record SimulationResult(long seed, String plan, String outcome, List<String> violations, long simulatedMs,
    boolean killPlanned, boolean killReached)
{
    /**
     * @return true if no invariant was violated.
     */
    public boolean ok()
    {
        return violations.isEmpty();
    }

    /**
     * @return the one command that replays this run.
     */
    public String replayCommand()
    {
        return "java -jar examples/target/tandem-examples.jar simulate --seeds " + seed + ".." + seed;
    }
}
