package dev.tandem.core.policy;

import dev.tandem.core.ConfigurationException;

/**
 * Keeps the guest's pause and the time output waits under their targets while spending as little as possible on
 * protection, moving the period between bounds: multiplicative decrease when a target is missed, gentle increase
 * when both are met with room to spare, and longer epochs when the link falls behind.
 * <p>
 * Output waits for the rest of its epoch and then for the ack, so its wait is estimated as period + commit latency.
 * A missed pause target shortens at once (the latest sample); lengthening needs the smoothed pause (EWMA over a
 * few epochs) well under target, so one quiet epoch does not swing the period back up.
 * <p>
 * The link falls behind when epochs in flight reach their bound, or when sending a delta (smoothed) takes longer
 * than the period: then the period lengthens, because a longer epoch coalesces rewrites of the same page into one
 * send and the bound on epochs in flight already holds the guest back (backpressure) until the link catches up.
 */
public final class AdaptivePolicy implements CheckpointPolicy
{
    private static final double SHORTEN = 0.75;
    private static final double LENGTHEN = 1.1;
    private static final double LINK_LENGTHEN = 1.25;
    private static final double SMOOTHING = 0.3;

    private final long minPeriodNs;
    private final long maxPeriodNs;
    private final long pauseTargetNs;
    private final long outputHoldTargetNs;
    private double period;
    private double pause;
    private double commit;
    private double send;
    private Decision lastDecision = Decision.HOLD;

    /**
     * @param minPeriodNs        shortest period, at least 1 ms.
     * @param maxPeriodNs        longest period, at least the shortest.
     * @param startPeriodNs      first period, within the bounds.
     * @param pauseTargetNs      pause the guest should not exceed.
     * @param outputHoldTargetNs time output should not wait beyond.
     * @throws ConfigurationException naming the value out of range.
     */
    public AdaptivePolicy(final long minPeriodNs, final long maxPeriodNs, final long startPeriodNs,
        final long pauseTargetNs, final long outputHoldTargetNs)
    {
        ConfigurationException.checkRange("minPeriodNs", minPeriodNs, 1_000_000L, 10_000_000_000L);
        ConfigurationException.checkRange("maxPeriodNs", maxPeriodNs, minPeriodNs, 10_000_000_000L);
        ConfigurationException.checkRange("startPeriodNs", startPeriodNs, minPeriodNs, maxPeriodNs);
        ConfigurationException.checkRange("pauseTargetNs", pauseTargetNs, 1_000L, 10_000_000_000L);
        ConfigurationException.checkRange("outputHoldTargetNs", outputHoldTargetNs, minPeriodNs, 600_000_000_000L);
        this.minPeriodNs = minPeriodNs;
        this.maxPeriodNs = maxPeriodNs;
        this.pauseTargetNs = pauseTargetNs;
        this.outputHoldTargetNs = outputHoldTargetNs;
        this.period = startPeriodNs;
    }

    @Override
    public long nextPeriodNs(final EpochSample sample)
    {
        pause = pause == 0 ? sample.pauseNs() : pause + SMOOTHING * (sample.pauseNs() - pause);
        commit = commit == 0 ? sample.commitLatencyNs() : commit + SMOOTHING * (sample.commitLatencyNs() - commit);
        send = send == 0 ? sample.sendNs() : send + SMOOTHING * (sample.sendNs() - send);
        final double hold = period + commit;
        if (sample.epochsInFlight() >= sample.maxEpochsInFlight() && sample.maxEpochsInFlight() > 1 ||
            send > period)
        {
            lastDecision = Decision.LENGTHEN_FOR_LINK;
            period *= LINK_LENGTHEN;
        }
        else if (sample.pauseNs() > pauseTargetNs)
        {
            lastDecision = Decision.SHORTEN_FOR_PAUSE;
            period *= SHORTEN;
        }
        else if (hold > outputHoldTargetNs)
        {
            lastDecision = Decision.SHORTEN_FOR_OUTPUT;
            period *= SHORTEN;
        }
        else if (pause < pauseTargetNs / 2.0 && hold * LENGTHEN < outputHoldTargetNs)
        {
            lastDecision = Decision.LENGTHEN_FOR_OVERHEAD;
            period *= LENGTHEN;
        }
        else
        {
            lastDecision = Decision.HOLD;
        }
        period = Math.max(minPeriodNs, Math.min(maxPeriodNs, period));
        return (long)period;
    }

    @Override
    public Decision lastDecision()
    {
        return lastDecision;
    }

    @Override
    public String name()
    {
        return "adaptive";
    }
}
