package dev.tandem.core.active;

import dev.tandem.core.CommitWait;
import dev.tandem.core.failover.GenerationFile;
import dev.tandem.core.failover.Ownership;
import dev.tandem.core.failover.ResumedCheckpoint;
import dev.tandem.core.metrics.BaselineProgress;
import dev.tandem.core.metrics.CheckpointEvent;
import dev.tandem.core.metrics.CommitEvent;
import dev.tandem.core.metrics.CounterSet;
import dev.tandem.core.metrics.LatencyDistribution;
import dev.tandem.core.metrics.ProcessCounters;
import dev.tandem.core.metrics.PolicyDecisionEvent;
import dev.tandem.core.metrics.ProtectionState;
import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.core.metrics.ReconnectStatus;
import dev.tandem.core.metrics.StageLatency;
import dev.tandem.core.policy.CheckpointPolicy;
import dev.tandem.core.transport.Connection;
import dev.tandem.core.wire.FrameCodec;
import dev.tandem.core.wire.FrameDecoder;
import dev.tandem.core.wire.FrameReader;
import dev.tandem.core.wire.FrameWriter;
import dev.tandem.core.wire.FrameType;
import dev.tandem.core.wire.Handshake;
import dev.tandem.core.wire.PeerBinding;
import dev.tandem.core.wire.ProtocolException;
import dev.tandem.vmm.JvmAccess;
import dev.tandem.vmm.VirtualDisk;
import dev.tandem.vmm.VmmAdapter;
import org.HdrHistogram.Histogram;
import org.agrona.CloseHelper;
import org.agrona.concurrent.AgentInvoker;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.NanoClock;
import org.agrona.concurrent.UnsafeBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The active side of protection for one guest: the control API a VMM calls.
 * <p>
 * {@link #launch} connects to the standby, does the handshake, routes the guest's disk writes and network output
 * through the library, and starts two threads: the checkpoint scheduler (pause, harvest, copy, resume) and the
 * sender (encode, send, acks, output release). The first checkpoint is a paused full copy (the baseline).
 * <pre>
 * try (ActiveReplicator active = ActiveReplicator.launch(new ActiveContext()
 *         .adapter(vmm).transport(new TcpTransport()).standbyEndpoint("standby:7400")))
 * {
 *     ... active.status() ...
 * }
 * </pre>
 */
public final class ActiveReplicator implements AutoCloseable
{
    private static final Logger LOG = LoggerFactory.getLogger(ActiveReplicator.class);

    private final ActiveContext ctx;
    private final VmmAdapter adapter;
    /** The session's connection; replaced when a reconnect resumes protection. */
    private volatile Connection connection;
    private final long firstEpoch;
    private final StagingArea[] areas;
    private final DiskWriteStream diskStream;
    private final OutputCommitGate gate;
    private final ActiveCounters counters;
    /** Longest latency recorded; fixed so that recording never resizes (allocates) on the hot path. */
    static final long HIGHEST_RECORDED_NS = LatencyDistribution.HIGHEST_RECORDED_NS;

    private final LatencyDistribution pause = new LatencyDistribution();
    private final LatencyDistribution commit = new LatencyDistribution();
    private final LatencyDistribution hold = new LatencyDistribution();
    private final LatencyDistribution encode = new LatencyDistribution();
    private final LatencyDistribution send = new LatencyDistribution();
    /** Serialises folding the distributions: status() and the sender's publishing of percentiles. */
    private final Object latencyLock = new Object();
    /** When the sender publishes the latency percentiles into the counters next (sender thread only). */
    private long nextLatencyPublishNs;
    private final AtomicLongArray checkpointTimes;
    private final AtomicLongArray checkpointDirtyPages;
    private final int checkpointTimesMask;
    private final CheckpointScheduler scheduler;
    private final CheckpointSender sender;
    /** Threads of the duty cycles, or null when the caller steps them through the invokers. */
    private final AgentRunner schedulerRunner;
    private final AgentRunner senderRunner;
    private final AgentInvoker schedulerInvoker;
    private final AgentInvoker senderInvoker;

    private volatile boolean protecting = true;
    private volatile ProtectionState state = ProtectionState.SYNCING;
    private volatile long lastCheckpointEpoch;
    private volatile long sentThroughEpoch;
    private volatile long lastAckedEpoch;
    private volatile Throwable failure;
    private volatile long baselinePauseNs;
    private volatile int baselineRound;
    private volatile long baselinePagesCopied;
    private volatile long baselinePagesLeft;
    private volatile boolean baselineDone;
    private volatile long baselineDiskBytesSent;
    private volatile long launchPauseNs;
    private volatile long protectionStartNs;
    private volatile long baselineAckedNs;
    private final long baselineDiskBytes;
    private volatile long baselineCommitNs;
    private volatile long lastCommitLatencyNs;
    private volatile long lastSendNs;
    private volatile long lastEncodedBytes;
    private volatile long applicationSignal;
    private volatile long periodNs;
    private volatile CheckpointPolicy.Decision policyDecision = CheckpointPolicy.Decision.HOLD;
    private volatile boolean closing;
    private volatile boolean goodbyeDelivered;
    private volatile boolean fenceRequested;
    private volatile String fenceReason;
    private volatile boolean guestStopped;
    /** The generation of this session: every frame carries it. */
    private volatile long generation;
    /** The session's first epoch: the launch's baseline, or a reconnected session's resync. */
    private volatile long sessionFirstEpoch;
    /** The fingerprint of the standby's recovery point as the session started. */
    private volatile long sessionFingerprint;
    /** Fingerprints of recent epochs sent (and of each session's starting point), by epoch modulo the length. */
    private final AtomicLongArray fingerprints;
    private final AtomicLongArray fingerprintEpochs;
    private Thread reconnectThread;
    /** Stepped by the caller: when the sender's duty cycle tries to reconnect next, and the back-off. */
    private long nextReconnectAttemptNs;
    private long reconnectBackoffMs;
    /** A session the reconnect thread opened, for the sender to adopt; guarded by this. */
    private Session pendingSession;
    private boolean claimedWhileReconnecting;
    private volatile long reconnectAttempts;
    private volatile String reconnectError;
    private volatile long reconnects;
    private volatile long quickResyncs;
    private volatile long resyncBytes;
    private volatile long lastResyncBytes;
    private volatile long lastResyncPages;
    private volatile String lastResync;
    private volatile long unprotectedTotalNs;
    /** When protection was last lost after the first baseline, 0 while protected. */
    private volatile long unprotectedSinceNs;
    private volatile boolean reconnectedSession;
    /** The acknowledged epoch a planned switchover hands over at, 0 if none. */
    private volatile long switchoverEpoch;
    private volatile boolean switchoverAsked;
    /** A restore in place holds the guest paused: no switchover may begin meanwhile. */
    private volatile boolean restoringInPlace;
    /** When this side was fenced (a switchover's answer arrived), for the switchover's stop time. */
    private volatile long fencedAtNs;
    private volatile long switchoverGeneration;
    private long resyncStartBytes;
    private final Ownership ownership;
    /**
     * The checkpoint this promoted guest resumed from, which the standby holds too: the first session is a quick
     * resync of what the guest changed since, not a baseline. Null otherwise.
     */
    private final ResumedCheckpoint quickFrom;
    /** The standby's failure timeout: silence after which it may promote (from its WELCOME). */
    private final long standbyFailureTimeoutNs;
    private final long claimDelayNs;
    private long linkLostNs;
    private long nextArbiterAttemptNs;
    /**
     * The checkpoint rate over windows of at least a second, kept by the scheduler as it checkpoints: a status()
     * read every 50 ms by one caller (the harness's fence watcher) must not shrink what another caller sees.
     */
    private volatile long rateWindowStartNs;
    private volatile long rateWindowCheckpoints;
    private volatile double lastWindowRate;
    /** The shortest window the checkpoint rate is measured over. */
    static final long RATE_WINDOW_NS = TimeUnit.SECONDS.toNanos(1);
    private boolean closed;
    /** The last snapshot, taken while closing: afterwards the gate's and stream's memory is freed. */
    private ProtectionStatus closedStatus;

    private ActiveReplicator(final ActiveContext ctx, final Connection connection, final int version,
        final long recoveryEpoch, final long recoveryFingerprint, final Ownership ownership,
        final long standbyFailureTimeoutNs, final ResumedCheckpoint quickFrom)
    {
        this.quickFrom = quickFrom;
        this.ctx = ctx;
        this.adapter = ctx.adapter();
        long diskBytes = 0;
        for (final VirtualDisk disk : adapter.disks())
        {
            diskBytes += disk.sizeBytes();
        }
        this.baselineDiskBytes = diskBytes;
        this.connection = connection;
        this.firstEpoch = recoveryEpoch + 1;
        this.sessionFirstEpoch = firstEpoch;
        this.sessionFingerprint = recoveryFingerprint;
        this.ownership = ownership;
        this.generation = ownership.generation();
        this.standbyFailureTimeoutNs = standbyFailureTimeoutNs;
        this.claimDelayNs = ctx.ownershipClaimDelayNs() > 0 ? ctx.ownershipClaimDelayNs() :
            2 * standbyFailureTimeoutNs;
        this.periodNs = ctx.checkpointPeriodNs();
        this.lastCheckpointEpoch = recoveryEpoch;
        this.sentThroughEpoch = recoveryEpoch;
        this.lastAckedEpoch = recoveryEpoch;
        final int timesLength = Integer.highestOneBit(ctx.maxEpochsInFlight() * 2 + 2) * 2;
        this.checkpointTimes = new AtomicLongArray(timesLength);
        this.checkpointDirtyPages = new AtomicLongArray(timesLength);
        this.checkpointTimesMask = timesLength - 1;
        this.fingerprints = new AtomicLongArray(timesLength);
        this.fingerprintEpochs = new AtomicLongArray(timesLength);
        fingerprintSent(recoveryEpoch, recoveryFingerprint);
        // first: a launch that fails later frees them in the catch below
        this.counters = new ActiveCounters(ctx.countersDirectory(), adapter.vmId());
        counters.checkpointEpoch.setRelease(recoveryEpoch);
        counters.ackedEpoch.setRelease(recoveryEpoch);
        counters.generation.setRelease(generation);
        final List<StagingArea> created = new ArrayList<>();
        DiskWriteStream stream = null;
        OutputCommitGate outputGate = null;
        try
        {
            for (int i = 0; i < ctx.stagingAreas(); i++)
            {
                created.add(new StagingArea(i, ctx.stagingAreaBytes(), adapter.memory().pageSize(),
                    ctx.componentStateBytes(), adapter.components().size()));
            }
            stream = new DiskWriteStream(ctx.diskStreamBytes(), adapter.disks(),
                ctx.maxFramePayload() - FrameCodec.DISK_WRITE_HEADER, ctx::newWaitStrategy);
            outputGate = new OutputCommitGate(ctx.outputHoldBytes(), adapter.packetSink(), hold.recorder(),
                HIGHEST_RECORDED_NS, ctx.nanoClock());
            outputGate.baselineEpoch(firstEpoch);
        }
        catch (final RuntimeException ex)
        {
            created.forEach(StagingArea::close);
            CloseHelper.quietCloseAll(stream, outputGate, counters);
            throw ex;
        }
        this.areas = created.toArray(new StagingArea[0]);
        this.diskStream = stream;
        this.gate = outputGate;
        this.scheduler = new CheckpointScheduler(this, ctx, areas, diskStream, gate, firstEpoch, pause.recorder());
        this.sender = new CheckpointSender(this, ctx, connection, version, generation, firstEpoch, areas, diskStream,
            gate, commit.recorder(), encode.recorder(), send.recorder());
        if (ctx.useAgentInvoker())
        {
            this.schedulerRunner = null;
            this.senderRunner = null;
            this.schedulerInvoker = new AgentInvoker(this::onAgentError, null, scheduler);
            this.senderInvoker = new AgentInvoker(this::onAgentError, null, sender);
        }
        else
        {
            this.schedulerRunner = new AgentRunner(
                new BackoffIdleStrategy(10, 10, 1_000, 50_000), this::onAgentError, null, scheduler);
            this.senderRunner = new AgentRunner(
                new BackoffIdleStrategy(100, 10, 1_000, 100_000), this::onAgentError, null, sender);
            this.schedulerInvoker = null;
            this.senderInvoker = null;
        }
    }

    /**
     * Connects, handshakes and starts protecting the guest.
     * <p>
     * A launch that throws has undone everything it started: no thread runs, no off-heap memory is held, the
     * connection is closed and the guest's I/O no longer passes through the library. A launch that returns starts
     * the scheduler and sender threads ({@code tandem-checkpoint-*}); they are not daemon threads, like Aeron's and
     * Agrona's agents: they keep the JVM alive until {@link #close()}, so protection never silently stops (and the
     * standby never promotes) because a main thread returned. Close the replicator in a {@code finally} or
     * try-with-resources.
     *
     * @param ctx configuration; concluded here.
     * @return the running replicator.
     * @throws IOException        if the standby cannot be reached, naming its endpoint.
     * @throws ProtocolException  if the standby refused the handshake, with its reason.
     * @throws dev.tandem.core.ConfigurationException if a setting is out of range.
     * @throws IllegalStateException if JVM flags the library needs are missing.
     */
    public static ActiveReplicator launch(final ActiveContext ctx) throws IOException
    {
        ctx.conclude();
        JvmAccess.check(LOG::warn);
        // registering the JFR event types costs tens of milliseconds once: do it here, not in the first checkpoint
        CheckpointEvent.enabled();
        CommitEvent.enabled();
        PolicyDecisionEvent.enabled();
        final String vmId = ctx.adapter().vmId();
        final Ownership ownership = new Ownership(vmId, ctx.promotionArbiter(),
            ctx.generationFile() == null ? null : new GenerationFile(ctx.generationFile()), ctx.generation());
        checkNotSuperseded(vmId, ownership);
        final Connection connection = ctx.transport().connect(ctx.standbyEndpoint(), ctx.connectTimeoutMs());
        final ActiveReplicator replicator;
        try
        {
            // a promoted guest whose changes since its checkpoint are recorded names that checkpoint: a standby
            // that holds it (the old active after a switchover) gets only those changes; its epochs go on from it
            final ResumedCheckpoint resumed = ctx.resumedFrom();
            final boolean continues = resumed != null && resumed.tracked();
            final List<Handshake.Checkpoint> history = continues ?
                List.of(new Handshake.Checkpoint(resumed.epoch(), resumed.fingerprint())) : List.of();
            final Handshake.Welcome welcome = handshake(ctx, connection, ownership.generation(),
                continues ? resumed.epoch() + 1 : 0, history, () -> true);
            if (welcome.generation() < ownership.generation())
            {
                throw new ProtocolException(ProtocolException.Fault.STALE_GENERATION, "standby " + connection.peer() +
                    " welcomed generation " + welcome.generation() + " but this active serves " +
                    ownership.generation());
            }
            if (welcome.resync() && !history.contains(new Handshake.Checkpoint(welcome.recoveryEpoch(),
                welcome.fingerprint())))
            {
                throw new ProtocolException(ProtocolException.Fault.MALFORMED, "standby " + connection.peer() +
                    " resumes epoch " + welcome.recoveryEpoch() + " as one of this active's checkpoints, but it " +
                    "is not one this active named" + (continues ? " (it named epoch " + resumed.epoch() + ")" : ""));
            }
            if (resumed != null && !continues)
            {
                LOG.info("VM {} resumed from epoch {} but its target did not record what changed since " +
                    "(RecoveryPoint.trackFromResume): a whole baseline follows", resumed.vmId(), resumed.epoch());
            }
            // generations only move up: from now on this side serves the session's, persisted across restarts
            ownership.adopt(welcome.generation());
            replicator = new ActiveReplicator(ctx, connection, welcome.version(),
                continues ? resumed.epoch() : welcome.recoveryEpoch(), welcome.fingerprint(), ownership,
                welcome.failureTimeoutNs(), welcome.resync() ? resumed : null);
        }
        catch (final IOException | RuntimeException ex)
        {
            connection.close();
            throw ex;
        }
        try
        {
            replicator.start();
        }
        catch (final RuntimeException | Error ex)
        {
            // a launch that throws leaves nothing behind: no thread, no off-heap memory, no open connection
            replicator.abandon();
            connection.close();
            throw ex;
        }
        return replicator;
    }

    /**
     * An active at any generation, 0 included, asks the arbiter before it runs protected: a newer generation there
     * means another side owns the guest.
     */
    private static void checkNotSuperseded(final String vmId, final Ownership ownership)
    {
        if (!ownership.hasArbiter())
        {
            return;
        }
        final long current;
        try
        {
            current = ownership.arbiterGeneration();
        }
        catch (final RuntimeException ex)
        {
            throw new IllegalStateException("cannot reach the arbiter to check that VM " + vmId + " is not owned " +
                "elsewhere (" + ex.getMessage() + "); protection not started", ex);
        }
        if (current > ownership.generation())
        {
            throw new IllegalStateException("VM " + vmId + " is owned elsewhere: the arbiter holds generation " +
                current + " but this active serves " + ownership.generation() + "; this side is fenced and must not " +
                "run the guest (if this really is the only copy, start it with ActiveContext.generation(" + current +
                "))");
        }
    }

    private void start()
    {
        protectionStartNs = ctx.nanoClock().nanoTime();
        if (quickFrom != null)
        {
            // a promoted guest whose standby holds the checkpoint it resumed from: the library attaches (replacing
            // the record of disk writes the target kept since the resume, complete now the guest is paused), the
            // sender takes that record over as writes made while no session ran, and the scheduler opens a quick
            // resync as after a reconnect: the pages the guest's dirty log reports since the resume (it has
            // tracked from then on, so it is not restarted here) and the recorded extents
            inLaunchPause(() ->
            {
                adapter.attach(diskStream, gate);
                sender.resumedFrom(quickFrom);
                scheduler.resumedFrom(quickFrom.epoch(), firstEpoch);
            });
            reconnectedSession = true;
            resyncStartBytes = 0;
            quickResyncs++;
            lastResync = "quick: the standby holds epoch " + quickFrom.epoch() + ", the checkpoint this guest " +
                "resumed from; the pages and blocks changed since follow";
            LOG.info("VM {}: the standby holds the checkpoint this guest resumed from ({}): only what changed " +
                "since follows", adapter.vmId(), quickFrom);
        }
        else if (scheduler.liveBaseline())
        {
            // attach, start tracking and open the baseline in one pause: every write from before is complete (so
            // the disk copy reads it), every write from after is in the stream behind the copy, and every memory
            // write from after is in the dirty log
            inLaunchPause(() ->
            {
                adapter.attach(diskStream, gate);
                adapter.dirtyLog().startTracking();
                scheduler.openBaseline();
            });
        }
        else
        {
            adapter.attach(diskStream, gate);
            adapter.dirtyLog().startTracking();
        }
        LOG.info("protecting VM {} towards standby {}, first epoch {}", adapter.vmId(), connection.peer(), firstEpoch);
        if (senderInvoker != null)
        {
            senderInvoker.start();
            schedulerInvoker.start();
        }
        else
        {
            AgentRunner.startOnThread(senderRunner);
            AgentRunner.startOnThread(schedulerRunner);
        }
    }

    /**
     * Runs the launch's steps with the guest paused (unless the VMM paused it already), and notes that pause.
     */
    private void inLaunchPause(final Runnable steps)
    {
        final boolean pause = !adapter.vcpus().isPaused();
        final long pauseStart = ctx.nanoClock().nanoTime();
        if (pause)
        {
            adapter.vcpus().pause();
        }
        try
        {
            steps.run();
        }
        finally
        {
            if (pause)
            {
                adapter.vcpus().resume();
                launchPauseNs = ctx.nanoClock().nanoTime() - pauseStart;
            }
        }
    }

    /**
     * Detaches the library from the guest with its vCPUs paused around the call, so that no vCPU is inside the disk
     * sink or the output gate when their off-heap memory is freed after this returns (a vCPU that read the gate just
     * before the detach would otherwise copy a frame into freed memory; device threads are parked by the same
     * pause, as {@link dev.tandem.vmm.VcpuControl#pause()} promises).
     *
     * @param mayResume false when the guest is paused for good already (fenced or stopped).
     */
    private void detachQuiesced(final boolean mayResume)
    {
        final boolean pause = mayResume && !adapter.vcpus().isPaused();
        if (pause)
        {
            adapter.vcpus().pause();
        }
        try
        {
            adapter.detach();
            adapter.dirtyLog().stopTracking();
        }
        finally
        {
            if (pause)
            {
                adapter.vcpus().resume();
            }
        }
    }

    /**
     * Undoes a {@link #start()} that threw: the guest's I/O no longer passes through the library, and the threads
     * and memory this instance created are gone.
     */
    private void abandon()
    {
        protecting = false;
        state(ProtectionState.STOPPED);
        // a runner never started runs its agent's onClose (which frees the sender's buffers) on this thread
        CloseHelper.quietCloseAll(schedulerRunner, schedulerInvoker, senderRunner, senderInvoker);
        try
        {
            detachQuiesced(true);
        }
        catch (final RuntimeException ex)
        {
            LOG.warn("VM {}: undoing a failed launch, the adapter failed to detach", adapter.vmId(), ex);
        }
        for (final StagingArea area : areas)
        {
            area.close();
        }
        diskStream.shutdown();
        CloseHelper.quietCloseAll(diskStream, gate);
        // nothing writes the counters any more (the threads are gone), and no caller holds this replicator
        counters.close();
        closed = true;
    }

    /**
     * @return the pause/copy/resume duty cycle to step by hand, or null unless
     *         {@link ActiveContext#useAgentInvoker(boolean)} was set.
     */
    public AgentInvoker schedulerInvoker()
    {
        return schedulerInvoker;
    }

    /**
     * @return the send-and-acknowledge duty cycle to step by hand, or null unless
     *         {@link ActiveContext#useAgentInvoker(boolean)} was set.
     */
    public AgentInvoker senderInvoker()
    {
        return senderInvoker;
    }

    /**
     * @return the standby's WELCOME, checked.
     */
    private static Handshake.Welcome handshake(final ActiveContext ctx, final Connection connection, final long generation,
        final long firstEpoch, final List<Handshake.Checkpoint> history, final java.util.function.BooleanSupplier stillWanted)
        throws IOException
    {
        final VmmAdapter adapter = ctx.adapter();
        PeerBinding.checkStandby(connection, adapter.vmId());
        final List<Handshake.Disk> disks = new ArrayList<>();
        for (final VirtualDisk disk : adapter.disks())
        {
            disks.add(new Handshake.Disk(disk.id(), disk.blockSize(), disk.sizeBytes()));
        }
        final Handshake.Hello hello = new Handshake.Hello(FrameCodec.MIN_VERSION, FrameCodec.MAX_VERSION,
            adapter.vmId(), adapter.memory().pageSize(), adapter.memory().pageCount(), disks,
            ctx.heartbeatIntervalNs(), generation, ctx.maxFramePayload(), firstEpoch, history);
        final NanoClock clock = ctx.nanoClock();
        final IdleStrategy idle = ctx.newWaitStrategy();
        final long deadline = clock.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ctx.connectTimeoutMs());
        final FrameWriter.Stall waiting = blockedNs -> awaitProgress(clock, deadline, idle, connection, stillWanted);
        // once per connection, and freed before it returns: the session's own reader and writer are the sender's
        try (FrameWriter writer = new FrameWriter(hello.maxEncodedLength());
            FrameReader reader = new FrameReader(FrameCodec.HEADER_LENGTH + 2048, 2048))
        {
            final int length = hello.encode(writer.subHeader(), FrameCodec.HEADER_LENGTH);
            writer.begin(FrameCodec.MAX_VERSION, FrameType.HELLO, 0, 0, length, null);
            writer.writeAll(connection, waiting, clock);
            while (true)
            {
                final int read = reader.read(connection);
                if (read < 0)
                {
                    throw new IOException("standby " + connection.peer() + " closed the connection during the " +
                        "handshake");
                }
                if (reader.next())
                {
                    break;
                }
                if (read == 0)
                {
                    awaitProgress(clock, deadline, idle, connection, stillWanted);
                }
            }
            final FrameDecoder decoder = reader.decoder();
            final UnsafeBuffer inBuffer = reader.buffer();
            if (decoder.type() == FrameType.REFUSE)
            {
                throw new ProtocolException(ProtocolException.Fault.REFUSED, "standby " + connection.peer() +
                    " refused: " + Handshake.decodeReason(inBuffer, decoder.payloadIndex(), decoder.length()));
            }
            if (decoder.type() != FrameType.WELCOME)
            {
                throw new ProtocolException(ProtocolException.Fault.UNKNOWN_TYPE,
                    "expected WELCOME from standby, got " + decoder.type() + " of " + decoder.length() + " bytes");
            }
            final Handshake.Welcome welcome = Handshake.Welcome.decode(inBuffer, decoder.payloadIndex(),
                decoder.length());
            reader.consume();
            if (reader.buffered() > 0)
            {
                // a standby has nothing to say before the first epoch; these bytes would be silently dropped
                throw new ProtocolException(ProtocolException.Fault.MALFORMED, "standby " + connection.peer() +
                    " sent " + reader.buffered() + " bytes after its WELCOME, before any epoch was sent");
            }
            return welcome;
        }
    }

    private static void awaitProgress(final NanoClock clock, final long deadline, final IdleStrategy idle,
        final Connection connection, final java.util.function.BooleanSupplier stillWanted) throws IOException
    {
        if (!stillWanted.getAsBoolean())
        {
            throw new IOException("handshake with standby " + connection.peer() + " abandoned: the session is no " +
                "longer wanted");
        }
        if (Thread.currentThread().isInterrupted())
        {
            // close() ends a reconnect attempt this way
            throw new IOException("handshake with standby " + connection.peer() + " interrupted");
        }
        if (clock.nanoTime() > deadline)
        {
            throw new IOException("handshake with standby " + connection.peer() + " timed out");
        }
        idle.idle();
    }

    /**
     * @return a snapshot of the protection's state, counters and latency percentiles; after {@link #close()}, the
     *         snapshot taken as it stopped.
     */
    public synchronized ProtectionStatus status()
    {
        if (closedStatus != null)
        {
            return closedStatus;
        }
        return snapshot();
    }

    /**
     * The snapshot: counts read from the counters (the same a {@code stat} of the counters file shows), latency
     * percentiles computed here and published into their counters.
     */
    private ProtectionStatus snapshot()
    {
        final Histogram pauseHistogram;
        final Histogram commitHistogram;
        final Histogram holdHistogram;
        final Histogram encodeHistogram;
        final Histogram sendHistogram;
        final ProtectionStatus status;
        synchronized (latencyLock)
        {
            final long now = ctx.nanoClock().nanoTime();
            pauseHistogram = pause.refresh(now);
            commitHistogram = commit.refresh(now);
            holdHistogram = hold.refresh(now);
            encodeHistogram = encode.refresh(now);
            sendHistogram = send.refresh(now);
            publishLatencies(pauseHistogram, commitHistogram, holdHistogram);
            status = snapshot(pauseHistogram, commitHistogram, holdHistogram, encodeHistogram, sendHistogram);
        }
        return status;
    }

    private ProtectionStatus snapshot(final Histogram pauseHistogram, final Histogram commitHistogram,
        final Histogram holdHistogram, final Histogram encodeHistogram, final Histogram sendHistogram)
    {
        final ActiveCounters counters = this.counters;
        final long now = ctx.nanoClock().nanoTime();
        final long checkpoints = counters.checkpoints.get();
        final double rate = checkpointRate(now);
        final long newestCheckpoint = lastCheckpointEpoch;
        final long newestDirtyPages = newestCheckpoint < firstEpoch ? 0 :
            checkpointDirtyPages.get((int)(newestCheckpoint & checkpointTimesMask));
        return new ProtectionStatus(state, newestCheckpoint, lastAckedEpoch, checkpoints, rate,
            counters.bytesSent.get(), counters.pagesCopied.get(), counters.stagingOverflows.get(),
            counters.inFlightWaits.get(), diskStream.backPressured(), gate.heldBytes(), gate.releasedFrames(),
            gate.droppedFrames(), counters.pauseP50Ns.get(), counters.pauseP99Ns.get(), counters.pauseMaxNs.get(),
            commitHistogram.getValueAtPercentile(50), counters.commitP99Ns.get(), counters.pageBytesRaw.get(),
            counters.pageBytesEncoded.get(), ctx.checkpointPolicy().name(), periodNs, policyDecision.name(),
            counters.outputHoldP99Ns.get(), baselinePauseNs, encodeHistogram.getValueAtPercentile(99),
            sendHistogram.getValueAtPercentile(99), counters.zeroPages.get(), counters.rawPages.get(),
            counters.lz4Pages.get(), counters.deltaPages.get(), ctx.pageCodec() ? ctx.encoderThreads() : 0,
            counters.generation.get(), counters.arbiterAttempts.get(), ownership.lastError(),
            holdHistogram.getValueAtPercentile(50),
            percentile(hold.window(), 50), percentile(hold.window(), 99), baselineCommitNs,
            gate.baselineHoldMaxNs(), List.of(
                StageLatency.of("pause", pauseHistogram, pause.window()),
                StageLatency.of("encode", encodeHistogram, encode.window()),
                StageLatency.of("send", sendHistogram, send.window()),
                StageLatency.of("ack", commitHistogram, commit.window())), newestDirtyPages,
            new BaselineProgress(scheduler.liveBaseline(), baselineRound, baselinePagesCopied, baselinePagesLeft,
                baselineDiskBytesSent, baselineDiskBytes, baselineDone, Math.max(launchPauseNs, baselinePauseNs),
                (baselineAckedNs != 0 ? baselineAckedNs : ctx.nanoClock().nanoTime()) - protectionStartNs),
            reconnectStatus(now));
    }

    private static long percentile(final Histogram histogram, final double percentile)
    {
        return histogram.getTotalCount() == 0 ? 0 : histogram.getValueAtPercentile(percentile);
    }

    private ReconnectStatus reconnectStatus(final long now)
    {
        final boolean reconnecting = state == ProtectionState.RECONNECTING;
        final long since = unprotectedSinceNs;
        return new ReconnectStatus(reconnecting, reconnectAttempts,
            reconnecting ? Math.max(0, ctx.reconnectWindowNs() - (now - linkLostNs)) : 0, reconnects, quickResyncs,
            resyncBytes, lastResyncBytes, lastResyncPages, lastResync,
            unprotectedTotalNs + (since == 0 ? 0 : now - since));
    }

    /**
     * Writes the percentiles and the ownership figures into their counters; under {@link #latencyLock}.
     */
    private void publishLatencies(final Histogram pauseHistogram, final Histogram commitHistogram,
        final Histogram holdHistogram)
    {
        final ActiveCounters counters = this.counters;
        counters.pauseP50Ns.setRelease(pauseHistogram.getValueAtPercentile(50));
        counters.pauseP99Ns.setRelease(pauseHistogram.getValueAtPercentile(99));
        counters.pauseMaxNs.setRelease(pauseHistogram.getMaxValue());
        counters.commitP99Ns.setRelease(commitHistogram.getValueAtPercentile(99));
        counters.outputHoldP99Ns.setRelease(holdHistogram.getValueAtPercentile(99));
        counters.generation.setRelease(ownership.generation());
        counters.arbiterAttempts.setRelease(ownership.attempts());
    }

    /**
     * On the sender's thread, after the guest resumed: at most every
     * {@link ProcessCounters#LATENCY_PUBLISH_INTERVAL_NS}, folds what the recorders hold and publishes the
     * percentiles, so that {@code stat} shows them live without anyone calling {@link #status()}. Allocates nothing.
     *
     * @param now the sender's clock.
     * @return 1 if it published.
     */
    int publishLatencies(final long now)
    {
        if (now - nextLatencyPublishNs < 0)
        {
            return 0;
        }
        nextLatencyPublishNs = now + ProcessCounters.LATENCY_PUBLISH_INTERVAL_NS;
        synchronized (latencyLock)
        {
            // every distribution, not only those published: the window places samples by the time they are folded
            encode.fold(now);
            send.fold(now);
            publishLatencies(pause.fold(now), commit.fold(now), hold.fold(now));
        }
        return 1;
    }

    /**
     * @return this process's counters file holding this replicator's counters, or null if they live in process
     *         memory only (the file could not be created; a warning said why).
     */
    public java.nio.file.Path countersFile()
    {
        return counters.file();
    }

    /**
     * @return a copy of every pause recorded so far (nanoseconds).
     */
    public synchronized Histogram pauseHistogram()
    {
        synchronized (latencyLock)
        {
            return pause.fold(ctx.nanoClock().nanoTime()).copy();
        }
    }

    /**
     * @return the newest epoch the standby acknowledged.
     */
    public long lastAckedEpoch()
    {
        return lastAckedEpoch;
    }

    /**
     * @return the newest checkpoint taken.
     */
    public long lastCheckpointEpoch()
    {
        return lastCheckpointEpoch;
    }

    /**
     * The epoch that a disk write or network frame the guest issues now belongs to: {@link #lastCheckpointEpoch()}
     * + 1. Epoch N is the guest's execution between checkpoint N-1 and checkpoint N; checkpoint N advances this
     * value while the guest is paused, before {@link dev.tandem.vmm.VcpuControl#resume()}. So, read from a thread
     * that {@code pause()} quiesces (a vCPU, or a device thread issuing the guest's I/O), it is exact: the write
     * or frame that follows the read is tagged with this epoch by the disk-write stream and the output gate, its
     * disk write is behind barrier N, and the frame leaves only after ack N
     * ({@code awaitCommitted(currentEpoch(), timeout)} waits for that). Read from any other thread it can be one
     * behind while a checkpoint is in progress. Never allocates or blocks.
     *
     * @return the epoch the guest is executing.
     */
    public long currentEpoch()
    {
        return lastCheckpointEpoch + 1;
    }

    /**
     * Waits until the standby has committed {@code epoch} (acknowledged it: it holds that checkpoint's memory,
     * device state and every disk write up to barrier {@code epoch}, and the epoch's held output is released).
     * Polls every 0.2 ms at most; for tests and for a VMM that must know a write is protected (not for the guest's
     * hot path). With {@link ActiveContext#useAgentInvoker(boolean)} another thread must step the duty cycles
     * meanwhile, or nothing can commit.
     *
     * @param epoch   the epoch to wait for, e.g. {@link #currentEpoch()} after a write.
     * @param timeout how long to wait at most (wall clock).
     * @return true once {@code epoch} is committed, false if the timeout passed first.
     * @throws IllegalStateException if protection ended (closed, standby lost, failed or fenced) before the epoch
     *                               was committed, with the state, the last ack and the failure.
     * @throws InterruptedException  if the waiting thread is interrupted.
     */
    public boolean awaitCommitted(final long epoch, final Duration timeout) throws InterruptedException
    {
        return CommitWait.until(epoch, timeout, () -> lastAckedEpoch, () -> protecting ? null :
            "protection of VM " + adapter.vmId() + " ended (" + state + ") with epoch " + lastAckedEpoch +
            " acknowledged, before epoch " + epoch + " was committed" + (failure == null ? "" : ": " + failure));
    }

    /**
     * @return true while the standby follows the guest.
     */
    public boolean isProtecting()
    {
        return protecting;
    }

    /**
     * @return why protection failed, or null.
     */
    public Throwable failure()
    {
        return failure;
    }

    /**
     * @return thread ids of the scheduler and sender (for allocation checks), or -1 where not started.
     */
    public long[] threadIds()
    {
        final Thread s = schedulerRunner == null ? null : schedulerRunner.thread();
        final Thread t = senderRunner == null ? null : senderRunner.thread();
        return new long[] {s == null ? -1 : s.getId(), t == null ? -1 : t.getId()};
    }

    /**
     * Stops protection: waits briefly for epochs in flight to be acknowledged (their output is released), says
     * GOODBYE to the standby and waits for its answer, stops routing the guest's I/O through the library, and frees
     * everything. Output still held is discarded: the guest retransmits as after a lost frame.
     * <p>
     * The guest keeps running only where this side is proven to own it: when the standby answered the GOODBYE (it
     * will not promote), or, without that answer, after this side won the next generation at the arbiter. If the
     * arbiter says a newer generation exists, or cannot be reached within {@link #CLOSE_ARBITER_TIMEOUT_NS}, the
     * guest is stopped for good (FENCED) instead: the standby may be promoting on the silence that follows.
     */
    @Override
    public void close()
    {
        synchronized (this)
        {
            if (closed)
            {
                return;
            }
            closed = true;
        }
        final NanoClock clock = ctx.nanoClock();
        final IdleStrategy idle = ctx.newWaitStrategy();
        final long deadline = clock.nanoTime() + TimeUnit.SECONDS.toNanos(2);
        while (protecting && lastAckedEpoch < lastCheckpointEpoch && clock.nanoTime() < deadline)
        {
            idle.idle();
        }
        // tell the standby this is not a failure, so it does not promote on the silence that follows (the sender
        // first gives up a restore in place under way: see CheckpointSender)
        closing = true;
        idle.reset();
        final long goodbyeDeadline = clock.nanoTime() + TimeUnit.SECONDS.toNanos(1);
        while (protecting && !goodbyeDelivered && clock.nanoTime() < goodbyeDeadline)
        {
            idle.idle();
        }
        if (protecting && !goodbyeDelivered)
        {
            linkLost(new IOException("close(): the standby did not answer GOODBYE within 1 s"));
        }
        resolveOwnership(clock, idle);
        synchronized (this)
        {
            protecting = false;
            if (state != ProtectionState.FAILED && state != ProtectionState.FENCED)
            {
                state(ProtectionState.STOPPED);
            }
        }
        diskStream.shutdown();
        CloseHelper.quietCloseAll(schedulerRunner, schedulerInvoker);
        if (scheduler.heldEpoch() != 0 && scheduler.releasePending() && !fenceRequested)
        {
            // a restore in place given up by close() before anything was written: the scheduler stopped before it
            // could resume the guest, which runs on unprotected like any guest after close()
            adapter.vcpus().resume();
        }
        if (fenceRequested && !guestStopped)
        {
            // the scheduler stopped before it could stop the fenced guest: do it here, it must not run on
            stopGuest();
        }
        detachQuiesced(!guestStopped);
        CloseHelper.quietCloseAll(senderRunner, senderInvoker);
        connection.close();
        synchronized (this)
        {
            // the last look at the gate and counters before their memory goes
            closedStatus = snapshot();
        }
        for (final StagingArea area : areas)
        {
            area.close();
        }
        diskStream.close();
        gate.close();
        synchronized (this)
        {
            // after closedStatus: status() no longer reads them, and every writer thread has stopped
            counters.close();
        }
        LOG.info("protection of VM {} stopped at checkpoint {}, acked {}, state {}", adapter.vmId(),
            lastCheckpointEpoch, lastAckedEpoch, state);
    }

    /**
     * What a planned switchover did.
     *
     * @param epoch      the acknowledged epoch the guest was paused at and the standby resumed from.
     * @param generation the generation the standby won; this side's copy is stopped for good.
     * @param stopNs     from the pause of the guest here to the standby's answer that it owns the guest (its
     *                   promotion, which resumes the guest, follows at once).
     * @param fingerprint the fingerprint of that epoch: with it, this side's stopped guest can seed a standby of the
     *                   guest's new host that holds this checkpoint ({@link
     *                   dev.tandem.core.standby.StandbyContext#heldCheckpoint}), so the reverse protection resends
     *                   only what changed since.
     */
    public record Switchover(long epoch, long generation, long stopNs, long fingerprint)
    {
    }

    /**
     * Planned switchover: moves the guest to the standby's host with nothing lost and no output taken back. Pauses
     * the guest with one last checkpoint, waits for its ack (all output up to it is released, and the paused guest
     * makes no more), then asks the standby to take over; the standby claims the next generation at the arbiter,
     * answers, and resumes the guest from that checkpoint. This side's guest then stays stopped (state
     * {@code FENCED}, {@link VmmAdapter#fenced} is called); its host may become the new active's standby.
     * <p>
     * If the standby has not taken over by the deadline, this side claims the next generation itself: on a win it
     * resumes the guest here and protection reconnects (the switchover fails with an exception saying so); if the
     * standby won meanwhile, the switchover completed; if the arbiter cannot be reached, the guest stays paused and
     * the exception says so (neither side may run it until ownership is known).
     * <p>
     * Blocks the calling thread; {@link #beginSwitchover} is the same switchover for a caller that must not block
     * (an event loop, or a caller stepping the duty cycles itself).
     *
     * @param timeout how long to wait for the checkpoint's ack and for the standby's answer, each.
     * @return what the switchover did.
     * @throws IllegalStateException if protection is not {@code PROTECTED}, or the switchover did not complete.
     * @throws InterruptedException  if interrupted before the standby was asked to take over (the guest is then
     *                               resumed). An interrupt after that settles ownership at once instead of waiting
     *                               for the answer, and the result (or the failure) is returned with the thread's
     *                               interrupt status set again.
     */
    public Switchover switchover(final Duration timeout) throws InterruptedException
    {
        final SwitchoverTask task = beginSwitchover(timeout);
        boolean interrupted = false;
        try
        {
            while (true)
            {
                final Switchover done = task.poll();
                if (done != null)
                {
                    return done;
                }
                try
                {
                    Thread.sleep(1);
                }
                catch (final InterruptedException ex)
                {
                    if (!task.askedStandby())
                    {
                        // the standby was not asked yet: the guest runs on here
                        task.abandon();
                        throw ex;
                    }
                    // the standby may be taking over: ownership is settled now, then the interrupt is passed on
                    interrupted = true;
                    task.settleNow();
                }
            }
        }
        finally
        {
            if (interrupted)
            {
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * Starts the planned switchover of {@link #switchover(Duration)} without blocking: the returned task is advanced
     * by {@link SwitchoverTask#poll()}, from any one thread, until it returns the result or throws. The caller must
     * keep polling: the deadlines are checked in {@code poll()}, and until it settles the guest stays paused here.
     * A poll returns at once except when it settles: asking the arbiter for the next generation, and (on threads)
     * waiting up to 5 s for the scheduler to resume the guest after an abandoned switchover.
     *
     * @param timeout how long to wait for the checkpoint's ack and for the standby's answer, each.
     * @return the switchover under way.
     * @throws IllegalStateException if there is no arbiter, protection is not {@code PROTECTED}, or a switchover is
     *                               under way.
     */
    public SwitchoverTask beginSwitchover(final Duration timeout)
    {
        synchronized (this)
        {
            if (!ownership.hasArbiter())
            {
                throw new IllegalStateException("a switchover of VM " + adapter.vmId() + " needs a promotionArbiter: " +
                    "without one, a lost answer would leave the guest running on both hosts");
            }
            if (state != ProtectionState.PROTECTED || closing || switchoverAsked || restoringInPlace)
            {
                throw new IllegalStateException("a switchover needs a PROTECTED active with no switchover under way; " +
                    "VM " + adapter.vmId() + " is " + state + (switchoverAsked ? " (a switchover is under way)" :
                    restoringInPlace ? " (a restore in place holds the guest)" : ""));
            }
            switchoverAsked = true;
        }
        final SwitchoverTask task = new SwitchoverTask(timeout);
        scheduler.holdAfterNextCheckpoint();
        return task;
    }

    /**
     * A planned switchover under way: a state machine that never blocks. First it waits for the held checkpoint's
     * ack, then for the standby's answer, then (on threads) for the scheduler to have stopped the copy here; a
     * deadline passed settles ownership at the arbiter.
     */
    public final class SwitchoverTask
    {
        private final long timeoutNs;
        private final NanoClock clock = ctx.nanoClock();
        private final long ackDeadlineNs;
        private long answerDeadlineNs;
        private long epoch;
        private long pausedAtNs;
        private boolean settleNow;
        private Switchover result;
        private RuntimeException failure;

        private SwitchoverTask(final Duration timeout)
        {
            this.timeoutNs = timeout.toNanos();
            this.ackDeadlineNs = clock.nanoTime() + timeoutNs;
        }

        /**
         * @return true once the standby was asked to take over (from then on the guest does not resume here unless
         *         this side wins the next generation).
         */
        public boolean askedStandby()
        {
            return epoch != 0;
        }

        /**
         * Advances the switchover.
         *
         * @return what the switchover did once it completed, null while it is under way.
         * @throws IllegalStateException if it did not complete (saying why and where the guest runs); every later
         *                               call throws the same.
         */
        public Switchover poll()
        {
            if (result != null)
            {
                return result;
            }
            if (failure != null)
            {
                throw failure;
            }
            try
            {
                result = step();
                return result;
            }
            catch (final IllegalStateException ex)
            {
                failure = ex;
                throw ex;
            }
        }

        /**
         * Gives up before the standby was asked: the guest runs on here.
         */
        void abandon()
        {
            if (epoch == 0 && result == null && failure == null)
            {
                abandonSwitchover();
                failure = new IllegalStateException("switchover of VM " + adapter.vmId() + " abandoned: interrupted " +
                    "before the standby was asked; the guest runs on here");
            }
        }

        /**
         * Stops waiting for the standby's answer: the next {@link #poll()} settles ownership at the arbiter.
         */
        void settleNow()
        {
            settleNow = true;
        }

        private Switchover step()
        {
            if (epoch == 0)
            {
                final long held = scheduler.heldEpoch();
                if (held == 0 || lastAckedEpoch < held)
                {
                    if (!protecting || clock.nanoTime() > ackDeadlineNs)
                    {
                        abandonSwitchover();
                        throw new IllegalStateException("switchover of VM " + adapter.vmId() + " abandoned: " +
                            (protecting ? "the last checkpoint was not acknowledged within " + timeoutNs / 1_000_000 +
                            " ms" : "protection was lost (" + state + ")") + "; the guest runs on here");
                    }
                    return null;
                }
                epoch = held;
                pausedAtNs = scheduler.heldSinceNs();
                LOG.info("VM {}: planned switchover: the guest is paused at acknowledged epoch {}; asking the standby " +
                    "to take over", adapter.vmId(), epoch);
                switchoverEpoch = epoch;
                answerDeadlineNs = clock.nanoTime() + timeoutNs;
                return null;
            }
            if (state == ProtectionState.FENCED)
            {
                // returns once the scheduler has stopped the copy here for good and told the VMM (on threads; a
                // caller stepping the scheduler itself sees it stop at its next step)
                if (!guestStopped && schedulerRunner != null && !schedulerRunner.isClosed())
                {
                    return null;
                }
                // the standby's answer, or (if its close reset the connection before the answer was read) the
                // arbiter's
                return new Switchover(epoch, switchoverGeneration != 0 ? switchoverGeneration :
                    ownership.supersededBy(), fencedAtNs - pausedAtNs, fingerprintOf(epoch));
            }
            if (!settleNow && clock.nanoTime() < answerDeadlineNs)
            {
                return null;
            }
            return settle();
        }

        /**
         * No answer: whoever owns the next generation runs the guest.
         */
        private Switchover settle()
        {
            final Ownership.Verdict verdict = ownership.claimNext();
            if (verdict == Ownership.Verdict.SUPERSEDED)
            {
                fence("planned switchover: the standby won generation " + ownership.supersededBy());
                return new Switchover(epoch, ownership.supersededBy(), clock.nanoTime() - pausedAtNs,
                    fingerprintOf(epoch));
            }
            if (verdict == Ownership.Verdict.UNREACHABLE)
            {
                throw new IllegalStateException("switchover of VM " + adapter.vmId() + " unresolved: the standby did " +
                    "not answer within " + timeoutNs / 1_000_000 + " ms and the arbiter cannot be reached (" +
                    ownership.lastError() + "); the guest stays paused here until ownership is known");
            }
            synchronized (ActiveReplicator.this)
            {
                linkLost(new java.io.IOException("planned switchover abandoned: the standby did not take over " +
                    "within " + timeoutNs / 1_000_000 + " ms; this side won generation " + ownership.generation()));
                if (state == ProtectionState.RECONNECTING)
                {
                    // won already: reconnecting must not claim again
                    claimedWhileReconnecting = true;
                }
                else if (state == ProtectionState.ARBITRATING)
                {
                    becomeUnprotectedOwner("a planned switchover was abandoned; won generation " +
                        ownership.generation() + " at the arbiter");
                }
            }
            abandonSwitchover();
            throw new IllegalStateException("switchover of VM " + adapter.vmId() + " abandoned: the standby did not " +
                "take over within " + timeoutNs / 1_000_000 + " ms; this side won generation " +
                ownership.generation() + ", the guest runs on here and protection reconnects");
        }
    }

    /**
     * Gives up a switchover: the scheduler, the only thread that pauses and resumes the guest, resumes it if it
     * holds it (unless this side was fenced meanwhile), and checkpoints go on.
     */
    private void abandonSwitchover()
    {
        switchoverEpoch = 0;
        scheduler.releaseHold();
        final long deadline = ctx.nanoClock().nanoTime() + TimeUnit.SECONDS.toNanos(5);
        // stepped by the caller (an invoker), nobody else runs the scheduler's duty cycle: its next step resumes
        while (schedulerInvoker == null && scheduler.releasePending() && !fenceRequested && !closed &&
            ctx.nanoClock().nanoTime() < deadline)
        {
            Thread.onSpinWait();
        }
        switchoverAsked = false;
    }

    /**
     * A restore in place begins: the next checkpoint leaves the guest paused (as a switchover's does).
     *
     * @return false if it cannot begin (not protected, closing, or a switchover under way holds the guest).
     */
    synchronized boolean holdForRestore()
    {
        if (state != ProtectionState.PROTECTED || closing || switchoverAsked || restoringInPlace ||
            scheduler.releasePending())
        {
            return false;
        }
        restoringInPlace = true;
        scheduler.holdAfterNextCheckpoint();
        return true;
    }

    /**
     * @return the epoch the guest is held paused after for a restore in place, 0 until that checkpoint is taken.
     */
    long restoreHeldEpoch()
    {
        return scheduler.heldEpoch();
    }

    /**
     * The restore in place ends: the guest resumes (the scheduler's next duty cycle), its next epoch carrying the
     * pages the restore wrote.
     *
     * @param written the pages written into the guest, or null for none.
     */
    void endRestore(final dev.tandem.vmm.DirtyBitmap written)
    {
        if (written != null)
        {
            scheduler.restored(written);
        }
        if (!fenceRequested)
        {
            // a fenced side's guest stays paused for good: another side runs it
            scheduler.releaseHold();
        }
        restoringInPlace = false;
    }

    /**
     * @return the epoch a planned switchover hands over at, 0 if none was asked for.
     */
    long switchoverEpoch()
    {
        return switchoverEpoch;
    }

    /**
     * The standby answered the switchover: it won {@code newGeneration} and resumes the guest from {@code epoch}.
     */
    void switchedOver(final long newGeneration, final long epoch)
    {
        switchoverGeneration = newGeneration;
        fence("planned switchover: the standby won generation " + newGeneration + " and resumes the guest from " +
            "epoch " + epoch);
    }

    /** The longest {@link #close()} asks an unreachable arbiter before it stops the guest. */
    public static final long CLOSE_ARBITER_TIMEOUT_NS = TimeUnit.SECONDS.toNanos(10);

    /**
     * At close, while ownership is open (the standby lost, no answer from the arbiter yet): claim until the arbiter
     * answers; stop the guest if it never does.
     */
    private void resolveOwnership(final NanoClock clock, final IdleStrategy idle)
    {
        endReconnecting("close() was called");
        stopReconnectThread();
        final long deadline = clock.nanoTime() + CLOSE_ARBITER_TIMEOUT_NS;
        idle.reset();
        while (state == ProtectionState.ARBITRATING)
        {
            final long now = clock.nanoTime();
            if (now > deadline)
            {
                fence("close() could not prove that this side owns the guest: the arbiter did not answer for " +
                    CLOSE_ARBITER_TIMEOUT_NS / 1_000_000_000 + " s (" + ownership.lastError() + ")");
                break;
            }
            if (arbitrate(now, true) == 0)
            {
                idle.idle();
            }
        }
    }

    /**
     * Feeds the checkpoint policy the application's own signal (e.g. requests in flight); any thread.
     *
     * @param value the signal's current value.
     */
    public void applicationSignal(final long value)
    {
        applicationSignal = value;
    }

    long applicationSignal()
    {
        return applicationSignal;
    }

    long lastCommitLatencyNs()
    {
        return lastCommitLatencyNs;
    }

    void commitLatency(final long latencyNs)
    {
        lastCommitLatencyNs = latencyNs;
    }

    void baselineCommitNs(final long latencyNs)
    {
        baselineCommitNs = latencyNs;
    }

    void periodChosen(final long nextPeriodNs, final CheckpointPolicy.Decision decision)
    {
        // guarded: the scheduler thread must not box or build varargs in steady state
        if (decision != policyDecision && decision != CheckpointPolicy.Decision.HOLD && LOG.isDebugEnabled())
        {
            LOG.debug("checkpoint period of VM {} now {} us: {}", adapter.vmId(), nextPeriodNs / 1000, decision);
        }
        periodNs = nextPeriodNs;
        policyDecision = decision;
    }

    ProtectionState state()
    {
        return state;
    }

    /**
     * Moves to {@code next}, in the field the logic reads and the counter {@code stat} reads.
     */
    private void state(final ProtectionState next)
    {
        state = next;
        counters.state.setRelease(next.ordinal());
    }

    ActiveCounters counters()
    {
        return counters;
    }

    long sentThroughEpoch()
    {
        return sentThroughEpoch;
    }

    long checkpointTimeNs(final long epoch)
    {
        return checkpointTimes.get((int)(epoch & checkpointTimesMask));
    }

    /**
     * @return checkpoints per second over the latest window of at least {@link #RATE_WINDOW_NS}; over the window
     *         still open when checkpoints have stopped for two windows (a held or lost link), or since the first
     *         checkpoint before a window has closed.
     */
    private double checkpointRate(final long now)
    {
        final long windowStart = rateWindowStartNs;
        final long inWindow = rateWindowCheckpoints;
        if (windowStart == 0)
        {
            return 0;
        }
        final double closed = lastWindowRate;
        if (closed >= 0 && now - windowStart < 2 * RATE_WINDOW_NS)
        {
            return closed;
        }
        return inWindow * 1e9 / Math.max(1, now - windowStart);
    }

    /**
     * Counts a checkpoint into the rate's window (the scheduler's thread, after the guest resumed): the intervals
     * between checkpoints in a window of at least a second, over its length.
     *
     * @param startNs when the checkpoint's pause began.
     */
    void countIntoRate(final long startNs)
    {
        final long windowStart = rateWindowStartNs;
        if (windowStart == 0)
        {
            lastWindowRate = -1;
            rateWindowStartNs = startNs;
            return;
        }
        final long inWindow = rateWindowCheckpoints + 1;
        if (startNs - windowStart >= RATE_WINDOW_NS)
        {
            lastWindowRate = inWindow * 1e9 / (startNs - windowStart);
            rateWindowCheckpoints = 0;
            rateWindowStartNs = startNs;
        }
        else
        {
            rateWindowCheckpoints = inWindow;
        }
    }

    void checkpointTaken(final long epoch, final long startNs, final long dirtyPages)
    {
        // indexed by epoch like the times, so status() reads the pages of the very checkpoint it names
        checkpointDirtyPages.lazySet((int)(epoch & checkpointTimesMask), dirtyPages);
        checkpointTimes.lazySet((int)(epoch & checkpointTimesMask), startNs);
        CounterSet.add(counters.checkpoints, 1);
        counters.checkpointEpoch.setRelease(epoch);
        lastCheckpointEpoch = epoch;
    }

    void baselinePauseNs(final long pauseNs)
    {
        baselinePauseNs = pauseNs;
    }

    /**
     * The scheduler's view of the baseline; each field is written by it alone, read by {@link #status()}.
     */
    void baselineProgress(final int round, final long pagesCopied, final long pagesLeft, final boolean done)
    {
        baselineRound = round;
        baselinePagesCopied = pagesCopied;
        baselinePagesLeft = pagesLeft;
        baselineDone = done;
    }

    /**
     * The sender's progress through the baseline's disk copy.
     */
    void baselineDiskBytesSent(final long bytes)
    {
        baselineDiskBytesSent = bytes;
    }

    void epochSent(final long epoch, final long sendNs, final long encodedBytes)
    {
        lastSendNs = sendNs;
        lastEncodedBytes = encodedBytes;
        sentThroughEpoch = epoch;
        if (reconnectedSession && epoch == sessionFirstEpoch)
        {
            // every frame since the adoption belongs to the resync epoch (the stream's records before its opening
            // were recorded, not sent)
            lastResyncBytes = counters.bytesSent.get() - resyncStartBytes;
            resyncBytes += lastResyncBytes;
            counters.resyncBytes.setRelease(resyncBytes);
        }
    }

    /**
     * @return time from barrier to epoch end of the newest epoch sent.
     */
    long lastSendNs()
    {
        return lastSendNs;
    }

    /**
     * @return page bytes on the wire of the newest epoch sent.
     */
    long lastEncodedBytes()
    {
        return lastEncodedBytes;
    }

    void acked(final long epoch)
    {
        counters.ackedEpoch.setRelease(epoch);
        lastAckedEpoch = epoch;
        if (state == ProtectionState.SYNCING)
        {
            synchronized (this)
            {
                if (state != ProtectionState.SYNCING)
                {
                    // lost or fenced meanwhile: an ack does not undo that
                    return;
                }
                state(ProtectionState.PROTECTED);
                final long now = ctx.nanoClock().nanoTime();
                if (baselineAckedNs == 0)
                {
                    baselineAckedNs = now;
                }
                if (unprotectedSinceNs != 0)
                {
                    unprotectedTotalNs += now - unprotectedSinceNs;
                    unprotectedSinceNs = 0;
                    counters.unprotectedNs.setRelease(unprotectedTotalNs);
                }
            }
            LOG.info("VM {} protected: baseline epoch {} committed on the standby", adapter.vmId(), epoch);
        }
    }

    void fail(final Throwable error)
    {
        if (linkLost(error))
        {
            try
            {
                ctx.listener().onError(error);
            }
            catch (final RuntimeException ex)
            {
                LOG.warn("listener failed", ex);
            }
        }
    }

    /**
     * The standby is lost: stop protecting and hold output; with an arbiter, ownership is open until it answers.
     *
     * @return false if protection had ended already.
     */
    private synchronized boolean linkLost(final Throwable error)
    {
        if (!protecting)
        {
            return false;
        }
        failure = error;
        linkLostNs = ctx.nanoClock().nanoTime();
        nextArbiterAttemptNs = linkLostNs;
        // a switchover under way is not asked again of a reconnected session
        switchoverEpoch = 0;
        if (unprotectedSinceNs == 0 && baselineAckedNs != 0)
        {
            unprotectedSinceNs = linkLostNs;
        }
        final boolean reconnect = mayReconnect(error);
        // the state first: whoever sees protecting false (close()) must find ownership open, not PROTECTED
        if (reconnect)
        {
            state(ProtectionState.RECONNECTING);
            claimedWhileReconnecting = false;
            reconnectAttempts = 0;
            reconnectError = null;
        }
        else if (ownership.hasArbiter())
        {
            state(ProtectionState.ARBITRATING);
        }
        else
        {
            becomeUnprotectedOwner(error.toString());
        }
        protecting = false;
        if (!reconnect)
        {
            diskStream.shutdown();
        }
        connection.close();
        if (reconnect)
        {
            LOG.error("protection of VM {} lost: {}; output is held and the guest runs while this side reconnects " +
                "to {} for up to {} ms{}", adapter.vmId(), error.toString(), ctx.standbyEndpoint(),
                ctx.reconnectWindowNs() / 1_000_000, ownership.hasArbiter() ? " (claiming generation " +
                (generation + 1) + " after " + claimDelayNs / 1_000_000 + " ms unless the standby has)" : "");
            startReconnecting();
        }
        else if (ownership.hasArbiter())
        {
            LOG.error("protection of VM {} lost: {}; output is held while the arbiter says who owns the guest " +
                "(claiming generation {} in {} ms unless the standby has)", adapter.vmId(), error.toString(),
                generation + 1, claimDelayNs / 1_000_000);
        }
        return true;
    }

    /**
     * Starts the attempts: a thread of their own, or (stepped by the caller) the sender's duty cycle.
     */
    private synchronized void startReconnecting()
    {
        nextReconnectAttemptNs = ctx.nanoClock().nanoTime();
        reconnectBackoffMs = RECONNECT_FIRST_BACKOFF_MS;
        if (senderInvoker == null)
        {
            reconnectThread = new Thread(this::reconnect, "tandem-reconnect-" + adapter.vmId());
            reconnectThread.setDaemon(true);
            reconnectThread.start();
        }
    }

    /**
     * A lost link is worth reconnecting over; a failure of this side (an encoder, a closing) is not.
     */
    private boolean mayReconnect(final Throwable error)
    {
        return ctx.reconnectWindowNs() > 0 && !closing && !fenceRequested &&
            (error instanceof java.io.IOException || error instanceof java.io.UncheckedIOException ||
            error instanceof ProtocolException);
    }

    /**
     * The reconnect thread: connects and handshakes with back-off until a standby welcomes a session or the window
     * ends; the sender's thread adopts the session (the handshake blocks, the sender must not).
     */
    private void reconnect()
    {
        long backoffMs = RECONNECT_FIRST_BACKOFF_MS;
        while (attemptReconnect())
        {
            try
            {
                Thread.sleep(backoffMs);
            }
            catch (final InterruptedException ex)
            {
                return;
            }
            backoffMs = Math.min(RECONNECT_MAX_BACKOFF_MS, backoffMs * 2);
        }
    }

    /**
     * While a reconnect's handshake waits: still reconnecting? Stepped by the caller, the wait is the sender's own
     * duty cycle, so it watches the arbiter here as the sender does between attempts: a standby that promoted must
     * stop this guest within the bound, not after a handshake's timeout.
     */
    private boolean reconnectStillWanted()
    {
        if (senderInvoker != null && !claimedWhileReconnecting)
        {
            arbitrate(ctx.nanoClock().nanoTime(), false);
        }
        return state == ProtectionState.RECONNECTING && !closing;
    }

    /** The first wait between reconnect attempts; it doubles up to {@link #RECONNECT_MAX_BACKOFF_MS}. */
    private static final long RECONNECT_FIRST_BACKOFF_MS = 50;
    private static final long RECONNECT_MAX_BACKOFF_MS = 1_000;

    /**
     * One connect and handshake; on the reconnect thread, or on the sender's when the caller steps the duty cycles
     * ({@link ActiveContext#useAgentInvoker}: the handshake's waits are then the injected wait strategy's, which a
     * simulation uses to step the standby).
     *
     * @return true if another attempt should follow (this one failed and the window is open).
     */
    private boolean attemptReconnect()
    {
        synchronized (this)
        {
            if (state != ProtectionState.RECONNECTING || closing || pendingSession != null ||
                Thread.currentThread().isInterrupted() && senderInvoker == null ||
                ctx.nanoClock().nanoTime() - linkLostNs > ctx.reconnectWindowNs())
            {
                return false;
            }
            reconnectAttempts++;
        }
        Connection attempt = null;
        try
        {
            attempt = ctx.transport().connect(ctx.standbyEndpoint(), ctx.connectTimeoutMs());
            // no checkpoint is taken while no session runs: the next one is the new session's first
            final long first = lastCheckpointEpoch + 1;
            final List<Handshake.Checkpoint> history = history();
            final long serving = ownership.generation();
            final Handshake.Welcome welcome = handshake(ctx, attempt, serving, first, history,
                this::reconnectStillWanted);
            if (welcome.generation() < serving)
            {
                throw new ProtocolException(ProtocolException.Fault.STALE_GENERATION, "standby " +
                    attempt.peer() + " welcomed generation " + welcome.generation() + " but this active serves " +
                    serving);
            }
            if (welcome.resync() && !history.contains(new Handshake.Checkpoint(welcome.recoveryEpoch(),
                welcome.fingerprint())))
            {
                throw new ProtocolException(ProtocolException.Fault.MALFORMED, "standby " + attempt.peer() +
                    " resumes epoch " + welcome.recoveryEpoch() + " as one of this active's checkpoints, " +
                    "but it is not one this active named");
            }
            synchronized (this)
            {
                if (state == ProtectionState.RECONNECTING && !closing)
                {
                    pendingSession = new Session(attempt, welcome, first, serving);
                    return false;
                }
            }
            attempt.close();
            return false;
        }
        catch (final IOException | RuntimeException ex)
        {
            if (attempt != null)
            {
                attempt.close();
            }
            reconnectError = ex.getMessage();
            if (reconnectAttempts == 1 || ex instanceof ProtocolException)
            {
                LOG.warn("VM {}: reconnect attempt {} to {} failed: {}", adapter.vmId(), reconnectAttempts,
                    ctx.standbyEndpoint(), ex.getMessage());
            }
            return true;
        }
    }

    /**
     * @return the checkpoints the standby may hold as its recovery point: every epoch from the newest acknowledged
     *         one to the newest sent, with their fingerprints.
     */
    private List<Handshake.Checkpoint> history()
    {
        final List<Handshake.Checkpoint> history = new ArrayList<>();
        // newest first: with more epochs in flight than a HELLO carries, the standby most likely holds a late one
        for (long epoch = sentThroughEpoch; epoch >= Math.max(1, lastAckedEpoch) &&
            history.size() < Handshake.MAX_HISTORY; epoch--)
        {
            final int slot = (int)(epoch & checkpointTimesMask);
            if (fingerprintEpochs.get(slot) == epoch)
            {
                history.add(new Handshake.Checkpoint(epoch, fingerprints.get(slot)));
            }
        }
        java.util.Collections.reverse(history);
        return history;
    }

    /**
     * A session the reconnect thread opened.
     */
    private record Session(Connection connection, Handshake.Welcome welcome, long firstEpoch, long generation)
    {
    }

    /**
     * The sender's duty while reconnecting: adopt a session the reconnect thread opened, watch the arbiter, and end
     * the attempt when the window has passed.
     */
    private int whileReconnecting(final long now)
    {
        final Session session;
        synchronized (this)
        {
            if (state != ProtectionState.RECONNECTING)
            {
                return 0;
            }
            session = pendingSession;
            pendingSession = null;
            if (session == null && now - linkLostNs > ctx.reconnectWindowNs())
            {
                endReconnecting("no standby welcomed a session within the reconnect window of " +
                    ctx.reconnectWindowNs() / 1_000_000 + " ms (last error: " + reconnectError + ")");
                return 1;
            }
        }
        if (session == null)
        {
            int work = claimedWhileReconnecting ? 0 : arbitrate(now, false);
            if (senderInvoker != null && now >= nextReconnectAttemptNs && state == ProtectionState.RECONNECTING)
            {
                // stepped by the caller: the attempt runs here, its waits the injected wait strategy's
                work++;
                if (attemptReconnect())
                {
                    nextReconnectAttemptNs = ctx.nanoClock().nanoTime() + reconnectBackoffMs * 1_000_000L;
                    reconnectBackoffMs = Math.min(RECONNECT_MAX_BACKOFF_MS, reconnectBackoffMs * 2);
                }
                synchronized (this)
                {
                    if (pendingSession == null)
                    {
                        return work;
                    }
                }
                return work + whileReconnecting(ctx.nanoClock().nanoTime());
            }
            return work;
        }
        return adopt(session);
    }

    /**
     * Starts the reconnected session on the sender's thread: the sender gives up what the lost session left, the
     * scheduler opens the session's first epoch (only the changes since the standby's recovery point, or every
     * page and block), and protection resumes in SYNCING.
     */
    private int adopt(final Session session)
    {
        final Handshake.Welcome welcome = session.welcome();
        synchronized (this)
        {
            if (state != ProtectionState.RECONNECTING || closing || closed)
            {
                session.connection().close();
                return 1;
            }
            if (ownership.generation() != session.generation())
            {
                // this side won a generation while the handshake ran: a session opened at the old one would be
                // refused frame by frame; a new handshake carries the new one
                session.connection().close();
                startReconnecting();
                return 1;
            }
            ownership.adopt(welcome.generation());
            generation = ownership.generation();
            counters.generation.setRelease(generation);
            if (!sender.resume(session.connection(), welcome.version(), generation, session.firstEpoch(),
                welcome.recoveryEpoch(), welcome.fingerprint(), welcome.resync()))
            {
                session.connection().close();
                endReconnecting("a page encoder failed; no session can run");
                return 1;
            }
            connection = session.connection();
            sessionFirstEpoch = session.firstEpoch();
            sessionFingerprint = welcome.fingerprint();
            fingerprintSent(welcome.recoveryEpoch(), welcome.fingerprint());
            reconnects++;
            counters.reconnects.setRelease(reconnects);
            reconnectedSession = true;
            resyncStartBytes = counters.bytesSent.get();
            lastResyncBytes = 0;
            if (welcome.resync())
            {
                quickResyncs++;
                lastResync = "quick: the standby holds epoch " + welcome.recoveryEpoch() + " of this history; " +
                    "the pages and blocks changed since follow";
            }
            else
            {
                lastResync = "whole: " + (welcome.recoveryEpoch() == 0 ? "the standby holds no checkpoint" :
                    "the standby's epoch " + welcome.recoveryEpoch() + " is not one of this active's checkpoints " +
                    "(another history, or acknowledged epochs it no longer holds)");
            }
            scheduler.requestResync(welcome.recoveryEpoch(), welcome.resync(), session.firstEpoch());
            failure = null;
            state(ProtectionState.SYNCING);
            protecting = true;
        }
        LOG.info("VM {}: reconnected to standby {} after {} attempts, generation {}; {}", adapter.vmId(),
            session.connection().peer(), reconnectAttempts, generation, lastResync);
        reconnectAttempts = 0;
        return 1;
    }

    /**
     * The reconnect window ended (or close() ends it): ownership goes on as without reconnecting.
     */
    private synchronized void endReconnecting(final String why)
    {
        if (state != ProtectionState.RECONNECTING)
        {
            return;
        }
        if (pendingSession != null)
        {
            pendingSession.connection().close();
            pendingSession = null;
        }
        diskStream.shutdown();
        LOG.error("VM {}: reconnecting ended: {}", adapter.vmId(), why);
        if (claimedWhileReconnecting || !ownership.hasArbiter())
        {
            becomeUnprotectedOwner(why);
        }
        else
        {
            state(ProtectionState.ARBITRATING);
        }
    }

    /**
     * Ends a reconnect attempt in flight and waits for its thread, so that nothing it opened outlives close().
     */
    private void stopReconnectThread()
    {
        final Thread thread;
        synchronized (this)
        {
            thread = reconnectThread;
            reconnectThread = null;
        }
        if (thread == null)
        {
            return;
        }
        thread.interrupt();
        try
        {
            thread.join(ctx.connectTimeoutMs() + 5_000);
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
        }
        if (thread.isAlive())
        {
            LOG.warn("VM {}: the reconnect thread did not end within {} ms", adapter.vmId(),
                ctx.connectTimeoutMs() + 5_000);
        }
    }

    /**
     * @return true while this side tries to reconnect to its standby.
     */
    boolean isReconnecting()
    {
        return state == ProtectionState.RECONNECTING;
    }

    /**
     * The sender sent epoch {@code epoch} whole: its fingerprint, for a later reconnect's history.
     */
    void fingerprintSent(final long epoch, final long fingerprint)
    {
        final int slot = (int)(epoch & checkpointTimesMask);
        fingerprints.set(slot, fingerprint);
        fingerprintEpochs.set(slot, epoch);
    }

    /**
     * @param epoch an epoch sent whole lately (the newest acknowledged one is always kept).
     * @return its fingerprint.
     * @throws IllegalStateException if it is no longer kept.
     */
    private long fingerprintOf(final long epoch)
    {
        final int slot = (int)(epoch & checkpointTimesMask);
        if (fingerprintEpochs.get(slot) != epoch)
        {
            throw new IllegalStateException("the fingerprint of epoch " + epoch + " of VM " + adapter.vmId() +
                " is no longer kept");
        }
        return fingerprints.get(slot);
    }

    /**
     * @return the fingerprint of the standby's recovery point at the session's start.
     */
    long sessionFingerprint()
    {
        return sessionFingerprint;
    }

    /**
     * @return the session's first epoch.
     */
    long sessionFirstEpoch()
    {
        return sessionFirstEpoch;
    }

    /**
     * The scheduler opened a reconnected session's first epoch over {@code pages} pages.
     */
    void resyncOpened(final long epoch, final long pages, final boolean whole)
    {
        lastResyncPages = pages;
        if (whole && lastResync != null && lastResync.startsWith("quick"))
        {
            quickResyncs--;
            lastResync = "whole memory: the standby holds an epoch from before this side's last whole baseline, " +
                "which it has not acknowledged; " + lastResync;
        }
        LOG.info("VM {}: session resumes at epoch {}: {} pages to send{}", adapter.vmId(), epoch, pages,
            pages == adapter.memory().pageCount() ? " (every page)" : "");
    }

    /**
     * A quick resync copies the disks whole after all: the record could not say what changed.
     */
    void resyncDisksWhole(final String why)
    {
        lastResync = lastResync + "; disks copied whole: " + why;
        LOG.warn("VM {}: the resync copies the disks whole: {}", adapter.vmId(), why);
    }

    private void becomeUnprotectedOwner(final String why)
    {
        state(ProtectionState.FAILED);
        if (ctx.unprotectedOutput() == UnprotectedOutput.PASS_THROUGH)
        {
            LOG.warn("protection of VM {} FAILED ({}); this side owns the guest at generation {} and output now " +
                "passes through unprotected", adapter.vmId(), why, ownership.generation());
        }
        else
        {
            LOG.error("protection of VM {} FAILED ({}); this side owns the guest at generation {}; output is held " +
                "(and dropped when the queue is full)", adapter.vmId(), why, ownership.generation());
        }
    }

    /**
     * The sender's duty while not protecting: answer ownership, then let output pass where the policy says so.
     *
     * @return work done.
     */
    int whileUnprotected()
    {
        final ProtectionState current = state;
        if (current == ProtectionState.RECONNECTING)
        {
            return whileReconnecting(ctx.nanoClock().nanoTime());
        }
        if (current == ProtectionState.ARBITRATING)
        {
            return arbitrate(ctx.nanoClock().nanoTime(), false);
        }
        // only an owner releases: FAILED is reached after winning the arbiter (or with none configured)
        if (current == ProtectionState.FAILED && ctx.unprotectedOutput() == UnprotectedOutput.PASS_THROUGH)
        {
            return gate.release(Long.MAX_VALUE);
        }
        return 0;
    }

    /**
     * One question to the arbiter while ownership is open: first only whether a newer generation exists (the
     * standby may be promoting), then, after the claim delay (or at once when {@code claimNow}), a claim of the next
     * generation.
     *
     * @return 1 if the arbiter was asked.
     */
    synchronized int arbitrate(final long now, final boolean claimNow)
    {
        final boolean reconnecting = state == ProtectionState.RECONNECTING;
        if (state != ProtectionState.ARBITRATING && !reconnecting || now < nextArbiterAttemptNs ||
            reconnecting && claimedWhileReconnecting)
        {
            return 0;
        }
        final boolean claim = claimNow || now - linkLostNs >= claimDelayNs;
        final Ownership.Verdict verdict = claim ? ownership.claimNext() : ownership.check();
        switch (verdict)
        {
            case SUPERSEDED:
                fence("the arbiter holds generation " + ownership.supersededBy() + ", newer than this active's " +
                    generation + ": the standby promoted");
                break;
            case OWNER:
                if (claim && reconnecting)
                {
                    // the standby can no longer promote; output stays held while the reconnecting goes on
                    claimedWhileReconnecting = true;
                    LOG.warn("VM {}: won generation {} at the arbiter while reconnecting; output stays held until " +
                        "a session resumes or the window ends", adapter.vmId(), ownership.generation());
                }
                else if (claim)
                {
                    becomeUnprotectedOwner("the standby is lost; won generation " + ownership.generation() +
                        " at the arbiter");
                }
                else
                {
                    nextArbiterAttemptNs = now + ctx.heartbeatIntervalNs();
                }
                break;
            default:
                nextArbiterAttemptNs = now + ownership.retryDelayNs();
                break;
        }
        return 1;
    }

    /**
     * While connected but hearing nothing for longer than the standby's failure timeout, the standby may have
     * promoted already: ask the arbiter (at most once a heartbeat interval) and stop the guest at once if so, rather
     * than only after this side's own silence timeout.
     *
     * @return true if this side is superseded (and now fenced).
     */
    boolean supersededWhileSilent(final long now, final long lastReceivedNs)
    {
        if (!ownership.hasArbiter() || now - lastReceivedNs <= standbyFailureTimeoutNs ||
            now < nextArbiterAttemptNs || state != ProtectionState.PROTECTED && state != ProtectionState.SYNCING)
        {
            return false;
        }
        nextArbiterAttemptNs = now + ctx.heartbeatIntervalNs();
        if (ownership.check() == Ownership.Verdict.SUPERSEDED)
        {
            synchronized (this)
            {
                protecting = false;
                diskStream.shutdown();
                connection.close();
                fence("the standby went silent and the arbiter holds generation " + ownership.supersededBy() +
                    ", newer than this active's " + generation + ": the standby promoted");
            }
            return true;
        }
        return false;
    }

    /**
     * Another side runs the guest now: stop this copy (the scheduler pauses it for good and tells the VMM) and never
     * release its held output.
     */
    synchronized void fence(final String why)
    {
        if (state == ProtectionState.FENCED)
        {
            protecting = false;
            return;
        }
        fenceReason = why;
        fencedAtNs = ctx.nanoClock().nanoTime();
        if (pendingSession != null)
        {
            pendingSession.connection().close();
            pendingSession = null;
        }
        state(ProtectionState.FENCED);
        fenceRequested = true;
        protecting = false;
        // nothing more of this guest goes to the standby: a vCPU blocked on a full disk stream (the sender stopped
        // draining it when the session ended) must return, or the scheduler's pause that stops the guest waits for
        // it for ever and the superseded guest is never stopped (simulation seed 201424); the writes are the
        // VMM's own image's, beyond every recovery point
        diskStream.shutdown();
        LOG.error("VM {} FENCED: {}; this side stops its guest and discards its held output", adapter.vmId(), why);
    }

    /**
     * Stops the fenced guest for good and tells the VMM; on the scheduler's thread, or in close() once it stopped.
     */
    void stopGuest()
    {
        // a planned switchover paused it already, and pausing twice is not for the SPI to forgive
        if (!adapter.vcpus().isPaused())
        {
            adapter.vcpus().pause();
        }
        guestStopped = true;
        try
        {
            adapter.fenced(fenceReason);
        }
        catch (final RuntimeException ex)
        {
            LOG.warn("the VMM's fenced() callback failed; the guest stays paused", ex);
        }
    }

    void handOver(final String why)
    {
        LOG.error("VM {}: {}; reported to the standby, which resumes the guest from its recovery point", adapter.vmId(),
            why);
        failure = new IllegalStateException(why);
        diskStream.shutdown();
        fence("handed over to the standby because " + why);
        try
        {
            ctx.listener().onError(failure);
        }
        catch (final RuntimeException ex)
        {
            LOG.warn("listener failed", ex);
        }
    }

    boolean isClosing()
    {
        return closing;
    }

    void goodbyeDelivered()
    {
        goodbyeDelivered = true;
    }

    boolean isGoodbyeDelivered()
    {
        return goodbyeDelivered;
    }

    long standbyFailureTimeoutNs()
    {
        return standbyFailureTimeoutNs;
    }

    boolean fenceRequested()
    {
        return fenceRequested;
    }

    /**
     * @return true once this side stopped its guest because another side owns it.
     */
    public boolean isGuestStopped()
    {
        return guestStopped;
    }

    /**
     * @return the fencing generation this side serves (the session's, or the next one once it won it at the arbiter
     *         after losing its standby); persist it with the VM and pass it to {@link ActiveContext#generation(long)}
     *         at the next start, or let {@link ActiveContext#generationFile} do so.
     */
    public long generation()
    {
        return ownership.generation();
    }

    private void onAgentError(final Throwable error)
    {
        fail(error);
    }

    void onEncoderError(final Throwable error)
    {
        fail(new IllegalStateException("page encoder failed", error));
    }

}
