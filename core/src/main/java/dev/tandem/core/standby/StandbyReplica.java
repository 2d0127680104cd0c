package dev.tandem.core.standby;

import dev.tandem.core.CommitWait;
import dev.tandem.core.failover.GenerationFile;
import dev.tandem.core.failover.Ownership;
import dev.tandem.core.metrics.CounterSet;
import dev.tandem.core.metrics.LatencyDistribution;
import dev.tandem.core.metrics.ProcessCounters;
import dev.tandem.core.metrics.StageLatency;
import dev.tandem.core.metrics.StandbyCommitEvent;
import dev.tandem.core.failover.Promotion;
import dev.tandem.core.metrics.FailoverEvent;
import dev.tandem.core.transport.Connection;
import dev.tandem.core.transport.Transport;
import dev.tandem.core.wire.FrameCodec;
import dev.tandem.core.wire.FrameDecoder;
import dev.tandem.core.wire.FrameReader;
import dev.tandem.core.wire.FrameWriter;
import dev.tandem.core.wire.FrameType;
import dev.tandem.core.wire.Handshake;
import dev.tandem.core.wire.ProtocolException.Fault;
import dev.tandem.core.wire.ProtocolException;
import dev.tandem.vmm.JvmAccess;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.OwnerOnlyFiles;
import dev.tandem.vmm.RecoveryPoint;
import org.agrona.CloseHelper;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.AgentInvoker;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.NanoClock;
import org.agrona.concurrent.OneToOneConcurrentArrayQueue;
import org.agrona.concurrent.UnsafeBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The standby side for one guest: the receiver reads the ordered stream, assembles each epoch in an {@link EpochLog}
 * behind its barrier, and commits epoch N only when all of delta N has arrived and verified against the epoch end;
 * then it hands the log to the applier and sends ack N at once. The applier, its own agent, replays the verified
 * epochs in order: disk writes up to barrier N to the disk images, pages to the memory replica, component state to
 * the component store. A partial or malformed epoch is never applied: the frame is refused with its fault, the epoch
 * discarded, the connection dropped, and the replica keeps its last commit.
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
    /** Receiver to applier: verified epochs, in epoch order. */
    private final OneToOneConcurrentArrayQueue<EpochLog> verifiedLogs;
    /** Applier to receiver: applied (and reset) logs to assemble the next epochs in. */
    private final OneToOneConcurrentArrayQueue<EpochLog> freeLogs;
    private final Receiver receiver;
    private final Applier applier;
    private final FailureDetector detector;
    private final Promoter promoter;
    /** The receiver's thread, or null when the caller steps it through {@link #invoker}. */
    private final AgentRunner runner;
    private final AgentInvoker invoker;
    /** The applier's thread, or null when the caller steps it through {@link #applierInvoker}. */
    private final AgentRunner applierRunner;
    private final AgentInvoker applierInvoker;
    private final NanoClock clock;
    private final Handshake.Hello expected;

    private volatile long lastCommittedEpoch;
    private volatile boolean closed;
    private volatile boolean connected;
    private final StandbyCounters counters;
    /** When the receiver publishes the commit percentile into its counter next (receiver thread only). */
    private long nextLatencyPublishNs;
    /** The last snapshot, taken while closing: afterwards the counters are freed; guarded by stageLock. */
    private StandbyStatus closedStatus;
    private volatile String lastError;
    /** Every arbiter and generation decision of this side. */
    private final Ownership ownership;
    /** The generation of the current session (frames must carry it); moves only up. */
    private volatile long generation;
    /** What the standby's ownership is doing, for status(): standby, claiming, promoted, superseded. */
    /** Barrier to the epoch's end read (the delta on the wire), after the session's baseline. */
    private final LatencyDistribution receiveStage = new LatencyDistribution();
    /** The applier replaying an epoch into the replica (disk writes, pages, state); recorded by the applier. */
    private final LatencyDistribution applyStage = new LatencyDistribution();
    /** Barrier read to ack written: what this side adds to the active's commit latency (applying is not in it). */
    private final LatencyDistribution commitStage = new LatencyDistribution();
    private final Object stageLock = new Object();
    private final List<Runnable> pendingInspections = new ArrayList<>();
    private volatile boolean inspectionPending;
    /** The receiver's thread once started (null when stepped by hand): inspect() must not wait on it from itself. */
    private volatile Thread receiverThread;

    private StandbyReplica(final StandbyContext ctx, final Transport.Listener listener, final DirectoryLock lock)
        throws IOException
    {
        this.ctx = ctx;
        this.listener = listener;
        this.lock = lock;
        this.clock = ctx.nanoClock();
        this.expected = new Handshake.Hello(FrameCodec.MIN_VERSION, FrameCodec.MAX_VERSION, ctx.vmId(),
            ctx.pageSize(), ctx.pageCount(), ctx.disks(), 1, 0, ctx.maxFramePayload());
        this.ownership = new Ownership(ctx.vmId(), ctx.promotionArbiter(),
            new GenerationFile(ctx.directory().resolve("generation")), ctx.generation());
        this.generation = ownership.generation();
        if (ctx.autoPromote() && ctx.promotionArbiter() == null)
        {
            LOG.warn("UNSAFE: standby for VM {} promotes automatically WITHOUT an arbiter; after a network " +
                "partition the guest can run on both hosts and clients can see contradicting output", ctx.vmId());
        }
        RecoveryImage createdImage = null;
        final EpochLog[] createdLogs = new EpochLog[ctx.epochLogs()];
        StandbyCounters createdCounters = null;
        try
        {
            createdCounters = new StandbyCounters(ctx.countersDirectory(), ctx.vmId());
            createdCounters.generation.setRelease(generation);
            createdImage = new RecoveryImage(ctx, () -> generation);
            // the memory budget is shared: each log holds its part in memory and spills the rest of its epoch
            final int logMemoryBytes = ctx.epochLogMemoryBytes() / createdLogs.length;
            for (int i = 0; i < createdLogs.length; i++)
            {
                createdLogs[i] = new EpochLog(logMemoryBytes, ctx.maxFramePayload(),
                    ctx.directory().resolve("epoch-" + i + ".spill"));
            }
        }
        catch (final RuntimeException ex)
        {
            CloseHelper.quietClose(createdImage);
            CloseHelper.quietCloseAll(createdLogs);
            CloseHelper.quietClose(createdCounters);
            throw ex;
        }
        this.counters = createdCounters;
        this.image = createdImage;
        this.logs = createdLogs;
        // each queue can hold every log, so handing one over never fails
        this.verifiedLogs = new OneToOneConcurrentArrayQueue<>(logs.length);
        this.freeLogs = new OneToOneConcurrentArrayQueue<>(logs.length);
        for (final EpochLog log : logs)
        {
            freeLogs.offer(log);
        }
        // the applier first: the receiver's assembler asks it how far the image is applied
        this.applier = new Applier(ctx, image, verifiedLogs, freeLogs, applyStage, () -> closed,
            reason -> lastError = reason);
        this.receiver = new Receiver();
        this.detector = new FailureDetector(clock, ctx.failureTimeoutNs());
        this.promoter = new Promoter(ctx, ownership, image, applier, detector, counters, () -> lastCommittedEpoch,
            receiver);
        if (ctx.useAgentInvoker())
        {
            this.runner = null;
            this.invoker = new AgentInvoker(this::onAgentError, null, receiver);
            this.applierRunner = null;
            this.applierInvoker = new AgentInvoker(this::onApplierError, null, applier);
        }
        else
        {
            this.runner = new AgentRunner(new BackoffIdleStrategy(100, 10, 1_000, 100_000), this::onAgentError, null,
                receiver);
            this.invoker = null;
            this.applierRunner = new AgentRunner(new BackoffIdleStrategy(100, 10, 1_000, 100_000),
                this::onApplierError, null, applier);
            this.applierInvoker = null;
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
     * @return the recovery point's epoch: the newest epoch received whole, verified and acknowledged; 0 before the
     *         baseline committed. The applier may still be applying it ({@link #appliedEpoch()}).
     */
    public long lastCommittedEpoch()
    {
        return lastCommittedEpoch;
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
        return CommitWait.until(epoch, timeout, () -> lastCommittedEpoch, () ->
        {
            final String ended = closed ? "closed" : promoter.promotion() != null ? "promoted" :
                torn() != null ? "torn (" + torn() + ")" : null;
            return ended == null ? null : "standby for VM " + ctx.vmId() + " is " + ended + " with epoch " +
                lastCommittedEpoch + " committed; epoch " + epoch + " will not commit here";
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
        return generation;
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
            stages = List.of(
                StageLatency.of("receive", receiveStage.refresh(), receiveStage.recent()),
                StageLatency.of("apply", applyStage.refresh(), applyStage.recent()),
                StageLatency.of("commit", commitStage.refresh(), commitStage.recent()));
            counters.commitP99Ns.setRelease(stages.get(2).p99Ns());
            counters.generation.setRelease(generation);
            // the counts are read from the counters a stat of the counters file shows
            return new StandbyStatus(lastCommittedEpoch, connected, counters.commits.get(),
                counters.framesReceived.get(), counters.bytesReceived.get(), counters.refusals.get(), lastError,
                generation, promoter.ownershipState(), ownership.attempts(), ownership.lastError(), stages, applier.appliedEpoch());
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
            counters.commitP99Ns.setRelease(commitStage.fold().getValueAtPercentile(99));
            counters.generation.setRelease(generation);
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
            if (receiver.assembler.writingBaselineInPlace())
            {
                throw new IllegalStateException(BASELINE_IN_PLACE);
            }
            // the caller steps the receiver and the applier: between steps nothing else runs
            return inspection.apply(image.recoveryPoint());
        }
        final Thread caller = Thread.currentThread();
        if (caller == receiverThread || caller == applier.thread())
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
                    else if (receiver.assembler.writingBaselineInPlace())
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
        // last: the directory is another standby's to take only once nothing of this one writes to it
        lock.close();
    }

    private void onAgentError(final Throwable error)
    {
        lastError = error.toString();
        LOG.error("standby receiver failed", error);
        receiver.drop();
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
     * The receive-verify-commit duty cycle: it hands each verified epoch to the applier and acks it at once.
     */
    private final class Receiver implements Agent, Promoter.Session
    {
        private final int bufferBytes = Math.max(4 << 20, 2 * (FrameCodec.HEADER_LENGTH + ctx.maxFramePayload()));
        private final FrameReader reader = new FrameReader(bufferBytes, ctx.maxFramePayload());
        private final UnsafeBuffer receiveBuffer = reader.buffer();
        private final FrameDecoder decoder = reader.decoder();
        /** Replies: acks, heartbeats, WELCOME, refusals with their reason. */
        private final FrameWriter writer = new FrameWriter(2048 - FrameCodec.HEADER_LENGTH);
        private final EpochAssembler assembler = new EpochAssembler(ctx, image, applier, freeLogs, reader,
            () -> lastCommittedEpoch);
        private final IdleStrategy ackIdle = ctx.newWaitStrategy();

        private Connection connection;
        private boolean handshakeDone;
        /**
         * The recovery point may be promoted: false once a newer session has started (its baseline replaces this
         * history) until that session commits, and after this side was superseded at the arbiter.
         */
        private boolean promotable = true;
        private long heartbeatIntervalNs = Long.MAX_VALUE;
        /**
         * The active sent a frame after the WELCOME: only then do heartbeats start, so that nothing follows the
         * WELCOME before the active reads it (the active refuses bytes it did not ask for there).
         */
        private boolean heardSinceWelcome;
        private long lastSentNs;
        private long nextAcceptCheckNs;
        /** The handshake already sent its REFUSE: reject() only lingers. */
        private boolean refusalSent;
        private final List<Lingering> lingering = new ArrayList<>();
        private final NativeMemory.Region drainRegion = NativeMemory.allocateDirect(64 * 1024, 64);
        private final ByteBuffer drainView = drainRegion.byteBuffer().duplicate();
        private int version;
        /** The current session has had a frame of its first epoch accepted: its baseline has started. */
        private boolean sessionStarted;
        /** The fingerprint of the recovery point: {@link Handshake#chain} over every epoch committed here. */
        private long fingerprint;
        /** This session resumes the recovery point (a quick resync): that point stays promotable meanwhile. */
        private boolean resyncSession;
        /** The active asked for a planned switchover: the promotion answers it before it drops the session. */
        private boolean switchoverAsked;

        @Override
        public String roleName()
        {
            return "tandem-standby-receiver";
        }

        @Override
        public void onStart()
        {
            receiverThread = Thread.currentThread();
        }

        @Override
        public int doWork() throws IOException
        {
            if (inspectionPending && (applier.appliedEpoch() == lastCommittedEpoch || torn() != null))
            {
                // the applier has caught up and gets nothing new while this thread inspects
                runInspections();
            }
            publishLatencies(clock.nanoTime());
            // first: a promoted standby still lets the switchover's answer be read before it closes that connection
            int work = lingering.isEmpty() ? 0 : drainLingering();
            if (promoter.promotion() != null)
            {
                return work;
            }
            if (promoter.finishing())
            {
                return work + promoter.finish();
            }
            if (torn() != null && connection != null)
            {
                refuseTorn();
                return work + 1;
            }
            if (promoter.claimWanted())
            {
                // a claim in progress (or an operator's request) is served even while the active streams on
                work += promoter.check();
                if (promoter.promotion() != null)
                {
                    return work;
                }
            }
            if (connection == null)
            {
                final int promoted = promoter.check();
                if (promoted > 0)
                {
                    return work + promoted;
                }
                final Connection accepted = listener.accept();
                if (accepted == null)
                {
                    return work;
                }
                connection = accepted;
                handshakeDone = false;
                reader.reset();
                assembler.discard();
                return work + 1;
            }
            final long now = clock.nanoTime();
            if (now >= nextAcceptCheckNs)
            {
                nextAcceptCheckNs = now + ACCEPT_CHECK_INTERVAL_NS;
                work += refuseSecondActive();
            }

            final int read;
            try
            {
                // waiting for the applier, this reads on only until the buffer is full: then the active's sends
                // back up (back-pressure) while the duty cycle goes on answering heartbeats and promotion requests
                read = reader.read(connection);
            }
            catch (final IOException ex)
            {
                fail("connection from " + connection.peer() + " failed: " + ex.getMessage());
                return 1;
            }
            if (read < 0)
            {
                fail("active " + connection.peer() + " closed the connection");
                return 1;
            }
            CounterSet.add(counters.bytesReceived, read);
            if (read > 0 || reader.full())
            {
                // any byte of the active is liveness; a buffer full of unprocessed frames is this side being busy
                detector.heard();
            }
            int frames = 0;
            if (assembler.readyForFrames())
            {
                try
                {
                    while (connection != null && reader.next())
                    {
                        if (mustWait())
                        {
                            // left unconsumed: decoded again once the applier lets it through
                            break;
                        }
                        onFrame();
                        reader.consume();
                        frames++;
                    }
                }
                catch (final ProtocolException ex)
                {
                    reject(ex);
                    return 1;
                }
                catch (final IOException ex)
                {
                    // an answer (an ack) could not be written: the link is gone, as when a read fails
                    fail("connection from " + (connection == null ? "the active" : connection.peer()) + " failed: " +
                        ex.getMessage());
                    return 1;
                }
                if (connection != null)
                {
                    reader.compact();
                }
            }
            // after reading: a peer that closed is reported by the read, not as a failed heartbeat
            if (connection != null && heardSinceWelcome && clock.nanoTime() - lastSentNs >= heartbeatIntervalNs)
            {
                // the active's liveness evidence: it counts only what this side sends, never what its socket took
                try
                {
                    sendFrame(FrameType.HEARTBEAT, lastCommittedEpoch, 0);
                }
                catch (final IOException ex)
                {
                    fail("connection from " + connection.peer() + " failed: " + ex.getMessage());
                    return work + 1;
                }
                work++;
            }
            // judged only after reading: a receiver the OS kept off the CPU must not mistake bytes waiting in its
            // socket for silence of the active
            return work + frames + (read > 0 ? 1 : 0) + (read == 0 ? promoter.check() : 0);
        }

        /**
         * Whether the frame just decoded must wait for the applier, which then owns every other log or has not yet
         * applied the base the frame's XOR deltas are decoded against. Decided before anything of the frame is
         * counted or kept, so the same frame is simply decoded again once the wait ends.
         */
        private boolean mustWait()
        {
            if (!handshakeDone || decoder.generation() != generation || decoder.epoch() != assembler.nextEpoch())
            {
                // refused by onFrame, or no epoch data
                return false;
            }
            return assembler.mustWait();
        }

        /**
         * The applier failed after the receiver acked: this replica takes no further epoch, and the active hears why.
         */
        private void refuseTorn()
        {
            final Connection served = connection;
            connection = null;
            drop();
            refuseAndLinger(served, torn());
        }

        /**
         * A second active connecting while one is served gets a refusal it can read, not a silent timeout.
         */
        private int refuseSecondActive() throws IOException
        {
            final Connection extra = listener.accept();
            if (extra == null)
            {
                return 0;
            }
            refuseAndLinger(extra, "the standby of VM " + ctx.vmId() + " already serves an active (" +
                connection.peer() + "); a second active is refused");
            return 1;
        }

        /**
         * Sends a REFUSE with its reason, then keeps reading (and discarding) until the peer closes or a second
         * passes: closing a socket with unread bytes resets it, and the reset can overtake the refusal.
         */
        private void refuseAndLinger(final Connection peer, final String reason)
        {
            final Connection served = connection;
            connection = peer;
            try
            {
                final int length = Handshake.encodeReason(writer.subHeader(), FrameCodec.HEADER_LENGTH, reason);
                sendFrame(FrameType.REFUSE, lastCommittedEpoch, length);
                lingering.add(new Lingering(peer, clock.nanoTime() + LINGER_NS));
            }
            catch (final IOException | RuntimeException ex)
            {
                peer.close();
            }
            finally
            {
                connection = served;
            }
        }

        private int drainLingering()
        {
            final long now = clock.nanoTime();
            int work = 0;
            for (int i = lingering.size() - 1; i >= 0; i--)
            {
                final Lingering entry = lingering.get(i);
                int read;
                try
                {
                    drainView.clear();
                    read = entry.connection.read(drainView);
                }
                catch (final IOException ex)
                {
                    read = -1;
                }
                if (read < 0 || now > entry.deadlineNs)
                {
                    entry.connection.close();
                    lingering.remove(i);
                    work++;
                }
            }
            return work;
        }

        @Override
        public boolean promotable()
        {
            return promotable;
        }

        @Override
        public void forbidPromotion()
        {
            promotable = false;
        }

        @Override
        public long generation()
        {
            return generation;
        }

        @Override
        public void generation(final long won)
        {
            generation = won;
        }

        @Override
        public void answerSwitchover(final long won)
        {
            if (!switchoverAsked || connection == null)
            {
                return;
            }
            // the active waits, its guest paused, for this answer: it stops its copy for good on it. Sent under the
            // session's generation (the active refuses any other); the one won is the payload
            try
            {
                writer.subHeader().putLong(FrameCodec.HEADER_LENGTH, won);
                sendFrame(FrameType.SWITCHOVER, lastCommittedEpoch, 8);
                // closed once the active closes it (or in a second): a close with unread bytes would reset the
                // connection, and the reset can overtake the answer
                lingering.add(new Lingering(connection, clock.nanoTime() + LINGER_NS));
                connection = null;
            }
            catch (final IOException ex)
            {
                LOG.warn("could not answer the switchover of {}: {}; it learns of generation {} from the arbiter",
                    connection.peer(), ex.getMessage(), won);
            }
        }

        @Override
        public void stopListening()
        {
            listener.close();
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

        @Override
        public void onClose()
        {
            drop();
            lingering.forEach(entry -> entry.connection.close());
            lingering.clear();
            drainRegion.close();
            reader.close();
            writer.close();
            assembler.close();
        }

        private void onFrame() throws IOException
        {
            CounterSet.add(counters.framesReceived, 1);
            final FrameType type = decoder.type();
            if (!handshakeDone)
            {
                onHello(type);
                return;
            }
            if (decoder.generation() != generation)
            {
                throw new ProtocolException(Fault.STALE_GENERATION, type + " frame of generation " +
                    decoder.generation() + "; this standby serves generation " + generation);
            }
            heardSinceWelcome = true;
            if (type == FrameType.HEARTBEAT)
            {
                return;
            }
            if (type == FrameType.GOODBYE)
            {
                detector.goodbye(true);
                LOG.info("active {} stopped protection of VM {} on purpose; recovery point stays at epoch {}",
                    connection.peer(), ctx.vmId(), lastCommittedEpoch);
                try
                {
                    // the answer is the active's proof that this side will not promote on the silence that follows
                    sendFrame(FrameType.GOODBYE, lastCommittedEpoch, 0);
                }
                catch (final IOException ex)
                {
                    LOG.info("could not answer the GOODBYE of {}: {}", connection.peer(), ex.getMessage());
                }
                drop();
                return;
            }
            if (type == FrameType.REFUSE)
            {
                // the active is alive and stops protecting on purpose: its silence is no failure to promote on
                detector.goodbye(true);
                fail("active " + connection.peer() + " refused this standby: " +
                    Handshake.decodeReason(receiveBuffer, decoder.payloadIndex(), decoder.length()));
                return;
            }
            if (type == FrameType.SWITCHOVER)
            {
                EpochAssembler.requireLength(type, decoder.length(), 0);
                if (decoder.epoch() != lastCommittedEpoch || assembler.inAssembly())
                {
                    throw new ProtocolException(Fault.EPOCH_OUT_OF_ORDER, "SWITCHOVER at epoch " + decoder.epoch() +
                        " but this standby's recovery point is epoch " + lastCommittedEpoch +
                        (assembler.inAssembly() ? " with epoch " + assembler.nextEpoch() + " in assembly" : ""));
                }
                LOG.info("active {} hands VM {} over at epoch {} (planned switchover)", connection.peer(), ctx.vmId(),
                    lastCommittedEpoch);
                switchoverAsked = true;
                promoter.request("planned switchover: the active paused the guest at epoch " + lastCommittedEpoch);
                return;
            }
            if (type == FrameType.FAILURE_REPORT)
            {
                final String reason = Handshake.decodeReason(receiveBuffer, decoder.payloadIndex(), decoder.length());
                LOG.error("active {} reports VM {} unhealthy: {}", connection.peer(), ctx.vmId(), reason);
                promoter.failureReported("the active reported the guest unhealthy: " + reason);
                drop();
                return;
            }
            final long epoch = decoder.epoch();
            final long expectedEpoch = assembler.nextEpoch();
            if (epoch != expectedEpoch)
            {
                throw new ProtocolException(Fault.EPOCH_OUT_OF_ORDER, type + " frame of epoch " + epoch + " " +
                    (epoch < expectedEpoch ? "goes backwards" : "skips ahead") + "; expected epoch " + expectedEpoch);
            }
            if (!sessionStarted)
            {
                // this session's baseline has started and replaces the history: the old recovery point is not
                // promoted until the session commits. A resync builds on the recovery point instead (its epoch is
                // staged whole before it is applied), so that point stays what a promotion resumes
                sessionStarted = true;
                promotable = promotable && resyncSession;
            }
            if (!EpochAssembler.isEpochData(type))
            {
                throw new ProtocolException(Fault.UNKNOWN_TYPE, type + " frame is not valid from an active");
            }
            if (type == FrameType.EPOCH_END && torn() != null)
            {
                // before the assembler hands the epoch over: a torn replica commits nothing more
                throw new ProtocolException(Fault.REFUSED, torn());
            }
            final EpochLog verified = assembler.onFrame();
            if (verified != null)
            {
                commit(verified);
            }
        }

        private void onHello(final FrameType type) throws IOException
        {
            if (type != FrameType.HELLO)
            {
                throw new ProtocolException(Fault.UNKNOWN_TYPE, "expected HELLO first, got " + type);
            }
            final Handshake.Hello hello = Handshake.Hello.decode(receiveBuffer, decoder.payloadIndex(), decoder.length());
            try
            {
                if (torn() != null)
                {
                    throw new ProtocolException(Fault.REFUSED, torn());
                }
                version = hello.accept(expected);
                final long arbiterGeneration;
                try
                {
                    arbiterGeneration = ownership.arbiterGeneration();
                }
                catch (final RuntimeException ex)
                {
                    throw new ProtocolException(Fault.REFUSED, "the standby cannot reach its arbiter to check the " +
                        "active's generation " + hello.generation() + " (" + ex.getMessage() + "); try again later");
                }
                if (hello.generation() < arbiterGeneration)
                {
                    throw new ProtocolException(Fault.STALE_GENERATION, "active serves generation " +
                        hello.generation() + " but the arbiter holds generation " + arbiterGeneration +
                        ": another side owns VM " + ctx.vmId() + " and that active was fenced");
                }
                if (hello.generation() != 0 && hello.generation() < generation)
                {
                    throw new ProtocolException(Fault.STALE_GENERATION, "active last served generation " +
                        hello.generation() + " but generation " + generation + " exists: that active was fenced");
                }
                if (hello.firstEpoch() != 0 && hello.firstEpoch() <= lastCommittedEpoch)
                {
                    throw new ProtocolException(Fault.EPOCH_OUT_OF_ORDER, "active resumes at epoch " +
                        hello.firstEpoch() + " but this standby committed epoch " + lastCommittedEpoch + " already");
                }
                if (hello.heartbeatIntervalNs() * StandbyContext.MIN_HEARTBEATS_PER_TIMEOUT > ctx.failureTimeoutNs())
                {
                    throw new ProtocolException(Fault.TIMING_MISMATCH, "active heartbeat every " +
                        hello.heartbeatIntervalNs() / 1000 + " us but the standby's failureTimeoutNs is " +
                        ctx.failureTimeoutNs() / 1000 + " us; it must be at least " +
                        StandbyContext.MIN_HEARTBEATS_PER_TIMEOUT + " heartbeats");
                }
            }
            catch (final ProtocolException ex)
            {
                final int length = Handshake.encodeReason(writer.subHeader(), FrameCodec.HEADER_LENGTH,
                    ex.getMessage());
                sendFrame(FrameType.REFUSE, 0, length);
                refusalSent = true;
                throw ex;
            }
            decoder.negotiated(version);
            final long servedBefore = generation;
            // generations only move up: the session runs at the higher of both sides', persisted before WELCOME
            generation = ownership.adopt(hello.generation());
            // the recovery point is one of the active's own checkpoints (same epoch, same chain of frames): only the
            // changes since follow; anything else (another history, an empty replica) gets a whole baseline
            final boolean resync = lastCommittedEpoch >= 1 && hello.names(lastCommittedEpoch, fingerprint);
            final int length = new Handshake.Welcome(version, lastCommittedEpoch, generation, ctx.failureTimeoutNs(),
                fingerprint, resync).encode(writer.subHeader(), FrameCodec.HEADER_LENGTH);
            sendFrame(FrameType.WELCOME, lastCommittedEpoch, length);
            handshakeDone = true;
            connected = true;
            counters.connected.setRelease(1);
            CounterSet.add(counters.sessions, 1);
            detector.goodbye(false);
            heartbeatIntervalNs = hello.heartbeatIntervalNs();
            sessionStarted = false;
            resyncSession = resync;
            switchoverAsked = false;
            assembler.startSession(hello.firstEpoch() != 0 ? hello.firstEpoch() : lastCommittedEpoch + 1);
            if (hello.generation() > servedBefore)
            {
                // the active owned the guest under a generation this recovery point never saw, and may have let
                // output leave beyond it: that history must not come back
                promotable = false;
            }
            // otherwise the old recovery point stays promotable until a frame of this session is accepted: a session
            // that handshakes and then dies (or a replayed HELLO refused at its first frame) changed nothing
            LOG.info("active {} connected for VM {}; recovery point is epoch {}{}", connection.peer(), hello.vmId(),
                lastCommittedEpoch, resync ? ", resumed: only what changed since follows, from epoch " + assembler.nextEpoch() :
                hello.history().isEmpty() ? "" : ", not one of the active's checkpoints: a whole baseline follows");
        }

        /**
         * Epoch {@code verified.epoch} arrived whole and verified: it is committed, handed to the applier, and acked
         * at once.
         */
        private void commit(final EpochLog verified) throws IOException
        {
            final long epoch = verified.epoch;
            counters.committedEpoch.setRelease(epoch);
            fingerprint = Handshake.chain(fingerprint, epoch, verified.crcSum);
            lastCommittedEpoch = epoch;
            CounterSet.add(counters.commits, 1);
            promotable = true;
            detector.heard();
            try
            {
                sendFrame(FrameType.ACK, epoch, 0);
                verified.ackedNs = clock.nanoTime();
            }
            finally
            {
                // committed is committed, whether or not the ack got out: the applier applies it, in epoch order
                if (!verifiedLogs.offer(verified))
                {
                    throw new IllegalStateException("more verified epochs than epoch logs");
                }
            }
            if (!verified.baseline)
            {
                receiveStage.recorder().recordValue(clamp(verified.receivedNs - verified.barrierNs));
                commitStage.recorder().recordValue(clamp(verified.ackedNs - verified.barrierNs));
            }
        }

        /**
         * An active that does not read its replies for the failure timeout is as good as gone. A field: a lambda
         * made per reply would allocate on every ack.
         */
        private final FrameWriter.Stall repliesStalled = stalledNs ->
        {
            if (stalledNs > ctx.failureTimeoutNs())
            {
                throw new IOException("active " + connection.peer() + " has not read its acks for " +
                    ctx.failureTimeoutNs() / 1_000_000 + " ms");
            }
            ackIdle.idle();
        };

        private void sendFrame(final FrameType type, final long epoch, final int payloadLength) throws IOException
        {
            writer.begin(version == 0 ? FrameCodec.MAX_VERSION : version, type, generation, epoch, payloadLength,
                null);
            ackIdle.reset();
            lastSentNs = clock.nanoTime();
            try
            {
                writer.writeAll(connection, repliesStalled, clock);
            }
            catch (final IOException ex)
            {
                // the connection is dropped on this: the next one starts with no frame half-written
                writer.abandon();
                throw ex;
            }
        }

        private void reject(final ProtocolException ex)
        {
            // the message first: whoever sees the count rise must find this error, not the one before it
            lastError = ex.getMessage();
            CounterSet.add(counters.refusals, 1);
            LOG.warn("refused frame from {}: {}; epoch {} discarded, recovery point stays at epoch {}",
                connection == null ? "?" : connection.peer(), ex.getMessage(), assembler.nextEpoch(),
                lastCommittedEpoch);
            final Connection refused = connection;
            connection = null;
            drop();
            if (refused != null && !refusalSent)
            {
                // the active's error must name this reason, not just a lost connection
                refuseAndLinger(refused, ex.getMessage());
            }
            else if (refused != null)
            {
                lingering.add(new Lingering(refused, clock.nanoTime() + LINGER_NS));
            }
            refusalSent = false;
            ctx.listener().onError(ex);
        }

        private void fail(final String message)
        {
            lastError = message;
            LOG.warn("{}; epoch {} discarded, recovery point stays at epoch {}", message, assembler.nextEpoch(),
                lastCommittedEpoch);
            drop();
            ctx.listener().onError(new IOException(message));
        }

        @Override
        public void drop()
        {
            if (connection != null)
            {
                connection.close();
                connection = null;
            }
            connected = false;
            counters.connected.setRelease(0);
            handshakeDone = false;
            heardSinceWelcome = false;
            assembler.discard();
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

    /** How often a served standby looks for (and refuses) a second active. */
    private static final long ACCEPT_CHECK_INTERVAL_NS = 10_000_000L;
    /** How long a refused connection is read (and discarded) before it is closed. */
    private static final long LINGER_NS = 1_000_000_000L;

    /**
     * A refused connection, read until its peer closes so the refusal is not overtaken by a reset.
     */
    private record Lingering(Connection connection, long deadlineNs)
    {
    }
}
