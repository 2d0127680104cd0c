package dev.tandem.core.standby;

import dev.tandem.core.failover.Ownership;
import dev.tandem.core.metrics.CounterSet;
import dev.tandem.core.metrics.LatencyDistribution;
import dev.tandem.core.transport.Connection;
import dev.tandem.core.transport.Transport;
import dev.tandem.core.wire.FrameCodec;
import dev.tandem.core.wire.FrameDecoder;
import dev.tandem.core.wire.FrameReader;
import dev.tandem.core.wire.FrameWriter;
import dev.tandem.core.wire.FrameType;
import dev.tandem.core.wire.Handshake;
import dev.tandem.core.wire.PeerBinding;
import dev.tandem.core.wire.ProtocolException.Fault;
import dev.tandem.core.wire.ProtocolException;
import dev.tandem.vmm.NativeMemory;
import org.agrona.CloseHelper;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.NanoClock;
import org.agrona.concurrent.OneToOneConcurrentArrayQueue;
import org.agrona.concurrent.UnsafeBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * The standby's session with its active (DESIGN.md "The standby"): accepts the active (refusing a second one, with a
 * reason it can read), runs the handshake (geometry, generation against the arbiter, the recovery point and whether
 * the active resumes it), reads the ordered stream through one {@link FrameReader}, answers with acks and heartbeats
 * (the active's only liveness evidence) through one {@link FrameWriter}, hands each data frame to the
 * {@link EpochAssembler}, commits and acks each verified epoch at once and queues it for the {@link Applier}, and
 * serves the {@link Promoter}'s states between frames. A refused frame or a lost link discards the epoch in
 * assembly and keeps the recovery point.
 * <p>
 * An Agrona agent on its own thread ({@code tandem-standby-receiver}), or stepped by hand in the simulation; the
 * {@link StandbyReplica} facade wires it and reads the state it publishes (generation, recovery point's epoch,
 * connected).
 */
final class StandbySession implements Agent, Promoter.Session
{
    private static final Logger LOG = LoggerFactory.getLogger(StandbySession.class);
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

    private final StandbyContext ctx;
    private final Transport.Listener listener;
    private final NanoClock clock;
    private final Handshake.Hello expected;
    private final Ownership ownership;
    private final RecoveryImage image;
    private final Applier applier;
    private final FailureDetector detector;
    private final StandbyCounters counters;
    private final OneToOneConcurrentArrayQueue<EpochLog> verifiedLogs;
    private final OneToOneConcurrentArrayQueue<EpochLog> freeLogs;
    private final LatencyDistribution receiveStage;
    private final LatencyDistribution commitStage;
    private final Runnable beforeWork;
    private final Consumer<String> errors;
    private final Promoter promoter;

    /** The generation of the current session (frames must carry it); moves only up. */
    private volatile long generation;
    private volatile long lastCommittedEpoch;
    /** When this run committed {@link #lastCommittedEpoch}, wall-clock ms; 0 for a checkpoint held from before. */
    private long committedAtMillis;
    private volatile boolean connected;
    private volatile Thread thread;

    /** The active's stream; at least two largest frames, so one can wait for the applier while the next arrives. */
    private final FrameReader reader;
    private final UnsafeBuffer receiveBuffer;
    private final FrameDecoder decoder;
    /** Replies: acks, heartbeats, WELCOME, refusals with their reason. */
    private final FrameWriter writer;
    private final EpochAssembler assembler;
    private final IdleStrategy ackIdle;
    /** A restore in place the active asked for, being served; null if none. */
    private InPlaceRestore restore;
    /** Restores given up on a lost link whose preparation may still read the image: waited for at close. */
    private final List<InPlaceRestore> abandonedRestores = new ArrayList<>();
    /** How a restore in place sends its frames: one at a time, through the reply writer, never blocking. */
    private final InPlaceRestore.Frames restoreFrames = new InPlaceRestore.Frames()
    {
        @Override
        public boolean idle()
        {
            return !writer.pending();
        }

        @Override
        public UnsafeBuffer subHeader()
        {
            return writer.subHeader();
        }

        @Override
        public void send(final FrameType type, final long epoch, final int subHeader, final ByteBuffer payload)
            throws IOException
        {
            writer.begin(version, type, generation, epoch, subHeader, payload);
            lastSentNs = clock.nanoTime();
            replyStartNs = lastSentNs;
            replyConnection = connection;
            replyWritten();
        }
    };
    /**
     * @param ctx          the standby's configuration.
     * @param listener     where actives connect; closed by a promotion.
     * @param ownership    every arbiter and generation decision of this side.
     * @param image        the recovery image.
     * @param applier      applies what this session commits.
     * @param counters     the standby's counters.
     * @param verifiedLogs session to applier: verified epochs, in epoch order.
     * @param freeLogs     applier to session: logs to assemble the next epochs in.
     * @param receiveStage barrier to verified end, steady state.
     * @param commitStage  barrier to ack written, steady state.
     * @param beforeWork   the facade's work between two frames (inspections, published latencies).
     * @param errors       hears the session's last error.
     */
    StandbySession(final StandbyContext ctx, final Transport.Listener listener, final Ownership ownership,
        final RecoveryImage image, final Applier applier, final StandbyCounters counters,
        final OneToOneConcurrentArrayQueue<EpochLog> verifiedLogs, final OneToOneConcurrentArrayQueue<EpochLog> freeLogs,
        final LatencyDistribution receiveStage, final LatencyDistribution commitStage, final Runnable beforeWork,
        final Consumer<String> errors)
    {
        this.ctx = ctx;
        this.listener = listener;
        this.clock = ctx.nanoClock();
        this.expected = new Handshake.Hello(FrameCodec.MIN_VERSION, FrameCodec.MAX_VERSION, ctx.vmId(),
            ctx.pageSize(), ctx.pageCount(), ctx.disks(), 1, 0, ctx.maxFramePayload());
        this.ownership = ownership;
        this.generation = ownership.generation();
        this.image = image;
        this.applier = applier;
        this.counters = counters;
        this.verifiedLogs = verifiedLogs;
        this.freeLogs = freeLogs;
        this.receiveStage = receiveStage;
        this.commitStage = commitStage;
        this.beforeWork = beforeWork;
        this.errors = errors;
        this.ackIdle = ctx.newWaitStrategy();
        final int bufferBytes = Math.max(4 << 20, 2 * (FrameCodec.HEADER_LENGTH + ctx.maxFramePayload()));
        FrameReader createdReader = null;
        FrameWriter createdWriter = null;
        try
        {
            createdReader = new FrameReader(bufferBytes, ctx.maxFramePayload());
            createdWriter = new FrameWriter(2048 - FrameCodec.HEADER_LENGTH);
            this.assembler = new EpochAssembler(ctx, image, applier, freeLogs, createdReader,
                () -> lastCommittedEpoch);
        }
        catch (final RuntimeException | Error ex)
        {
            // a session that cannot be built leaves no off-heap memory behind
            CloseHelper.quietCloseAll(createdReader, createdWriter);
            drainRegion.close();
            throw ex;
        }
        this.reader = createdReader;
        this.writer = createdWriter;
        this.receiveBuffer = reader.buffer();
        this.decoder = reader.decoder();
        this.detector = new FailureDetector(clock, ctx.failureTimeoutNs());
        this.promoter = new Promoter(ctx, ownership, image, applier, detector, counters, () -> lastCommittedEpoch,
            this);
        this.repliesStalled = stalledNs ->
        {
            // from the reply's start, not its last progress: a peer taking a byte now and then holds no reply for ever
            if (clock.nanoTime() - replyStartNs > ctx.failureTimeoutNs())
            {
                throw new IOException("active " + connection.peer() + " has not read its acks for " +
                    ctx.failureTimeoutNs() / 1_000_000 + " ms");
            }
            ackIdle.idle();
        };
    }

    /**
     * @return the promotion's states, for the facade's API.
     */
    Promoter promoter()
    {
        return promoter;
    }

    /**
     * @return the recovery point's epoch: the newest epoch received whole, verified and acknowledged.
     */
    long lastCommittedEpoch()
    {
        return lastCommittedEpoch;
    }

    /**
     * @return true while an active's session is up.
     */
    boolean connected()
    {
        return connected;
    }

    /**
     * @return true while a first baseline written straight into the image has not committed.
     */
    boolean writingBaselineInPlace()
    {
        return assembler.writingBaselineInPlace();
    }

    /**
     * @return the thread running this session once started, or null when it is stepped by hand.
     */
    Thread thread()
    {
        return thread;
    }

    private String torn()
    {
        final String torn = applier.tornReason();
        return torn != null ? torn : image.brokenReason();
    }


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
        thread = Thread.currentThread();
    }

    @Override
    public int doWork() throws IOException
    {
        // the facade's inspections and counters, between two frames
        beforeWork.run();
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
            if (writer.pending())
            {
                // a reply to a connection gone since: the new one starts with none half-written
                writer.abandon();
                replyConnection = null;
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
        try
        {
            if (!replyWritten() && restore == null)
            {
                // the active has not read its replies: no frame is taken (its answer could not begin) until the
                // one under way is whole; the duty cycle goes on serving promotions, inspections and refusals. A
                // restore in place's frames need no answer to the active's meanwhile: those are taken (below)
                return work + (read > 0 ? 1 : 0);
            }
            if (restore != null)
            {
                // between the active's frames (heartbeats while its guest waits): one frame of the restore at a time
                work += restore.step(applier.appliedEpoch() == lastCommittedEpoch, restoreFrames);
                if (restore.done() && !writer.pending())
                {
                    restore.close();
                    restore = null;
                }
            }
        }
        catch (final IOException ex)
        {
            fail("connection from " + connection.peer() + " failed: " + ex.getMessage());
            return work + 1;
        }
        if (assembler.readyForFrames())
        {
            try
            {
                // a restore in place takes the writer for long stretches: the active's frames meanwhile (heartbeats,
                // the restored disk writes coming back) need no reply, and taking them keeps both sides moving
                while (connection != null && (!writer.pending() || restore != null) && reader.next())
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
        if (connection != null && heardSinceWelcome && !writer.pending() &&
            clock.nanoTime() - lastSentNs >= heartbeatIntervalNs)
        {
            // the active's liveness evidence: it counts only what this side sends, never what its socket took
            try
            {
                sendReply(FrameType.HEARTBEAT, lastCommittedEpoch);
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
        // the one writer is taken for the refusal: a reply under way (to the served active) is finished first
        finishReplyQuietly();
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
    public long fingerprint()
    {
        return fingerprint;
    }

    @Override
    public long committedAtMillis()
    {
        return committedAtMillis;
    }

    /**
     * The image starts out holding a checkpoint of the guest's history (before the session runs): an active that
     * resumed from it resyncs onto it. A held checkpoint of a stopped guest is not promotable until a session
     * commits: the active that resumed from it ran past it.
     *
     * @param epoch       the checkpoint's epoch.
     * @param checkpointFingerprint its fingerprint.
     * @param acknowledged true if it is an epoch this standby acknowledged (a restarted DURABLE image): promotable as
     *                     it was before the restart.
     */
    void held(final long epoch, final long checkpointFingerprint, final boolean acknowledged)
    {
        lastCommittedEpoch = epoch;
        committedAtMillis = 0;
        fingerprint = checkpointFingerprint;
        promotable = acknowledged;
        counters.committedEpoch.setRelease(epoch);
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

    @Override
    public void onClose()
    {
        if (restore != null)
        {
            abandonedRestores.add(restore);
            restore = null;
        }
        // their threads may still read the image, which the replica closes after this
        abandonedRestores.forEach(InPlaceRestore::closeAndWait);
        abandonedRestores.clear();
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
        if (type == FrameType.RESTORE)
        {
            if (version < Handshake.RESTORE_IN_PLACE_VERSION)
            {
                throw new ProtocolException(Fault.UNKNOWN_TYPE, "RESTORE frame in a session of protocol version " +
                    version + "; a restore in place needs version " + Handshake.RESTORE_IN_PLACE_VERSION);
            }
            if (decoder.epoch() != lastCommittedEpoch || assembler.inAssembly() || restore != null)
            {
                throw new ProtocolException(Fault.EPOCH_OUT_OF_ORDER, "RESTORE at epoch " + decoder.epoch() +
                    " but this standby's recovery point is epoch " + lastCommittedEpoch +
                    (assembler.inAssembly() ? " with epoch " + assembler.nextEpoch() + " in assembly" : "") +
                    (restore != null ? " and a restore in place is under way" : ""));
            }
            final Handshake.FailureReport report = Handshake.decodeFailureReport(receiveBuffer,
                decoder.payloadIndex(), decoder.length(), version);
            final boolean earlier = report.restoreAtMillis() != Handshake.RESTORE_LATEST;
            LOG.error("active {} reports VM {} unhealthy and restores it on its own host from epoch {} or earlier: " +
                "{}{}", connection.peer(), ctx.vmId(), lastCommittedEpoch, report.reason(), earlier ?
                "; last known good " + java.time.Instant.ofEpochMilli(report.restoreAtMillis()) : "");
            restore = new InPlaceRestore(ctx, image, lastCommittedEpoch, committedAtMillis, report.restoreAtMillis(),
                () -> generation);
            return;
        }
        if (type == FrameType.FAILURE_REPORT)
        {
            final Handshake.FailureReport report = Handshake.decodeFailureReport(receiveBuffer,
                decoder.payloadIndex(), decoder.length(), version);
            final boolean earlier = report.restoreAtMillis() != Handshake.RESTORE_LATEST;
            LOG.error("active {} reports VM {} unhealthy: {}{}", connection.peer(), ctx.vmId(), report.reason(),
                earlier ? "; last known good " + java.time.Instant.ofEpochMilli(report.restoreAtMillis()) : "");
            if (restore != null)
            {
                // the active gave its restore in place up with the guest partly written: it hands the guest over
                restore.close();
                restore = null;
            }
            promoter.failureReported("the active reported the guest unhealthy: " + report.reason() + (earlier ?
                "; last known good " + java.time.Instant.ofEpochMilli(report.restoreAtMillis()) : ""),
                report.restoreAtMillis());
            drop();
            return;
        }
        if (restore != null && type != FrameType.DISK_WRITE && type != FrameType.DISK_FLUSH)
        {
            // the restore's own disk writes come back as the next epoch's, ahead of its barrier; nothing else of
            // that epoch can (the active's guest is held until RESTORED)
            throw new ProtocolException(Fault.EPOCH_OUT_OF_ORDER, type + " frame while the active's restore in " +
                "place of epoch " + lastCommittedEpoch + " is under way: its guest is paused until RESTORED");
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
            if (torn() != null)
            {
                throw new ProtocolException(Fault.REFUSED, torn());
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
        // before the WELCOME: a failure to reset the epoch log is then this handshake's, not a session's
        assembler.startSession(hello.firstEpoch() != 0 ? hello.firstEpoch() : lastCommittedEpoch + 1);
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
        if (hello.generation() > servedBefore)
        {
            // the active owned the guest under a generation this recovery point never saw, and may have let
            // output leave beyond it: that history must not come back
            promotable = false;
        }
        // otherwise the old recovery point stays promotable until a frame of this session is accepted: a session
        // that handshakes and then dies (or a replayed HELLO refused at its first frame) changed nothing
        LOG.info("active {} connected for VM {}; recovery point is epoch {}{}", connection.peer(), hello.vmId(),
            lastCommittedEpoch, resync ? ", resumed: only what changed since follows, from epoch " +
            assembler.nextEpoch() :
            hello.history().isEmpty() ? "" : ", not one of the active's checkpoints: a whole baseline follows");
    }

    /**
     * Epoch {@code verified.epoch} arrived whole and verified: it is committed, handed to the applier, and acked
     * at once.
     */
    private void commit(final EpochLog verified) throws IOException
    {
        final long epoch = verified.epoch;
        verified.fingerprint = Handshake.chain(fingerprint, epoch, verified.crcSum);
        try
        {
            // durable before it is acknowledged (DURABLE mode); never retried if it fails
            image.commit(verified);
        }
        catch (final IOException ex)
        {
            verified.reset();
            freeLogs.offer(verified);
            throw new ProtocolException(Fault.REFUSED, ex.getMessage());
        }
        counters.committedEpoch.setRelease(epoch);
        fingerprint = verified.fingerprint;
        lastCommittedEpoch = epoch;
        committedAtMillis = System.currentTimeMillis();
        CounterSet.add(counters.commits, 1);
        promotable = true;
        detector.heard();
        try
        {
            sendReply(FrameType.ACK, epoch);
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
            receiveStage.recorder().recordValue(StandbyReplica.clamp(verified.receivedNs - verified.barrierNs));
            commitStage.recorder().recordValue(StandbyReplica.clamp(verified.ackedNs - verified.barrierNs));
        }
    }

    /**
     * An active that does not read its replies for the failure timeout is as good as gone. A field: a lambda
     * made per reply would allocate on every ack.
     */
    private final FrameWriter.Stall repliesStalled;
    /** When the reply being written was begun. */
    private long replyStartNs;
    /** The connection the reply under way goes to. */
    private Connection replyConnection;

    /**
     * An ack or a heartbeat: begun and written as far as the connection takes it, without waiting; the rest goes on
     * later duty cycles ({@link #replyWritten()}), and no frame of the active is taken meanwhile. Both have no
     * sub-header, so the sub-header buffer stays free for a frame that must follow (a refusal's reason).
     */
    private void sendReply(final FrameType type, final long epoch) throws IOException
    {
        // one reply at a time: the frame loop takes nothing while one is under way, so this waits only if a caller
        // outside it replies twice
        finishReply();
        writer.begin(version == 0 ? FrameCodec.MAX_VERSION : version, type, generation, epoch, 0, null);
        lastSentNs = clock.nanoTime();
        replyStartNs = lastSentNs;
        replyConnection = connection;
        replyWritten();
    }

    /**
     * Writes what the connection takes of the reply under way.
     *
     * @return true if none is left.
     * @throws IOException if the write fails, or the active has read none of it for the failure timeout.
     */
    private boolean replyWritten() throws IOException
    {
        if (!writer.pending())
        {
            return true;
        }
        try
        {
            writer.write(replyConnection);
            if (writer.pending() && clock.nanoTime() - replyStartNs > ctx.failureTimeoutNs())
            {
                // from the reply's start, not its last progress: a peer taking a byte now and then holds none for ever
                throw new IOException("active " + replyConnection.peer() + " has not read its acks for " +
                    ctx.failureTimeoutNs() / 1_000_000 + " ms");
            }
        }
        catch (final IOException ex)
        {
            writer.abandon();
            throw ex;
        }
        return !writer.pending();
    }

    /**
     * Finishes the reply under way, waiting as {@link #sendFrame} does: before a frame that must follow it whole on
     * the same connection (a refusal after a half-written ack would be garbage to the active), or before the writer
     * is taken for another connection.
     */
    private void finishReply() throws IOException
    {
        if (writer.pending())
        {
            final Connection target = connection;
            connection = replyConnection;
            try
            {
                ackIdle.reset();
                writer.writeAll(replyConnection, repliesStalled, clock);
            }
            finally
            {
                connection = target;
                if (writer.pending())
                {
                    writer.abandon();
                }
            }
        }
    }

    /**
     * {@link #finishReply()} where the connection is being given up anyway: a failure only means the reply is lost.
     */
    private void finishReplyQuietly()
    {
        try
        {
            finishReply();
        }
        catch (final IOException | RuntimeException ex)
        {
            LOG.debug("reply to {} given up: {}", replyConnection == null ? "?" : replyConnection.peer(),
                ex.getMessage());
        }
    }

    private void sendFrame(final FrameType type, final long epoch, final int payloadLength) throws IOException
    {
        // the sub-header the caller placed is untouched: the reply under way has none
        finishReply();
        writer.begin(version == 0 ? FrameCodec.MAX_VERSION : version, type, generation, epoch, payloadLength,
            null);
        ackIdle.reset();
        lastSentNs = clock.nanoTime();
        replyStartNs = lastSentNs;
        try
        {
            writer.writeAll(connection, repliesStalled, clock);
        }
        finally
        {
            if (writer.pending())
            {
                // the write failed (the connection is dropped on it, whatever was thrown): the next frame, on the
                // next connection, starts with none half-written
                writer.abandon();
            }
        }
    }

    private void reject(final ProtocolException ex)
    {
        // the message first: whoever sees the count rise must find this error, not the one before it
        errors.accept(ex.getMessage());
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
        errors.accept(message);
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
            if (replyConnection == connection)
            {
                // a reply to a connection closed now is never finished
                writer.abandon();
                replyConnection = null;
            }
            connection.close();
            connection = null;
        }
        connected = false;
        counters.connected.setRelease(0);
        if (restore != null)
        {
            // the active resumes its guest unrestored, or hands it over if it had begun writing it
            restore.close();
            abandonedRestores.removeIf(abandoned -> !abandoned.preparing());
            abandonedRestores.add(restore);
            restore = null;
        }
        handshakeDone = false;
        heardSinceWelcome = false;
        assembler.discard();
    }
}
