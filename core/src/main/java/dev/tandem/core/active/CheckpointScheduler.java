package dev.tandem.core.active;

import dev.tandem.core.metrics.CheckpointEvent;
import dev.tandem.core.metrics.CounterSet;
import dev.tandem.core.metrics.PolicyDecisionEvent;
import dev.tandem.core.policy.CheckpointPolicy;
import dev.tandem.core.policy.EpochSample;
import dev.tandem.vmm.DirtyBitmap;
import dev.tandem.vmm.DirtyLog;
import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.StatefulComponent;
import dev.tandem.vmm.VcpuControl;
import dev.tandem.vmm.VmmAdapter;
import dev.tandem.vmm.VmmAdapterException;
import org.HdrHistogram.SingleWriterRecorder;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.NanoClock;

import java.util.List;

/**
 * The pause/copy/resume step, as an {@link Agent} on its own thread (or stepped by hand in a simulation).
 * <p>
 * While the guest is paused it does only this: harvest the dirty log, copy the dirty pages (in contiguous runs)
 * and the component state into a staging area, append barrier N to the ordered disk-write stream, and move the
 * output gate to epoch N+1. No encoding, no I/O, no allocation, no lock shared with the sender.
 * <p>
 * The first checkpoint is the baseline. Live (the default): {@link #openBaseline()} publishes an empty segment
 * that makes the sender copy the disks while the guest runs, then each duty cycle copies one staging area of the
 * round's pages without pausing (round 1 every page, each later round the pages dirtied during the one before,
 * harvested without a pause as the dirty-log contract allows); when the dirty set is small, stops shrinking or the
 * rounds run out, one pause copies what is left with the component state. A page copied while the guest writes it
 * may be torn, but that write dirtied it, so a later round or the final pause copies it again and the standby
 * replays the epoch in order. Paused ({@code baselineRounds(0)}): every page in one pause, and the guest stays
 * paused until the sender has sent it with the disks.
 */
final class CheckpointScheduler implements Agent
{
    private final ActiveReplicator replicator;
    private final GuestMemory memory;
    private final DirtyLog dirtyLog;
    private final VcpuControl vcpus;
    private final List<StatefulComponent> components;
    private final VmmAdapter adapter;
    private final StagingArea[] areas;
    private final DiskWriteStream diskStream;
    private final OutputCommitGate gate;
    private final NanoClock clock;
    private final CheckpointPolicy policy;
    private final EpochSample sample = new EpochSample();
    private long periodNs;
    private final int maxEpochsInFlight;
    private final CheckpointObserver observer;
    /** The set being built: a live baseline's round, then the next checkpoint's harvest. */
    private DirtyBitmap dirty;
    /** {@link #dirty} holds a retired epoch's set and is cleared (outside a pause) before its next use. */
    private boolean dirtyStale;
    /**
     * The memory half of the dirty-since-ack record: the pages of each recent epoch, by epoch modulo the length.
     * An epoch's set is the bitmap its checkpoint harvested, kept rather than cleared (a swap inside the pause,
     * the clearing after it); a slot is reused only once its epoch is acknowledged (the in-flight bound).
     */
    private final DirtyBitmap[] epochPages;
    private final long[] epochPagesEpoch;
    /**
     * Pages the session's first epoch covers besides its final pause: every page (a whole baseline) or the resync
     * set and each round's harvest. Needed again if the link is lost before that epoch is acknowledged.
     */
    private final DirtyBitmap sessionPages;
    private boolean sessionPagesAll;
    private long sessionFirstEpoch;
    private volatile boolean resyncRequested;
    /** A planned switchover asked for a checkpoint now, after which the guest stays paused. */
    private volatile boolean holdRequested;
    /** The guest is paused for the switchover: no checkpoint may pause and resume it. */
    private volatile long heldEpoch;
    private volatile long heldSinceNs;
    /** Pages a restore in place wrote, for the next harvest; set before the hold is released. */
    private volatile DirtyBitmap restoredPages;
    /** The switchover's caller gave up: the scheduler (the only thread that pauses and resumes) lets go. */
    private volatile boolean releaseRequested;
    private long resyncRecoveryEpoch;
    private boolean resyncQuick;
    private long resyncFirstEpoch;
    private final SingleWriterRecorder pauseRecorder;

