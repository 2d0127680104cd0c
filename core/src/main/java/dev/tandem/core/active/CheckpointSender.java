package dev.tandem.core.active;

import dev.tandem.core.codec.PageCodec;
import dev.tandem.core.metrics.CommitEvent;
import dev.tandem.core.metrics.CounterSet;
import dev.tandem.core.metrics.ProtectionState;
import dev.tandem.core.transport.Connection;
import dev.tandem.core.wire.FrameCodec;
import dev.tandem.core.wire.FrameDecoder;
import dev.tandem.core.wire.FrameReader;
import dev.tandem.core.wire.FrameWriter;
import dev.tandem.core.wire.FrameType;
import dev.tandem.core.wire.Handshake;
import dev.tandem.core.wire.ProtocolException;
import dev.tandem.vmm.HealthProbe;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.VirtualDisk;
import org.HdrHistogram.SingleWriterRecorder;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.ControlledMessageHandler;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.MessageHandler;
import org.agrona.concurrent.NanoClock;
import org.agrona.concurrent.UnsafeBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * Drains the ordered disk-write stream and the staging areas into frames on the connection, after the guest has
 * resumed, and handles the standby's acks: ack N releases epoch N's held output. Runs as an {@link Agent}.
 * Frames are written with gathering writes straight from the staging areas; nothing is allocated per frame.
 */
final class CheckpointSender implements Agent
{
    private static final Logger LOG = LoggerFactory.getLogger(CheckpointSender.class);
    /**
     * A header and the largest sub-header: a FAILURE_REPORT's reason of up to {@link Handshake#MAX_REASON_BYTES} and
     * its restore time.
     */
    private static final int HEADER_BUFFER_BYTES = FrameCodec.HEADER_LENGTH + Handshake.MAX_FAILURE_REPORT_PAYLOAD;

    private final ActiveReplicator replicator;
    private Connection connection;
    private final StagingArea[] areas;
    private final DiskWriteStream diskStream;
    /** The guest's memory and components: written only by a restore in place, with the guest held paused. */
    private final dev.tandem.vmm.GuestMemory memory;
    private final List<dev.tandem.vmm.StatefulComponent> components;
    private final OutputCommitGate gate;
    private final List<VirtualDisk> disks;
    private final NanoClock clock;
    private final long heartbeatIntervalNs;
    private long generation;
    private int version;
    private final int diskChunkBytes;
    private final SingleWriterRecorder commitRecorder;
    private final SingleWriterRecorder encodeRecorder;
    private final SingleWriterRecorder sendRecorder;
    private final ActiveCounters counters;
    private final ActiveListener listener;

    /** Every frame of the session; its buffer takes each frame's sub-header after the header. */
    private final FrameWriter writer;
    private final UnsafeBuffer header;
    private final NativeMemory.Region diskChunkRegion;
    private final UnsafeBuffer diskChunk;
    private final ByteBuffer diskChunkView;
    /** Acks, heartbeats and refusals of the standby. */
    private final FrameReader reader;
    private final UnsafeBuffer receiveBuffer;
    private final FrameDecoder decoder;
    private final IdleStrategy backPressureIdle;
    private final ControlledMessageHandler streamHandler = this::onStreamRecord;
    private final DeltaEncoder encoder;
    private final int pageSize;
    private final FrameType pagesType;
    private final String vmId;
    private final ByteBuffer streamView;

    private long streamEpoch;
    private long epochCrcSum;
    private int epochFrames;
    private int epochDiskWrites;
    private long epochPages;
    private long epochEncodeNs;
    private long epochEncodedBytes;
    private long epochSendStartNs;
    private long lastSendNs;
    private long lastHealthCheckNs;
    /** When the standby last sent anything (an ack, a heartbeat): the only evidence that it is alive. */
    private long lastReceivedNs;
    private long lastPollNs;
    /** The session's first epoch: the baseline, or a reconnected session's resync. */
    private long baselineEpoch;
    private boolean goodbyeSent;
    /** The disk half of the dirty-since-ack record. */
    private final DiskResyncRecord diskRecord;
    /** The fingerprint of the newest epoch sent ({@link Handshake#chain}), from the session's recovery point. */
    private long fingerprint;
    /** The segment being sent: a lost link leaves it to be given up before the next session. */
    private StagingArea sendingArea;
    /** Since the link was lost: the stream's disk writes are recorded, not sent, until this session's opening. */
    private boolean recordingUntilOpen;
    /** The session resumes the standby's recovery point: its opening copies only the recorded extents. */
    private boolean quickResync;
    private long resyncRecoveryEpoch;
    private final MessageHandler recordHandler = this::onRecordWhileDown;
    private boolean switchoverSent;
    private final long silenceTimeoutNs;
    /** How many silence timeouts the baseline may go without progress. */
    static final int BASELINE_SILENCE_FACTOR = 10;
    private final HealthProbe healthProbe;

    /** Frames one duty cycle sends at most before it returns, so acks and heartbeats are read between them. */
    static final int FRAMES_PER_DUTY_CYCLE = 64;
    /** Phases of sending a segment ({@link #stepSegment()}); IDLE between segments. */
    private static final int IDLE = 0;
    private static final int DISK_COPY = 1;
    private static final int BARRIER = 2;
    private static final int PLAN = 3;
    private static final int PAGES = 4;
    private static final int COMPONENTS = 5;
    private static final int FINISH = 6;
    /** What finishing the frame under way completes ({@link #flush()}). */
    private static final int WRITTEN_NOTHING = 0;
    private static final int WRITTEN_STREAM_RECORD = 1;
    private static final int WRITTEN_PAGES = 2;
    private static final int WRITTEN_EPOCH_END = 3;

    private int phase = IDLE;
    /** A frame has begun and is not yet whole on the connection: nothing else may begin before it is. */
    private boolean frameUnderWay;
    private FrameType frameType;
    private int onWritten = WRITTEN_NOTHING;
    /** The stream's head record was sent whole and is taken by the next read. */
    private boolean streamRecordWritten;
    /** Since when the frame under way has not moved a byte (0 while it moves). */
    private long blockedSinceNs;
    private int jobs;
    private int job;
    /** The job whose payload the PAGES frame under way is written from. */
    private int pagesJob;
    private int component;
    /** The disk copy of a baseline's or resync's opening: {disk id, offset, length} extents and where it is. */
    private long[][] copyExtents;
    private int copyExtent;
    private long copyOffset;
    private long copyBytesSent;
    /** The health probe's complaint, reported to the standby as soon as no frame is under way. */
    private String unhealthy;
    /** The newest commit time the standby may resume after the complaint ({@link HealthProbe#lastKnownGood()}). */
    private long restoreAtMillis = Handshake.RESTORE_LATEST;
    /** No restore in place under way. */
    private static final int RESTORE_NONE = 0;
    /** The probe asked for a restore here: the next checkpoint holds the guest; its ack is awaited. */
    private static final int RESTORE_HOLDING = 1;
    /** RESTORE went out: the standby's pages, disk blocks, component states and RESTORED are written in. */
    private static final int RESTORE_ASKED = 2;
    private int restoreStep = RESTORE_NONE;
    /** The acknowledged epoch the guest is held at for the restore. */
    private long restoreHeld;
    private long restoreDeadlineNs;
    /** Whether anything was written into the guest: from then on it never resumes here unless the restore ends. */
    private boolean restoreWrote;
    private dev.tandem.vmm.DirtyBitmap restoredPages;
    private long pagesRestored;
    private long diskBytesRestored;
    /**
     * The last restore in place restored the held checkpoint itself (no window, or none covering the time): the guest
     * is as it was, so a probe that complains again gets the hand-over rather than the same restore again.
     */
    private boolean restoreGaveNothingEarlier;
    /** The epoch of the restore's frames (the first one's), 0 before any. */
    private long restoreEpoch;
    private int componentsRestored;
    /** How much of the restore's DISK_WRITE frame under way the disk-write stream has taken. */
    private int restoreDiskTaken;

