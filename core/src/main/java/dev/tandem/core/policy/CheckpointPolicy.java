package dev.tandem.core.policy;

/**
 * Chooses the next checkpoint period from what the last epochs showed: resources spent on protection as a dial.
 * Called by the scheduler thread after each checkpoint, after the guest resumed; must not allocate.
 */
public interface CheckpointPolicy
{
    /**
     * Why the period last changed (or did not).
     */
    enum Decision
    {
        /** the period stays. */
        HOLD,
        /** the pause exceeded its target: shorter epochs dirty fewer pages. */
        SHORTEN_FOR_PAUSE,
        /** output would wait longer than its target. */
        SHORTEN_FOR_OUTPUT,
        /**
         * the link falls behind (epochs in flight at the bound, or a delta takes longer to send than the period):
         * longer epochs coalesce rewrites of a page.
         */
        LENGTHEN_FOR_LINK,
        /** everything is well under target: spend less on protection. */
        LENGTHEN_FOR_OVERHEAD
    }

    /**
     * @param sample the last checkpoint.
     * @return the period until the next checkpoint, in nanoseconds.
     */
    long nextPeriodNs(EpochSample sample);

    /**
     * @return why the last call chose its period.
     */
    Decision lastDecision();

    /**
     * @return a short name for reports ("fixed", "adaptive").
     */
    String name();
}