    /** No checkpoint holds the guest paused. */
    private static final int NOT_PAUSED = 0;
    /** The guest is paused and its delta is being copied; after an overflow, into the next area once it is free. */
    private static final int COPYING = 1;
    /** The paused full baseline is published: the guest stays paused until the sender has copied the disks. */
    private static final int AWAITING_BASELINE_SENT = 2;
    /**
     * Where the checkpoint under way is: a delta that needs more staging areas than are free, and the paused
     * baseline's disk copy, keep the guest paused across duty cycles (each looks again and returns) instead of
     * waiting in a loop inside one.
     */
    private int pausedStep = NOT_PAUSED;
    private long pauseStartNs;
    private long pausedEpoch;
    private boolean pausedBaseline;
    /** The area the delta is copied into, null while the next one is awaited after an overflow. */
    private StagingArea copyArea;
    /** The next dirty page to copy, -1 when every page is copied, and the end of its run. */
    private long copyPage;
    private long copyRunEnd;
    private long copyPages;

    private long nextEpoch;
    private long nextCheckpointNs;
    private boolean baselineDone;
    private int nextArea;
    private boolean fenced;
    private long lastDeltaPages;

    private final int baselineRounds;
    private final long baselineFinalPages;
    /** True from {@link #openBaseline()} until the final pause of a live baseline. */
    private boolean precopying;
    private boolean finalPauseDue;
    private long precopyCursor;
    private int baselineRound;
    private long roundPagesLeft;
    private long previousRoundPages;
    private long baselinePagesCopied;

    CheckpointScheduler(
        final ActiveReplicator replicator,
        final ActiveContext ctx,
        final StagingArea[] areas,
        final DiskWriteStream diskStream,
        final OutputCommitGate gate,
        final long firstEpoch,
        final SingleWriterRecorder pauseRecorder)
    {
        this.replicator = replicator;
        this.adapter = ctx.adapter();
        this.memory = adapter.memory();
        this.dirtyLog = adapter.dirtyLog();
        this.vcpus = adapter.vcpus();
        this.components = adapter.components();
        this.areas = areas;
        this.diskStream = diskStream;
        this.gate = gate;
        this.clock = ctx.nanoClock();
        this.periodNs = ctx.checkpointPeriodNs();
        this.policy = ctx.checkpointPolicy();
        this.maxEpochsInFlight = ctx.maxEpochsInFlight();
        this.observer = ctx.checkpointObserver();
        this.dirty = new DirtyBitmap(memory.pageCount());
        this.epochPages = new DirtyBitmap[maxEpochsInFlight + 2];
        this.epochPagesEpoch = new long[epochPages.length];
        for (int i = 0; i < epochPages.length; i++)
        {
            epochPages[i] = new DirtyBitmap(memory.pageCount());
        }
        this.sessionPages = new DirtyBitmap(memory.pageCount());
        this.sessionPagesAll = true;
        this.sessionFirstEpoch = firstEpoch;
        this.pauseRecorder = pauseRecorder;
        this.nextEpoch = firstEpoch;
        this.baselineRounds = ctx.baselineRounds();
        this.baselineFinalPages = ctx.baselineFinalPages();
        gate.epoch(firstEpoch);
    }

    /**
     * @return true if the baseline is taken live (copy rounds while the guest runs).
     */
    boolean liveBaseline()
    {
        return baselineRounds > 0;
    }

    /**
     * Opens a live baseline; called once, before the agents start, with the guest paused and the library attached.
     * The empty segment it publishes is the first record of the ordered stream, so the sender copies the disks
     * before it sends any write the guest makes from here on: each such write reaches the standby after the copy of
     * its blocks and wins over whatever the copy read. (Writes from before are complete: the guest is paused.)
     */
    void openBaseline()
    {
        final StagingArea area = areas[nextArea];
        area.begin(nextEpoch, false, true);
        area.markOpensBaseline();
        publish(area, nextEpoch);
        dirty.setAll();
        sessionPagesAll = true;
        precopying = true;
        precopyCursor = 0;
        baselineRound = 1;
        roundPagesLeft = memory.pageCount();
        previousRoundPages = memory.pageCount();
        replicator.baselineProgress(baselineRound, 0, roundPagesLeft, false);
    }