    CheckpointSender(
        final ActiveReplicator replicator,
        final ActiveContext ctx,
        final Connection connection,
        final int version,
        final long generation,
        final long firstEpoch,
        final StagingArea[] areas,
        final DiskWriteStream diskStream,
        final OutputCommitGate gate,
        final SingleWriterRecorder commitRecorder,
        final SingleWriterRecorder encodeRecorder,
        final SingleWriterRecorder sendRecorder)
    {
        this.replicator = replicator;
        this.connection = connection;
        this.version = version;
        this.generation = generation;
        this.areas = areas;
        this.diskStream = diskStream;
        this.gate = gate;
        this.disks = ctx.adapter().disks();
        this.memory = ctx.adapter().memory();
        this.components = ctx.adapter().components();
        this.clock = ctx.nanoClock();
        this.backPressureIdle = ctx.newWaitStrategy();
        this.heartbeatIntervalNs = ctx.heartbeatIntervalNs();
        this.commitRecorder = commitRecorder;
        this.encodeRecorder = encodeRecorder;
        this.sendRecorder = sendRecorder;
        this.counters = replicator.counters();
        this.listener = ctx.listener();
        this.pageSize = ctx.adapter().memory().pageSize();
        this.diskChunkBytes = ctx.maxFramePayload() - FrameCodec.DISK_WRITE_HEADER;
        this.writer = new FrameWriter(HEADER_BUFFER_BYTES - FrameCodec.HEADER_LENGTH);
        this.header = writer.subHeader();
        this.diskChunkRegion = NativeMemory.allocateDirect(diskChunkBytes, 4096);
        this.diskChunk = new UnsafeBuffer(diskChunkRegion.byteBuffer());
        this.diskChunkView = diskChunkRegion.byteBuffer().duplicate();
        // the standby's replies, and (a restore in place) its pages, disk blocks and component states
        final int maxPayload = Math.max(Handshake.WELCOME_LENGTH + 1024, ctx.maxFramePayload());
        this.reader = new FrameReader(Math.max(64 * 1024, 2 * (FrameCodec.HEADER_LENGTH + maxPayload)), maxPayload);
        this.receiveBuffer = reader.buffer();
        this.decoder = reader.decoder();
        this.decoder.negotiated(version);
        this.streamView = diskStream.newView();
        this.vmId = ctx.adapter().vmId();
        this.pagesType = ctx.pageCodec() ? FrameType.PAGES_ENCODED : FrameType.PAGES;
        this.encoder = new DeltaEncoder(ctx, pageSize, ctx.stagingAreaBytes() / pageSize, areas,
            replicator::isProtecting, replicator::onEncoderError);
        this.streamEpoch = firstEpoch;
        this.baselineEpoch = firstEpoch;
        this.lastSendNs = clock.nanoTime();
        this.lastReceivedNs = lastSendNs;
        this.silenceTimeoutNs = ctx.standbySilenceTimeoutNs();
        this.healthProbe = ctx.adapter().healthProbe() == null ? HealthProbe.ALWAYS_HEALTHY :
            ctx.adapter().healthProbe();
        this.diskRecord = new DiskResyncRecord(ctx.resyncExtents());
        // the launch's baseline copies the disks whole: until it is acknowledged, a reconnect copies them whole too
        this.diskRecord.wholeCopy(firstEpoch);
        this.fingerprint = replicator.sessionFingerprint();
    }

    @Override
    public String roleName()
    {
        return "tandem-checkpoint-sender";
    }

    @Override
    public void onStart()
    {
        encoder.start();
    }

    @Override
    public int doWork()
    {
        if (!replicator.isProtecting())
        {
            if (restoreStep != RESTORE_NONE)
            {
                abandonRestore("protection ended (" + replicator.state() + ")", false);
            }
            int work = 0;
            if (replicator.isReconnecting())
            {
                // the guest runs on: its disk writes are recorded for the resync and the lost session's staging
                // areas are freed, so neither the guest's I/O nor the next session waits for this stream (in every
                // other state without a session the stream is shut, and writers return)
                work += diskStream.read(recordHandler, 64);
            }
            return work + replicator.whileUnprotected();
        }
        try
        {
            if (replicator.isClosing())
            {
                if (restoreStep != RESTORE_NONE && abandonRestore("close() was called"))
                {
                    return 1;
                }
                if (frameUnderWay)
                {
                    // a GOODBYE goes between frames: the frame under way (or the GOODBYE itself) is finished first;
                    // an epoch cut short by it is discarded by the standby, as on any lost link
                    final int work = pollAcks();
                    return flush() ? work + 1 : work;
                }
                // reads only until the standby's answer: it closes after it, and reading on would report that as a
                // lost link (found under load by ProtectionApiTest: a close() that ended FAILED)
                return sayGoodbye();
            }
            int work = pollAcks();
            work += send();
            final long handOverAt = replicator.switchoverEpoch();
            if (handOverAt != 0 && !switchoverSent && idle())
            {
                // the guest is paused at an acknowledged epoch: the standby may resume it now
                beginFrame(FrameType.SWITCHOVER, handOverAt, 0, null, WRITTEN_NOTHING);
                flush();
                switchoverSent = true;
                work++;
            }
            final long now = clock.nanoTime();
            if (now - lastHealthCheckNs >= heartbeatIntervalNs)
            {
                lastHealthCheckNs = now;
                if (unhealthy == null)
                {
                    unhealthy = healthProbe.unhealthyReason();
                    if (unhealthy != null)
                    {
                        restoreAtMillis = lastKnownGood();
                        if (restoreHere())
                        {
                            restoreStep = RESTORE_HOLDING;
                            restoreDeadlineNs = now + restoreTimeoutNs();
                        }
                    }
                }
                if (replicator.supersededWhileSilent(now, lastReceivedNs))
                {
                    return 1;
                }
                checkStandbySilence(now);
            }
            if (restoreStep != RESTORE_NONE)
            {
                work += stepRestore(now);
            }
            else if (unhealthy != null && !frameUnderWay)
            {
                // between frames only (send() begins none while a report waits): the report's reason goes where
                // the frame under way keeps its sub-header
                reportFailure(unhealthy);
                return 1;
            }
            // not counted as work: it must not delay a heartbeat
            replicator.publishLatencies(now);
            if (work == 0 && idle() && clock.nanoTime() - lastSendNs >= heartbeatIntervalNs)
            {
                beginFrame(FrameType.HEARTBEAT, streamEpoch - 1, 0, null, WRITTEN_NOTHING);
                flush();
                CounterSet.add(counters.heartbeats, 1);
                work++;
            }
            return work;
        }
        catch (final IOException ex)
        {
            if (!abandonRestore("the connection to the standby was lost: " + ex.getMessage()))
            {
                replicator.fail(new UncheckedIOException("connection to standby " + connection.peer() + " lost", ex));
            }
            return 1;
        }
        catch (final ProtocolException ex)
        {
            if (ex.fault() != ProtocolException.Fault.REFUSED && !restoreWrote)
            {
                // the standby's own error names the refusal, not just a lost connection (not once a restore wrote
                // into the guest: the standby must promote, which a refusal, the active's goodbye, would stop)
                refuseStandby(ex.getMessage());
            }
            if (!abandonRestore(ex.getMessage()))
            {
                replicator.fail(ex);
            }
            return 1;
        }
        catch (final RuntimeException ex)
        {
            if (!abandonRestore(ex.toString()))
            {
                replicator.fail(ex);
            }
            return 1;
        }
    }

