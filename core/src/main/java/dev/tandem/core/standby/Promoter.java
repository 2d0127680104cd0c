package dev.tandem.core.standby;

import dev.tandem.core.failover.Ownership;
import dev.tandem.core.failover.Promotion;
import dev.tandem.core.failover.PromotionListener;
import dev.tandem.core.failover.ResumedCheckpoint;
import dev.tandem.core.metrics.CounterSet;
import dev.tandem.core.metrics.FailoverEvent;
import dev.tandem.core.wire.Handshake;
import dev.tandem.vmm.DiskWriteSink;
import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.RecoveryPoint;
import dev.tandem.vmm.ReplicaTarget;
import dev.tandem.vmm.VirtualDisk;
import dev.tandem.vmm.VmmAdapter;
import org.agrona.concurrent.NanoClock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.List;
import java.util.function.LongSupplier;

/**
 * Turns the standby into the owner of its guest (DESIGN.md "Ownership and failover"), as states of the receiver's
 * duty cycle that never block: decide (an operator's request, the active's failure report or its silence past the
 * timeout, each checked against what a promotion needs), claim the next generation at the arbiter (retried with
 * back-off while it cannot be reached, the session untouched meanwhile), and only once it is won let go of the
 * active, wait for the applier to finish every committed epoch, and hand the recovery point to the
 * {@link dev.tandem.vmm.ReplicaTarget}.
 * <p>
 * All of it is non-blocking but a promotion from an earlier checkpoint (a health report or an operator naming when
 * the guest was last good), which copies a base image and replays the retained journal on this thread: seconds for a
 * large guest, during which the standby does nothing else (it has let go of the active already).
 * <p>
 * The receiver's thread only, except {@link #request} and the getters.
 */
final class Promoter
{
    private static final Logger LOG = LoggerFactory.getLogger(Promoter.class);

    /**
     * What a promotion does to the session it ends; the receiver implements it.
     */
    interface Session
    {
        /**
         * @return whether the recovery point may be promoted (false while a newer session's baseline replaces it,
         *         or once a newer generation owned the guest).
         */
        boolean promotable();

        /**
         * This recovery point may never be promoted: another side owns the guest, or it cannot be resumed.
         */
        void forbidPromotion();

        /**
         * @return the generation the standby serves.
         */
        long generation();

        /**
         * @return the fingerprint of the recovery point (the chain of every epoch committed up to it).
         */
        long fingerprint();

        /**
         * @return when the recovery point was committed, wall-clock ms since 1970 (0 for none this run).
         */
        long committedAtMillis();

        /**
         * Raises the generation the standby serves to one the arbiter gave it.
         *
         * @param won the generation won.
         */
        void generation(long won);

        /**
         * Answers a planned switchover the active asked for, if its connection is still up: the active waits, its
         * guest paused, for the generation this side won.
         *
         * @param won the generation won.
         */
        void answerSwitchover(long won);

        /**
         * Drops the active's session: its connection and the epoch in assembly.
         */
        void drop();

        /**
         * Stops listening for actives: this side owns the guest now.
         */
        void stopListening();
    }

    private final StandbyContext ctx;
    private final Ownership ownership;
    private final RecoveryImage image;
    private final Applier applier;
    private final FailureDetector detector;
    private final StandbyCounters counters;
    private final NanoClock clock;
    private final LongSupplier committedEpoch;
    private final Session session;

    /** An operator's request: why, and the newest commit time it may resume; taken whole by the receiver. */
    private final java.util.concurrent.atomic.AtomicReference<Request> request =
        new java.util.concurrent.atomic.AtomicReference<>();
    private long failureRestoreAt = Handshake.RESTORE_LATEST;
    private long pendingRestoreAt;
    private long restoreAt;
    private volatile String ownershipState = "standby";
    private volatile Promotion promotion;
    private volatile String refused;
    private String failureReport;
    private String pending;
    private long pendingDetectionNs;
    private long pendingStartNs;
    private long nextClaimNs;
    /** The claim is won and the session dropped: the promotion waits for the applier to finish, then resumes. */
    private boolean finishing;
    private String reason;
    private long detectionNs;
    private long startNs;