    @Override
    public String roleName()
    {
        return "tandem-checkpoint-scheduler";
    }

    @Override
    public int doWork()
    {
        if (replicator.fenceRequested() && !fenced)
        {
            // another side runs the guest now: stop this copy for good, so exactly one of them runs (a checkpoint
            // under way is dropped with the guest still paused)
            fenced = true;
            pausedStep = NOT_PAUSED;
            copyArea = null;
            replicator.stopGuest();
            return 1;
        }
        if (releaseRequested && !fenced)
        {
            // the SPI's pause and resume alternate on this thread only: the abandoned switchover's (or restore's)
            // resume is here; a fenced guest (checked above, first) is never resumed
            releaseRequested = false;
            holdRequested = false;
            if (heldEpoch != 0)
            {
                heldEpoch = 0;
                nextCheckpointNs = clock.nanoTime() + periodNs;
                vcpus.resume();
                return 1;
            }
        }
        if (pausedStep != NOT_PAUSED)
        {
            return advancePaused();
        }
        if (!replicator.isProtecting() || replicator.isClosing() || heldEpoch != 0)
        {
            return 0;
        }
        if (resyncRequested)
        {
            return openResync();
        }
        if (dirtyStale)
        {
            // after resume, not inside the next pause: the retired epoch's set is cleared for the next harvest
            dirty.clearAll();
            dirtyStale = false;
        }
        if (precopying && !finalPauseDue)
        {
            return precopyStep();
        }
        final long now = clock.nanoTime();
        if (now < nextCheckpointNs && !holdRequested)
        {
            return 0;
        }
        if (nextEpoch - Math.max(replicator.lastAckedEpoch(), sessionFirstEpoch - 1) > maxEpochsInFlight)
        {
            // backpressure: the epoch stretches until the standby catches up
            CounterSet.add(replicator.counters().inFlightWaits, 1);
            nextCheckpointNs = now + Math.min(periodNs, 1_000_000L);
            return 0;
        }
        final StagingArea area = areas[nextArea];
        if (!area.isFree())
        {
            return 0;
        }
        checkpoint(area);
        return 1;
    }

    /**
     * One staging area of the live baseline's current round, copied with the guest running; at the round's end,
     * harvests the pages dirtied meanwhile (no pause) and decides between another round and the final pause.
     *
     * @return work done.
     */
    private int precopyStep()
    {
        final StagingArea area = areas[nextArea];
        if (!area.isFree())
        {
            // the sender has not drained an area yet: a state, not a wait; the next duty cycle looks again
            return 0;
        }
        final long epoch = nextEpoch;
        area.begin(epoch, false, true);
        long copied = 0;
        long page = dirty.nextSetBit(precopyCursor);
        while (page >= 0)
        {
            final int room = area.roomInPages();
            if (room == 0)
            {
                break;
            }
            final long end = Math.min(dirty.nextClearBit(page), page + room);
            area.copyRun(memory, page, (int)(end - page));
            copied += end - page;
            page = end < dirty.bitCount() ? dirty.nextSetBit(end) : -1;
        }
        if (copied > 0)
        {
            publish(area, epoch);
            CounterSet.add(replicator.counters().pagesCopied, copied);
            baselinePagesCopied += copied;
            roundPagesLeft -= copied;
        }
        if (page >= 0)
        {
            precopyCursor = page;
            replicator.baselineProgress(baselineRound, baselinePagesCopied, roundPagesLeft, false);
            return 1;
        }
        // the round is done: what did the guest dirty meanwhile?
        dirty.clearAll();
        harvest(dirty);
        if (!sessionPagesAll)
        {
            sessionPages.or(dirty);
        }
        final long dirtied = dirty.cardinality();
        if (dirtied <= baselineFinalPages || baselineRound >= baselineRounds || dirtied > previousRoundPages * 3 / 4)
        {
            // small enough, or not converging (the guest dirties about as fast as the rounds copy), or out of
            // rounds: the final pause copies this set and whatever the guest dirties until then
            finalPauseDue = true;
            nextCheckpointNs = clock.nanoTime();
        }
        else
        {
            baselineRound++;
            precopyCursor = 0;
        }
        previousRoundPages = dirtied;
        roundPagesLeft = dirtied;
        replicator.baselineProgress(baselineRound, baselinePagesCopied, roundPagesLeft, false);
        return 1;
    }