    /**
     * Whether the probe's complaint is answered by a restore on this host ({@link HealthProbe#restoreHere()}), and
     * if so, holds the guest after the next checkpoint.
     *
     * @return false to hand the guest over to the standby instead (the probe did not ask, or it cannot be done here).
     */
    private boolean restoreHere()
    {
        try
        {
            if (!healthProbe.restoreHere())
            {
                return false;
            }
        }
        catch (final RuntimeException ex)
        {
            LOG.error("VM {}: the health probe failed to say where the guest is restored; the standby resumes it",
                vmId, ex);
            return false;
        }
        String cannot = null;
        if (restoreGaveNothingEarlier)
        {
            cannot = "the last restore in place could give nothing earlier than the checkpoint the guest was held " +
                "at, and the probe complains again";
        }
        else if (version < Handshake.RESTORE_IN_PLACE_VERSION)
        {
            cannot = "the standby speaks protocol version " + version + ", which has no restore in place (version " +
                Handshake.RESTORE_IN_PLACE_VERSION + ")";
        }
        for (final VirtualDisk disk : disks)
        {
            if (cannot == null && !disk.writable())
            {
                cannot = "disk " + disk.id() + " cannot be written by the library (VirtualDisk.writable() is false)";
            }
        }
        if (cannot == null && !replicator.holdForRestore())
        {
            cannot = "the active is " + replicator.state() + " or a planned switchover holds the guest";
        }
        if (cannot != null)
        {
            LOG.error("VM {}: the health probe asked for the guest to be restored on this host, which cannot be " +
                "done: {}; it is handed over to the standby instead", vmId, cannot);
            return false;
        }
        LOG.error("VM {}: the health probe reports: {}; restoring the guest on this host from the standby's {}", vmId,
            unhealthy, restoreAtMillis == Handshake.RESTORE_LATEST ? "latest checkpoint" :
            "newest checkpoint from " + java.time.Instant.ofEpochMilli(restoreAtMillis) + " or before");
        return true;
    }

    /**
     * How long a restore in place may hold the guest before it is given up: the standby may materialise an earlier
     * checkpoint from its journal first (seconds for a large guest), hearing it alive meanwhile.
     */
    private long restoreTimeoutNs()
    {
        return Math.max(silenceTimeoutNs * BASELINE_SILENCE_FACTOR, java.util.concurrent.TimeUnit.MINUTES.toNanos(2));
    }

    /**
     * The restore in place's own steps: once the held checkpoint is acknowledged and nothing is in flight, RESTORE
     * goes; then the standby's frames are written in as they come ({@link #onRestoreFrame()}).
     *
     * @return work done.
     */
    private int stepRestore(final long now) throws IOException
    {
        if (now > restoreDeadlineNs)
        {
            throw new IOException("the standby did not complete the restore in place of epoch " + restoreHeld +
                " within " + restoreTimeoutNs() / 1_000_000 + " ms");
        }
        if (restoreStep != RESTORE_HOLDING)
        {
            return 0;
        }
        final long held = replicator.restoreHeldEpoch();
        if (held == 0 || replicator.lastAckedEpoch() < held || !idle())
        {
            return 0;
        }
        restoreHeld = held;
        final int length = Handshake.encodeFailureReport(header, FrameCodec.HEADER_LENGTH, version, unhealthy,
            restoreAtMillis);
        beginFrame(FrameType.RESTORE, held, length, null, WRITTEN_NOTHING);
        flush();
        restoreStep = RESTORE_ASKED;
        LOG.warn("VM {}: the guest is paused at acknowledged epoch {}; the standby is asked for the checkpoint to " +
            "restore", vmId, held);
        return 1;
    }