    /**
     * @param ctx            the standby's configuration (auto-promotion, the ReplicaTarget, listeners).
     * @param ownership      every arbiter and generation decision of this side.
     * @param image          what a promotion resumes.
     * @param applier        must have applied every committed epoch before the image is resumed.
     * @param detector       the active's liveness.
     * @param counters       the standby's counters.
     * @param committedEpoch the recovery point's epoch.
     * @param session        the session a promotion ends.
     */
    Promoter(final StandbyContext ctx, final Ownership ownership, final RecoveryImage image, final Applier applier,
        final FailureDetector detector, final StandbyCounters counters, final LongSupplier committedEpoch,
        final Session session)
    {
        this.ctx = ctx;
        this.ownership = ownership;
        this.image = image;
        this.applier = applier;
        this.detector = detector;
        this.counters = counters;
        this.clock = ctx.nanoClock();
        this.committedEpoch = committedEpoch;
        this.session = session;
    }

    /**
     * Asks for a promotion, served on the receiver's thread (any thread).
     *
     * @param why for the log.
     */
    void request(final String why)
    {
        request(why, Handshake.RESTORE_LATEST);
    }

    /**
     * Asks for a promotion that resumes the newest checkpoint committed at or before a time (any thread).
     *
     * @param why             for the log.
     * @param restoreAtMillis wall-clock ms since 1970, or {@link Handshake#RESTORE_LATEST}.
     */
    void request(final String why, final long restoreAtMillis)
    {
        request.set(new Request(why, restoreAtMillis));
    }

    private record Request(String why, long restoreAtMillis)
    {
    }

    /**
     * The active reported its guest unhealthy: promoted on if auto-promotion is on.
     *
     * @param why             the active's report.
     * @param restoreAtMillis the newest commit time the promotion may resume (the guest's last known good time), or
     *                        {@link Handshake#RESTORE_LATEST}.
     */
    void failureReported(final String why, final long restoreAtMillis)
    {
        failureReport = why;
        failureRestoreAt = restoreAtMillis;
    }

    /**
     * @return the promotion that happened, or null.
     */
    Promotion promotion()
    {
        return promotion;
    }

    /**
     * @return why the last promotion was refused, or null.
     */
    String refused()
    {
        return refused;
    }

    /**
     * @return what the standby's ownership is doing: standby, claiming, promoted, superseded.
     */
    String ownershipState()
    {
        return ownershipState;
    }

    /**
     * @return true while a claim is in progress or asked for: served even while the active streams on.
     */
    boolean claimWanted()
    {
        return pending != null || request.get() != null;
    }

    /**
     * @return true once the claim is won and the promotion waits for the applier.
     */
    boolean finishing()
    {
        return finishing;
    }

    /**
     * The detector's duty: serves a claim in progress, a request, a failure report, or the active's silence.
     *
     * @return work done.
     */
    int check()
    {
        if (pending != null)
        {
            return claimAndPromote();
        }
        final Request requested = request.getAndSet(null);
        if (requested != null)
        {
            return start(requested.why(), 0, requested.restoreAtMillis());
        }
        if (failureReport != null)
        {
            final String report = failureReport;
            failureReport = null;
            if (ctx.autoPromote())
            {
                return start(report, 0, failureRestoreAt);
            }
        }
        final long committed = committedEpoch.getAsLong();
        if (applier.appliedEpoch() != committed)
        {
            // this host is busy applying (a baseline takes long): silence counts from when the applier caught up;
            // a promotion would wait for it anyway
            detector.heard();
        }
        if (!ctx.autoPromote() || !session.promotable() || applier.tornReason() != null || committed < 1)
        {
            return 0;
        }
        final long silentNs = detector.failedSilenceNs();
        return silentNs < 0 ? 0 : start("no frame from the active for " + silentNs / 1_000_000 + " ms", silentNs,
            Handshake.RESTORE_LATEST);
    }