    /**
     * Pauses the guest and starts its checkpoint: harvests the dirty pages and copies them into staging areas, then
     * saves the component state, publishes the epoch and resumes, all in this duty cycle unless a staging area must be
     * waited for (the checkpoint then goes on in the next ones, the guest paused meanwhile).
     */
    private void checkpoint(final StagingArea firstArea)
    {
        pauseStartNs = clock.nanoTime();
        vcpus.pause();
        pausedEpoch = nextEpoch;
        pausedBaseline = !baselineDone;
        pausedStep = COPYING;
        boolean started = false;
        try
        {
            // get-and-clear ORs into the set a live baseline's last round left for this pause
            harvest(dirty);
            if (pausedBaseline && !precopying)
            {
                dirty.setAll();
            }
            firstArea.begin(pausedEpoch, true, pausedBaseline);
            if (pausedBaseline && !precopying)
            {
                // the paused baseline's disks are copied by the sender at this segment, the guest stopped meanwhile
                firstArea.markOpensBaseline();
            }
            copyArea = firstArea;
            copyPage = dirty.nextSetBit(0);
            copyRunEnd = copyPage < 0 ? -1 : dirty.nextClearBit(copyPage);
            copyPages = 0;
            started = true;
        }
        finally
        {
            if (!started)
            {
                endPause(false);
            }
        }
        advancePaused();
    }

    /**
     * The checkpoint under way, as far as it can go in this duty cycle.
     *
     * @return work done.
     */
    private int advancePaused()
    {
        boolean completed = false;
        boolean ended = false;
        try
        {
            if (pausedStep == COPYING)
            {
                if (!copyDelta())
                {
                    if (!replicator.isProtecting())
                    {
                        // kept: the link was lost and this epoch's pages are part of what a resync resends
                        ended = true;
                        return 1;
                    }
                    return 0;
                }
                finishCopy();
                if (pausedStep == AWAITING_BASELINE_SENT)
                {
                    return 1;
                }
            }
            else if (replicator.sentThroughEpoch() < pausedEpoch && replicator.isProtecting())
            {
                // a paused full copy: the disks are read by the sender while the guest stays stopped
                return 0;
            }
            completed = true;
            ended = true;
            return 1;
        }
        catch (final RuntimeException | Error ex)
        {
            ended = true;
            throw ex;
        }
        finally
        {
            if (ended)
            {
                endPause(completed);
            }
        }
    }

    /**
     * Every page is in a staging area: the component state, the epoch published, the record kept.
     */
    private void finishCopy()
    {
        final long epoch = pausedEpoch;
        final StagingArea last = copyArea;
        final int needed = last.saveComponents(components);
        if (needed > 0)
        {
            throw new VmmAdapterException(VmmAdapterException.Phase.SNAPSHOT, "component state needs " + needed +
                " bytes but ActiveContext.componentStateBytes is smaller; raise it");
        }
        if (observer != null)
        {
            observer.onCheckpoint(epoch, adapter);
        }
        replicator.checkpointTaken(epoch, pauseStartNs, lastDeltaPages);
        gate.epoch(epoch + 1);
        publish(last, epoch);
        copyArea = null;
        nextEpoch = epoch + 1;
        keepEpochPages(epoch);
        if (pausedBaseline && precopying)
        {
            baselineDone = true;
            precopying = false;
            baselinePagesCopied += lastDeltaPages;
            replicator.baselineProgress(baselineRound, baselinePagesCopied, 0, true);
        }
        else if (pausedBaseline)
        {
            baselineDone = true;
            replicator.baselineProgress(0, lastDeltaPages, 0, true);
            pausedStep = AWAITING_BASELINE_SENT;
        }
    }