    /**
     * One of the standby's frames of the restore in place: written into the guest (held paused).
     *
     * @return false if a disk write could not all go into the disk-write stream yet (the frame is read again once
     *         the sender has drained it).
     */
    private boolean onRestoreFrame()
    {
        final FrameType type = decoder.type();
        if (restoreStep != RESTORE_ASKED)
        {
            throw new ProtocolException(ProtocolException.Fault.UNKNOWN_TYPE, type + " frame from the standby, " +
                "which was asked for no restore in place");
        }
        final int index = decoder.payloadIndex();
        final int length = decoder.length();
        final long frameEpoch = decoder.epoch();
        requireRestore(frameEpoch > 0 && frameEpoch <= restoreHeld && (restoreEpoch == 0 || frameEpoch == restoreEpoch),
            type + " of epoch " + frameEpoch + " (held at " + restoreHeld + (restoreEpoch == 0 ? "" :
            ", restoring epoch " + restoreEpoch) + ")");
        restoreEpoch = frameEpoch;
        if (type == FrameType.PAGES)
        {
            requireRestore(length >= FrameCodec.PAGES_HEADER, "a PAGES frame of " + length + " bytes");
            final long first = receiveBuffer.getLong(index);
            final int count = receiveBuffer.getInt(index + 8);
            requireRestore(count > 0 && (long)count * pageSize == length - FrameCodec.PAGES_HEADER && first >= 0 &&
                first <= memory.pageCount() - count && receiveBuffer.getInt(index + 12) == 0, "pages [" + first +
                ", +" + count + ") in " + length + " bytes, for a guest of " + memory.pageCount() + " pages");
            if (restoredPages == null)
            {
                restoredPages = new dev.tandem.vmm.DirtyBitmap(memory.pageCount());
            }
            restoreWrote = true;
            memory.copyIn(first, count, receiveBuffer, index + FrameCodec.PAGES_HEADER);
            for (long page = first; page < first + count; page++)
            {
                restoredPages.set(page);
            }
            pagesRestored += count;
            return true;
        }
        if (type == FrameType.DISK_WRITE)
        {
            requireRestore(length >= FrameCodec.DISK_WRITE_HEADER, "a DISK_WRITE frame of " + length + " bytes");
            final int diskId = receiveBuffer.getInt(index);
            final int bytes = receiveBuffer.getInt(index + 4);
            final long offset = receiveBuffer.getLong(index + 8);
            requireRestore(bytes == length - FrameCodec.DISK_WRITE_HEADER, "a DISK_WRITE of " + bytes + " bytes in " +
                length);
            VirtualDisk disk = null;
            for (final VirtualDisk candidate : disks)
            {
                disk = candidate.id() == diskId ? candidate : disk;
            }
            requireRestore(disk != null, "a DISK_WRITE to disk " + diskId + ", which this guest has not");
            final int block = disk.blockSize();
            requireRestore(bytes > 0 && bytes % block == 0 && offset >= 0 && offset % block == 0 &&
                offset <= disk.sizeBytes() - bytes, "disk " + diskId + " extent [" + offset + ", +" + bytes +
                ") is not whole blocks of " + block + " bytes inside its " + disk.sizeBytes());
            final int data = index + FrameCodec.DISK_WRITE_HEADER;
            if (restoreDiskTaken == 0)
            {
                restoreWrote = true;
                disk.write(offset, receiveBuffer, data, bytes);
            }
            // the next epoch carries it to the standby, in order with the guest's own writes after it resumes
            restoreDiskTaken += diskStream.tryWrite(diskId, offset + restoreDiskTaken, receiveBuffer,
                data + restoreDiskTaken, bytes - restoreDiskTaken);
            if (restoreDiskTaken < bytes)
            {
                return false;
            }
            restoreDiskTaken = 0;
            diskBytesRestored += bytes;
            return true;
        }
        if (type == FrameType.COMPONENT)
        {
            requireRestore(length >= FrameCodec.COMPONENT_HEADER, "a COMPONENT frame of " + length + " bytes");
            final int id = receiveBuffer.getInt(index);
            final int componentVersion = receiveBuffer.getInt(index + 4);
            dev.tandem.vmm.StatefulComponent component = null;
            for (final dev.tandem.vmm.StatefulComponent candidate : components)
            {
                component = candidate.id() == id ? candidate : component;
            }
            requireRestore(component != null, "the state of component " + id + ", which this guest has not");
            componentsRestored++;
            restoreWrote = true;
            component.restore(componentVersion, receiveBuffer, index + FrameCodec.COMPONENT_HEADER,
                length - FrameCodec.COMPONENT_HEADER);
            return true;
        }
        requireRestore(length >= 28, "a RESTORED frame of " + length + " bytes");
        final long pages = receiveBuffer.getLong(index);
        final long diskBytes = receiveBuffer.getLong(index + 8);
        final int componentCount = receiveBuffer.getInt(index + 16);
        final String report = Handshake.decodeReason(receiveBuffer, index + 24, length - 24);
        requireRestore(pages == pagesRestored && diskBytes == diskBytesRestored &&
            componentCount == componentsRestored && componentCount == components.size(), "RESTORED counts " + pages +
            " pages, " + diskBytes + " disk bytes and " + componentCount + " components, but " + pagesRestored + ", " +
            diskBytesRestored + " and " + componentsRestored + " came (this guest has " + components.size() + ")");
        final long epoch = frameEpoch;
        try
        {
            listener.onRestoredInPlace(restoreHeld, epoch, report);
        }
        catch (final RuntimeException ex)
        {
            LOG.warn("listener failed", ex);
        }
        LOG.warn("VM {}: restored on this host: {}; the guest resumes", vmId, report);
        restoreGaveNothingEarlier = epoch == restoreHeld;
        replicator.endRestore(restoredPages);
        resetRestore();
        return true;
    }

    private static void requireRestore(final boolean condition, final String what)
    {
        if (!condition)
        {
            throw new ProtocolException(ProtocolException.Fault.MALFORMED, "restore in place: " + what);
        }
    }

    /**
     * Writes the rest of the frame under way (a FAILURE_REPORT goes between frames), giving up as a blocked frame does.
     */
    private void finishFrameUnderWay() throws IOException
    {
        backPressureIdle.reset();
        while (frameUnderWay && !flush())
        {
            backPressureIdle.idle();
        }
    }

    private void resetRestore()
    {
        restoreStep = RESTORE_NONE;
        restoreWrote = false;
        restoredPages = null;
        pagesRestored = 0;
        diskBytesRestored = 0;
        restoreDiskTaken = 0;
        restoreEpoch = 0;
        componentsRestored = 0;
        unhealthy = null;
        restoreAtMillis = Handshake.RESTORE_LATEST;
    }

    /**
     * A restore in place ends before RESTORED: a guest not yet written to resumes as it was; one partly written is
     * handed over (it must never run here half restored), and the standby promotes on the silence.
     *
     * @param why what ended it.
     * @return true if the guest was handed over (protection ends here; nothing more to report).
     */
    private boolean abandonRestore(final String why)
    {
        return abandonRestore(why, true);
    }

    /**
     * @param report whether a FAILURE_REPORT may still go to the standby (not once protection has ended).
     */
    private boolean abandonRestore(final String why, final boolean report)
    {
        if (restoreStep == RESTORE_NONE)
        {
            return false;
        }
        final boolean wrote = restoreWrote;
        final long restoreAt = restoreAtMillis;
        resetRestore();
        if (wrote)
        {
            final String reason = "the restore in place of epoch " + restoreHeld + " was cut short after the guest " +
                "was partly written (" + why + "); it never resumes here half restored";
            if (!report)
            {
                replicator.handOver(reason);
                return true;
            }
            try
            {
                // the standby promotes from the checkpoint asked for at once; if the report cannot go, it promotes
                // its latest on the silence
                restoreAtMillis = restoreAt;
                finishFrameUnderWay();
                reportFailure(reason);
            }
            catch (final IOException | RuntimeException ex)
            {
                replicator.handOver(reason + "; the report to the standby failed too (" + ex + ")");
            }
            return true;
        }
        LOG.error("VM {}: the restore in place was given up before anything was written ({}); the guest resumes as " +
            "it was", vmId, why);
        replicator.endRestore(null);
        return false;
    }

    /**
     * Moves the ordered stream onto the connection, one frame at a time, for at most {@link #FRAMES_PER_DUTY_CYCLE}
     * frames: returns at once when the connection is full or a page encoder has not produced the next payload, and
     * goes on from the same place on the next duty cycle (the frame under way, the segment's phase). The acks are
     * read between frames, so a long send (the baseline) never stops hearing the standby.
     *
     * @return frames begun or finished, and records taken.
     */
    private int send() throws IOException
    {
        int work = 0;
        for (int i = 0; i < FRAMES_PER_DUTY_CYCLE; i++)
        {
            if (frameUnderWay && !flush())
            {
                return work;
            }
            if (unhealthy != null && restoreStep == RESTORE_NONE)
            {
                // the failure report goes next, between frames
                return work;
            }
            if (i > 0)
            {
                // between frames: an ack waiting here holds the guest's output, so it is read before the next
                // frame, not after the epoch under way (a read of an empty socket costs far less than a frame)
                work += pollAcks();
            }
            if (phase != IDLE)
            {
                if (!stepSegment())
                {
                    return work;
                }
                work++;
                continue;
            }
            if (diskStream.controlledRead(streamHandler, 1) == 0 && !frameUnderWay)
            {
                return work;
            }
            work++;
        }
        return work;
    }

