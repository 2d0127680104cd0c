package dev.tandem.examples.simulation;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The invariant-7 and -8 checks on hand-made histories: each property is reported once, at its first breach, and a
 * correct history passes.
 */
class OwnershipChecksTest
{
    private static final long MS = 1_000_000L;
    private static final long START = Simulation.START_NS;

    private final List<String> violations = new ArrayList<>();

    private OwnershipChecks checks(final boolean passThrough)
    {
        // a plan with no arbiter fault: the stop bound is failure timeout + polling + link delay
        FaultPlan plan;
        long seed = 1;
        do
        {
            plan = FaultPlan.draw(new SplittableRandom(seed++), START, 1000 * MS);
        }
        while (plan.arbiterFaulty(plan.ownershipAtNs));
        return new OwnershipChecks(violations, START, plan, passThrough, 100 * MS, 5 * MS, 1000 * MS, MS, 170 * MS);
    }

    @Test
    void aSupersededActiveThatStopsInTimeAndReleasesNothingPasses()
    {
        final OwnershipChecks checks = checks(false);
        checks.activeReleased(START + 10 * MS, 1, 3, 3, false);
        checks.claimed(OwnershipChecks.Side.STANDBY, 1, START + 100 * MS, 3);
        checks.promotedResumed(START + 101 * MS);
        checks.promotedReleased(START + 102 * MS);
        checks.tick(START + 104 * MS, true, false, false, false, -1, () -> false, () -> "PROTECTED");
        checks.tick(START + 105 * MS, true, true, true, true, -1, () -> false, () -> "PROTECTED");
        assertEquals(List.of(), violations);
        assertEquals(5 * MS, checks.claimToStopNs());
    }

    @Test
    void aFrameAfterTheClaimAndAGuestRunningPastTheBoundAreReported()
    {
        final OwnershipChecks checks = checks(false);
        checks.claimed(OwnershipChecks.Side.STANDBY, 1, START + 100 * MS, 3);
        // an acknowledged frame of the history the standby holds (epoch 3) may still leave: counted, not reported
        checks.activeReleased(START + 100 * MS + 1, 6, 3, 4, false);
        assertEquals(List.of(), violations);
        assertEquals(1, checks.releasedAfterClaim());
        // epoch 4 is beyond what the standby held at its claim: the old owner's output past the promoted history
        checks.activeReleased(START + 100 * MS + 2, 7, 4, 4, false);
        checks.promotedResumed(START + 101 * MS);
        checks.activeReleased(START + 102 * MS, 8, 4, 4, true);
        checks.tick(START + 150 * MS, true, false, false, false, -1, () -> false, () -> "PROTECTED");
        assertEquals(2, violations.size(), violations.toString());
        checks.tick(checks.stopDeadlineNs() + 1, true, false, false, false, -1, () -> false, () -> "PROTECTED");
        assertEquals(3, violations.size(), violations.toString());
        assertTrue(violations.get(0).startsWith("invariant 7: frame #7"), violations.toString());
        assertTrue(violations.get(1).startsWith("invariant 7: two guests with output"), violations.toString());
        assertTrue(violations.get(2).contains("still runs"), violations.toString());
    }

    @Test
    void unacknowledgedOutputNeedsAWonGeneration()
    {
        final OwnershipChecks held = checks(false);
        held.claimed(OwnershipChecks.Side.ACTIVE, 1, START + 200 * MS, 0);
        held.activeReleased(START + 201 * MS, 9, 5, 4, false);
        assertTrue(violations.remove(0).startsWith("invariant 2"), violations.toString());
        final OwnershipChecks passing = checks(true);
        passing.activeReleased(START + 199 * MS, 9, 5, 4, false);
        assertTrue(violations.remove(0).startsWith("ownership: frame #9"), violations.toString());
        passing.claimed(OwnershipChecks.Side.ACTIVE, 1, START + 200 * MS, 0);
        passing.activeReleased(START + 201 * MS, 10, 5, 4, false);
        assertEquals(List.of(), violations);
        assertEquals(1, passing.unackedUnderWonGeneration());
    }

    @Test
    void twoWinnersOfOneGenerationAndAStandbyResumingWithoutAClaimAreReported()
    {
        final OwnershipChecks checks = checks(false);
        checks.promotedResumed(START + 50 * MS);
        checks.claimed(OwnershipChecks.Side.STANDBY, 1, START + 100 * MS, 3);
        checks.claimed(OwnershipChecks.Side.ACTIVE, 1, START + 300 * MS, 0);
        assertEquals(2, violations.size(), violations.toString());
        assertTrue(violations.get(0).startsWith("ownership: the standby resumed"), violations.toString());
        assertTrue(violations.get(1).contains("granted generation 1 to both sides"), violations.toString());
    }

    @Test
    void anActiveStillProtectedLongAfterItsStandbyWentSilentIsReported()
    {
        final OwnershipChecks checks = checks(false);
        checks.tick(START + 269 * MS, true, false, false, false, START + 100 * MS, () -> true, () -> "PROTECTED");
        assertEquals(List.of(), violations);
        checks.tick(START + 271 * MS, true, false, false, false, START + 100 * MS, () -> true, () -> "PROTECTED");
        assertEquals(1, violations.size());
        assertTrue(violations.get(0).startsWith("invariant 8"), violations.toString());
    }
}
