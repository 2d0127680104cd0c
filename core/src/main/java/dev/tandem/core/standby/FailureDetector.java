package dev.tandem.core.standby;

import org.agrona.concurrent.NanoClock;

/**
 * The standby's judgement of the active's liveness (DESIGN.md "Ownership and failover"): silence counts from the
 * last evidence the active is alive and this side is able to hear it, and a goodbye (the active stops on purpose, or
 * refused this standby) is never a failure. Evidence is any byte read from the active, a buffer full of frames this
 * side has not got to yet (this side is busy, not the active silent), and an applier behind (this host is busy
 * applying, and a promotion would wait for it anyway).
 * <p>
 * The receiver's thread only.
 */
final class FailureDetector
{
    private final NanoClock clock;
    private final long timeoutNs;
    private long lastHeardNs;
    private boolean goodbye;

    /**
     * @param clock     the standby's clock.
     * @param timeoutNs silence after which the active is taken for dead.
     */
    FailureDetector(final NanoClock clock, final long timeoutNs)
    {
        this.clock = clock;
        this.timeoutNs = timeoutNs;
        this.lastHeardNs = clock.nanoTime();
    }

    /**
     * Evidence of the active's liveness, or of this side being too busy to hear it: silence starts again now.
     */
    void heard()
    {
        lastHeardNs = clock.nanoTime();
    }

    /**
     * @param stoppedOnPurpose true when the active said it stops protecting (GOODBYE, a refusal), false when a new
     *                         session starts.
     */
    void goodbye(final boolean stoppedOnPurpose)
    {
        goodbye = stoppedOnPurpose;
    }

    /**
     * @return how long the active has been silent, or -1 when its silence is no failure (it said goodbye) or has not
     *         yet lasted the timeout.
     */
    long failedSilenceNs()
    {
        final long silentNs = clock.nanoTime() - lastHeardNs;
        return goodbye || silentNs <= timeoutNs ? -1 : silentNs;
    }
}