    /**
     * @return true between frames and segments: a frame of the sender's own (a heartbeat, the switchover) may go.
     */
    private boolean idle()
    {
        return !frameUnderWay && phase == IDLE;
    }

    /**
     * Begins a frame whose sub-header the caller placed after the header; {@link #flush()} writes it.
     *
     * @param onWritten what finishing it completes ({@code WRITTEN_*}).
     * @return the frame's CRC, unsigned.
     */
    private long beginFrame(final FrameType type, final long epoch, final int subHeader, final ByteBuffer payload,
        final int onWritten)
    {
        final long frameCrc = writer.begin(version, type, generation, epoch, subHeader, payload);
        frameType = type;
        frameUnderWay = true;
        this.onWritten = onWritten;
        blockedSinceNs = 0;
        return frameCrc;
    }

    /**
     * Writes what the connection takes of the frame under way, without waiting.
     *
     * @return true if the frame is whole (what it completes is done), false if the connection is full.
     */
    private boolean flush() throws IOException
    {
        final long written = writer.write(connection);
        final long now = clock.nanoTime();
        if (writer.pending())
        {
            if (written > 0)
            {
                blockedSinceNs = 0;
                return false;
            }
            // back-pressured: the caller returns and the acks are read on the next duty cycle. Give up if the
            // standby has gone silent (a partition leaves the socket open but moves nothing) or was superseded
            if (replicator.supersededWhileSilent(now, lastReceivedNs))
            {
                // fenced while blocked on a full socket (a partition fills it): stop now, not at the timeout
                throw new IOException("superseded while a " + frameType + " frame waited for the standby");
            }
            checkStandbySilence(now);
            blockedSinceNs = blockedSinceNs == 0 ? now : blockedSinceNs;
            checkBlockedWrite(frameType, now - blockedSinceNs);
            return false;
        }
        frameUnderWay = false;
        CounterSet.add(counters.bytesSent, writer.frameBytes());
        CounterSet.add(counters.framesSent, 1);
        lastSendNs = now;
        switch (onWritten)
        {
            case WRITTEN_STREAM_RECORD:
                // the record's bytes may go now: the next read of the stream takes it
                streamRecordWritten = true;
                break;
            case WRITTEN_PAGES:
                encoder.taken(pagesJob);
                break;
            case WRITTEN_EPOCH_END:
                epochSent(sendingArea);
                break;
            default:
                break;
        }
        onWritten = WRITTEN_NOTHING;
        return true;
    }

    /**
     * Best effort, and only between frames (a REFUSE inside a half-written frame would be garbage to the standby):
     * one attempt to write the reason, then the connection is closed by the caller.
     */
    private void refuseStandby(final String reason)
    {
        if (writer.midFrame())
        {
            return;
        }
        try
        {
            // a frame begun but not one byte of it written leaves the stream at a frame boundary
            writer.abandon();
            final int length = Handshake.encodeReason(header, FrameCodec.HEADER_LENGTH, reason);
            writer.begin(version, FrameType.REFUSE, generation, streamEpoch - 1, length, null);
            writer.write(connection);
        }
        catch (final IOException | RuntimeException ignore)
        {
            // the connection is being dropped anyway; the local error already names the reason
        }
    }

    private int sayGoodbye() throws IOException
    {
        if (!goodbyeSent)
        {
            beginFrame(FrameType.GOODBYE, streamEpoch - 1, 0, null, WRITTEN_NOTHING);
            flush();
            goodbyeSent = true;
            return 1;
        }
        if (replicator.isGoodbyeDelivered())
        {
            // the standby closes after its answer: reading on would only report that as a lost link
            return 0;
        }
        // delivered only when the standby answers: a GOODBYE sitting in a full socket is no goodbye at all. Meanwhile
        // the standby may be promoting on the silence of a partition: the same watch as while protecting (found by
        // the simulation: a close() during a partition let a superseded guest run on for the whole wait)
        final int work = pollAcks();
        final long now = clock.nanoTime();
        if (replicator.supersededWhileSilent(now, lastReceivedNs))
        {
            return 1;
        }
        checkStandbySilence(now);
        return work;
    }

    /**
     * @return the probe's last known good time in ms since 1970, or {@link Handshake#RESTORE_LATEST} for none (or a
     *         probe that failed to say: the complaint still goes, with the latest recovery point).
     */
    private long lastKnownGood()
    {
        try
        {
            final java.time.Instant knownGood = healthProbe.lastKnownGood();
            if (knownGood == null)
            {
                return Handshake.RESTORE_LATEST;
            }
            if (knownGood.toEpochMilli() < 0)
            {
                LOG.error("VM {}: the health probe's last known good time {} is before 1970; the standby resumes " +
                    "its latest recovery point", vmId, knownGood);
                return Handshake.RESTORE_LATEST;
            }
            if (version < Handshake.FAILURE_REPORT_RESTORE_VERSION)
            {
                LOG.error("VM {}: the standby speaks protocol version {}, which carries no restore time: it resumes " +
                    "its latest recovery point, not the one from {} the health probe asked for", vmId, version,
                    knownGood);
                return Handshake.RESTORE_LATEST;
            }
            return knownGood.toEpochMilli();
        }
        catch (final RuntimeException ex)
        {
            LOG.error("VM {}: the health probe failed to say when the guest was last known good; the standby " +
                "resumes its latest recovery point", vmId, ex);
            return Handshake.RESTORE_LATEST;
        }
    }

    private void reportFailure(final String reason) throws IOException
    {
        final int length = Handshake.encodeFailureReport(header, FrameCodec.HEADER_LENGTH, version, reason,
            restoreAtMillis);
        beginFrame(FrameType.FAILURE_REPORT, streamEpoch - 1, length, null, WRITTEN_NOTHING);
        // the session's last frame, written whole before the guest is handed over (flush gives up on a silent or
        // stalled standby, which then promotes on the silence instead)
        backPressureIdle.reset();
        while (!flush())
        {
            pollAcks();
            backPressureIdle.idle();
        }
        replicator.handOver("the guest's health probe reports: " + reason + (restoreAtMillis == Handshake.RESTORE_LATEST ?
            "" : "; the standby resumes its newest checkpoint from " + java.time.Instant.ofEpochMilli(restoreAtMillis) +
            " or before"));
    }