    /**
     * The checkpoint under way ends: the guest resumes (or stays paused for a planned switchover), and a completed
     * checkpoint's pause is recorded and the policy chooses the next period, after the resume.
     *
     * @param completed whether the epoch was published (false: abandoned on a lost link or a failure).
     */
    private void endPause(final boolean completed)
    {
        final long epoch = pausedEpoch;
        final boolean baseline = pausedBaseline;
        final long start = pauseStartNs;
        pausedStep = NOT_PAUSED;
        copyArea = null;
        if (completed && holdRequested && !baseline)
        {
            // the switchover's checkpoint: the guest stays paused until the standby resumes it (or the switchover
            // is abandoned and its caller resumes it)
            holdRequested = false;
            heldSinceNs = start;
            heldEpoch = epoch;
            return;
        }
        vcpus.resume();
        if (!completed)
        {
            return;
        }
        // after the resume, like everything that is not the copy itself
        replicator.countIntoRate(start);
        final long pauseNs = Math.max(0, clock.nanoTime() - start);
        if (baseline)
        {
            // the paused full copy is reported on its own: it is not the pause a checkpoint costs
            replicator.baselinePauseNs(pauseNs);
        }
        else
        {
            recordPauseAndChoosePeriod(epoch, pauseNs);
        }
        nextCheckpointNs = start + periodNs;
    }

    private void recordPauseAndChoosePeriod(final long epoch, final long pauseNs)
    {
        pauseRecorder.recordValue(Math.min(ActiveReplicator.HIGHEST_RECORDED_NS, pauseNs));
        // the policy runs after resume: its work is never part of the pause
        final long previousPeriodNs = periodNs;
        periodNs = policy.nextPeriodNs(sample.set(epoch, periodNs, lastDeltaPages, pauseNs,
            replicator.lastCommitLatencyNs(), nextEpoch - 1 - replicator.lastAckedEpoch(), maxEpochsInFlight,
            replicator.applicationSignal()).link(replicator.lastSendNs(), replicator.lastEncodedBytes())
            .output(gate.heldBytes()));
        replicator.periodChosen(periodNs, policy.lastDecision());
        if (CheckpointEvent.enabled())
        {
            final CheckpointEvent event = new CheckpointEvent();
            event.vmId = adapter.vmId();
            event.epoch = epoch;
            event.dirtyPages = lastDeltaPages;
            event.pauseNs = pauseNs;
            event.nextPeriodNs = periodNs;
            event.decision = policy.lastDecision().name();
            event.commit();
        }
        if (periodNs != previousPeriodNs && PolicyDecisionEvent.enabled())
        {
            final PolicyDecisionEvent event = new PolicyDecisionEvent();
            event.vmId = adapter.vmId();
            event.policy = policy.name();
            event.epoch = epoch;
            event.decision = policy.lastDecision().name();
            event.previousPeriodNs = previousPeriodNs;
            event.nextPeriodNs = periodNs;
            event.pauseNs = pauseNs;
            event.commitLatencyNs = sample.commitLatencyNs();
            event.sendNs = sample.sendNs();
            event.epochsInFlight = sample.epochsInFlight();
            event.commit();
        }
    }

