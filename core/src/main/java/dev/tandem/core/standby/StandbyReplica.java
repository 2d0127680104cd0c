package dev.tandem.core.standby;

import dev.tandem.core.CommitWait;
import dev.tandem.core.codec.PageCodec;
import dev.tandem.core.failover.GenerationFile;
import dev.tandem.core.failover.Ownership;
import dev.tandem.core.metrics.CounterSet;
import dev.tandem.core.metrics.LatencyDistribution;
import dev.tandem.core.metrics.ProcessCounters;
import dev.tandem.core.metrics.StageLatency;
import dev.tandem.core.metrics.StandbyCommitEvent;
import dev.tandem.core.failover.Promotion;
import dev.tandem.core.failover.PromotionArbiter;
import dev.tandem.core.failover.PromotionListener;
import dev.tandem.core.metrics.FailoverEvent;
import dev.tandem.core.transport.Connection;
import dev.tandem.core.transport.Transport;
import dev.tandem.core.wire.FrameCodec;
import dev.tandem.core.wire.FrameDecoder;
import dev.tandem.core.wire.FrameType;
import dev.tandem.core.wire.Handshake;
import dev.tandem.core.wire.PeerBinding;
import dev.tandem.core.wire.ProtocolException.Fault;
import dev.tandem.core.wire.ProtocolException;
import dev.tandem.vmm.FileVirtualDisk;
import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.JvmAccess;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.OwnerOnlyFiles;
import dev.tandem.vmm.RecoveryPoint;
import dev.tandem.vmm.VirtualDisk;
import dev.tandem.vmm.VmmAdapter;
import org.agrona.CloseHelper;
import org.agrona.ExpandableDirectByteBuffer;
import org.agrona.collections.Int2IntHashMap;
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
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

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
    private final MemoryReplica memory;
    private final List<FileVirtualDisk> disks = new ArrayList<>();
    private final FileVirtualDisk[] disksById;
    private final ComponentStore components = new ComponentStore();
    private final DirectoryLock lock;
    /** Every epoch log, allocated at launch and freed at close, wherever each one is at that moment. */
    private final EpochLog[] logs;
    /** Receiver to applier: verified epochs, in epoch order. */
    private final OneToOneConcurrentArrayQueue<EpochLog> verifiedLogs;
    /** Applier to receiver: applied (and reset) logs to assemble the next epochs in. */
    private final OneToOneConcurrentArrayQueue<EpochLog> freeLogs;
    private final Receiver receiver;
    private final Applier applier;
    /** The receiver's thread, or null when the caller steps it through {@link #invoker}. */
    private final AgentRunner runner;
    private final AgentInvoker invoker;
    /** The applier's thread, or null when the caller steps it through {@link #applierInvoker}. */
    private final AgentRunner applierRunner;
    private final AgentInvoker applierInvoker;
    private final NanoClock clock;
    private final Handshake.Hello expected;

    private volatile long lastCommittedEpoch;
    /**
     * The newest epoch the applier is done with (applied, and the commit listener called): equal to
     * {@link #lastCommittedEpoch} when the applier holds no epoch and will get none until the receiver commits
     * again, so the receiver may then read or hand over the replica.
     */
    private volatile long appliedEpoch;
    /** The epoch the replica's contents are, set by the applier as soon as an epoch is applied. */
    private volatile long replicaEpoch;
    private volatile boolean closed;
    private volatile boolean connected;
    private final StandbyCounters counters;
    /** When the receiver publishes the commit percentile into its counter next (receiver thread only). */
    private long nextLatencyPublishNs;
    /** The last snapshot, taken while closing: afterwards the counters are freed; guarded by stageLock. */
    private StandbyStatus closedStatus;
    private volatile String lastError;
    private volatile String torn;
    /** Every arbiter and generation decision of this side. */
    private final Ownership ownership;
    /** The generation of the current session (frames must carry it); moves only up. */
    private volatile long generation;
    /** What the standby's ownership is doing, for status(): standby, claiming, promoted, superseded. */
    private volatile String ownershipState = "standby";
    private volatile String promoteRequest;
    /** True only while the ReplicaTarget resumes the guest: the one moment its memory may be adopted. */
    private boolean resuming;
    /** Barrier to the epoch's end read (the delta on the wire), after the session's baseline. */
    private final LatencyDistribution receiveStage = new LatencyDistribution();
    /** The applier replaying an epoch into the replica (disk writes, pages, state); recorded by the applier. */
    private final LatencyDistribution applyStage = new LatencyDistribution();
    /** Barrier read to ack written: what this side adds to the active's commit latency (applying is not in it). */
    private final LatencyDistribution commitStage = new LatencyDistribution();
    private final Object stageLock = new Object();
    private volatile Promotion promotion;
    private volatile String promotionRefused;
    private final List<Runnable> pendingInspections = new ArrayList<>();
    private volatile boolean inspectionPending;
    /** A baseline has written into the replica directly: it holds no whole epoch until that baseline commits. */
    private volatile boolean baselineInPlace;
    /** The receiver's and the applier's threads once started (null when stepped by hand): inspect() must not wait
     * on either from itself. */
    private final Thread[] dutyThreads = new Thread[2];

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
        int maxId = -1;
        for (final Handshake.Disk disk : ctx.disks())
        {
            maxId = Math.max(maxId, disk.id());
        }
        this.disksById = new FileVirtualDisk[maxId + 1];
        MemoryReplica createdMemory = null;
        final EpochLog[] createdLogs = new EpochLog[ctx.epochLogs()];
        StandbyCounters createdCounters = null;
        try
        {
            createdCounters = new StandbyCounters(ctx.countersDirectory(), ctx.vmId());
            createdCounters.generation.setRelease(generation);
            for (final Handshake.Disk disk : ctx.disks())
            {
                final FileVirtualDisk replica = ctx.diskImageOpener().open(
                    ctx.directory().resolve("disk-" + disk.id() + ".img"), disk);
                disks.add(replica);
                disksById[disk.id()] = replica;
            }
            createdMemory = new MemoryReplica(ctx.pageSize(), ctx.pageCount());
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
            disks.forEach(FileVirtualDisk::close);
            CloseHelper.quietClose(createdMemory);
            CloseHelper.quietCloseAll(createdLogs);
            CloseHelper.quietClose(createdCounters);
            throw ex;
        }
        this.counters = createdCounters;
        this.memory = createdMemory;
        this.logs = createdLogs;
        // each queue can hold every log, so handing one over never fails
        this.verifiedLogs = new OneToOneConcurrentArrayQueue<>(logs.length);
        this.freeLogs = new OneToOneConcurrentArrayQueue<>(logs.length);
        for (final EpochLog log : logs)
        {
            freeLogs.offer(log);
        }
        this.receiver = new Receiver();
        this.applier = new Applier();
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
        return appliedEpoch;
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
            final String ended = closed ? "closed" : promotion != null ? "promoted" :
                torn != null ? "torn (" + torn + ")" : null;
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
        promoteRequest = reason;
    }

    /**
     * @return the promotion that happened, or null.
     */
    public Promotion promotion()
    {
        return promotion;
    }

    /**
     * @return why the last promotion was refused (the standby serves on and may promote later), or null.
     */
    public String promotionRefused()
    {
        return promotionRefused;
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
        return torn;
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
                generation, ownershipState, ownership.attempts(), ownership.lastError(), stages, appliedEpoch);
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
        if (torn != null)
        {
            throw new IllegalStateException(torn);
        }
        if (invoker != null)
        {
            if (baselineInPlace)
            {
                throw new IllegalStateException(BASELINE_IN_PLACE);
            }
            // the caller steps the receiver and the applier: between steps nothing else runs
            return inspection.apply(recoveryPoint);
        }
        final Thread caller = Thread.currentThread();
        if (caller == dutyThreads[0] || caller == dutyThreads[1])
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
                    final String tornReason = torn;
                    if (tornReason != null)
                    {
                        result.completeExceptionally(new IllegalStateException(tornReason));
                    }
                    else if (baselineInPlace)
                    {
                        result.completeExceptionally(new IllegalStateException(BASELINE_IN_PLACE));
                    }
                    else
                    {
                        result.complete(inspection.apply(recoveryPoint));
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
        memory.close();
        disks.forEach(FileVirtualDisk::close);
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

    private final RecoveryPoint recoveryPoint = new RecoveryPoint()
    {
        @Override
        public String vmId()
        {
            return ctx.vmId();
        }

        @Override
        public long epoch()
        {
            return replicaEpoch;
        }

        @Override
        public long generation()
        {
            return generation;
        }

        @Override
        public GuestMemory memory()
        {
            return memory.view();
        }

        @Override
        public NativeMemory.Region adoptMemory()
        {
            if (!resuming)
            {
                throw new IllegalStateException("the replica's memory can be adopted only by the ReplicaTarget " +
                    "during promotion");
            }
            return memory.adopt();
        }

        @Override
        public List<ComponentState> components()
        {
            return components.states();
        }

        @Override
        public List<VirtualDisk> disks()
        {
            return List.copyOf(disks);
        }

        @Override
        public Path diskImage(final int diskId)
        {
            if (diskId < 0 || diskId >= disksById.length || disksById[diskId] == null)
            {
                throw new IllegalArgumentException("no disk " + diskId);
            }
            return disksById[diskId].path();
        }
    };

    /**
     * The receive-verify-commit duty cycle: it hands each verified epoch to the applier and acks it at once.
     */
    private final class Receiver implements Agent
    {
        private final int bufferBytes = Math.max(4 << 20, 2 * (FrameCodec.HEADER_LENGTH + ctx.maxFramePayload()));
        private final NativeMemory.Region receiveRegion = NativeMemory.allocateDirect(bufferBytes, 4096);
        private final UnsafeBuffer receiveBuffer = new UnsafeBuffer(receiveRegion.byteBuffer());
        private final ByteBuffer receiveView = receiveRegion.byteBuffer().duplicate();
        private final ByteBuffer crcView = receiveRegion.byteBuffer().duplicate();
        private final ByteBuffer dataView = receiveRegion.byteBuffer().duplicate();
        private final NativeMemory.Region sendRegion = NativeMemory.allocateDirect(2048, 64);
        private final UnsafeBuffer sendBuffer = new UnsafeBuffer(sendRegion.byteBuffer());
        private final ByteBuffer[] sendGather = {sendRegion.byteBuffer().duplicate()};
        private final FrameDecoder decoder = new FrameDecoder(ctx.maxFramePayload());
        private final PageCodec codec = new PageCodec(ctx.pageSize(), 0);
        private final NativeMemory.Region decodedRegion = NativeMemory.allocateDirect(
            Math.max(ctx.pageSize(), ctx.maxFramePayload() / (ctx.pageSize() + PageCodec.ENTRY_HEADER) * ctx.pageSize()),
            4096);
        private final UnsafeBuffer decodedBuffer = new UnsafeBuffer(decodedRegion.byteBuffer());
        private final ByteBuffer decodedView = decodedRegion.byteBuffer().duplicate();
        private final CRC32C crc = new CRC32C();
        private final IdleStrategy ackIdle = ctx.newWaitStrategy();

        private Connection connection;
        private boolean handshakeDone;
        /** The active said it stops on purpose (GOODBYE, or it refused this standby): its silence is no failure. */
        private boolean goodbye;
        /**
         * The recovery point may be promoted: false once a newer session has started (its baseline replaces this
         * history) until that session commits, and after this side was superseded at the arbiter.
         */
        private boolean promotable = true;
        private long heartbeatIntervalNs = Long.MAX_VALUE;
        private boolean sessionBaselinePending;
        private long barrierNs;
        /**
         * The active sent a frame after the WELCOME: only then do heartbeats start, so that nothing follows the
         * WELCOME before the active reads it (the active refuses bytes it did not ask for there).
         */
        private boolean heardSinceWelcome;
        private long lastSentNs;
        private long nextAcceptCheckNs;
        private String pendingPromotion;
        /** The handshake already sent its REFUSE: reject() only lingers. */
        private boolean refusalSent;
        private long pendingDetectionNs;
        private long pendingStartNs;
        private long nextClaimNs;
        private final List<Lingering> lingering = new ArrayList<>();
        private final NativeMemory.Region drainRegion = NativeMemory.allocateDirect(64 * 1024, 64);
        private final ByteBuffer drainView = drainRegion.byteBuffer().duplicate();
        private String failureReport;
        private long lastFrameNs = clock.nanoTime();
        private int version;
        private boolean barrierSeen;
        private long epochPages;
        private int epochFrames;
        private int epochDiskWrites;
        private int epochComponents;
        private long epochCrcSum;
        /** The current session has had a frame of its first epoch accepted: its baseline has started. */
        private boolean sessionStarted;
        /** The epoch the next data frame must carry: after the recovery point, or a resuming session's first. */
        private long nextEpoch = 1;
        /** The fingerprint of the recovery point: {@link Handshake#chain} over every epoch committed here. */
        private long fingerprint;
        /** This session resumes the recovery point (a quick resync): that point stays promotable meanwhile. */
        private boolean resyncSession;
        /** The active asked for a planned switchover: the promotion answers it before it drops the session. */
        private boolean switchoverAsked;
        /** The log epoch {@code nextEpoch} is assembled in; null until its first frame takes one. */
        private EpochLog assembling;
        /** Why the frame at the start of the receive buffer waits for the applier, or {@link #STALL_NONE}. */
        private int stall = STALL_NONE;
        /** The claim is won and the session dropped: the promotion waits for the applier to finish, then resumes. */
        private boolean finishingPromotion;
        private String promotionReason;
        private long promotionDetectionNs;
        private long promotionStartNs;

        @Override
        public String roleName()
        {
            return "tandem-standby-receiver";
        }

        @Override
        public void onStart()
        {
            dutyThreads[0] = Thread.currentThread();
        }

        @Override
        public int doWork() throws IOException
        {
            if (inspectionPending && (appliedEpoch == lastCommittedEpoch || torn != null))
            {
                // the applier has caught up and gets nothing new while this thread inspects
                runInspections();
            }
            publishLatencies(clock.nanoTime());
            // first: a promoted standby still lets the switchover's answer be read before it closes that connection
            int work = lingering.isEmpty() ? 0 : drainLingering();
            if (promotion != null)
            {
                return work;
            }
            if (finishingPromotion)
            {
                return work + finishPromotion();
            }
            if (torn != null && connection != null)
            {
                refuseTorn();
                return work + 1;
            }
            if (pendingPromotion != null || promoteRequest != null)
            {
                // a claim in progress (or an operator's request) is served even while the active streams on
                work += checkForFailure();
                if (promotion != null)
                {
                    return work;
                }
            }
            if (connection == null)
            {
                final int promoted = checkForFailure();
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
                decoder.reset();
                receiveView.clear();
                discardEpoch();
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
                read = receiveView.hasRemaining() ? connection.read(receiveView) : 0;
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
            if (read > 0 || !receiveView.hasRemaining())
            {
                // any byte of the active is liveness; a buffer full of unprocessed frames is this side being busy
                lastFrameNs = clock.nanoTime();
            }
            int frames = 0;
            if (stall == STALL_NONE || stallEnded())
            {
                stall = STALL_NONE;
                int position = 0;
                final int limit = receiveView.position();
                try
                {
                    int frameLength;
                    while (connection != null &&
                        (frameLength = decoder.decode(receiveBuffer, crcView, position, limit - position)) > 0)
                    {
                        if (mustWait())
                        {
                            // resumed at this frame, decoded again, once the applier lets it through
                            break;
                        }
                        onFrame();
                        position += frameLength;
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
                if (connection != null && position > 0)
                {
                    receiveBuffer.putBytes(0, receiveBuffer, position, limit - position);
                    receiveView.position(limit - position);
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
            return work + frames + (read > 0 ? 1 : 0) + (read == 0 ? checkForFailure() : 0);
        }

        /**
         * Whether the frame just decoded must wait for the applier, which then owns every other log or has not yet
         * applied the base the frame's XOR deltas are decoded against. Decided before anything of the frame is
         * counted or kept, so the same frame is simply decoded again once the wait ends.
         */
        private boolean mustWait()
        {
            if (!handshakeDone || decoder.generation() != generation || decoder.epoch() != nextEpoch)
            {
                // refused by onFrame, or no epoch data
                return false;
            }
            final FrameType type = decoder.type();
            switch (type)
            {
                case DISK_WRITE:
                case DISK_FLUSH:
                case BARRIER:
                case PAGES:
                case PAGES_ENCODED:
                case COMPONENT:
                case EPOCH_END:
                    break;
                default:
                    return false;
            }
            if (assembling == null && (assembling = freeLogs.poll()) == null)
            {
                stall = STALL_NO_LOG;
                return true;
            }
            if (type == FrameType.PAGES_ENCODED && appliedEpoch != lastCommittedEpoch &&
                hasXorDelta(decoder.payloadIndex(), decoder.length()))
            {
                stall = STALL_APPLIER_BEHIND;
                return true;
            }
            return false;
        }

        private boolean stallEnded()
        {
            return stall == STALL_NO_LOG ? !freeLogs.isEmpty() : appliedEpoch == lastCommittedEpoch;
        }

        /**
         * An XOR delta is decoded against the replica as of the last commit: while the applier lags it is not there
         * yet. Walks the entries' headers only; a malformed run is left to the decoder to refuse.
         */
        private boolean hasXorDelta(final int index, final int length)
        {
            if (length < FrameCodec.PAGES_HEADER)
            {
                return false;
            }
            final int count = receiveBuffer.getInt(index + 8);
            final int end = index + length;
            int offset = index + FrameCodec.PAGES_HEADER;
            for (int i = 0; i < count && offset <= end - PageCodec.ENTRY_HEADER; i++)
            {
                final int header = receiveBuffer.getInt(offset);
                if ((header & 0xFF) == PageCodec.XOR_LZ4)
                {
                    return true;
                }
                offset += PageCodec.ENTRY_HEADER + (header >>> 8);
            }
            return false;
        }

        /**
         * The applier failed after the receiver acked: this replica takes no further epoch, and the active hears why.
         */
        private void refuseTorn()
        {
            final Connection served = connection;
            connection = null;
            drop();
            refuseAndLinger(served, torn);
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
                final int length = Handshake.encodeReason(sendBuffer, FrameCodec.HEADER_LENGTH, reason);
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

        private int checkForFailure()
        {
            if (pendingPromotion != null)
            {
                return claimAndPromote();
            }
            final String requested = promoteRequest;
            if (requested != null)
            {
                promoteRequest = null;
                return startPromotion(requested, 0);
            }
            if (failureReport != null)
            {
                final String report = failureReport;
                failureReport = null;
                if (ctx.autoPromote())
                {
                    return startPromotion(report, 0);
                }
            }
            if (appliedEpoch != lastCommittedEpoch)
            {
                // this host is busy applying (a baseline takes long): as when applying ran on this thread, silence
                // counts from when the applier caught up; a promotion would wait for it anyway
                lastFrameNs = clock.nanoTime();
            }
            final long silentNs = clock.nanoTime() - lastFrameNs;
            if (ctx.autoPromote() && promotable && torn == null && lastCommittedEpoch >= 1 && !goodbye &&
                silentNs > ctx.failureTimeoutNs())
            {
                return startPromotion("no frame from the active for " + silentNs / 1_000_000 + " ms", silentNs);
            }
            return 0;
        }

        /**
         * Decides to promote: checks what can be checked here, then claims at the arbiter before anything else
         * (the session is not touched until the claim is won).
         */
        private int startPromotion(final String reason, final long detectionNs)
        {
            LOG.warn("promoting VM {}: {}", ctx.vmId(), reason);
            if (torn != null || lastCommittedEpoch < 1)
            {
                refuse(torn != null ? torn : "no epoch was ever committed: there is no recovery point to resume");
                return 1;
            }
            if (!promotable)
            {
                refuse("the recovery point (epoch " + lastCommittedEpoch + ") is of an older session: a newer " +
                    "session has started its baseline, or a newer generation owns the guest");
                return 1;
            }
            if (ctx.replicaTarget() == null)
            {
                refuse("no ReplicaTarget is configured to resume the guest on");
                return 1;
            }
            pendingPromotion = reason;
            pendingDetectionNs = detectionNs;
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
            final long next = generation + 1;
            final Ownership.Verdict verdict = ownership.claimNext();
            if (verdict == Ownership.Verdict.UNREACHABLE)
            {
                nextClaimNs = now + ownership.retryDelayNs();
                ownershipState = "claiming generation " + next + ": arbiter unreachable (" +
                    ownership.unansweredAttempts() + " attempts: " + ownership.lastError() + "), next try in " +
                    ownership.retryDelayNs() / 1_000_000 + " ms";
                return 1;
            }
            final String reason = pendingPromotion;
            pendingPromotion = null;
            if (verdict == Ownership.Verdict.SUPERSEDED)
            {
                // another side owns the guest: this history may never be promoted, and this session is over
                promotable = false;
                drop();
                refuse("the arbiter gave generation " + next + " (or a later one) to another side");
                ownershipState = "superseded by generation " + ownership.supersededBy();
                return 1;
            }
            promote(reason, pendingDetectionNs, pendingStartNs, next);
            return 1;
        }

        private void promote(final String reason, final long detectionNs, final long start, final long next)
        {
            final PromotionListener steps = ctx.promotionListener();
            steps.onStep("claim generation", clock.nanoTime() - start);
            if (switchoverAsked && connection != null)
            {
                // the active waits, its guest paused, for this answer: it stops its copy for good on it. Sent under
                // the session's generation (the active refuses any other); the one won is the payload
                try
                {
                    sendBuffer.putLong(FrameCodec.HEADER_LENGTH, next);
                    sendFrame(FrameType.SWITCHOVER, lastCommittedEpoch, 8);
                    // closed once the active closes it (or in a second): a close with unread bytes would reset the
                    // connection, and the reset can overtake the answer
                    lingering.add(new Lingering(connection, clock.nanoTime() + LINGER_NS));
                    connection = null;
                }
                catch (final IOException ex)
                {
                    LOG.warn("could not answer the switchover of {}: {}; it learns of generation {} from the arbiter",
                        connection.peer(), ex.getMessage(), next);
                }
            }
            generation = next;
            steps.onStep("persist generation", clock.nanoTime() - start);
            ownershipState = "promoting at generation " + next;
            // only now, owning the next generation, does this side let go of the active
            drop();
            listener.close();
            steps.onStep("stop receiving", clock.nanoTime() - start);
            // drop() discarded the epoch in assembly: nothing after the recovery point survives
            steps.onStep("discard partial epoch", clock.nanoTime() - start);
            finishingPromotion = true;
            promotionReason = reason;
            promotionDetectionNs = detectionNs;
            promotionStartNs = start;
            finishPromotion();
        }

        /**
         * The last part of a promotion, a state of the duty cycle: waits (without blocking) until the applier has
         * applied every committed epoch, then hands the recovery point to the {@link dev.tandem.vmm.ReplicaTarget}.
         */
        private int finishPromotion()
        {
            final long next = generation;
            if (torn != null)
            {
                // applying an acknowledged epoch failed: the one replica that held it cannot resume it
                finishingPromotion = false;
                promotable = false;
                ownershipState = "owner of generation " + next + " without a guest: the replica is torn";
                refuse(torn);
                return 1;
            }
            if (appliedEpoch != lastCommittedEpoch)
            {
                return 0;
            }
            finishingPromotion = false;
            final String reason = promotionReason;
            final long detectionNs = promotionDetectionNs;
            final long start = promotionStartNs;
            final PromotionListener steps = ctx.promotionListener();
            steps.onStep("finish applying", clock.nanoTime() - start);
            LOG.warn("VM {} is restored to the known-good checkpoint of epoch {} and resumed here under generation {}",
                ctx.vmId(), lastCommittedEpoch, next);
            final VmmAdapter guest;
            try
            {
                resuming = true;
                guest = ctx.replicaTarget().resume(recoveryPoint);
            }
            catch (final RuntimeException ex)
            {
                promotable = false;
                ownershipState = "owner of generation " + next + " without a guest: the ReplicaTarget failed";
                refuse("the ReplicaTarget failed to resume the guest: " + ex);
                return 1;
            }
            finally
            {
                resuming = false;
            }
            final long promotionNs = clock.nanoTime() - start;
            steps.onStep("resume guest", promotionNs);
            final Promotion done = new Promotion(reason, lastCommittedEpoch, next, detectionNs, promotionNs, guest);
            ownershipState = "promoted at generation " + next;
            CounterSet.add(counters.promotions, 1);
            promotion = done;
            final FailoverEvent event = new FailoverEvent();
            event.vmId = ctx.vmId();
            event.reason = reason;
            event.recoveryEpoch = lastCommittedEpoch;
            event.generation = next;
            event.detectionNs = detectionNs;
            event.promotionNs = promotionNs;
            event.commit();
            steps.onPromoted(done);
            return 1;
        }

        private void refuse(final String reason)
        {
            LOG.error("promotion of VM {} refused: {}", ctx.vmId(), reason);
            promotionRefused = reason;
            ctx.promotionListener().onPromotionRefused(reason);
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
            receiveRegion.close();
            sendRegion.close();
            decodedRegion.close();
            codec.close();
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
                goodbye = true;
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
                goodbye = true;
                fail("active " + connection.peer() + " refused this standby: " +
                    Handshake.decodeReason(receiveBuffer, decoder.payloadIndex(), decoder.length()));
                return;
            }
            if (type == FrameType.SWITCHOVER)
            {
                requireLength(type, decoder.length(), 0);
                if (decoder.epoch() != lastCommittedEpoch || assembling != null)
                {
                    throw new ProtocolException(Fault.EPOCH_OUT_OF_ORDER, "SWITCHOVER at epoch " + decoder.epoch() +
                        " but this standby's recovery point is epoch " + lastCommittedEpoch +
                        (assembling != null ? " with epoch " + nextEpoch + " in assembly" : ""));
                }
                LOG.info("active {} hands VM {} over at epoch {} (planned switchover)", connection.peer(), ctx.vmId(),
                    lastCommittedEpoch);
                switchoverAsked = true;
                promoteRequest = "planned switchover: the active paused the guest at epoch " + lastCommittedEpoch;
                return;
            }
            if (type == FrameType.FAILURE_REPORT)
            {
                final String reason = Handshake.decodeReason(receiveBuffer, decoder.payloadIndex(), decoder.length());
                LOG.error("active {} reports VM {} unhealthy: {}", connection.peer(), ctx.vmId(), reason);
                failureReport = "the active reported the guest unhealthy: " + reason;
                drop();
                return;
            }
            final long epoch = decoder.epoch();
            final long expectedEpoch = nextEpoch;
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
            final int index = decoder.payloadIndex();
            final int length = decoder.length();
            switch (type)
            {
                case DISK_WRITE:
                    onDiskWrite(index, length);
                    break;
                case DISK_FLUSH:
                    requireLength(type, length, FrameCodec.DISK_FLUSH_LENGTH);
                    requireBeforeBarrier(type, epoch);
                    disk(receiveBuffer.getInt(index));
                    assembling.append(FrameType.DISK_FLUSH.code(), receiveBuffer.getInt(index), 0, data(index, 0));
                    countDataFrame();
                    epochDiskWrites++;
                    break;
                case BARRIER:
                    requireLength(type, length, 0);
                    requireBeforeBarrier(type, epoch);
                    barrierSeen = true;
                    barrierNs = clock.nanoTime();
                    break;
                case PAGES:
                    onPages(epoch, index, length);
                    break;
                case PAGES_ENCODED:
                    onEncodedPages(epoch, index, length);
                    break;
                case COMPONENT:
                    requireAfterBarrier(type, epoch);
                    if (length < FrameCodec.COMPONENT_HEADER)
                    {
                        throw new ProtocolException(Fault.MALFORMED, "COMPONENT payload of " + length + " bytes");
                    }
                    assembling.append(FrameType.COMPONENT.code(), receiveBuffer.getInt(index),
                        receiveBuffer.getInt(index + 4),
                        data(index + FrameCodec.COMPONENT_HEADER, length - FrameCodec.COMPONENT_HEADER));
                    countDataFrame();
                    epochComponents++;
                    break;
                case EPOCH_END:
                    onEpochEnd(epoch, index, length);
                    break;
                default:
                    throw new ProtocolException(Fault.UNKNOWN_TYPE, type + " frame is not valid from an active");
            }
        }

        private void onHello(final FrameType type) throws IOException
        {
            if (type == FrameType.REFUSE)
            {
                // an active refusing this standby before its HELLO (a certificate for another VM): its reason
                fail("active " + connection.peer() + " refused this standby: " +
                    Handshake.decodeReason(receiveBuffer, decoder.payloadIndex(), decoder.length()));
                return;
            }
            if (type != FrameType.HELLO)
            {
                throw new ProtocolException(Fault.UNKNOWN_TYPE, "expected HELLO first, got " + type);
            }
            final Handshake.Hello hello = Handshake.Hello.decode(receiveBuffer, decoder.payloadIndex(), decoder.length());
            try
            {
                if (torn != null)
                {
                    throw new ProtocolException(Fault.REFUSED, torn);
                }
                PeerBinding.checkActive(connection, hello.vmId());
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
                final int length = Handshake.encodeReason(sendBuffer, FrameCodec.HEADER_LENGTH, ex.getMessage());
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
                fingerprint, resync).encode(sendBuffer, FrameCodec.HEADER_LENGTH);
            sendFrame(FrameType.WELCOME, lastCommittedEpoch, length);
            handshakeDone = true;
            connected = true;
            counters.connected.setRelease(1);
            CounterSet.add(counters.sessions, 1);
            goodbye = false;
            heartbeatIntervalNs = hello.heartbeatIntervalNs();
            sessionBaselinePending = true;
            sessionStarted = false;
            resyncSession = resync;
            switchoverAsked = false;
            nextEpoch = hello.firstEpoch() != 0 ? hello.firstEpoch() : lastCommittedEpoch + 1;
            if (hello.generation() > servedBefore)
            {
                // the active owned the guest under a generation this recovery point never saw, and may have let
                // output leave beyond it: that history must not come back
                promotable = false;
            }
            // otherwise the old recovery point stays promotable until a frame of this session is accepted: a session
            // that handshakes and then dies (or a replayed HELLO refused at its first frame) changed nothing
            LOG.info("active {} connected for VM {}; recovery point is epoch {}{}", connection.peer(), hello.vmId(),
                lastCommittedEpoch, resync ? ", resumed: only what changed since follows, from epoch " + nextEpoch :
                hello.history().isEmpty() ? "" : ", not one of the active's checkpoints: a whole baseline follows");
        }

        private void onDiskWrite(final int index, final int length) throws IOException
        {
            if (length < FrameCodec.DISK_WRITE_HEADER)
            {
                throw new ProtocolException(Fault.MALFORMED, "DISK_WRITE payload of " + length + " bytes");
            }
            final int diskId = receiveBuffer.getInt(index);
            final int dataLength = receiveBuffer.getInt(index + 4);
            final long offset = receiveBuffer.getLong(index + 8);
            final FileVirtualDisk disk = disk(diskId);
            if (dataLength != length - FrameCodec.DISK_WRITE_HEADER)
            {
                throw new ProtocolException(Fault.MALFORMED, "DISK_WRITE says " + dataLength + " bytes but carries " +
                    (length - FrameCodec.DISK_WRITE_HEADER));
            }
            if (dataLength <= 0 || dataLength % disk.blockSize() != 0 || offset < 0 ||
                offset % disk.blockSize() != 0 || offset > disk.sizeBytes() - dataLength)
            {
                throw new ProtocolException(Fault.BAD_DISK_EXTENT, "disk " + diskId + " write [" + offset + ", +" +
                    dataLength + ") is empty, misaligned to " + disk.blockSize() + " or outside " + disk.sizeBytes() +
                    " bytes");
            }
            requireBeforeBarrier(FrameType.DISK_WRITE, decoder.epoch());
            if (baselineInPlace())
            {
                baselineInPlace = true;
                disk.write(offset, data(index + FrameCodec.DISK_WRITE_HEADER, dataLength));
            }
            else
            {
                assembling.append(FrameType.DISK_WRITE.code(), diskId, offset,
                    data(index + FrameCodec.DISK_WRITE_HEADER, dataLength));
            }
            countDataFrame();
            epochDiskWrites++;
        }

        private void onPages(final long epoch, final int index, final int length) throws IOException
        {
            final int count = checkPageRun(FrameType.PAGES, epoch, index, length);
            if ((long)count * ctx.pageSize() != length - FrameCodec.PAGES_HEADER)
            {
                throw new ProtocolException(Fault.MALFORMED, "PAGES of " + count + " pages carries " +
                    (length - FrameCodec.PAGES_HEADER) + " bytes");
            }
            logPages(receiveBuffer.getLong(index), count, receiveBuffer, index + FrameCodec.PAGES_HEADER,
                data(index + FrameCodec.PAGES_HEADER, length - FrameCodec.PAGES_HEADER));
        }

        private void onEncodedPages(final long epoch, final int index, final int length) throws IOException
        {
            final int count = checkPageRun(FrameType.PAGES_ENCODED, epoch, index, length);
            final int pageSize = ctx.pageSize();
            if ((long)count * pageSize > decodedBuffer.capacity())
            {
                throw new ProtocolException(Fault.MALFORMED, "PAGES_ENCODED of " + count + " pages");
            }
            // decoded now, against the replica as of the previous commit (the base the active encoded against; an
            // XOR delta waited in mustWait() until the applier had applied it), so a corrupt entry refuses the frame
            // before anything of the epoch is applied
            final long firstPage = receiveBuffer.getLong(index);
            int offset = index + FrameCodec.PAGES_HEADER;
            final int end = index + length;
            for (int i = 0; i < count; i++)
            {
                offset += codec.decode(firstPage + i, receiveBuffer, crcView, offset, end - offset, decodedBuffer,
                    decodedView, i * pageSize, memory.view());
            }
            if (offset != end)
            {
                throw new ProtocolException(Fault.MALFORMED, "PAGES_ENCODED carries " + (end - offset) +
                    " bytes after its " + count + " pages");
            }
            decodedView.limit(count * pageSize).position(0);
            logPages(firstPage, count, decodedBuffer, 0, decodedView);
        }

        /**
         * Checks the sub-header shared by PAGES and PAGES_ENCODED.
         *
         * @return the page count.
         */
        private int checkPageRun(final FrameType type, final long epoch, final int index, final int length)
        {
            if (!sessionBaselinePending)
            {
                // a live baseline's rounds send pages while the guest runs, before its final pause's barrier;
                // every later epoch's pages are copied in its pause, after the barrier
                requireAfterBarrier(type, epoch);
            }
            if (length < FrameCodec.PAGES_HEADER)
            {
                throw new ProtocolException(Fault.MALFORMED, type + " payload of " + length + " bytes");
            }
            final long firstPage = receiveBuffer.getLong(index);
            final int count = receiveBuffer.getInt(index + 8);
            if (receiveBuffer.getInt(index + 12) != 0)
            {
                throw new ProtocolException(Fault.RESERVED_BITS, type + " reserved field is not zero");
            }
            if (count <= 0)
            {
                throw new ProtocolException(Fault.MALFORMED, type + " of " + count + " pages");
            }
            if (firstPage < 0 || firstPage > ctx.pageCount() - count)
            {
                throw new ProtocolException(Fault.PAGE_OUT_OF_RANGE, "pages [" + firstPage + ", +" + count +
                    ") outside the guest's " + ctx.pageCount() + " pages");
            }
            return count;
        }

        /**
         * A baseline into a replica that never committed has no earlier recovery point to protect: it goes straight
         * into the replica as it arrives, in arrival order (a live baseline's rounds and the guest's writes during
         * the disk copy rely on that order), never into an epoch log or its spill file, and the applier (idle: there
         * was no commit to apply) is not involved. A later session's first epoch keeps going through the log, so a
         * session cut off there leaves the committed recovery point as it was.
         */
        private boolean baselineInPlace()
        {
            return sessionBaselinePending && lastCommittedEpoch == 0;
        }

        private void logPages(final long firstPage, final int count, final UnsafeBuffer buffer, final int bufferIndex,
            final ByteBuffer pages) throws IOException
        {
            if (baselineInPlace())
            {
                baselineInPlace = true;
                memory.view().copyIn(firstPage, count, buffer, bufferIndex);
            }
            else
            {
                assembling.append(FrameType.PAGES.code(), firstPage, count, pages);
            }
            countDataFrame();
            epochPages += count;
        }

        private void onEpochEnd(final long epoch, final int index, final int length) throws IOException
        {
            requireLength(FrameType.EPOCH_END, length, FrameCodec.EPOCH_END_LENGTH);
            requireAfterBarrier(FrameType.EPOCH_END, epoch);
            final long pages = receiveBuffer.getLong(index);
            final int frames = receiveBuffer.getInt(index + 8);
            final int diskWrites = receiveBuffer.getInt(index + 12);
            final int componentCount = receiveBuffer.getInt(index + 16);
            final long crcSum = receiveBuffer.getLong(index + 24);
            if (receiveBuffer.getInt(index + 20) != 0)
            {
                throw new ProtocolException(Fault.RESERVED_BITS, "EPOCH_END reserved field is not zero");
            }
            if (pages != epochPages || frames != epochFrames || diskWrites != epochDiskWrites ||
                componentCount != epochComponents || crcSum != epochCrcSum)
            {
                throw new ProtocolException(Fault.MALFORMED, "epoch " + epoch + " end says " + pages + " pages, " +
                    frames + " frames, " + diskWrites + " disk writes, " + componentCount + " components, CRC sum " +
                    Long.toHexString(crcSum) + "; received " + epochPages + ", " + epochFrames + ", " +
                    epochDiskWrites + ", " + epochComponents + ", " + Long.toHexString(epochCrcSum));
            }
            commit(epoch, crcSum);
        }

        /**
         * Epoch {@code epoch} arrived whole and verified: it is committed, handed to the applier, and acked at once.
         */
        private void commit(final long epoch, final long crcSum) throws IOException
        {
            final long receivedNs = clock.nanoTime();
            if (torn != null)
            {
                throw new ProtocolException(Fault.REFUSED, torn);
            }
            final EpochLog verified = assembling;
            assembling = null;
            verified.epoch = epoch;
            verified.barrierNs = barrierNs;
            verified.receivedNs = receivedNs;
            verified.ackedNs = -1;
            // the session's baseline (the whole first copy) is not the steady state: not in the stages
            final boolean baseline = sessionBaselinePending;
            verified.baseline = baseline;
            sessionBaselinePending = false;
            baselineInPlace = false;
            resetEpochCounts();
            counters.committedEpoch.setRelease(epoch);
            fingerprint = Handshake.chain(fingerprint, epoch, crcSum);
            nextEpoch = epoch + 1;
            lastCommittedEpoch = epoch;
            CounterSet.add(counters.commits, 1);
            promotable = true;
            lastFrameNs = clock.nanoTime();
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
            if (!baseline)
            {
                receiveStage.recorder().recordValue(clamp(receivedNs - barrierNs));
                commitStage.recorder().recordValue(clamp(verified.ackedNs - barrierNs));
            }
        }

        private ByteBuffer data(final int index, final int length)
        {
            dataView.limit(index + length).position(index);
            return dataView;
        }

        private void countDataFrame()
        {
            epochFrames++;
            epochCrcSum += decoder.crc();
        }

        private FileVirtualDisk disk(final int diskId)
        {
            if (diskId < 0 || diskId >= disksById.length || disksById[diskId] == null)
            {
                throw new ProtocolException(Fault.BAD_DISK_EXTENT, "unknown disk id " + diskId);
            }
            return disksById[diskId];
        }

        private void requireLength(final FrameType type, final int length, final int expectedLength)
        {
            if (length != expectedLength)
            {
                throw new ProtocolException(Fault.MALFORMED,
                    type + " payload of " + length + " bytes, expected " + expectedLength);
            }
        }

        private void requireBeforeBarrier(final FrameType type, final long epoch)
        {
            if (barrierSeen)
            {
                throw new ProtocolException(Fault.MALFORMED, type + " after barrier " + epoch);
            }
        }

        private void requireAfterBarrier(final FrameType type, final long epoch)
        {
            if (!barrierSeen)
            {
                throw new ProtocolException(Fault.MALFORMED, type + " of epoch " + epoch + " before its barrier");
            }
        }

        private void sendFrame(final FrameType type, final long epoch, final int payloadLength) throws IOException
        {
            FrameCodec.writeHeader(sendBuffer, 0, version == 0 ? FrameCodec.MAX_VERSION : version, type,
                payloadLength, generation, epoch);
            final ByteBuffer out = sendGather[0];
            FrameCodec.sealCrc(crc, sendBuffer, out, 0, FrameCodec.HEADER_LENGTH + payloadLength, null);
            out.limit(FrameCodec.HEADER_LENGTH + payloadLength).position(0);
            final long deadline = clock.nanoTime() + ctx.failureTimeoutNs();
            ackIdle.reset();
            lastSentNs = clock.nanoTime();
            while (out.hasRemaining())
            {
                if (connection.write(sendGather, 0, 1) == 0)
                {
                    if (clock.nanoTime() > deadline)
                    {
                        throw new IOException("active " + connection.peer() + " has not read its acks for " +
                            ctx.failureTimeoutNs() / 1_000_000 + " ms");
                    }
                    ackIdle.idle();
                }
            }
        }

        private void discardEpoch()
        {
            if (assembling != null)
            {
                try
                {
                    assembling.reset();
                }
                catch (final IOException ex)
                {
                    throw new UncheckedIOException(ex);
                }
            }
            resetEpochCounts();
        }

        private void resetEpochCounts()
        {
            barrierSeen = false;
            epochPages = 0;
            epochFrames = 0;
            epochDiskWrites = 0;
            epochComponents = 0;
            epochCrcSum = 0;
        }

        private void reject(final ProtocolException ex)
        {
            // the message first: whoever sees the count rise must find this error, not the one before it
            lastError = ex.getMessage();
            CounterSet.add(counters.refusals, 1);
            LOG.warn("refused frame from {}: {}; epoch {} discarded, recovery point stays at epoch {}",
                connection == null ? "?" : connection.peer(), ex.getMessage(), nextEpoch,
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
            LOG.warn("{}; epoch {} discarded, recovery point stays at epoch {}", message, nextEpoch,
                lastCommittedEpoch);
            drop();
            ctx.listener().onError(new IOException(message));
        }

        void drop()
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
            stall = STALL_NONE;
            discardEpoch();
        }
    }

    /**
     * The apply duty cycle: replays each verified epoch, in epoch order, into the memory replica, the disk images and
     * the component store, one epoch per step, and hands the log back to the receiver.
     */
    private final class Applier implements Agent, EpochLog.Visitor
    {
        @Override
        public String roleName()
        {
            return "tandem-standby-applier";
        }

        @Override
        public void onStart()
        {
            dutyThreads[1] = Thread.currentThread();
        }

        @Override
        public int doWork()
        {
            final EpochLog log = verifiedLogs.poll();
            if (log == null)
            {
                return 0;
            }
            try
            {
                apply(log);
            }
            finally
            {
                try
                {
                    log.reset();
                }
                catch (final IOException ex)
                {
                    // the log is empty for reuse all the same; only its spill file keeps its length
                    LOG.warn("could not truncate the spill file of an applied epoch: {}", ex.toString());
                }
                freeLogs.offer(log);
            }
            return 1;
        }

        private void apply(final EpochLog log)
        {
            if (torn != null)
            {
                // a torn replica takes nothing more
                return;
            }
            final long startNs = clock.nanoTime();
            try
            {
                log.replay(this);
            }
            catch (final IOException | RuntimeException ex)
            {
                if (closed)
                {
                    // close() interrupted a long apply (a FileChannel write then fails): the standby is going away
                    // on purpose, its replica was not torn by a fault
                    LOG.info("standby of VM {} closed while applying epoch {}: {}", ctx.vmId(), log.epoch,
                        ex.toString());
                    return;
                }
                tear(log.epoch, ex);
                return;
            }
            final long appliedNs = clock.nanoTime();
            replicaEpoch = log.epoch;
            if (!log.baseline)
            {
                applyStage.recorder().recordValue(clamp(appliedNs - startNs));
                if (StandbyCommitEvent.enabled())
                {
                    final StandbyCommitEvent event = new StandbyCommitEvent();
                    event.vmId = ctx.vmId();
                    event.epoch = log.epoch;
                    event.receiveNs = log.receivedNs - log.barrierNs;
                    event.applyNs = appliedNs - startNs;
                    event.commitNs = log.ackedNs < 0 ? -1 : log.ackedNs - log.barrierNs;
                    event.commit();
                }
            }
            try
            {
                ctx.listener().onCommit(log.epoch, recoveryPoint);
            }
            catch (final RuntimeException ex)
            {
                LOG.warn("standby listener failed at epoch {}", log.epoch, ex);
            }
            appliedEpoch = log.epoch;
        }

        /**
         * Half applied: the replica no longer holds a whole recovery point. The epoch was already acknowledged, so
         * the active has released its output as safe: this standby must say so loudly and never be promoted.
         */
        private void tear(final long epoch, final Exception ex)
        {
            final String reason = "applying epoch " + epoch + " failed (" + ex + "); the replica is torn and holds " +
                "no whole recovery point: start this standby on an empty directory and re-protect the guest";
            torn = reason;
            lastError = reason;
            LOG.error("STANDBY OF VM {} CAN NO LONGER TAKE OVER: {}. Epoch {} was already acknowledged, so the " +
                "active released its output as safe: until the guest is protected again, losing the active loses " +
                "the guest", ctx.vmId(), reason, epoch, ex);
            try
            {
                ctx.listener().onError(new IOException(reason, ex));
            }
            catch (final RuntimeException listenerFailure)
            {
                LOG.warn("standby listener failed", listenerFailure);
            }
        }

        @Override
        public void onRecord(final int type, final long a, final long b, final UnsafeBuffer buffer,
            final ByteBuffer data, final int index, final int length) throws IOException
        {
            if (type == FrameType.PAGES.code())
            {
                memory.view().copyIn(a, (int)b, buffer, index);
            }
            else if (type == FrameType.DISK_WRITE.code())
            {
                disksById[(int)a].write(b, data);
            }
            else if (type == FrameType.COMPONENT.code())
            {
                components.put((int)a, (int)b, buffer, index, length);
            }
            // DISK_FLUSH: in MEMORY mode the ordering is all a flush asks of the replica
        }
    }

    private static long clamp(final long ns)
    {
        return Math.min(LatencyDistribution.HIGHEST_RECORDED_NS, Math.max(0, ns));
    }

    /** The receiver is not waiting for the applier. */
    private static final int STALL_NONE = 0;
    /** Every epoch log is with the applier: the next epoch has none to be assembled in. */
    private static final int STALL_NO_LOG = 1;
    /** The applier has not applied the last commit yet: a frame's XOR deltas need it as their base. */
    private static final int STALL_APPLIER_BEHIND = 2;

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

    /**
     * Committed component state by id, in first-seen order; buffers are reused from commit to commit.
     */
    private static final class ComponentStore
    {
        private final Int2IntHashMap indexById = new Int2IntHashMap(-1);
        private final List<ExpandableDirectByteBuffer> buffers = new ArrayList<>();
        private final List<int[]> meta = new ArrayList<>();

        void put(final int id, final int version, final UnsafeBuffer src, final int index, final int length)
        {
            int slot = indexById.get(id);
            if (slot < 0)
            {
                slot = buffers.size();
                indexById.put(id, slot);
                buffers.add(new ExpandableDirectByteBuffer(Math.max(64, length)));
                meta.add(new int[] {id, version, 0});
            }
            buffers.get(slot).putBytes(0, src, index, length);
            meta.get(slot)[1] = version;
            meta.get(slot)[2] = length;
        }

        List<RecoveryPoint.ComponentState> states()
        {
            final List<RecoveryPoint.ComponentState> states = new ArrayList<>(buffers.size());
            for (int i = 0; i < buffers.size(); i++)
            {
                final int[] m = meta.get(i);
                states.add(new RecoveryPoint.ComponentState(m[0], m[1], new UnsafeBuffer(buffers.get(i), 0, m[2])));
            }
            return states;
        }
    }
}