    /**
     * A frame that cannot get one byte into the connection for the silence timeout means the standby reads nothing,
     * even with no epoch in flight (heartbeats filled its socket): found by the deterministic simulation, where a
     * standby that lost power with everything acknowledged left the sender blocked on a heartbeat.
     */
    private void checkBlockedWrite(final FrameType type, final long blockedNs) throws IOException
    {
        // the standby's replies prove it alive (checkStandbySilence ends a silent one at the silence timeout); one
        // that answers but does not read may be applying a long epoch (a later session's baseline), so only a far
        // longer stall ends the session: a standby that stays this far behind cannot protect the guest
        final long timeoutNs = silenceTimeoutNs * BASELINE_SILENCE_FACTOR;
        if (blockedNs > timeoutNs)
        {
            throw new IOException("standby " + connection.peer() + " answers but has read nothing for " +
                blockedNs / 1_000_000 + " ms: a " + type + " frame could not be written");
        }
    }

    /**
     * Liveness is what the standby answered (acks, its heartbeats), never bytes this side's socket accepted: a socket
     * keeps accepting writes into its buffer long after the peer is gone. The baseline may be applied for long
     * without the standby answering, so until it is acknowledged the bound is ten times longer.
     */
    private void checkStandbySilence(final long now) throws IOException
    {
        final boolean baseline = replicator.state() == ProtectionState.SYNCING;
        final long timeoutNs = baseline ? silenceTimeoutNs * BASELINE_SILENCE_FACTOR : silenceTimeoutNs;
        if (now - lastReceivedNs > timeoutNs)
        {
            throw new IOException("standby " + connection.peer() + " has answered nothing for " +
                (now - lastReceivedNs) / 1_000_000 + " ms (acked epoch " + replicator.lastAckedEpoch() +
                ", checkpoint " + replicator.lastCheckpointEpoch() + (baseline ? ", the baseline" : "") + ")");
        }
    }

    @Override
    public void onClose()
    {
        writer.close();
        diskChunkRegion.close();
        reader.close();
        // the sender has stopped taking payloads: the pool may stop, then its buffers and caches go
        encoder.close();
    }

    /**
     * One record of the ordered stream. A disk write's frame is written from the record's own bytes, so the record
     * stays in the stream (aborted) until its frame is whole; the next read then takes it ({@code
     * streamRecordWritten}).
     */
    private ControlledMessageHandler.Action onStreamRecord(final int type, final MutableDirectBuffer buffer,
        final int index, final int length)
    {
        if (streamRecordWritten)
        {
            streamRecordWritten = false;
            return ControlledMessageHandler.Action.CONTINUE;
        }
        if (recordingUntilOpen)
        {
            // what the stream held from before this session's opening: recorded for its resync, not sent
            final StagingArea area = type == DiskWriteStream.CHECKPOINT ? areas[buffer.getInt(index + 8)] : null;
            if (area == null || !area.opensBaseline() || buffer.getLong(index) != streamEpoch)
            {
                onRecordWhileDown(type, buffer, index, length);
                return ControlledMessageHandler.Action.CONTINUE;
            }
            recordingUntilOpen = false;
        }
        switch (type)
        {
            case DiskWriteStream.DISK_WRITE:
                beginDiskWrite(buffer, index);
                return ControlledMessageHandler.Action.ABORT;
            case DiskWriteStream.DISK_FLUSH:
                header.putInt(FrameCodec.HEADER_LENGTH, buffer.getInt(index));
                epochCrcSum += beginFrame(FrameType.DISK_FLUSH, streamEpoch, FrameCodec.DISK_FLUSH_LENGTH, null,
                    WRITTEN_NOTHING);
                epochFrames++;
                epochDiskWrites++;
                return ControlledMessageHandler.Action.CONTINUE;
            case DiskWriteStream.CHECKPOINT:
                beginSegment(buffer.getLong(index), areas[buffer.getInt(index + 8)]);
                return ControlledMessageHandler.Action.CONTINUE;
            default:
                throw new IllegalStateException("unknown disk-stream record type " + type);
        }
    }

    private void beginDiskWrite(final MutableDirectBuffer buffer, final int index)
    {
        final int length = buffer.getInt(index + 4);
        header.putInt(FrameCodec.HEADER_LENGTH, buffer.getInt(index));
        header.putInt(FrameCodec.HEADER_LENGTH + 4, length);
        header.putLong(FrameCodec.HEADER_LENGTH + 8, buffer.getLong(index + 8));
        streamView.limit(index + DiskWriteStream.WRITE_HEADER + length).position(index + DiskWriteStream.WRITE_HEADER);
        diskRecord.record(streamEpoch, buffer.getInt(index), buffer.getLong(index + 8), length);
        epochCrcSum += beginFrame(FrameType.DISK_WRITE, streamEpoch, FrameCodec.DISK_WRITE_HEADER, streamView,
            WRITTEN_STREAM_RECORD);
        epochFrames++;
        epochDiskWrites++;
    }

    /**
     * Starts sending a staging area's segment of checkpoint {@code epoch}; {@link #stepSegment()} sends it a frame at
     * a time. A segment that opens a baseline (or a resync) first copies the disks: the whole of each, or the
     * extents recorded since the standby's recovery point.
     */
    private void beginSegment(final long epoch, final StagingArea area)
    {
        if (epoch != streamEpoch)
        {
            throw new IllegalStateException("checkpoint " + epoch + " out of order, expected " + streamEpoch);
        }
        sendingArea = area;
        phase = area.opensBaseline() ? DISK_COPY : BARRIER;
        if (area.opensBaseline())
        {
            copyExtents = diskCopyExtents(epoch);
            copyExtent = 0;
            copyOffset = copyExtents.length == 0 ? 0 : copyExtents[0][1];
            copyBytesSent = 0;
        }
    }

    /**
     * Takes the segment under way one step on: begins its next frame, or moves to its next phase.
     *
     * @return false if it must wait for a page encoder (nothing was done).
     */
    private boolean stepSegment()
    {
        final StagingArea area = sendingArea;
        final long epoch = streamEpoch;
        switch (phase)
        {
            case DISK_COPY:
                if (copyExtent == copyExtents.length)
                {
                    copyExtents = null;
                    phase = BARRIER;
                }
                else
                {
                    beginDiskCopyChunk(epoch);
                }
                return true;
            case BARRIER:
                if (area.isFirstSegment())
                {
                    epochSendStartNs = clock.nanoTime();
                    beginFrame(FrameType.BARRIER, epoch, 0, null, WRITTEN_NOTHING);
                    listener.onDeltaSending(epoch);
                }
                phase = PLAN;
                return true;
            case PLAN:
                if (!encoder.readyToPlan())
                {
                    return false;
                }
                jobs = encoder.plan(area);
                job = 0;
                phase = PAGES;
                return true;
            case PAGES:
                if (job == jobs)
                {
                    component = 0;
                    phase = area.isLastSegment() ? COMPONENTS : FINISH;
                    return true;
                }
                if (!encoder.jobReady(job))
                {
                    return false;
                }
                beginPages(epoch, job++);
                return true;
            case COMPONENTS:
                if (component == area.componentCount())
                {
                    beginEpochEnd(epoch, area);
                    phase = FINISH;
                    return true;
                }
                header.putInt(FrameCodec.HEADER_LENGTH, area.componentId(component));
                header.putInt(FrameCodec.HEADER_LENGTH + 4, area.componentVersion(component));
                epochCrcSum += beginFrame(FrameType.COMPONENT, epoch, FrameCodec.COMPONENT_HEADER,
                    area.componentBytes(component), WRITTEN_NOTHING);
                epochFrames++;
                component++;
                return true;
            case FINISH:
                // every frame of the segment is whole
                sendingArea = null;
                phase = IDLE;
                area.release();
                return true;
            default:
                throw new IllegalStateException("sender phase " + phase);
        }
    }