    /**
     * Copies the dirty pages from where the copy stands into staging areas. An area that fills up is handed to the
     * sender (an overflow: the pause grows by the time the sender needs to drain a segment, counted) and the copy
     * goes on in the next one if it is free; otherwise it stops there and the next duty cycle looks again, so the
     * sender (and the standby behind it), which may need this very core on a small host, can drain it.
     *
     * @return true once every page is copied, false while the next area is awaited.
     */
    private boolean copyDelta()
    {
        final DirtyBitmap dirty = this.dirty;
        final GuestMemory memory = this.memory;
        StagingArea area = copyArea == null ? nextFreeArea() : copyArea;
        if (area == null)
        {
            return false;
        }
        long page = copyPage;
        long end = copyRunEnd;
        while (page >= 0)
        {
            while (page < end)
            {
                int room = area.roomInPages();
                if (room == 0)
                {
                    publish(area, pausedEpoch);
                    if (!pausedBaseline)
                    {
                        CounterSet.add(replicator.counters().stagingOverflows, 1);
                    }
                    copyArea = null;
                    copyPage = page;
                    copyRunEnd = end;
                    area = nextFreeArea();
                    if (area == null)
                    {
                        return false;
                    }
                    room = area.roomInPages();
                }
                final int count = (int)Math.min(end - page, room);
                area.copyRun(memory, page, count);
                page += count;
                copyPages += count;
            }
            page = dirty.nextSetBit(end);
            end = page < 0 ? -1 : dirty.nextClearBit(page);
        }
        copyPage = -1;
        CounterSet.add(replicator.counters().pagesCopied, copyPages);
        lastDeltaPages = copyPages;
        return true;
    }

    /**
     * @return the next staging area, begun for the epoch under way, or null if the sender has not freed it yet.
     */
    private StagingArea nextFreeArea()
    {
        final StagingArea next = areas[nextArea];
        if (!next.isFree())
        {
            return null;
        }
        next.begin(pausedEpoch, false, pausedBaseline);
        copyArea = next;
        return next;
    }

    @Override
    public void onClose()
    {
        if (pausedStep != NOT_PAUSED)
        {
            // stopped while a checkpoint waited for a staging area (close() after protection ended): the guest was
            // paused by this thread and runs on, as an abandoned checkpoint always left it
            endPause(false);
        }
    }

    /**
     * The epoch's pages become its slot of the record (a swap, inside the pause); the slot's previous set, of an
     * acknowledged epoch, becomes the next harvest's bitmap and is cleared after resume.
     */
    private void keepEpochPages(final long epoch)
    {
        final int slot = (int)(epoch % epochPages.length);
        final DirtyBitmap kept = dirty;
        dirty = epochPages[slot];
        epochPages[slot] = kept;
        epochPagesEpoch[slot] = epoch;
        dirtyStale = true;
    }

    /**
     * Asks for a new session's first epoch (from the sender's thread, before protection resumes): with
     * {@code quick}, the pages changed since the standby's recovery point, else every page.
     *
     * @param recoveryEpoch the standby's recovery point.
     * @param quick         true for a quick resync.
     * @param firstEpoch    the session's first epoch, as its HELLO named it.
     */
    void requestResync(final long recoveryEpoch, final boolean quick, final long firstEpoch)
    {
        resyncRecoveryEpoch = recoveryEpoch;
        resyncQuick = quick;
        resyncFirstEpoch = firstEpoch;
        resyncRequested = true;
    }

    /**
     * The launch's session resumes a promoted guest whose standby holds the checkpoint it resumed from (called
     * before the agents start): its first epoch is a quick resync of the pages the guest's dirty log reports, which
     * has tracked since that resume, instead of a baseline of every page.
     *
     * @param checkpointEpoch the checkpoint's epoch, the standby's recovery point.
     * @param firstEpoch      the session's first epoch.
     */
    void resumedFrom(final long checkpointEpoch, final long firstEpoch)
    {
        // nothing of this side's was sent before: no earlier session's pages are owed
        sessionPagesAll = false;
        requestResync(checkpointEpoch, true, firstEpoch);
    }

    /**
     * Reads the dirty log into {@code into}, with the pages a restore in place wrote (the guest's dirty log never
     * saw those writes, which were the library's): the next epoch carries them to the standby.
     */
    private void harvest(final DirtyBitmap into)
    {
        dirtyLog.harvest(into);
        final DirtyBitmap restored = restoredPages;
        if (restored != null)
        {
            into.or(restored);
            restoredPages = null;
        }
    }