    /**
     * Decides to promote: checks what can be checked here, then claims at the arbiter before anything else (the
     * session is not touched until the claim is won).
     */
    private int start(final String why, final long detectedAfterNs, final long restoreAtMillis)
    {
        LOG.warn("promoting VM {}: {}", ctx.vmId(), why);
        final long committed = committedEpoch.getAsLong();
        final String torn = applier.tornReason();
        if (torn != null || committed < 1)
        {
            refuse(torn != null ? torn : "no epoch was ever committed: there is no recovery point to resume");
            return 1;
        }
        if (!session.promotable())
        {
            refuse("the recovery point (epoch " + committed + ") is of an older session: a newer session has " +
                "started its baseline, or a newer generation owns the guest");
            return 1;
        }
        if (ctx.replicaTarget() == null)
        {
            refuse("no ReplicaTarget is configured to resume the guest on");
            return 1;
        }
        pending = why;
        pendingRestoreAt = restoreAtMillis;
        pendingDetectionNs = detectedAfterNs;
        pendingStartNs = clock.nanoTime();
        nextClaimNs = pendingStartNs;
        return claimAndPromote();
    }

    private int claimAndPromote()
    {
        final long now = clock.nanoTime();
        if (now < nextClaimNs)
        {
            return 0;
        }
        final long next = session.generation() + 1;
        final Ownership.Verdict verdict = ownership.claimNext();
        if (verdict == Ownership.Verdict.UNREACHABLE)
        {
            nextClaimNs = now + ownership.retryDelayNs();
            ownershipState = "claiming generation " + next + ": arbiter unreachable (" +
                ownership.unansweredAttempts() + " attempts: " + ownership.lastError() + "), next try in " +
                ownership.retryDelayNs() / 1_000_000 + " ms";
            return 1;
        }
        final String why = pending;
        pending = null;
        if (verdict == Ownership.Verdict.SUPERSEDED)
        {
            // another side owns the guest: this history may never be promoted, and this session is over
            session.forbidPromotion();
            session.drop();
            refuse("the arbiter gave generation " + next + " (or a later one) to another side");
            ownershipState = "superseded by generation " + ownership.supersededBy();
            return 1;
        }
        won(why, next);
        return 1;
    }

    private void won(final String why, final long next)
    {
        final PromotionListener steps = ctx.promotionListener();
        steps.onStep("claim generation", clock.nanoTime() - pendingStartNs);
        session.answerSwitchover(next);
        session.generation(next);
        steps.onStep("persist generation", clock.nanoTime() - pendingStartNs);
        ownershipState = "promoting at generation " + next;
        // only now, owning the next generation, does this side let go of the active
        session.drop();
        session.stopListening();
        steps.onStep("stop receiving", clock.nanoTime() - pendingStartNs);
        // drop() discarded the epoch in assembly: nothing after the recovery point survives
        steps.onStep("discard partial epoch", clock.nanoTime() - pendingStartNs);
        finishing = true;
        reason = why;
        restoreAt = pendingRestoreAt;
        detectionNs = pendingDetectionNs;
        startNs = pendingStartNs;
        finish();
    }

