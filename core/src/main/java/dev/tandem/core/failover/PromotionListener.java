package dev.tandem.core.failover;

/**
 * Sees a promotion step by step, on the standby's receiver thread.
 */
public interface PromotionListener
{
    /**
     * One step of promotion finished.
     *
     * @param step        what was done, in this order: "claim generation", "persist generation", "stop receiving",
     *                    "discard partial epoch", "finish applying" (the applier has applied every committed epoch),
     *                    "restore earlier checkpoint" (only when a health report or an operator asked for one),
     *                    "build guest" (only for a target that builds in two steps: the guest is built, paused),
     *                    "resume guest".
     * @param sinceStartNs time from the decision to promote to the end of this step.
     */
    default void onStep(String step, long sinceStartNs)
    {
    }

    /**
     * The guest runs on this host now.
     *
     * @param promotion what happened.
     */
    default void onPromoted(Promotion promotion)
    {
    }

    /**
     * Promotion did not happen (the arbiter gave the generation to someone else, or it could not be reached, or no
     * recovery point exists); the guest was not resumed here.
     *
     * @param reason why.
     */
    default void onPromotionRefused(String reason)
    {
    }
}
