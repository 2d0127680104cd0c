package dev.tandem.examples.simulation;

import dev.tandem.core.failover.PromotionArbiter;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.function.LongSupplier;

/**
 * One side's view of the arbiter: the shared {@link PromotionArbiter} behind the run's arbiter faults, on the
 * simulated clock, telling {@link OwnershipChecks} of every claim this side won.
 * <p>
 * Down: every question throws {@link UncheckedIOException}, as a real arbiter client does on a timeout. Slow: the
 * call is synchronous, so a slow answer is modelled as unreachable-then-answer: a question fails until this side
 * has kept asking for {@link FaultPlan#arbiterSlowNs}, and is then answered.
 */
final class SimArbiter implements PromotionArbiter
{
    private final PromotionArbiter delegate;
    private final OwnershipChecks.Side side;
    private final SimClock clock;
    private final FaultPlan plan;
    private final OwnershipChecks checks;
    private final LongSupplier committedEpoch;
    private long unansweredSinceNs = -1;

    /**
     * @param delegate       the arbiter both sides share (or, in the split-arbiter mutation, this side's own).
     * @param side           whose view this is.
     * @param clock          simulated time.
     * @param plan           the run's faults.
     * @param checks         told of every claim won.
     * @param committedEpoch this side's recovery point when it claims (the standby's; 0 for the active).
     */
    SimArbiter(final PromotionArbiter delegate, final OwnershipChecks.Side side, final SimClock clock,
        final FaultPlan plan, final OwnershipChecks checks, final LongSupplier committedEpoch)
    {
        this.delegate = delegate;
        this.side = side;
        this.clock = clock;
        this.plan = plan;
        this.checks = checks;
        this.committedEpoch = committedEpoch;
    }

    @Override
    public boolean tryClaim(final String vmId, final long generation)
    {
        reach("claim generation " + generation);
        final boolean won = delegate.tryClaim(vmId, generation);
        if (won)
        {
            checks.claimed(side, generation, clock.nanoTime(), committedEpoch.getAsLong());
        }
        return won;
    }

    @Override
    public long currentGeneration(final String vmId)
    {
        reach("read the generation");
        return delegate.currentGeneration(vmId);
    }

    private void reach(final String question)
    {
        final long now = clock.nanoTime();
        if (!plan.arbiterFaulty(now))
        {
            unansweredSinceNs = -1;
            return;
        }
        if (plan.ownership == FaultPlan.OwnershipFault.ARBITER_SLOW)
        {
            if (unansweredSinceNs < 0)
            {
                unansweredSinceNs = now;
            }
            if (now - unansweredSinceNs >= plan.arbiterSlowNs)
            {
                unansweredSinceNs = -1;
                return;
            }
        }
        throw new UncheckedIOException(new IOException("simulated arbiter " +
            (plan.ownership == FaultPlan.OwnershipFault.ARBITER_SLOW ? "too slow" : "unreachable") + ": cannot " +
            question + " for the " + side.name().toLowerCase()));
    }
}