    private void beginPages(final long epoch, final int job)
    {
        final long first = encoder.jobFirstPage(job);
        final int count = encoder.jobPageCount(job);
        final ByteBuffer payload = encoder.payload(job);
        header.putLong(FrameCodec.HEADER_LENGTH, first);
        header.putInt(FrameCodec.HEADER_LENGTH + 8, count);
        header.putInt(FrameCodec.HEADER_LENGTH + 12, 0);
        epochCrcSum += beginFrame(pagesType, epoch, FrameCodec.PAGES_HEADER, payload, WRITTEN_PAGES);
        pagesJob = job;
        epochFrames++;
        epochPages += count;
        epochEncodeNs += encoder.lastJobNanos();
        epochEncodedBytes += encoder.lastJobBytes();
        CounterSet.add(counters.pageBytesRaw, (long)count * pageSize);
        CounterSet.add(counters.pageBytesEncoded, encoder.lastJobBytes());
        counters.zeroPages.setRelease(encoder.pages(PageCodec.ZERO));
        counters.rawPages.setRelease(encoder.pages(PageCodec.RAW));
        counters.lz4Pages.setRelease(encoder.pages(PageCodec.LZ4));
        counters.deltaPages.setRelease(encoder.pages(PageCodec.XOR_LZ4));
    }

    private void beginEpochEnd(final long epoch, final StagingArea area)
    {
        final int base = FrameCodec.HEADER_LENGTH;
        header.putLong(base, epochPages);
        header.putInt(base + 8, epochFrames);
        header.putInt(base + 12, epochDiskWrites);
        header.putInt(base + 16, area.componentCount());
        header.putInt(base + 20, 0);
        header.putLong(base + 24, epochCrcSum);
        beginFrame(FrameType.EPOCH_END, epoch, FrameCodec.EPOCH_END_LENGTH, null, WRITTEN_EPOCH_END);
    }

    /**
     * The epoch's end is whole on the connection: the epoch counts as sent (its ack may be read from now on).
     */
    private void epochSent(final StagingArea area)
    {
        final long epoch = streamEpoch;
        fingerprint = Handshake.chain(fingerprint, epoch, epochCrcSum);
        replicator.fingerprintSent(epoch, fingerprint);
        final long sendNs = clock.nanoTime() - epochSendStartNs;
        if (!area.isBaseline())
        {
            encodeRecorder.recordValue(Math.min(ActiveReplicator.HIGHEST_RECORDED_NS, epochEncodeNs));
            sendRecorder.recordValue(Math.min(ActiveReplicator.HIGHEST_RECORDED_NS, Math.max(0, sendNs)));
        }
        // the baseline's send (every page and the disks) says nothing about the link under the guest's deltas
        replicator.epochSent(epoch, area.isBaseline() ? 0 : sendNs, area.isBaseline() ? 0 : epochEncodedBytes);
        resetEpochCounts();
        streamEpoch = epoch + 1;
        listener.onDeltaSent(epoch);
    }

    /**
     * What a baseline's (or resync's) opening copies of the disks, as {disk id, offset, length} extents: the
     * extents recorded since the standby's recovery point when a quick resync can trust them, else every disk
     * whole. A live baseline's guest runs meanwhile; its writes wait in the ordered stream behind this copy, so each
     * reaches the standby after the copy of its blocks and wins over whatever the copy read.
     */
    private long[][] diskCopyExtents(final long epoch)
    {
        if (quickResync && !diskRecord.overflowed(resyncRecoveryEpoch))
        {
            return diskRecord.takeSince(resyncRecoveryEpoch, epoch);
        }
        if (quickResync)
        {
            replicator.resyncDisksWhole(diskRecord.whyWhole(resyncRecoveryEpoch));
        }
        diskRecord.wholeCopy(epoch);
        final long[][] whole = new long[disks.size()][];
        for (int i = 0; i < whole.length; i++)
        {
            whole[i] = new long[] {disks.get(i).id(), 0, disks.get(i).sizeBytes()};
        }
        return whole;
    }

    /**
     * The counts and sums of the epoch being sent start again: after its end, or with a new session.
     */
    private void resetEpochCounts()
    {
        epochEncodeNs = 0;
        epochEncodedBytes = 0;
        epochPages = 0;
        epochFrames = 0;
        epochDiskWrites = 0;
        epochCrcSum = 0;
    }

    /**
     * Begins the disk copy's next chunk, read now, in whole blocks (the standby refuses an extent misaligned to the
     * disk's block size); the chunk buffer is read again only once this frame is whole.
     */
    private void beginDiskCopyChunk(final long epoch)
    {
        final long[] extent = copyExtents[copyExtent];
        final VirtualDisk disk = disks.get(diskIndex((int)extent[0]));
        final long end = extent[1] + extent[2];
        final int chunk = diskChunkBytes / disk.blockSize() * disk.blockSize();
        final long offset = copyOffset;
        final int length = (int)Math.min(chunk, end - offset);
        if (length > 0)
        {
            disk.read(offset, diskChunk, 0, length);
            header.putInt(FrameCodec.HEADER_LENGTH, disk.id());
            header.putInt(FrameCodec.HEADER_LENGTH + 4, length);
            header.putLong(FrameCodec.HEADER_LENGTH + 8, offset);
            diskChunkView.limit(length).position(0);
            epochCrcSum += beginFrame(FrameType.DISK_WRITE, epoch, FrameCodec.DISK_WRITE_HEADER, diskChunkView,
                WRITTEN_NOTHING);
            epochFrames++;
            epochDiskWrites++;
            copyBytesSent += length;
            replicator.baselineDiskBytesSent(copyBytesSent);
        }
        copyOffset = offset + Math.max(0, length);
        if (copyOffset >= end && ++copyExtent < copyExtents.length)
        {
            copyOffset = copyExtents[copyExtent][1];
        }
    }

    private int diskIndex(final int diskId)
    {
        for (int i = 0; i < disks.size(); i++)
        {
            if (disks.get(i).id() == diskId)
            {
                return i;
            }
        }
        throw new IllegalStateException("disk " + diskId + " is not one of the guest's");
    }

