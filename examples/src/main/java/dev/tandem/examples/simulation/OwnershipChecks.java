package dev.tandem.examples.simulation;

import java.util.EnumSet;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * Invariants 7 and 8 of DESIGN.md, judged on the property itself at every simulated instant of a run, not on what
 * either side believes: the ground truth is the log of claims the arbiter granted (through {@link SimArbiter}), every
 * frame that reached the world from either guest, and whether the old active's guest is stopped.
 * <ul>
 *     <li><b>One owner.</b> The owner is the side that first won the newest generation claimed; before any claim,
 *     the active. Two sides winning the same generation is itself a violation (a broken arbiter).</li>
 *     <li><b>A superseded side releases nothing beyond the promoted history</b> from the instant the newer
 *     generation was claimed, and no such frame leaves the old active while the promoted guest runs. A frame of an
 *     epoch the standby had acknowledged and holds (epoch at most the one it held at its claim) is the promoted
 *     guest's own past: DESIGN.md's rule lets output leave under an acknowledged epoch, and an ack that was on the
 *     wire at the claim (an operator's promotion, a delay window) is delivered and released late. Such releases are
 *     counted ({@link #releasedAfterClaim()}), not reported: refusing them would take a lease on every ack.</li>
 *     <li><b>A superseded side stops its guest within {@link #stopBoundNs}</b> of the claim (or of the arbiter's
 *     return, when the arbiter was down or slow at or after the claim: a side cannot learn from an arbiter it cannot
 *     reach, and holds its output meanwhile), tells the VMM (a fenced reason), and never runs it again.</li>
 *     <li><b>Output under a won generation only.</b> An unacknowledged frame may leave the active only while it owns
 *     a generation it won at the arbiter (its unprotected, pass-through mode); with output held (the default) never
 *     (invariant 2). A frame of the promoted guest leaves only under the generation the standby won.</li>
 *     <li><b>Liveness from replies (invariant 8).</b> Once the standby has been unreachable (a partition, even one
 *     that accepts every write, or a power loss) for longer than {@link #livenessBoundNs}, the active is no longer
 *     PROTECTED.</li>
 * </ul>
 * Each kind of violation is reported once per run, at its first instance, with the simulated time.
 */
final class OwnershipChecks
{
    /** The two sides of a run. */
    enum Side
    {
        /** the active and its guest. */
        ACTIVE,
        /** the standby and, after its promotion, the promoted guest. */
        STANDBY
    }

    /** Kinds of violation, each reported once per run. */
    private enum Kind
    {
        TWO_WINNERS, RELEASED_SUPERSEDED, TWO_GUESTS, NOT_STOPPED, STOP_UNTOLD, RESUMED_AFTER_STOP, UNACKED_HOLD,
        UNACKED_NOT_OWNER, PROMOTED_NOT_OWNER, STAYED_PROTECTED
    }

    private static final long MS = 1_000_000L;

    private final List<String> violations;
    private final long startNs;
    /** The product's setting: unacknowledged output may leave once the active owns a won generation. */
    private final boolean passThrough;
    private final long failureTimeoutNs;
    private final long pollingNs;
    private final long backOffNs;
    private final long linkDelayNs;
    private final long livenessBoundNs;
    private final FaultPlan plan;
    private final EnumSet<Kind> reported = EnumSet.noneOf(Kind.class);

    private long standbyClaimNs = -1;
    private long standbyGeneration;
    private long standbyClaimEpoch;
    private long activeWonNs = -1;
    private long activeGeneration;
    private long promotedResumeNs = -1;
    private long stoppedNs = -1;
    private long releasedAfterClaim;
    private long unackedUnderWonGeneration;
    private boolean closed;

    /**
     * @param violations       where violations go.
     * @param startNs          the run's start, to print times relative to it.
     * @param plan             the run's faults (the arbiter's windows and the link's extra delay).
     * @param passThrough      the active's output setting as the checks judge it.
     * @param failureTimeoutNs how long a side may take to notice its peer's silence: the longer of the standby's failure
     *                         timeout and the active's silence timeout.
     * @param pollingNs        how often the active asks the arbiter while it answers (its heartbeat interval).
     * @param backOffNs        the active's longest wait between two questions to an arbiter that did not answer.
     * @param linkDelayNs      the most a byte can take on the link (latency plus an injected delay).
     * @param livenessBoundNs  how long the standby may be unreachable before the active must have left PROTECTED.
     */
    OwnershipChecks(final List<String> violations, final long startNs, final FaultPlan plan, final boolean passThrough,
        final long failureTimeoutNs, final long pollingNs, final long backOffNs, final long linkDelayNs,
        final long livenessBoundNs)
    {
        this.violations = violations;
        this.startNs = startNs;
        this.plan = plan;
        this.passThrough = passThrough;
        this.failureTimeoutNs = failureTimeoutNs;
        this.pollingNs = pollingNs;
        this.backOffNs = backOffNs;
        this.linkDelayNs = linkDelayNs;
        this.livenessBoundNs = livenessBoundNs;
    }

    /**
     * The arbiter granted a claim.
     *
     * @param side           who won it.
     * @param generation     the generation.
     * @param now            when.
     * @param committedEpoch the claimant's recovery point (the standby's), for the message.
     */
    void claimed(final Side side, final long generation, final long now, final long committedEpoch)
    {
        if (closed)
        {
            return;
        }
        final long otherNs = side == Side.ACTIVE ? standbyClaimNs : activeWonNs;
        final long otherGeneration = side == Side.ACTIVE ? standbyGeneration : activeGeneration;
        if (otherNs >= 0 && otherGeneration == generation)
        {
            report(Kind.TWO_WINNERS, "invariant 7: the arbiter granted generation " + generation + " to both sides " +
                "(the " + (side == Side.ACTIVE ? "standby" : "active") + " at " + ms(otherNs) + ", the " +
                side.name().toLowerCase() + " at " + ms(now) + ")");
        }
        if (side == Side.STANDBY && standbyClaimNs < 0)
        {
            standbyClaimNs = now;
            standbyGeneration = generation;
            standbyClaimEpoch = committedEpoch;
        }
        else if (side == Side.ACTIVE && activeWonNs < 0)
        {
            activeWonNs = now;
            activeGeneration = generation;
        }
    }

    /**
     * @param now simulated time.
     * @return true if the standby holds the newest generation at {@code now}: the active is superseded.
     */
    boolean activeSuperseded(final long now)
    {
        if (standbyClaimNs < 0 || standbyClaimNs > now)
        {
            return false;
        }
        return activeWonNs < 0 || activeWonNs > now || activeGeneration < standbyGeneration ||
            (activeGeneration == standbyGeneration && activeWonNs > standbyClaimNs);
    }

    /**
     * @param now simulated time.
     * @return true if the active holds the newest generation at {@code now} and won it at the arbiter (it owns the
     *         guest unprotected: the standby's claim of that generation is refused).
     */
    boolean activeOwnsWonGeneration(final long now)
    {
        return activeWonNs >= 0 && activeWonNs <= now && !activeSuperseded(now);
    }

    /**
     * @return the generation the active won at the arbiter, 0 if it won none.
     */
    long activeGeneration()
    {
        return activeGeneration;
    }

    /**
     * A frame of the old active's guest reached the world.
     *
     * @param now      when.
     * @param sequence the frame's number.
     * @param epoch    the epoch that produced it.
     * @param acked    the newest epoch the standby had acknowledged.
     * @param promotedRunning whether the promoted guest runs now.
     */
    void activeReleased(final long now, final long sequence, final long epoch, final long acked,
        final boolean promotedRunning)
    {
        if (epoch > acked)
        {
            if (!passThrough)
            {
                report(Kind.UNACKED_HOLD, "invariant 2: frame #" + sequence + " of epoch " + epoch +
                    " was released while the standby had acknowledged only epoch " + acked);
            }
            else if (!activeOwnsWonGeneration(now))
            {
                report(Kind.UNACKED_NOT_OWNER, "ownership: frame #" + sequence + " of unacknowledged epoch " + epoch +
                    " (acked " + acked + ") left the active at " + ms(now) + " under a generation it did not win at " +
                    "the arbiter" + (activeWonNs < 0 ? " (it won none)" : ""));
            }
            else
            {
                unackedUnderWonGeneration++;
            }
        }
        // the promoted guest resumes from at least the epoch the standby held at its claim: a frame of that history
        // contradicts nothing the new owner will say
        final boolean promotedHistory = epoch <= acked && standbyClaimNs >= 0 && epoch <= standbyClaimEpoch;
        if (activeSuperseded(now) && promotedHistory)
        {
            releasedAfterClaim++;
        }
        else if (activeSuperseded(now))
        {
            report(Kind.RELEASED_SUPERSEDED, "invariant 7: frame #" + sequence + " of epoch " + epoch +
                " (acked " + acked + ") left the old active at " + ms(now) + ", after the standby claimed generation " +
                standbyGeneration + " at " + ms(standbyClaimNs) + " holding epoch " + standbyClaimEpoch);
        }
        if (promotedRunning && !promotedHistory)
        {
            report(Kind.TWO_GUESTS, "invariant 7: two guests with output: frame #" + sequence + " of epoch " + epoch +
                " left the old active at " + ms(now) + " while the guest promoted at " + ms(promotedResumeNs) +
                " runs");
        }
    }

    /**
     * The standby resumed the guest.
     *
     * @param now when.
     */
    void promotedResumed(final long now)
    {
        promotedResumeNs = now;
        if (standbyClaimNs < 0 || activeOwnsWonGeneration(now))
        {
            report(Kind.PROMOTED_NOT_OWNER, "ownership: the standby resumed the guest at " + ms(now) +
                " without owning the newest generation at the arbiter");
        }
    }

    /**
     * A frame of the promoted guest reached the world.
     *
     * @param now when.
     */
    void promotedReleased(final long now)
    {
        if (standbyClaimNs < 0 || activeOwnsWonGeneration(now))
        {
            report(Kind.PROMOTED_NOT_OWNER, "ownership: the promoted guest released a frame at " + ms(now) +
                " without owning the newest generation at the arbiter");
        }
    }

    /**
     * Checks what must hold at every instant; called after every step of the run.
     *
     * @param now              simulated time.
     * @param activeAlive      the active's host runs.
     * @param guestStopped     the active says it stopped its guest for good.
     * @param guestPaused      the old guest's vCPUs are paused.
     * @param vmmTold          the VMM was told why ({@code fenced(reason)}).
     * @param unreachableSinceNs since when the standby cannot be heard (partition or power loss), -1 if it can.
     * @param activeProtected  whether the active is PROTECTED (read only when needed: it takes a status snapshot).
     * @param activeState      the active's state in words, for a report.
     */
    void tick(final long now, final boolean activeAlive, final boolean guestStopped, final boolean guestPaused,
        final boolean vmmTold, final long unreachableSinceNs, final BooleanSupplier activeProtected,
        final Supplier<String> activeState)
    {
        if (!activeAlive)
        {
            return;
        }
        if (guestStopped)
        {
            if (stoppedNs < 0)
            {
                stoppedNs = now;
                if (!vmmTold)
                {
                    report(Kind.STOP_UNTOLD, "invariant 7: the active stopped its guest at " + ms(now) +
                        " without telling the VMM why (VmmAdapter.fenced)");
                }
            }
            if (!guestPaused)
            {
                report(Kind.RESUMED_AFTER_STOP, "invariant 7: the old guest runs again at " + ms(now) +
                    " after it was stopped for good at " + ms(stoppedNs));
            }
        }
        else if (activeSuperseded(now) && now > stopDeadlineNs())
        {
            report(Kind.NOT_STOPPED, "invariant 7: the standby claimed generation " + standbyGeneration + " at " +
                ms(standbyClaimNs) + " and the old active's guest still runs at " + ms(now) + " (bound " +
                (stopDeadlineNs() - standbyClaimNs) / MS + " ms; the active is " + activeState.get() + ")");
        }
        if (unreachableSinceNs >= 0 && now - unreachableSinceNs > livenessBoundNs && activeProtected.getAsBoolean())
        {
            report(Kind.STAYED_PROTECTED, "invariant 8: the standby has been unreachable since " +
                ms(unreachableSinceNs) + " and the active is still PROTECTED at " + ms(now) + " (bound " +
                livenessBoundNs / MS + " ms)");
        }
    }

    /**
     * The bound on stopping a superseded guest: one failure timeout plus the active's arbiter polling (its heartbeat
     * interval, or its longest back-off when the arbiter was down or slow), plus the link's delay (a promotion on a
     * live link is learnt from the end of the stream), counted from the claim or, if the arbiter was unreachable
     * after it, from its return. The failure timeout here is the longer of the standby's and the active's silence
     * timeout: the active asks the arbiter after the standby's failure timeout of silence, but only between frames;
     * a sender blocked writing to a standby that stopped reading learns of the claim only at its own silence timeout
     * (seed 183: an operator's promotion, then the standby lost power right after claiming).
     *
     * @return when a superseded active's guest must be stopped.
     */
    long stopDeadlineNs()
    {
        long from = standbyClaimNs;
        long polling = pollingNs;
        if (plan.ownership == FaultPlan.OwnershipFault.ARBITER_DOWN ||
            plan.ownership == FaultPlan.OwnershipFault.ARBITER_SLOW)
        {
            polling = backOffNs + (plan.ownership == FaultPlan.OwnershipFault.ARBITER_SLOW ? plan.arbiterSlowNs : 0);
            if (plan.ownershipUntilNs > from && plan.ownershipAtNs <= from + failureTimeoutNs + polling)
            {
                from = Math.max(from, plan.ownershipUntilNs);
            }
        }
        return from + failureTimeoutNs + polling + linkDelayNs;
    }

    /**
     * @param now simulated time.
     * @return true while the run must go on to judge whether a superseded, living active stops its guest in time.
     */
    boolean awaitingStop(final long now)
    {
        return stoppedNs < 0 && activeSuperseded(now) && now <= stopDeadlineNs() + MS;
    }

    /**
     * @return whether the active was superseded during the run.
     */
    boolean superseded()
    {
        return standbyClaimNs >= 0 && activeSuperseded(Long.MAX_VALUE);
    }

    /**
     * @return from the claim of the newer generation to the old guest stopped, -1 if it was not (or not superseded).
     */
    long claimToStopNs()
    {
        return superseded() && stoppedNs >= 0 ? Math.max(0, stoppedNs - standbyClaimNs) : -1;
    }

    /**
     * @return unacknowledged frames released while the active owned a generation it won (pass-through).
     */
    long unackedUnderWonGeneration()
    {
        return unackedUnderWonGeneration;
    }

    /**
     * @return frames the old active released after the standby's claim (each a violation).
     */
    long releasedAfterClaim()
    {
        return releasedAfterClaim;
    }

    /**
     * The run is over: what the cleanup of its dead sides does is no part of it.
     */
    void close()
    {
        closed = true;
    }

    private void report(final Kind kind, final String message)
    {
        if (reported.add(kind))
        {
            violations.add(message);
        }
    }

    private String ms(final long ns)
    {
        return String.format("%.1f ms", (ns - startNs) / 1e6);
    }
}
