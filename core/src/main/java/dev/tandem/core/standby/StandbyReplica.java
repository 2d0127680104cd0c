package dev.tandem.core.standby;

import dev.tandem.core.CommitWait;
import dev.tandem.core.failover.GenerationFile;
import dev.tandem.core.failover.Ownership;
import dev.tandem.core.metrics.LatencyDistribution;
import dev.tandem.core.metrics.ProcessCounters;
import dev.tandem.core.metrics.StageLatency;
import dev.tandem.core.metrics.StandbyCommitEvent;
import dev.tandem.core.failover.Promotion;
import dev.tandem.core.metrics.FailoverEvent;
import dev.tandem.core.transport.Transport;
import dev.tandem.vmm.JvmAccess;
import dev.tandem.vmm.OwnerOnlyFiles;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.RecoveryPoint;
import org.agrona.CloseHelper;
import org.agrona.concurrent.AgentInvoker;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.OneToOneConcurrentArrayQueue;
import org.agrona.concurrent.UnsafeBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The standby side for one guest: a facade that wires the pipeline of DESIGN.md "The standby" and owns its
 * resources. The {@link StandbySession} (the receiver's duty cycle) accepts the active, runs the handshake and reads
 * the ordered stream; its {@link EpochAssembler} validates every frame and assembles each epoch in an {@link EpochLog}
 * behind its barrier; epoch N is committed only when all of delta N has arrived and verified against the epoch end,
 * then handed to the {@link Applier} and acked at once. The applier, its own agent, replays the verified epochs in
 * order into the {@link RecoveryImage}: disk writes up to barrier N to the disk images, pages to the memory replica,
 * component state to the component store. Beside them the {@link FailureDetector} judges the active's silence and the
 * {@link Promoter} claims the next generation and resumes the image. A partial or malformed epoch is never applied:
 * the frame is refused with its fault, the epoch discarded, the connection dropped, and the replica keeps its last
 * commit.
 * <p>
 * Durability: MEMORY mode (Remus): commit N means epoch N is fully received and verified in this process's memory;
 * the applier follows behind (at most {@link StandbyContext#epochLogs()} epochs), and a promotion first lets it
 * finish every committed epoch. What the replica shows ({@link #inspect}, {@link StandbyListener#onCommit}) is always
 * one whole applied epoch. If applying fails after the ack (a full disk), the replica is torn: the active already
 * released that epoch's output, so this standby can no longer take over; it says so loudly, refuses the session
 * with the reason, and refuses promotion ({@link #tornReason()}).
 */
public final class StandbyReplica implements AutoCloseable
{
    private static final Logger LOG = LoggerFactory.getLogger(StandbyReplica.class);

    private final StandbyContext ctx;
    private final Transport.Listener listener;
    private final RecoveryImage image;
    private final DirectoryLock lock;
    /** Every epoch log, allocated at launch and freed at close, wherever each one is at that moment. */
    private final EpochLog[] logs;
    private final StandbySession session;
    private final Applier applier;
    private final Promoter promoter;
    /** The session's thread (the receiver), or null when the caller steps it through {@link #invoker}. */
    private final AgentRunner runner;
    private final AgentInvoker invoker;
    /** The applier's thread, or null when the caller steps it through {@link #applierInvoker}. */
    private final AgentRunner applierRunner;
    private final AgentInvoker applierInvoker;
    private volatile boolean closed;
    private final StandbyCounters counters;
    /** When the receiver publishes the commit percentile into its counter next (receiver thread only). */
    private long nextLatencyPublishNs;
    /** The last snapshot, taken while closing: afterwards the counters are freed; guarded by stageLock. */
    private StandbyStatus closedStatus;
    private volatile String lastError;
    /** Every arbiter and generation decision of this side. */
    private final Ownership ownership;
    /** Barrier to the epoch's end read (the delta on the wire), after the session's baseline. */
    private final LatencyDistribution receiveStage = new LatencyDistribution();
    /** The applier replaying an epoch into the replica (disk writes, pages, state); recorded by the applier. */
    private final LatencyDistribution applyStage = new LatencyDistribution();
    /** Barrier read to ack written: what this side adds to the active's commit latency (applying is not in it). */
    private final LatencyDistribution commitStage = new LatencyDistribution();
    private final Object stageLock = new Object();
    private final List<Runnable> pendingInspections = new ArrayList<>();
    private volatile boolean inspectionPending;

    private StandbyReplica(final StandbyContext ctx, final Transport.Listener listener, final DirectoryLock lock)
        throws IOException
    {
        this.ctx = ctx;
        this.listener = listener;
        this.lock = lock;
        this.ownership = new Ownership(ctx.vmId(), ctx.promotionArbiter(),
            new GenerationFile(ctx.directory().resolve("generation")), ctx.generation());
        if (ctx.autoPromote() && ctx.promotionArbiter() == null)
        {
            LOG.warn("UNSAFE: standby for VM {} promotes automatically WITHOUT an arbiter; after a network " +
                "partition the guest can run on both hosts and clients can see contradicting output", ctx.vmId());
        }
        RecoveryImage createdImage = null;
        final EpochLog[] createdLogs = new EpochLog[ctx.epochLogs()];
        StandbyCounters createdCounters = null;
        // session to applier: verified epochs in epoch order; applier to session: logs to assemble the next in (each
        // queue can hold every log, so handing one over never fails)
        final OneToOneConcurrentArrayQueue<EpochLog> verifiedLogs = new OneToOneConcurrentArrayQueue<>(
            createdLogs.length);
        final OneToOneConcurrentArrayQueue<EpochLog> freeLogs = new OneToOneConcurrentArrayQueue<>(createdLogs.length);
        StandbySession createdSession = null;
        try
        {
            createdCounters = new StandbyCounters(ctx.countersDirectory(), ctx.vmId());
            createdCounters.generation.setRelease(ownership.generation());
            createdImage = ctx.durability() == Durability.DURABLE ? new DurableRecoveryImage(ctx, this::generation) :
                new MemoryRecoveryImage(ctx, this::generation);
            if (ctx.heldGuest() != null && createdImage.recoveredEpoch() > 0)
            {
                throw new dev.tandem.core.ConfigurationException("heldCheckpoint on a standby directory that holds " +
                    "a DURABLE image of epoch " + createdImage.recoveredEpoch() + ": start from one or the other");
            }
            if (ctx.heldGuest() != null)
            {
                copyHeldCheckpoint(ctx, createdImage);
            }
            // the memory budget is shared: each log holds its part in memory and spills the rest of its epoch
            final int logMemoryBytes = ctx.epochLogMemoryBytes() / createdLogs.length;
            for (int i = 0; i < createdLogs.length; i++)
            {
                createdLogs[i] = new EpochLog(logMemoryBytes, ctx.maxFramePayload(),
                    ctx.directory().resolve("epoch-" + i + ".spill"));
                freeLogs.offer(createdLogs[i]);
            }
            // the applier first: the session's assembler asks it how far the image is applied
            this.applier = new Applier(ctx, createdImage, verifiedLogs, freeLogs, applyStage, () -> closed,
                reason -> lastError = reason);
            createdSession = new StandbySession(ctx, listener, ownership, createdImage, applier, createdCounters,
                verifiedLogs, freeLogs, receiveStage, commitStage, this::betweenFrames, reason -> lastError = reason);
            if (ctx.heldGuest() == null && createdImage.recoveredEpoch() > 0)
            {
                // a restarted DURABLE standby: its recovery point is an acknowledged epoch, promotable as before
                applier.held(createdImage.recoveredEpoch());
                createdSession.held(createdImage.recoveredEpoch(), createdImage.recoveredFingerprint(), true);
            }
            if (ctx.heldGuest() != null)
            {
                applier.held(ctx.heldEpoch());
                createdSession.held(ctx.heldEpoch(), ctx.heldFingerprint(), false);
                LOG.info("standby for VM {} starts holding epoch {} of the guest's history (a held checkpoint): an " +
                    "active that resumed from it sends only what changed since", ctx.vmId(), ctx.heldEpoch());
            }
        }
        catch (final RuntimeException | Error ex)
        {
            // nothing ran yet: what was built is freed here (the session frees its own part of a failed build)
            CloseHelper.quietClose(createdImage);
            CloseHelper.quietCloseAll(createdLogs);
            CloseHelper.quietClose(createdCounters);
            throw ex;
        }
        this.counters = createdCounters;
        this.image = createdImage;
        this.logs = createdLogs;
        this.session = createdSession;
        this.promoter = session.promoter();
        if (ctx.useAgentInvoker())
        {
            this.runner = null;
            this.invoker = new AgentInvoker(this::onAgentError, null, session);
            this.applierRunner = null;
            this.applierInvoker = new AgentInvoker(this::onApplierError, null, applier);
        }
        else
        {
            this.runner = new AgentRunner(new BackoffIdleStrategy(100, 10, 1_000, 100_000), this::onAgentError, null,
                session);
            this.invoker = null;
            this.applierRunner = new AgentRunner(new BackoffIdleStrategy(100, 10, 1_000, 100_000),
                this::onApplierError, null, applier);
            this.applierInvoker = null;
        }
    }

    /**
     * Copies a stopped guest's memory, component states and disks into the new image, in 1 MiB pieces through one
     * buffer freed here.
     */
    private static void copyHeldCheckpoint(final StandbyContext ctx, final RecoveryImage image)
    {
        final dev.tandem.vmm.VmmAdapter guest = ctx.heldGuest();
        final int chunkBytes = 1 << 20;
        try (NativeMemory.Region region = NativeMemory.allocateDirect(Math.max(chunkBytes, ctx.pageSize()), 4096))
        {
            final java.nio.ByteBuffer bytes = region.byteBuffer();
            final UnsafeBuffer chunk = new UnsafeBuffer(bytes);
            final dev.tandem.vmm.GuestMemory memory = guest.memory();
            final long perChunk = Math.max(1, chunkBytes / memory.pageSize());
            for (long page = 0; page < memory.pageCount(); page += perChunk)
            {
                final int count = (int)Math.min(perChunk, memory.pageCount() - page);
                memory.copyOut(page, count, chunk, 0);
                image.writePages(page, count, chunk, 0);
            }
            for (final dev.tandem.vmm.VirtualDisk disk : guest.disks())
            {
                for (long offset = 0; offset < disk.sizeBytes(); offset += chunkBytes)
                {
                    final int length = (int)Math.min(chunkBytes, disk.sizeBytes() - offset);
                    disk.read(offset, chunk, 0, length);
                    bytes.clear().limit(length);
                    image.writeDisk(disk.id(), offset, bytes);
                }
            }
        }
        catch (final java.io.IOException ex)
        {
            throw new java.io.UncheckedIOException("cannot copy the held checkpoint's disks of VM " + ctx.vmId() +
                " into the standby's images in " + ctx.directory(), ex);
        }
        for (final dev.tandem.vmm.StatefulComponent component : guest.components())
        {
            final byte[] state = dev.tandem.vmm.StatefulComponent.saveToArray(component);
            image.putComponent(component.id(), component.version(), new UnsafeBuffer(state), 0, state.length);
        }
        image.epoch(ctx.heldEpoch());
        try
        {
            // a DURABLE image forces the copy and records its epoch: a restart finds it
            image.held(ctx.heldEpoch(), ctx.heldFingerprint());
        }
        catch (final java.io.IOException ex)
        {
            throw new java.io.UncheckedIOException("cannot force the held checkpoint of VM " + ctx.vmId() + " into " +
                ctx.directory(), ex);
        }
    }

    /**
     * Starts listening for the active.
     * <p>
     * A launch that throws has undone everything it started (no thread, no off-heap memory, the endpoint unbound).
     * A launch that returns runs the receiver and the applier on threads ({@code tandem-standby-receiver},
     * {@code tandem-standby-applier}) that are not daemon threads: they keep the JVM alive until {@link #close()},
     * whether or not an active ever connects, and the receiver keeps listening after it refuses an active (a wrong
     * geometry, a stale generation). Close the standby in a {@code finally} or try-with-resources.
     *
     * @param ctx configuration; concluded here.
     * @return the running standby.
     * @throws IOException if the endpoint cannot be bound or the directory is unusable.
     * @throws IllegalStateException if an existing disk image does not fit, the directory is writable by others or
     *                               held by another standby, or JVM flags are missing.
     */
    public static StandbyReplica launch(final StandbyContext ctx) throws IOException
    {
        ctx.conclude();
        JvmAccess.check(LOG::warn);
        FailoverEvent.register();
        // registering a JFR event type costs tens of milliseconds once: here, not in the first commit
        StandbyCommitEvent.enabled();
        // the directory holds the replica a promotion would run: created owner-only, refused if others may write
        // to it, and held against every other standby before anything in it is read or the endpoint is bound
        OwnerOnlyFiles.createDirectories(ctx.directory());
        OwnerOnlyFiles.requireNotWritableByOthers(ctx.directory(), "standby directory");
        final DirectoryLock lock = DirectoryLock.acquire(ctx.directory());
        InPlaceRestore.removeStale(ctx.directory());
        final Transport.Listener listener;
        try
        {
            listener = ctx.transport().listen(ctx.listenEndpoint());
        }
        catch (final IOException | RuntimeException ex)
        {
            lock.close();
            throw ex;
        }
        final StandbyReplica standby;
        try
        {
            standby = new StandbyReplica(ctx, listener, lock);
        }
        catch (final IOException | RuntimeException ex)
        {
            listener.close();
            lock.close();
            throw ex;
        }
        if (standby.invoker != null)
        {
            standby.invoker.start();
            standby.applierInvoker.start();
        }
        else
        {
            AgentRunner.startOnThread(standby.applierRunner);
            AgentRunner.startOnThread(standby.runner);
        }
        LOG.info("standby for VM {} listening on {}", ctx.vmId(), listener.endpoint());
        return standby;
    }

    /**
     * @return the receiver's duty cycle to step by hand, or null unless
     *         {@link StandbyContext#useAgentInvoker(boolean)} was set.
     */
    public AgentInvoker receiverInvoker()
    {
        return invoker;
    }

    /**
     * @return the applier's duty cycle to step by hand (one verified epoch per step), or null unless
     *         {@link StandbyContext#useAgentInvoker(boolean)} was set.
     */
    public AgentInvoker applierInvoker()
    {
        return applierInvoker;
    }

    /**
     * @return the endpoint actually bound.
     */
    public String endpoint()
    {
        return listener.endpoint();
    }

    /**
     * @return in {@link Durability#DURABLE} mode, what the launch found in the directory: the image's epoch, the
     *         journal's epochs replayed and any damage that ended the replay; null in MEMORY mode.
     */
    public String recoveryReport()
    {
        return image.recoveryReport();
    }

    /**
     * @return the recovery point's epoch: the newest epoch received whole, verified and acknowledged; 0 before the
     *         baseline committed. The applier may still be applying it ({@link #appliedEpoch()}).
     */
    public long lastCommittedEpoch()
    {
        return session.lastCommittedEpoch();
    }

    /**
     * @return the newest epoch the applier has applied to the replica (and called the commit listener for); at most
     *         {@link #lastCommittedEpoch()}, and equal to it whenever the applier has caught up.
     */
    public long appliedEpoch()
    {
        return applier.appliedEpoch();
    }

    /**
     * Waits until this standby has committed {@code epoch}: its recovery point is that checkpoint or a newer one
     * (memory, device state and every disk write up to barrier {@code epoch}, received whole and verified; the
     * applier may still be applying it, and a promotion lets it finish first). Polls every 0.2 ms at most. With
     * {@link StandbyContext#useAgentInvoker(boolean)} another thread must step the receiver meanwhile, or nothing
     * can commit.
     *
     * @param epoch   the epoch to wait for.
     * @param timeout how long to wait at most (wall clock).
     * @return true once {@code epoch} is committed, false if the timeout passed first.
     * @throws IllegalStateException if no further epoch can commit here (closed, promoted, or the replica torn)
     *                               before {@code epoch} did, saying which and the recovery point's epoch.
     * @throws InterruptedException  if the waiting thread is interrupted.
     */
    public boolean awaitCommitted(final long epoch, final Duration timeout) throws InterruptedException
    {
        return CommitWait.until(epoch, timeout, session::lastCommittedEpoch, () ->
        {
            final String ended = closed ? "closed" : promoter.promotion() != null ? "promoted" :
                torn() != null ? "torn (" + torn() + ")" : null;
            return ended == null ? null : "standby for VM " + ctx.vmId() + " is " + ended + " with epoch " +
                session.lastCommittedEpoch() + " committed; epoch " + epoch + " will not commit here";
        });
    }

    /**
     * Asks the standby to promote now (an operator's failover): on the receiver thread it first claims the next
     * generation from the arbiter (retrying with back-off while it cannot be reached, the session untouched
     * meanwhile), persists it, and only then stops receiving, discards everything after the recovery point and
     * resumes the guest through the {@link dev.tandem.vmm.ReplicaTarget}. Watch {@link #promotion()}, the promotion
     * listener, or {@link StandbyStatus#ownership()}.
     *
     * @param reason why, for the log.
     */
    public void promote(final String reason)
    {
        promoter.request(reason);
    }

    /**
     * As {@link #promote(String)}, resuming the newest checkpoint committed at or before {@code lastKnownGood} rather
     * than the latest one (the guest went wrong after it): restored from the retained journal of a DURABLE standby
     * into a new directory beside this one ({@code <directory>.restored-<ms>}), whose files the guest then runs on.
     * Output the guest released after that checkpoint is taken back with it. A standby that cannot restore that time
     * (MEMORY mode, no retention window, a time outside it) resumes its latest recovery point and says why in
     * {@link Promotion#reason()}; the one resumed is {@link Promotion#recoveryEpoch()}.
     *
     * @param reason        why, for the log.
     * @param lastKnownGood the newest commit time to resume.
     */
    public void promote(final String reason, final java.time.Instant lastKnownGood)
    {
        java.util.Objects.requireNonNull(lastKnownGood, "lastKnownGood");
        if (lastKnownGood.isBefore(java.time.Instant.EPOCH) || lastKnownGood.isAfter(java.time.Instant.ofEpochMilli(
            dev.tandem.core.wire.Handshake.RESTORE_LATEST - 1)))
        {
            throw new dev.tandem.core.ConfigurationException("lastKnownGood " + lastKnownGood + " is outside 1970 to " +
                "the year 292278994: no checkpoint can have been committed then");
        }
        promoter.request(reason, lastKnownGood.toEpochMilli());
    }

    /**
     * @return the promotion that happened, or null.
     */
    public Promotion promotion()
    {
        return promoter.promotion();
    }

    /**
     * @return why the last promotion was refused (the standby serves on and may promote later), or null.
     */
    public String promotionRefused()
    {
        return promoter.refused();
    }

    /**
     * @return the generation this standby serves (raised by a promotion).
     */
    public long generation()
    {
        // during the launch (a DURABLE image recording its state) the session is not built yet
        final StandbySession built = session;
        return built == null ? ownership.generation() : built.generation();
    }

    /**
     * @return null while the {@link Durability#DURABLE} image can make epochs durable (and always in MEMORY mode);
     *         otherwise why not: a journal or image write or fsync failed, which is never retried, so this standby
     *         acknowledges nothing more and refuses sessions with this reason. Its last durable epoch stays its
     *         recovery point, on disk for a restart and in memory for a promotion.
     */
    public String brokenReason()
    {
        return image.brokenReason();
    }

    /**
     * @return null while the replica holds a whole recovery point; otherwise why it does not (an apply failed).
     */
    public String tornReason()
    {
        return torn();
    }

    /**
     * @return a snapshot of the standby.
     */
    public StandbyStatus status()
    {
        final List<StageLatency> stages;
        // stageLock, not this monitor: close() holds that while the receiver stops, and a listener on the
        // receiver's thread may ask for the status meanwhile
        synchronized (stageLock)
        {
            if (closedStatus != null)
            {
                return closedStatus;
            }
            final long now = ctx.nanoClock().nanoTime();
            stages = List.of(
                StageLatency.of("receive", receiveStage.refresh(now), receiveStage.window()),
                StageLatency.of("apply", applyStage.refresh(now), applyStage.window()),
                StageLatency.of("commit", commitStage.refresh(now), commitStage.window()));
            counters.commitP99Ns.setRelease(stages.get(2).p99Ns());
            counters.generation.setRelease(session.generation());
            // the counts are read from the counters a stat of the counters file shows
            return new StandbyStatus(session.lastCommittedEpoch(), session.connected(), counters.commits.get(),
                counters.framesReceived.get(), counters.bytesReceived.get(), counters.refusals.get(), lastError,
                session.generation(), promoter.ownershipState(), ownership.attempts(), ownership.lastError(), stages, applier.appliedEpoch());
        }
    }

    /**
     * @return this process's counters file holding this standby's counters, or null if they live in process
     *         memory only (the file could not be created; a warning said why).
     */
    public Path countersFile()
    {
        return counters.file();
    }

    /**
     * The session's thread, between two frames: runs the inspections asked for once the applier has caught up (it gets
     * nothing new while this thread inspects), and publishes the commit percentile.
     */
    private void betweenFrames()
    {
        if (inspectionPending && (applier.appliedEpoch() == session.lastCommittedEpoch() || torn() != null))
        {
            runInspections();
        }
        publishLatencies(ctx.nanoClock().nanoTime());
    }

    private void runInspections()
    {
        final Runnable[] tasks;
        synchronized (pendingInspections)
        {
            tasks = pendingInspections.toArray(new Runnable[0]);
            pendingInspections.clear();
            inspectionPending = false;
        }
        for (final Runnable task : tasks)
        {
            // a replica torn meanwhile is not shown: each inspection fails with the reason
            task.run();
        }
    }

    /**
     * On the receiver's thread, at most every {@link ProcessCounters#LATENCY_PUBLISH_INTERVAL_NS}: folds the commit
     * stage and publishes its 99th percentile, so that {@code stat} shows it live. Allocates nothing.
     */
    private void publishLatencies(final long now)
    {
        if (now - nextLatencyPublishNs < 0)
        {
            return;
        }
        nextLatencyPublishNs = now + ProcessCounters.LATENCY_PUBLISH_INTERVAL_NS;
        synchronized (stageLock)
        {
            receiveStage.fold(now);
            applyStage.fold(now);
            counters.commitP99Ns.setRelease(commitStage.fold(now).getValueAtPercentile(99));
            counters.generation.setRelease(session.generation());
        }
    }

    /**
     * Runs {@code inspection} on the recovery point on the receiver thread, between two frames and while the applier
     * has caught up (it has no epoch to apply until the receiver hands it one), so it sees one whole applied epoch,
     * the one {@link RecoveryPoint#epoch()} names; e.g. to verify a digest or take a backup. Blocks until done.
     * With {@link StandbyContext#useAgentInvoker(boolean)} it runs at once on the calling thread, which steps both
     * duty cycles, and sees the epoch the applier has reached.
     *
     * @param inspection reads the recovery point; must not keep references to it.
     * @param <T>        its result type.
     * @return the inspection's result.
     * @throws IllegalStateException if the replica is torn, if called from the standby's own receiver or applier
     *                               thread (a listener: it reads the RecoveryPoint it is given), or if the
     *                               inspection does not run within 60 s.
     */
    public <T> T inspect(final java.util.function.Function<RecoveryPoint, T> inspection)
    {
        if (torn() != null)
        {
            throw new IllegalStateException(torn());
        }
        if (invoker != null)
        {
            if (session.writingBaselineInPlace())
            {
                throw new IllegalStateException(BASELINE_IN_PLACE);
            }
            // the caller steps the receiver and the applier: between steps nothing else runs
            return inspection.apply(image.recoveryPoint());
        }
        final Thread caller = Thread.currentThread();
        if (caller == session.thread() || caller == applier.thread())
        {
            // the receiver runs inspections once the applier caught up: waiting here, on either, waits for ever
            throw new IllegalStateException("inspect() called on the standby's " + caller.getName() + " thread (from " +
                "a StandbyListener?): it would wait for that very thread; a listener reads the RecoveryPoint it is " +
                "given instead");
        }
        final java.util.concurrent.CompletableFuture<T> result = new java.util.concurrent.CompletableFuture<>();
        synchronized (pendingInspections)
        {
            inspectionPending = true;
            pendingInspections.add(() ->
            {
                try
                {
                    final String tornReason = torn();
                    if (tornReason != null)
                    {
                        result.completeExceptionally(new IllegalStateException(tornReason));
                    }
                    else if (session.writingBaselineInPlace())
                    {
                        result.completeExceptionally(new IllegalStateException(BASELINE_IN_PLACE));
                    }
                    else
                    {
                        result.complete(inspection.apply(image.recoveryPoint()));
                    }
                }
                catch (final RuntimeException ex)
                {
                    result.completeExceptionally(ex);
                }
            });
        }
        try
        {
            return result.get(60, java.util.concurrent.TimeUnit.SECONDS);
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while inspecting the recovery point", ex);
        }
        catch (final java.util.concurrent.ExecutionException ex)
        {
            throw new IllegalStateException("inspection failed", ex.getCause());
        }
        catch (final java.util.concurrent.TimeoutException ex)
        {
            throw new IllegalStateException("the standby's receiver did not run the inspection within 60 s", ex);
        }
    }

    /**
     * Stops receiving and frees the replica. Idempotent.
     */
    @Override
    public synchronized void close()
    {
        if (closed)
        {
            // the documented idempotence: a second close must not free the replica's memory twice
            return;
        }
        closed = true;
        // the receiver first: once it is stopped nothing more is handed to the applier
        CloseHelper.quietCloseAll(runner, invoker, applierRunner, applierInvoker);
        synchronized (stageLock)
        {
            // the last look at the counters, then free them: the receiver has stopped writing them
            closedStatus = status();
            counters.close();
        }
        listener.close();
        image.close();
        CloseHelper.quietCloseAll(logs);
        // last: the directory is another standby's to take only once nothing of this one writes to it, and not
        // while a promoted guest that adopted the image's memory runs on its files in place (the memory image, the
        // disk images): a standby started there would write a baseline into them. The lock goes when that guest
        // lets the memory go (a target that adopts the disk images but copies the memory is not covered)
        if (lock.releaseUnlessAGuestRunsOn(image, ctx.vmId()))
        {
            LOG.info("VM {}: standby closed; its directory {} stays locked while the promoted guest runs on its " +
                "files", ctx.vmId(), ctx.directory());
        }
    }

    private void onAgentError(final Throwable error)
    {
        lastError = error.toString();
        LOG.error("standby receiver failed", error);
        session.drop();
        try
        {
            // asynchronous errors go to the one place the embedding VMM watches
            ctx.listener().onError(error);
        }
        catch (final RuntimeException ex)
        {
            LOG.warn("standby listener failed", ex);
        }
    }

    private void onApplierError(final Throwable error)
    {
        lastError = error.toString();
        LOG.error("standby applier failed", error);
        try
        {
            ctx.listener().onError(error);
        }
        catch (final RuntimeException ex)
        {
            LOG.warn("standby listener failed", ex);
        }
    }

    /**
     * @return null while the replica holds a whole recovery point; otherwise why it does not (the applier tore it).
     */
    private String torn()
    {
        return applier.tornReason();
    }

    static long clamp(final long ns)
    {
        return Math.min(LatencyDistribution.HIGHEST_RECORDED_NS, Math.max(0, ns));
    }

    private static final String BASELINE_IN_PLACE = "a baseline is being written into the replica, or was cut off " +
        "mid-copy: the replica holds no whole epoch until a baseline commits";
}