    /**
     * The last part of a promotion, a state of the duty cycle: waits (without blocking) until the applier has
     * applied every committed epoch, then hands the recovery point to the {@link dev.tandem.vmm.ReplicaTarget}.
     *
     * @return work done.
     */
    int finish()
    {
        final long next = session.generation();
        final String torn = applier.tornReason();
        if (torn != null)
        {
            // applying an acknowledged epoch failed: the one replica that held it cannot resume it
            finishing = false;
            session.forbidPromotion();
            ownershipState = "owner of generation " + next + " without a guest: the replica is torn";
            refuse(torn);
            return 1;
        }
        final long committed = committedEpoch.getAsLong();
        if (applier.appliedEpoch() != committed)
        {
            return 0;
        }
        finishing = false;
        final PromotionListener steps = ctx.promotionListener();
        steps.onStep("finish applying", clock.nanoTime() - startNs);
        // a checkpoint this run committed at or before the time asked is the latest: nothing to restore. One held
        // from before a restart has no commit time here: the retained journal's says
        final long committedAt = session.committedAtMillis();
        final boolean rewind = restoreAt != Handshake.RESTORE_LATEST && (committedAt == 0 || restoreAt < committedAt);
        PointInTimeRestore.Opened earlier = null;
        final long epoch;
        final VmmAdapter guest;
        final ResumedCheckpoint resumed;
        try
        {
            if (rewind)
            {
                // the image's own checkpoints age out bases and segments: none may run while the window is read
                image.stopCheckpoints();
                earlier = earlierCheckpoint(committed);
                if (earlier != null)
                {
                    steps.onStep("restore earlier checkpoint", clock.nanoTime() - startNs);
                }
            }
            final RecoveryImage from = earlier != null ? earlier.image() : image;
            epoch = earlier != null ? earlier.restored().epoch() : committed;
            LOG.warn("VM {} is restored to the known-good checkpoint of epoch {} and resumed here under generation {}",
                ctx.vmId(), epoch, next);
            resumed = new ResumedCheckpoint(ctx.vmId(), epoch,
                earlier != null ? earlier.image().recoveredFingerprint() : session.fingerprint(),
                ResumedCheckpoint.DEFAULT_CAPACITY);
            if (earlier != null)
            {
                // the standby's own directory holds the state the guest was rejected in: it stops being a recovery
                // point before anything is built, as after any promotion, or a standby restarted on it (after a
                // failed or killed build) would promote that state again
                image.giveUp();
            }
            final RecoveryPoint point = new TrackedPoint(from.recoveryPoint(), resumed);
            from.resuming(true);
            try
            {
                // a two-step target builds the guest paused first; a one-step target builds and runs at once, so the
                // image must stop being a recovery point before it is even called
                final ReplicaTarget.PreparedGuest prepared = ctx.replicaTarget().prepare(point);
                if (prepared != null)
                {
                    steps.onStep("build guest", clock.nanoTime() - startNs);
                }
                // only now, any guest built and paused, do the image's files stop being a recovery point: a standby
                // killed while a two-step target built restarts on them
                giveUp(from, prepared);
                guest = prepared != null ? prepared.run() : ctx.replicaTarget().resume(point);
            }
            finally
            {
                from.resuming(false);
            }
        }
        catch (final RuntimeException ex)
        {
            session.forbidPromotion();
            ownershipState = "owner of generation " + next + " without a guest: the ReplicaTarget failed";
            refuse("the recovery point could not be handed over or the ReplicaTarget failed to resume the guest: " +
                ex);
            return 1;
        }
        finally
        {
            // the point was valid only during resume() or prepare(): the target adopted or copied what it needed
            org.agrona.CloseHelper.quietClose(earlier);
        }
        final long promotionNs = clock.nanoTime() - startNs;
        steps.onStep("resume guest", promotionNs);
        final Promotion done = new Promotion(reason, epoch, next, detectionNs, promotionNs, guest,
            resumed);
        ownershipState = "promoted at generation " + next;
        CounterSet.add(counters.promotions, 1);
        promotion = done;
        final FailoverEvent event = new FailoverEvent();
        event.vmId = ctx.vmId();
        event.reason = reason;
        event.recoveryEpoch = epoch;
        event.generation = next;
        event.detectionNs = detectionNs;
        event.promotionNs = promotionNs;
        event.commit();
        steps.onPromoted(done);
        return 1;
    }

