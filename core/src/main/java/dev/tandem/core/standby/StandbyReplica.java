package dev.tandem.core.standby;

import dev.tandem.core.CommitWait;
import dev.tandem.core.codec.PageCodec;
import dev.tandem.core.failover.GenerationFile;
import dev.tandem.core.failover.Ownership;
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
import dev.tandem.core.wire.ProtocolException.Fault;
import dev.tandem.core.wire.ProtocolException;
import dev.tandem.vmm.FileVirtualDisk;
import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.JvmAccess;
import dev.tandem.vmm.NativeMemory;
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
import org.agrona.concurrent.UnsafeBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * The standby side for one guest: receives the ordered stream, assembles each epoch in an {@link EpochLog} behind
 * its barrier, and commits epoch N only when all of delta N has arrived and verified against the epoch end: then
 * disk writes up to barrier N go to the disk images in order, pages to the memory replica, component state to the
 * component store, and ack N goes back. A partial or malformed epoch is never applied: the frame is refused with
 * its fault, the epoch discarded, the connection dropped, and the replica keeps its last commit.
 * <p>
 * Durability: MEMORY mode (Remus): the ack means the epoch is applied in this process's replica.
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
    private final EpochLog log;
    private final Receiver receiver;
    /** The receiver's thread, or null when the caller steps it through {@link #invoker}. */
    private final AgentRunner runner;
    private final AgentInvoker invoker;
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
    /** The epoch's end read to its disk writes, pages and state applied. */
    private final LatencyDistribution applyStage = new LatencyDistribution();
    /** Barrier read to ack written: what this side adds to the active's commit latency. */
    private final LatencyDistribution commitStage = new LatencyDistribution();
    private final Object stageLock = new Object();
    private volatile Promotion promotion;
    private volatile String promotionRefused;
    private final List<Runnable> pendingInspections = new ArrayList<>();
    private volatile boolean inspectionPending;

    private StandbyReplica(final StandbyContext ctx, final Transport.Listener listener) throws IOException
    {
        this.ctx = ctx;
        this.listener = listener;
        this.clock = ctx.nanoClock();
        this.expected = new Handshake.Hello(FrameCodec.MIN_VERSION, FrameCodec.MAX_VERSION, ctx.vmId(),
            ctx.pageSize(), ctx.pageCount(), ctx.disks(), 1, 0, ctx.maxFramePayload());
        Files.createDirectories(ctx.directory());
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
        EpochLog createdLog = null;
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
            createdLog = new EpochLog(ctx.epochLogMemoryBytes(), ctx.maxFramePayload(),
                ctx.directory().resolve("epoch.spill"));
        }
        catch (final RuntimeException ex)
        {
            disks.forEach(FileVirtualDisk::close);
            CloseHelper.quietClose(createdMemory);
            CloseHelper.quietClose(createdLog);
            CloseHelper.quietClose(createdCounters);
            throw ex;
        }
        this.counters = createdCounters;
        this.memory = createdMemory;
        this.log = createdLog;
        this.receiver = new Receiver();
        if (ctx.useAgentInvoker())
        {
            this.runner = null;
            this.invoker = new AgentInvoker(this::onAgentError, null, receiver);
        }
        else
        {
            this.runner = new AgentRunner(new BackoffIdleStrategy(100, 10, 1_000, 100_000), this::onAgentError, null,
                receiver);
            this.invoker = null;
        }
    }

    /**
     * Starts listening for the active.
     * <p>
     * A launch that throws has undone everything it started (no thread, no off-heap memory, the endpoint unbound).
     * A launch that returns runs the receiver on a thread ({@code tandem-standby-receiver}) that is not a daemon
     * thread: it keeps the JVM alive until {@link #close()}, whether or not an active ever connects, and it keeps
     * listening after it refuses an active (a wrong geometry, a stale generation). Close the standby in a
     * {@code finally} or try-with-resources.
     *
     * @param ctx configuration; concluded here.
     * @return the running standby.
     * @throws IOException if the endpoint cannot be bound or the directory is unusable.
     * @throws IllegalStateException if an existing disk image does not fit, or JVM flags are missing.
     */
    public static StandbyReplica launch(final StandbyContext ctx) throws IOException
    {
        ctx.conclude();
        JvmAccess.check(LOG::warn);
        FailoverEvent.register();
        // registering a JFR event type costs tens of milliseconds once: here, not in the first commit
        StandbyCommitEvent.enabled();
        final Transport.Listener listener = ctx.transport().listen(ctx.listenEndpoint());
        final StandbyReplica standby;
        try
        {
            standby = new StandbyReplica(ctx, listener);
        }
        catch (final IOException | RuntimeException ex)
        {
            listener.close();
            throw ex;
        }
        if (standby.invoker != null)
        {
            standby.invoker.start();
        }
        else
        {
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
     * @return the endpoint actually bound.
     */
    public String endpoint()
    {
        return listener.endpoint();
    }

    /**
     * @return the recovery point's epoch, 0 before the baseline committed.
     */
    public long lastCommittedEpoch()
    {
        return lastCommittedEpoch;
    }

    /**
     * Waits until this standby has committed {@code epoch}: its recovery point is that checkpoint or a newer one
     * (memory, device state and every disk write up to barrier {@code epoch}, verified and applied). Polls every
     * 0.2 ms at most. With {@link StandbyContext#useAgentInvoker(boolean)} another thread must step the receiver
     * meanwhile, or nothing can commit.
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
                generation, ownershipState, ownership.attempts(), ownership.lastError(), stages);
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
     * Runs {@code inspection} on the recovery point between two frames on the receiver thread, so it sees one whole
     * committed epoch; e.g. to verify a digest or take a backup. Blocks until done.
     *
     * @param inspection reads the recovery point; must not keep references to it.
     * @param <T>        its result type.
     * @return the inspection's result.
     * @throws IllegalStateException if the replica is torn, or the inspection does not run within 60 s.
     */
    public <T> T inspect(final java.util.function.Function<RecoveryPoint, T> inspection)
    {
        if (torn != null)
        {
            throw new IllegalStateException(torn);
        }
        if (invoker != null)
        {
            // the caller steps the receiver, so it is the receiver's thread: between steps nothing else runs
            return inspection.apply(recoveryPoint);
        }
        final java.util.concurrent.CompletableFuture<T> result = new java.util.concurrent.CompletableFuture<>();
        synchronized (pendingInspections)
        {
            inspectionPending = true;
            pendingInspections.add(() ->
            {
                try
                {
                    result.complete(inspection.apply(recoveryPoint));
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
        CloseHelper.quietCloseAll(runner, invoker);
        synchronized (stageLock)
        {
            // the last look at the counters, then free them: the receiver has stopped writing them
            closedStatus = status();
            counters.close();
        }
        listener.close();
        memory.close();
        disks.forEach(FileVirtualDisk::close);
        CloseHelper.quietClose(log);
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
            return lastCommittedEpoch;
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
     * The receive-verify-commit duty cycle.
     */
    private final class Receiver implements Agent, EpochLog.Visitor
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

        @Override
        public String roleName()
        {
            return "tandem-standby-receiver";
        }

        @Override
        public int doWork() throws IOException
        {
            if (inspectionPending)
            {
                runInspections();
            }
            publishLatencies(clock.nanoTime());
            if (promotion != null)
            {
                return 0;
            }
            int work = lingering.isEmpty() ? 0 : drainLingering();
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
                read = connection.read(receiveView);
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
            StandbyCounters.add(counters.bytesReceived, read);
            if (read > 0)
            {
                // any byte of the active is liveness
                lastFrameNs = clock.nanoTime();
            }
            int position = 0;
            final int limit = receiveView.position();
            int frames = 0;
            try
            {
                int frameLength;
                while (connection != null &&
                    (frameLength = decoder.decode(receiveBuffer, crcView, position, limit - position)) > 0)
                {
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
            if (connection != null && position > 0)
            {
                receiveBuffer.putBytes(0, receiveBuffer, position, limit - position);
                receiveView.position(limit - position);
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
            generation = next;
            steps.onStep("persist generation", clock.nanoTime() - start);
            ownershipState = "promoting at generation " + next;
            // only now, owning the next generation, does this side let go of the active
            drop();
            listener.close();
            steps.onStep("stop receiving", clock.nanoTime() - start);
            // drop() discarded the epoch in assembly: nothing after the recovery point survives
            steps.onStep("discard partial epoch", clock.nanoTime() - start);
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
                return;
            }
            finally
            {
                resuming = false;
            }
            final long promotionNs = clock.nanoTime() - start;
            steps.onStep("resume guest", promotionNs);
            final Promotion done = new Promotion(reason, lastCommittedEpoch, next, detectionNs, promotionNs, guest);
            ownershipState = "promoted at generation " + next;
            StandbyCounters.add(counters.promotions, 1);
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
            StandbyCounters.add(counters.framesReceived, 1);
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
            if (type == FrameType.FAILURE_REPORT)
            {
                final String reason = Handshake.decodeReason(receiveBuffer, decoder.payloadIndex(), decoder.length());
                LOG.error("active {} reports VM {} unhealthy: {}", connection.peer(), ctx.vmId(), reason);
                failureReport = "the active reported the guest unhealthy: " + reason;
                drop();
                return;
            }
            final long epoch = decoder.epoch();
            final long expectedEpoch = lastCommittedEpoch + 1;
            if (epoch != expectedEpoch)
            {
                throw new ProtocolException(Fault.EPOCH_OUT_OF_ORDER, type + " frame of epoch " + epoch + " " +
                    (epoch < expectedEpoch ? "goes backwards" : "skips ahead") + "; expected epoch " + expectedEpoch);
            }
            if (!sessionStarted)
            {
                // this session's baseline has started and replaces the history: the old recovery point is not
                // promoted until the session commits
                sessionStarted = true;
                promotable = false;
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
                    log.append(FrameType.DISK_FLUSH.code(), receiveBuffer.getInt(index), 0, data(index, 0));
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
                    log.append(FrameType.COMPONENT.code(), receiveBuffer.getInt(index), receiveBuffer.getInt(index + 4),
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
            final int length = Handshake.encodeWelcome(sendBuffer, FrameCodec.HEADER_LENGTH, version,
                lastCommittedEpoch, generation, ctx.failureTimeoutNs());
            sendFrame(FrameType.WELCOME, lastCommittedEpoch, length);
            handshakeDone = true;
            connected = true;
            counters.connected.setRelease(1);
            StandbyCounters.add(counters.sessions, 1);
            goodbye = false;
            heartbeatIntervalNs = hello.heartbeatIntervalNs();
            sessionBaselinePending = true;
            sessionStarted = false;
            if (hello.generation() > servedBefore)
            {
                // the active owned the guest under a generation this recovery point never saw, and may have let
                // output leave beyond it: that history must not come back
                promotable = false;
            }
            // otherwise the old recovery point stays promotable until a frame of this session is accepted: a session
            // that handshakes and then dies (or a replayed HELLO refused at its first frame) changed nothing
            LOG.info("active {} connected for VM {}; recovery point is epoch {}", connection.peer(), hello.vmId(),
                lastCommittedEpoch);
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
            log.append(FrameType.DISK_WRITE.code(), diskId, offset, data(index + FrameCodec.DISK_WRITE_HEADER,
                dataLength));
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
            logPages(receiveBuffer.getLong(index), count,
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
            // decoded now, against the replica as of the previous commit (the base the active encoded against), so
            // a corrupt entry refuses the frame before anything of the epoch is applied
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
            logPages(firstPage, count, decodedView);
        }

        /**
         * Checks the sub-header shared by PAGES and PAGES_ENCODED.
         *
         * @return the page count.
         */
        private int checkPageRun(final FrameType type, final long epoch, final int index, final int length)
        {
            requireAfterBarrier(type, epoch);
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

        private void logPages(final long firstPage, final int count, final ByteBuffer pages) throws IOException
        {
            log.append(FrameType.PAGES.code(), firstPage, count, pages);
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
            commit(epoch);
        }

        private void commit(final long epoch) throws IOException
        {
            final long receivedNs = clock.nanoTime();
            try
            {
                log.replay(this);
            }
            catch (final IOException | RuntimeException ex)
            {
                // half applied: a MEMORY-mode standby no longer holds a whole recovery point, and must say so
                // rather than ack or ever hand this replica to a promotion
                torn = "applying epoch " + epoch + " failed (" + ex + "); the replica is torn and holds no whole " +
                    "recovery point: start this standby on an empty directory and re-protect the guest";
                throw new UncheckedIOException(new IOException(torn, ex));
            }
            discardEpoch();
            counters.committedEpoch.setRelease(epoch);
            lastCommittedEpoch = epoch;
            StandbyCounters.add(counters.commits, 1);
            promotable = true;
            // time spent applying is this side being busy, not the active being silent
            lastFrameNs = clock.nanoTime();
            ctx.listener().onCommit(epoch, recoveryPoint);
            sendFrame(FrameType.ACK, epoch, 0);
            if (sessionBaselinePending)
            {
                // the session's baseline (the whole first copy) is not the steady state: not in the stages
                sessionBaselinePending = false;
            }
            else
            {
                final long ackedNs = clock.nanoTime();
                receiveStage.recorder().recordValue(clamp(receivedNs - barrierNs));
                applyStage.recorder().recordValue(clamp(lastFrameNs - receivedNs));
                commitStage.recorder().recordValue(clamp(ackedNs - barrierNs));
                if (StandbyCommitEvent.enabled())
                {
                    final StandbyCommitEvent event = new StandbyCommitEvent();
                    event.vmId = ctx.vmId();
                    event.epoch = epoch;
                    event.receiveNs = receivedNs - barrierNs;
                    event.applyNs = lastFrameNs - receivedNs;
                    event.commitNs = ackedNs - barrierNs;
                    event.commit();
                }
            }
        }

        private long clamp(final long ns)
        {
            return Math.min(LatencyDistribution.HIGHEST_RECORDED_NS, Math.max(0, ns));
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
            try
            {
                log.reset();
            }
            catch (final IOException ex)
            {
                throw new UncheckedIOException(ex);
            }
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
            StandbyCounters.add(counters.refusals, 1);
            LOG.warn("refused frame from {}: {}; epoch {} discarded, recovery point stays at epoch {}",
                connection == null ? "?" : connection.peer(), ex.getMessage(), lastCommittedEpoch + 1,
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
            LOG.warn("{}; epoch {} discarded, recovery point stays at epoch {}", message, lastCommittedEpoch + 1,
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
            discardEpoch();
        }
    }

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
