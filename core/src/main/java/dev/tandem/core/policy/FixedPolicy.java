package dev.tandem.core.policy;

/**
 * The same period every time (Remus's policy).
 */
public final class FixedPolicy implements CheckpointPolicy
{
    private final long periodNs;

    /**
     * @param periodNs the period.
     */
    public FixedPolicy(final long periodNs)
    {
        this.periodNs = periodNs;
    }

    @Override
    public long nextPeriodNs(final EpochSample sample)
    {
        return periodNs;
    }

    @Override
    public Decision lastDecision()
    {
        return Decision.HOLD;
    }

    @Override
    public String name()
    {
        return "fixed";
    }
}