    /**
     * Materialises the newest checkpoint committed at or before {@link #restoreAt} from the retained journal into a
     * directory beside the standby's own (whose image then stops being a recovery point, as after any promotion).
     * A standby that cannot (MEMORY mode, no retention window, a time before it) resumes its latest recovery point and
     * says why in the promotion's reason: the active has already stopped its guest, so refusing would leave none
     * running.
     *
     * @return the open image of the earlier checkpoint, or null for the latest.
     */
    private PointInTimeRestore.Opened earlierCheckpoint(final long committed)
    {
        final java.time.Instant at = java.time.Instant.ofEpochMilli(restoreAt);
        String why;
        if (ctx.durability() != Durability.DURABLE)
        {
            why = "a MEMORY standby keeps no earlier checkpoint";
        }
        else
        {
            final Path to = restoreDirectory(at);
            try
            {
                final PointInTimeRestore.Opened opened = PointInTimeRestore.restoreAt(ctx.directory(), at, to,
                    session::generation, ctx.storageWitness());
                if (opened.restored().epoch() >= committed)
                {
                    // the journal committed the latest by then (the session stamps its commit after the force): the
                    // image the applier keeps is that very epoch, without a copy
                    org.agrona.CloseHelper.quietClose(opened);
                    removeEmpty(to);
                    return null;
                }
                LOG.warn("VM {}: resuming epoch {} (committed {}), the newest checkpoint from {} or before, " +
                    "restored into {} ({}); the latest recovery point, epoch {} in {}, is given up", ctx.vmId(),
                    opened.restored().epoch(), opened.restored().committedAt(), at, to, opened.restored().report(),
                    committed, ctx.directory());
                reason = reason + "; resumed epoch " + opened.restored().epoch() + ", committed " +
                    opened.restored().committedAt() + ", the newest from " + at + " or before, in " + to;
                return opened;
            }
            catch (final RuntimeException ex)
            {
                // the restore cleared what it had copied
                removeEmpty(to);
                why = ex.getMessage();
            }
        }
        LOG.error("VM {}: cannot resume a checkpoint from {} or before, as asked: {}; resuming the latest recovery " +
            "point, epoch {}", ctx.vmId(), at, why, committed);
        reason = reason + "; not resumed as of " + at + " as asked (" + why + "): resumed the latest recovery point";
        return null;
    }

    private static void removeEmpty(final Path directory)
    {
        try
        {
            java.nio.file.Files.deleteIfExists(directory);
        }
        catch (final java.io.IOException ex)
        {
            LOG.warn("could not remove {}: {}", directory, ex.toString());
        }
    }

    /**
     * @return a new directory beside the standby's for a checkpoint restored as of {@code at}.
     */
    private Path restoreDirectory(final java.time.Instant at)
    {
        final Path directory = ctx.directory().toAbsolutePath();
        final String name = directory.getFileName() + ".restored-" + at.toEpochMilli();
        Path to = directory.resolveSibling(name);
        for (int i = 2; java.nio.file.Files.exists(to); i++)
        {
            to = directory.resolveSibling(name + "-" + i);
        }
        return to;
    }

    /**
     * The image the guest resumes from stops being a recovery point; if it cannot, a guest already built is
     * discarded (it must not run on files still labelled as a recovery point).
     */
    private static void giveUp(final RecoveryImage from, final ReplicaTarget.PreparedGuest prepared)
    {
        try
        {
            from.giveUp();
        }
        catch (final RuntimeException | Error ex)
        {
            if (prepared != null)
            {
                try
                {
                    prepared.discard();
                }
                catch (final RuntimeException discardFailed)
                {
                    ex.addSuppressed(discardFailed);
                }
            }
            throw ex;
        }
    }

    private void refuse(final String why)
    {
        LOG.error("promotion of VM {} refused: {}", ctx.vmId(), why);
        refused = why;
        ctx.promotionListener().onPromotionRefused(why);
    }

    /**
     * The recovery point as the target sees it, with the record a quick failback needs on offer.
     */
    private record TrackedPoint(RecoveryPoint point, ResumedCheckpoint resumed) implements RecoveryPoint
    {
        @Override
        public String vmId()
        {
            return point.vmId();
        }

        @Override
        public long epoch()
        {
            return point.epoch();
        }

        @Override
        public long generation()
        {
            return point.generation();
        }

        @Override
        public GuestMemory memory()
        {
            return point.memory();
        }

        @Override
        public NativeMemory.Region adoptMemory()
        {
            return point.adoptMemory();
        }

        @Override
        public DiskWriteSink trackFromResume()
        {
            return resumed.track();
        }

        @Override
        public List<ComponentState> components()
        {
            return point.components();
        }

        @Override
        public List<VirtualDisk> disks()
        {
            return point.disks();
        }

        @Override
        public Path diskImage(final int diskId)
        {
            return point.diskImage(diskId);
        }
    }
}