    /**
     * A stream record while no session sends it: disk writes go into the record (their extents; the data is on the
     * guest's disk and is read again by the resync), staging areas are freed.
     */
    private void onRecordWhileDown(final int type, final MutableDirectBuffer buffer, final int index, final int length)
    {
        switch (type)
        {
            case DiskWriteStream.DISK_WRITE:
                diskRecord.record(DiskResyncRecord.SINCE_LOSS, buffer.getInt(index), buffer.getLong(index + 8),
                    buffer.getInt(index + 4));
                break;
            case DiskWriteStream.CHECKPOINT:
                areas[buffer.getInt(index + 8)].release();
                break;
            default:
                // a flush: the resync's epoch ends with the data on the standby's disk, whatever was flushed before
                break;
        }
    }

    /**
     * The launch's session is a quick resync of a promoted guest (before the agents start, with the guest paused):
     * the disk writes the target recorded since the guest resumed from {@code checkpoint} are what this session's
     * first epoch copies, like writes made while no session ran, and the baseline's whole copy of the disks is not
     * made.
     *
     * @param checkpoint the checkpoint the standby holds, with the writes since.
     */
    void resumedFrom(final dev.tandem.core.failover.ResumedCheckpoint checkpoint)
    {
        diskRecord.clear();
        checkpoint.forEachExtent((diskId, offset, length) ->
            diskRecord.record(DiskResyncRecord.SINCE_LOSS, diskId, offset, length));
        if (checkpoint.overflowed())
        {
            diskRecord.missedSinceLoss();
        }
        quickResync = true;
        resyncRecoveryEpoch = checkpoint.epoch();
        recordingUntilOpen = true;
    }

    /**
     * Starts a reconnected session on this thread, before protection resumes: gives up what the lost one left half
     * sent, and asks the scheduler for the session's first epoch (its resync).
     *
     * @param session       the new connection.
     * @param sessionVersion the protocol version it speaks.
     * @param sessionGeneration its generation.
     * @param firstEpoch    the session's first epoch.
     * @param recoveryEpoch the standby's recovery point.
     * @param recoveryFingerprint that point's fingerprint.
     * @param quick         true if the standby resumes that point (only changes are sent).
     * @return false if the page encoder failed and no session can run.
     */
    boolean resume(final Connection session, final int sessionVersion, final long sessionGeneration,
        final long firstEpoch, final long recoveryEpoch, final long recoveryFingerprint, final boolean quick)
    {
        if (!encoder.abandon())
        {
            return false;
        }
        if (sendingArea != null)
        {
            sendingArea.release();
            sendingArea = null;
        }
        connection = session;
        version = sessionVersion;
        generation = sessionGeneration;
        reader.reset();
        decoder.negotiated(sessionVersion);
        streamEpoch = firstEpoch;
        baselineEpoch = firstEpoch;
        resetEpochCounts();
        writer.abandon();
        // the lost session's segment and frame under way are given up: the resync sends what they held
        phase = IDLE;
        frameUnderWay = false;
        onWritten = WRITTEN_NOTHING;
        streamRecordWritten = false;
        copyExtents = null;
        goodbyeSent = false;
        switchoverSent = false;
        fingerprint = recoveryFingerprint;
        quickResync = quick;
        resyncRecoveryEpoch = recoveryEpoch;
        recordingUntilOpen = true;
        final long now = clock.nanoTime();
        lastReceivedNs = now;
        lastSendNs = now;
        lastPollNs = now;
        lastHealthCheckNs = now;
        return true;
    }

    private int pollAcks() throws IOException
    {
        lastPollNs = clock.nanoTime();
        final int read = reader.read(connection);
        if (read < 0)
        {
            throw new IOException("standby " + connection.peer() + " closed the connection");
        }
        int frames = 0;
        while (reader.next())
        {
            final long previous = lastReceivedNs;
            lastReceivedNs = clock.nanoTime();
            if (!onFrame())
            {
                // left in the buffer: decoded again once it can be taken; its second reading is no news of the
                // standby (a dead one must not look alive because this frame waits)
                lastReceivedNs = previous;
                break;
            }
            reader.consume();
            frames++;
        }
        reader.compact();
        return frames;
    }

    /**
     * @return false if the frame must wait (a restore's disk write the disk-write stream cannot take yet).
     */
    private boolean onFrame()
    {
        if (decoder.generation() != generation)
        {
            throw new ProtocolException(ProtocolException.Fault.STALE_GENERATION,
                decoder.type() + " frame of generation " + decoder.generation() + ", connection is " + generation);
        }
        if (decoder.type() == FrameType.REFUSE)
        {
            throw new ProtocolException(ProtocolException.Fault.REFUSED, "standby refused: " +
                Handshake.decodeReason(receiveBuffer, decoder.payloadIndex(), decoder.length()));
        }
        if (decoder.type() == FrameType.HEARTBEAT)
        {
            return true;
        }
        if (decoder.type() == FrameType.GOODBYE)
        {
            replicator.goodbyeDelivered();
            return true;
        }
        if (decoder.type() == FrameType.SWITCHOVER)
        {
            if (decoder.length() != 8 || !switchoverSent)
            {
                throw new ProtocolException(ProtocolException.Fault.MALFORMED, "SWITCHOVER of " + decoder.length() +
                    " bytes from the standby" + (switchoverSent ? "" : ", which was not asked to take over"));
            }
            replicator.switchedOver(receiveBuffer.getLong(decoder.payloadIndex()), decoder.epoch());
            return true;
        }
        final FrameType type = decoder.type();
        if (type == FrameType.PAGES || type == FrameType.DISK_WRITE || type == FrameType.COMPONENT ||
            type == FrameType.RESTORED)
        {
            return onRestoreFrame();
        }
        if (decoder.type() != FrameType.ACK)
        {
            throw new ProtocolException(ProtocolException.Fault.UNKNOWN_TYPE,
                decoder.type() + " frame is not valid from a standby after the handshake");
        }
        final long epoch = decoder.epoch();
        // a reconnected session's first ack is its first epoch: the epochs the lost session left unacknowledged
        // are covered by it
        final long expected = Math.max(replicator.lastAckedEpoch() + 1, baselineEpoch);
        if (epoch != expected || epoch > replicator.sentThroughEpoch())
        {
            throw new ProtocolException(ProtocolException.Fault.EPOCH_OUT_OF_ORDER, "ack " + epoch + " but expected " +
                expected + " and epochs up to " + replicator.sentThroughEpoch() + " were sent");
        }
        final long latency = lastReceivedNs - replicator.checkpointTimeNs(epoch);
        replicator.acked(epoch);
        diskRecord.acknowledged(epoch);
        replicator.commitLatency(latency);
        if (epoch == baselineEpoch)
        {
            // the whole first copy is not what the guest's output waits for afterwards: reported apart
            replicator.baselineCommitNs(latency);
        }
        else
        {
            commitRecorder.recordValue(Math.min(ActiveReplicator.HIGHEST_RECORDED_NS, Math.max(0, latency)));
        }
        gate.release(epoch);
        if (CommitEvent.enabled())
        {
            final CommitEvent event = new CommitEvent();
            event.vmId = vmId;
            event.epoch = epoch;
            event.latencyNs = latency;
            event.commit();
        }
        listener.onAck(epoch, latency);
        return true;
    }
}
