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
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.VirtualDisk;
import org.HdrHistogram.SingleWriterRecorder;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.MessageHandler;
import org.agrona.concurrent.NanoClock;
import org.agrona.concurrent.UnsafeBuffer;

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
    /** A header and the largest sub-header: a FAILURE_REPORT's reason of up to {@link Handshake#MAX_REASON_BYTES}. */
    private static final int HEADER_BUFFER_BYTES = FrameCodec.HEADER_LENGTH + Handshake.MAX_REASON_PAYLOAD;

    private final ActiveReplicator replicator;
    private Connection connection;
    private final StagingArea[] areas;
    private final DiskWriteStream diskStream;
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
    private final MessageHandler streamHandler = this::onStreamRecord;
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
    private final dev.tandem.vmm.HealthProbe healthProbe;

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
        this.reader = new FrameReader(64 * 1024, Handshake.WELCOME_LENGTH + 1024);
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
        this.healthProbe = ctx.adapter().healthProbe() == null ? dev.tandem.vmm.HealthProbe.ALWAYS_HEALTHY :
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
            int work = 0;
            if (replicator.isReconnecting())
            {
                // the guest runs on: its disk writes are recorded for the resync and the lost session's staging
                // areas are freed, so neither the guest's I/O nor the next session waits for this stream
                work += diskStream.read(recordHandler, 64);
            }
            return work + replicator.whileUnprotected();
        }
        try
        {
            if (replicator.isClosing())
            {
                return sayGoodbye();
            }
            int work = pollAcks();
            work += diskStream.read(streamHandler, 64);
            final long handOverAt = replicator.switchoverEpoch();
            if (handOverAt != 0 && !switchoverSent && !writer.midFrame())
            {
                // the guest is paused at an acknowledged epoch: the standby may resume it now
                sendFrame(FrameType.SWITCHOVER, handOverAt, 0, null);
                switchoverSent = true;
                work++;
            }
            final long now = clock.nanoTime();
            if (now - lastHealthCheckNs >= heartbeatIntervalNs)
            {
                lastHealthCheckNs = now;
                final String unhealthy = healthProbe.unhealthyReason();
                if (unhealthy != null)
                {
                    reportFailure(unhealthy);
                    return 1;
                }
                if (replicator.supersededWhileSilent(now, lastReceivedNs))
                {
                    return 1;
                }
                checkStandbySilence(now);
            }
            // not counted as work: it must not delay a heartbeat
            replicator.publishLatencies(now);
            if (work == 0 && clock.nanoTime() - lastSendNs >= heartbeatIntervalNs)
            {
                sendFrame(FrameType.HEARTBEAT, streamEpoch - 1, 0, null);
                CounterSet.add(counters.heartbeats, 1);
                work++;
            }
            return work;
        }
        catch (final IOException ex)
        {
            replicator.fail(new UncheckedIOException("connection to standby " + connection.peer() + " lost", ex));
            return 1;
        }
        catch (final ProtocolException ex)
        {
            if (ex.fault() != ProtocolException.Fault.REFUSED)
            {
                // the standby's own error names the refusal, not just a lost connection
                refuseStandby(ex.getMessage());
            }
            replicator.fail(ex);
            return 1;
        }
        catch (final RuntimeException ex)
        {
            replicator.fail(ex);
            return 1;
        }
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
            sendFrame(FrameType.GOODBYE, streamEpoch - 1, 0, null);
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

    private void reportFailure(final String reason) throws IOException
    {
        final int length = Handshake.encodeReason(header, FrameCodec.HEADER_LENGTH, reason);
        sendFrame(FrameType.FAILURE_REPORT, streamEpoch - 1, length, null);
        replicator.handOver("the guest's health probe reports: " + reason);
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

    private void onStreamRecord(final int type, final MutableDirectBuffer buffer, final int index, final int length)
    {
        if (recordingUntilOpen)
        {
            // what the stream held from before this session's opening: recorded for its resync, not sent
            final StagingArea area = type == DiskWriteStream.CHECKPOINT ? areas[buffer.getInt(index + 8)] : null;
            if (area == null || !area.opensBaseline() || buffer.getLong(index) != streamEpoch)
            {
                onRecordWhileDown(type, buffer, index, length);
                return;
            }
            recordingUntilOpen = false;
        }
        try
        {
            switch (type)
            {
                case DiskWriteStream.DISK_WRITE:
                    sendDiskWrite(buffer, index);
                    break;
                case DiskWriteStream.DISK_FLUSH:
                    header.putInt(FrameCodec.HEADER_LENGTH, buffer.getInt(index));
                    epochCrcSum += sendFrame(FrameType.DISK_FLUSH, streamEpoch, FrameCodec.DISK_FLUSH_LENGTH, null);
                    epochFrames++;
                    epochDiskWrites++;
                    break;
                case DiskWriteStream.CHECKPOINT:
                    sendDelta(buffer.getLong(index), areas[buffer.getInt(index + 8)]);
                    break;
                default:
                    throw new IllegalStateException("unknown disk-stream record type " + type);
            }
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
    }

    private void sendDiskWrite(final MutableDirectBuffer buffer, final int index) throws IOException
    {
        final int length = buffer.getInt(index + 4);
        header.putInt(FrameCodec.HEADER_LENGTH, buffer.getInt(index));
        header.putInt(FrameCodec.HEADER_LENGTH + 4, length);
        header.putLong(FrameCodec.HEADER_LENGTH + 8, buffer.getLong(index + 8));
        streamView.limit(index + DiskWriteStream.WRITE_HEADER + length).position(index + DiskWriteStream.WRITE_HEADER);
        diskRecord.record(streamEpoch, buffer.getInt(index), buffer.getLong(index + 8), length);
        epochCrcSum += sendFrame(FrameType.DISK_WRITE, streamEpoch, FrameCodec.DISK_WRITE_HEADER, streamView);
        epochFrames++;
        epochDiskWrites++;
    }

    private void sendDelta(final long epoch, final StagingArea area) throws IOException
    {
        if (epoch != streamEpoch)
        {
            throw new IllegalStateException("checkpoint " + epoch + " out of order, expected " + streamEpoch);
        }
        sendingArea = area;
        if (area.opensBaseline())
        {
            sendDiskBaseline(epoch);
        }
        if (area.isFirstSegment())
        {
            epochSendStartNs = clock.nanoTime();
            sendFrame(FrameType.BARRIER, epoch, 0, null);
            listener.onDeltaSending(epoch);
        }
        for (int job = 0, jobs = encoder.plan(area); job < jobs; job++)
        {
            final long first = encoder.jobFirstPage(job);
            final int count = encoder.jobPageCount(job);
            final ByteBuffer payload = encoder.payload(job);
            header.putLong(FrameCodec.HEADER_LENGTH, first);
            header.putInt(FrameCodec.HEADER_LENGTH + 8, count);
            header.putInt(FrameCodec.HEADER_LENGTH + 12, 0);
            epochCrcSum += sendFrame(pagesType, epoch, FrameCodec.PAGES_HEADER, payload);
            encoder.taken(job);
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
        if (area.isLastSegment())
        {
            for (int i = 0, n = area.componentCount(); i < n; i++)
            {
                header.putInt(FrameCodec.HEADER_LENGTH, area.componentId(i));
                header.putInt(FrameCodec.HEADER_LENGTH + 4, area.componentVersion(i));
                epochCrcSum += sendFrame(FrameType.COMPONENT, epoch, FrameCodec.COMPONENT_HEADER,
                    area.componentBytes(i));
                epochFrames++;
            }
            final int base = FrameCodec.HEADER_LENGTH;
            header.putLong(base, epochPages);
            header.putInt(base + 8, epochFrames);
            header.putInt(base + 12, epochDiskWrites);
            header.putInt(base + 16, area.componentCount());
            header.putInt(base + 20, 0);
            header.putLong(base + 24, epochCrcSum);
            sendFrame(FrameType.EPOCH_END, epoch, FrameCodec.EPOCH_END_LENGTH, null);
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
        sendingArea = null;
        area.release();
    }

    /**
     * Sends every disk's whole content as writes of the baseline epoch. A paused baseline's guest is stopped
     * meanwhile; a live baseline's guest runs, and its writes wait in the ordered stream behind this copy, so each
     * reaches the standby after the copy of its blocks and wins over whatever the copy read.
     */
    private void sendDiskBaseline(final long epoch) throws IOException
    {
        if (quickResync && !diskRecord.overflowed(resyncRecoveryEpoch))
        {
            sendDiskExtents(epoch, diskRecord.takeSince(resyncRecoveryEpoch, epoch));
            return;
        }
        if (quickResync)
        {
            replicator.resyncDisksWhole(diskRecord.whyWhole(resyncRecoveryEpoch));
        }
        diskRecord.wholeCopy(epoch);
        long diskBytesSent = 0;
        for (final VirtualDisk disk : disks)
        {
            diskBytesSent = sendDiskRange(epoch, disk, 0, disk.sizeBytes(), diskBytesSent);
        }
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
     * A quick resync's disk copy: the recorded extents (merged, sorted), read now. Like the whole copy, the guest's
     * writes from after the opening wait in the stream behind it.
     */
    private void sendDiskExtents(final long epoch, final long[][] extents) throws IOException
    {
        long diskBytesSent = 0;
        for (final long[] extent : extents)
        {
            diskBytesSent = sendDiskRange(epoch, disks.get(diskIndex((int)extent[0])), extent[1],
                extent[1] + extent[2], diskBytesSent);
        }
    }

    /**
     * Sends {@code [from, end)} of a disk as writes of {@code epoch}, read now, in whole blocks (the standby refuses
     * an extent misaligned to the disk's block size).
     *
     * @return disk bytes of the epoch's copy sent so far.
     */
    private long sendDiskRange(final long epoch, final VirtualDisk disk, final long from, final long end,
        final long sentBefore) throws IOException
    {
        long diskBytesSent = sentBefore;
        final int chunk = diskChunkBytes / disk.blockSize() * disk.blockSize();
        for (long offset = from; offset < end; offset += chunk)
        {
            final int length = (int)Math.min(chunk, end - offset);
            disk.read(offset, diskChunk, 0, length);
            header.putInt(FrameCodec.HEADER_LENGTH, disk.id());
            header.putInt(FrameCodec.HEADER_LENGTH + 4, length);
            header.putLong(FrameCodec.HEADER_LENGTH + 8, offset);
            diskChunkView.limit(length).position(0);
            epochCrcSum += sendFrame(FrameType.DISK_WRITE, epoch, FrameCodec.DISK_WRITE_HEADER, diskChunkView);
            epochFrames++;
            epochDiskWrites++;
            diskBytesSent += length;
            replicator.baselineDiskBytesSent(diskBytesSent);
        }
        return diskBytesSent;
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

    /**
     * Writes one frame whose sub-header the caller placed after the header; blocks (polling acks) until written.
     *
     * @return the frame's CRC, unsigned.
     */
    private long sendFrame(final FrameType type, final long epoch, final int subHeader, final ByteBuffer payload)
        throws IOException
    {
        final long frameCrc = writer.begin(version, type, generation, epoch, subHeader, payload);
        if (clock.nanoTime() - lastPollNs >= heartbeatIntervalNs)
        {
            // between frames of a long send (the baseline): the previous frame is whole and, if it ended an epoch,
            // that epoch is counted as sent, so its ack may be read
            pollAcks();
        }
        long blockedSinceNs = 0;
        while (writer.pending())
        {
            final long written = writer.write(connection);
            if (written > 0)
            {
                blockedSinceNs = 0;
                final long now = clock.nanoTime();
                if (writer.pending() && now - lastPollNs >= heartbeatIntervalNs)
                {
                    // a long send (the baseline) still reads the standby's heartbeats: a standby that cannot hand
                    // them over drops the session, and this side would count the unread ones as silence. Only
                    // inside a frame: once an EPOCH_END is whole its ack may already be here, before the epoch is
                    // counted as sent (found by SteadyStateAllocationTest: "ack N but epochs up to N-1 were sent")
                    pollAcks();
                }
                backPressureIdle.reset();
            }
            else
            {
                // back-pressured: keep reading acks, and give up if the standby has gone silent (a partition
                // leaves the socket open but moves nothing). Back off rather than spin: on a small host the
                // standby that must drain the socket may need this very core.
                pollAcks();
                final long now = clock.nanoTime();
                if (replicator.supersededWhileSilent(now, lastReceivedNs))
                {
                    // fenced while blocked on a full socket (a partition fills it): stop now, not at the timeout
                    throw new IOException("superseded while a " + type + " frame waited for the standby");
                }
                checkStandbySilence(now);
                blockedSinceNs = blockedSinceNs == 0 ? now : blockedSinceNs;
                checkBlockedWrite(type, now - blockedSinceNs);
                backPressureIdle.idle();
            }
        }
        CounterSet.add(counters.bytesSent, writer.frameBytes());
        CounterSet.add(counters.framesSent, 1);
        lastSendNs = clock.nanoTime();
        return frameCrc;
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
            lastReceivedNs = clock.nanoTime();
            onFrame();
            reader.consume();
            frames++;
        }
        reader.compact();
        return frames;
    }

    private void onFrame()
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
            return;
        }
        if (decoder.type() == FrameType.GOODBYE)
        {
            replicator.goodbyeDelivered();
            return;
        }
        if (decoder.type() == FrameType.SWITCHOVER)
        {
            if (decoder.length() != 8 || !switchoverSent)
            {
                throw new ProtocolException(ProtocolException.Fault.MALFORMED, "SWITCHOVER of " + decoder.length() +
                    " bytes from the standby" + (switchoverSent ? "" : ", which was not asked to take over"));
            }
            replicator.switchedOver(receiveBuffer.getLong(decoder.payloadIndex()), decoder.epoch());
            return;
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
    }
}