    /**
     * A restore in place wrote these pages into the held guest (called before {@link #releaseHold()}, from the
     * sender's thread): the next harvest, whichever path takes it, includes them.
     *
     * @param pages the pages written.
     */
    void restored(final DirtyBitmap pages)
    {
        restoredPages = pages;
    }

    /**
     * Asks for a checkpoint now that leaves the guest paused (a planned switchover); any thread.
     */
    void holdAfterNextCheckpoint()
    {
        holdRequested = true;
    }

    /**
     * @return the epoch of the checkpoint the guest stays paused after, 0 until it is taken.
     */
    long heldEpoch()
    {
        return heldEpoch;
    }

    /**
     * @return when the held checkpoint's pause began ({@link NanoClock} time).
     */
    long heldSinceNs()
    {
        return heldSinceNs;
    }

    /**
     * The switchover was abandoned: this thread's next duty cycle resumes the guest if it holds it paused (or drops
     * the request for a hold not yet taken), and checkpoints go on.
     */
    void releaseHold()
    {
        releaseRequested = true;
    }

    /**
     * @return true until the scheduler has acted on {@link #releaseHold()}.
     */
    boolean releasePending()
    {
        return releaseRequested;
    }

    /**
     * Opens a reconnected session's first epoch as a live baseline over the resync set: the pages of every epoch
     * after the standby's recovery point, of an unacknowledged session start, and everything dirtied since the last
     * checkpoint (harvested here, without a pause). The opening record is appended with the guest paused, like
     * {@link #openBaseline()}: every disk write before it is complete, so the sender's copy of the recorded extents
     * reads it, and every write after it follows the copy.
     *
     * @return work done.
     */
    private int openResync()
    {
        final StagingArea area = areas[nextArea];
        if (!area.isFree())
        {
            // the sender frees the lost session's areas as it drains the stream up to this session's opening
            return 0;
        }
        resyncRequested = false;
        if (nextEpoch != resyncFirstEpoch)
        {
            // a checkpoint begun before the loss ended after the reconnect named its first epoch: this session
            // cannot start where its HELLO said; a new handshake names the right one
            replicator.fail(new java.io.IOException("checkpoint " + (nextEpoch - 1) + " completed after the " +
                "reconnect named epoch " + resyncFirstEpoch + " as the session's first; reconnecting again"));
            return 1;
        }
        if (dirtyStale)
        {
            dirty.clearAll();
            dirtyStale = false;
        }
        final long recoveryEpoch = resyncRecoveryEpoch;
        final boolean whole = !resyncQuick || sessionPagesAll && sessionFirstEpoch > recoveryEpoch;
        if (whole)
        {
            dirty.setAll();
        }
        else
        {
            for (int i = 0; i < epochPages.length; i++)
            {
                if (epochPagesEpoch[i] > recoveryEpoch)
                {
                    dirty.or(epochPages[i]);
                }
            }
            if (sessionFirstEpoch > recoveryEpoch)
            {
                dirty.or(sessionPages);
            }
            harvest(dirty);
        }
        sessionPagesAll = whole;
        if (!whole)
        {
            sessionPages.clearAll();
            sessionPages.or(dirty);
        }
        sessionFirstEpoch = nextEpoch;
        vcpus.pause();
        try
        {
            area.begin(nextEpoch, false, true);
            area.markOpensBaseline();
            publish(area, nextEpoch);
        }
        finally
        {
            vcpus.resume();
        }
        baselineDone = false;
        precopying = true;
        finalPauseDue = baselineRounds == 0;
        nextCheckpointNs = clock.nanoTime();
        precopyCursor = 0;
        baselineRound = 1;
        baselinePagesCopied = 0;
        roundPagesLeft = dirty.cardinality();
        previousRoundPages = Math.max(1, roundPagesLeft);
        replicator.resyncOpened(nextEpoch, roundPagesLeft, whole);
        replicator.baselineProgress(baselineRound, 0, roundPagesLeft, false);
        return 1;
    }

    private void publish(final StagingArea area, final long epoch)
    {
        area.publish();
        diskStream.appendCheckpoint(epoch, area.index());
        nextArea = (nextArea + 1) % areas.length;
    }
}
