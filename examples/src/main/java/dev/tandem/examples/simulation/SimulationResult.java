package dev.tandem.examples.simulation;

import java.util.List;

/**
 * What one simulated run did and which invariants it broke.
 *
 * @param seed              the seed; it alone (with the mutation, if any) replays the run.
 * @param plan              the faults drawn from the seed, in one line.
 * @param outcome           how the run ended (failover, still protected, never protected, ...).
 * @param violations        every invariant violation found, empty when the run was correct.
 * @param simulatedMs       simulated time the run covered.
 * @param killPlanned       whether the plan kills a node.
 * @param killReached       whether the run reached the planned kill point (a late epoch may never come).
 * @param activeEnd         what became of the old active (died, protecting, fenced, arbitrating, owner unprotected).
 * @param superseded        whether the standby claimed a newer generation while the active lived or had lived.
 * @param claimToStopNs     simulated time from that claim to the old guest stopped, -1 if it was not stopped (the
 *                          active died first, or was not superseded).
 * @param unackedOwnerFrames unacknowledged frames the active released while it owned a generation it won.
 * @param mutation          the deliberate defect of the run ({@code --mutation}), empty for none.
 * @param reconnects   sessions the active resumed after a lost link.
 * @param quickResyncs of those, the ones that resent only what changed since the standby's recovery point.
 * @param switchover   how the run's planned switchover ended (completed, abandoned, never began), empty if the run
 *                     planned none.
 */
public record SimulationResult(long seed, String plan, String outcome, List<String> violations, long simulatedMs,
    boolean killPlanned, boolean killReached, String activeEnd, boolean superseded, long claimToStopNs,
    long unackedOwnerFrames, String mutation, long reconnects, long quickResyncs, String switchover)
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
        return "java -jar examples/target/tandem-examples.jar simulate --seeds " + seed + ".." + seed +
            (mutation.isEmpty() ? "" : " --mutation " + mutation);
    }
}
