package dev.tandem.core.standby;

import dev.tandem.core.codec.PageCodec;
import dev.tandem.core.wire.FrameCodec;
import dev.tandem.core.wire.FrameDecoder;
import dev.tandem.core.wire.FrameReader;
import dev.tandem.core.wire.FrameType;
import dev.tandem.core.wire.ProtocolException;
import dev.tandem.core.wire.ProtocolException.Fault;
import dev.tandem.vmm.FileVirtualDisk;
import dev.tandem.vmm.NativeMemory;
import org.agrona.concurrent.NanoClock;
import org.agrona.concurrent.OneToOneConcurrentArrayQueue;
import org.agrona.concurrent.UnsafeBuffer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.function.LongSupplier;

/**
 * Builds one epoch at a time out of the active's data frames (DESIGN.md "The standby"): validates every frame
 * (extents inside the disk, pages inside the guest, disk writes and flushes before the barrier, pages and component
 * state after it, encoded pages decodable against the replica), keeps them in an {@link EpochLog} behind the barrier,
 * and checks the epoch's end (pages, frames, disk writes, components and the sum of the frame CRCs) against what
 * arrived. Out comes a verified epoch or a {@link ProtocolException} naming the fault; the receiver then commits and
 * acks it and the {@link Applier} applies it.
 * <p>
 * Waiting for the applier is a state, not a loop: {@link #mustWait()} leaves a frame unconsumed when every log is
 * with the applier or an XOR delta needs a base the applier has not applied yet, and {@link #readyForFrames()} says
 * when the wait is over. A first baseline (a replica that never committed) goes straight into the
 * {@link RecoveryImage} instead, in arrival order.
 * <p>
 * The receiver's thread only, except {@link #writingBaselineInPlace()}.
 */
final class EpochAssembler implements AutoCloseable
{
    /** Not waiting for the applier. */
    private static final int STALL_NONE = 0;
    /** Every epoch log is with the applier: the next epoch has none to be assembled in. */
    private static final int STALL_NO_LOG = 1;
    /** The applier has not applied the last commit yet: a frame's XOR deltas need it as their base. */
    private static final int STALL_APPLIER_BEHIND = 2;

    private final StandbyContext ctx;
    private final RecoveryImage image;
    private final Applier applier;
    private final OneToOneConcurrentArrayQueue<EpochLog> freeLogs;
    private final FrameReader reader;
    private final FrameDecoder decoder;
    private final UnsafeBuffer receiveBuffer;
    private final NanoClock clock;
    private final LongSupplier committedEpoch;
    private final PageCodec codec;
    private final NativeMemory.Region decodedRegion;
    private final UnsafeBuffer decodedBuffer;
    private final ByteBuffer decodedView;

    /** The log epoch {@link #nextEpoch} is assembled in; null until its first frame takes one. */
    private EpochLog assembling;
    /** The epoch the next data frame must carry: after the recovery point, or a resuming session's first. */
    private long nextEpoch = 1;
    /** The session's first epoch (its baseline, or a resync) has not ended yet. */
    private boolean sessionBaselinePending;
    private boolean barrierSeen;
    private long barrierNs;
    private long epochPages;
    private int epochFrames;
    private int epochDiskWrites;
    private int epochComponents;
    private long epochCrcSum;
    /** Why the frame at the start of the receive buffer waits for the applier, or {@link #STALL_NONE}. */
    private int stall = STALL_NONE;
    /** A baseline has written into the replica directly: it holds no whole epoch until that baseline commits. */
    private volatile boolean baselineInPlace;

    /**
     * @param ctx            the standby's configuration (page size and count, largest frame).
     * @param image          checks disk ids; takes a first baseline in place; the base XOR deltas decode against.
     * @param applier        how far the image is applied.
     * @param freeLogs       logs the applier handed back, to assemble the next epochs in.
     * @param reader         the receiver's frames, described by its decoder while each is handled.
     * @param committedEpoch the recovery point's epoch.
     */
    EpochAssembler(final StandbyContext ctx, final RecoveryImage image, final Applier applier,
        final OneToOneConcurrentArrayQueue<EpochLog> freeLogs, final FrameReader reader,
        final LongSupplier committedEpoch)
    {
        this.ctx = ctx;
        this.image = image;
        this.applier = applier;
        this.freeLogs = freeLogs;
        this.reader = reader;
        this.decoder = reader.decoder();
        this.receiveBuffer = reader.buffer();
        this.clock = ctx.nanoClock();
        this.committedEpoch = committedEpoch;
        this.codec = new PageCodec(ctx.pageSize(), 0);
        try
        {
            this.decodedRegion = NativeMemory.allocateDirect(Math.max(ctx.pageSize(),
                ctx.maxFramePayload() / (ctx.pageSize() + PageCodec.ENTRY_HEADER) * ctx.pageSize()), 4096);
        }
        catch (final RuntimeException | Error ex)
        {
            codec.close();
            throw ex;
        }
        this.decodedBuffer = new UnsafeBuffer(decodedRegion.byteBuffer());
        this.decodedView = decodedRegion.byteBuffer().duplicate();
    }

    /**
     * @param type a frame type.
     * @return true for the frames an epoch is made of.
     */
    static boolean isEpochData(final FrameType type)
    {
        switch (type)
        {
            case DISK_WRITE:
            case DISK_FLUSH:
            case BARRIER:
            case PAGES:
            case PAGES_ENCODED:
            case COMPONENT:
            case EPOCH_END:
                return true;
            default:
                return false;
        }
    }

    /**
     * A session starts: its first epoch is {@code firstEpoch}, a baseline or a resync of the recovery point.
     *
     * @param firstEpoch the epoch its first data frame carries.
     */
    void startSession(final long firstEpoch)
    {
        discard();
        sessionBaselinePending = true;
        nextEpoch = firstEpoch;
    }

    /**
     * @return the epoch the next data frame must carry.
     */
    long nextEpoch()
    {
        return nextEpoch;
    }

    /**
     * @return true while an epoch has frames in assembly.
     */
    boolean inAssembly()
    {
        return assembling != null;
    }

    /**
     * @return true while a baseline written straight into the image has not committed (any thread): the image then
     *         holds no whole epoch.
     */
    boolean writingBaselineInPlace()
    {
        return baselineInPlace;
    }

    /**
     * @return true unless the frame first in the buffer still waits for the applier.
     */
    boolean readyForFrames()
    {
        if (stall != STALL_NONE && !(stall == STALL_NO_LOG ? !freeLogs.isEmpty() :
            applier.appliedEpoch() == committedEpoch.getAsLong()))
        {
            return false;
        }
        stall = STALL_NONE;
        return true;
    }

    /**
     * Whether the epoch data frame just decoded (of {@link #nextEpoch()}) must wait for the applier, which then owns
     * every other log or has not yet applied the base the frame's XOR deltas are decoded against. Decided before
     * anything of the frame is counted or kept, so the same frame is simply decoded again once the wait ends.
     *
     * @return true to leave the frame unconsumed.
     */
    boolean mustWait()
    {
        if (!isEpochData(decoder.type()))
        {
            return false;
        }
        if (assembling == null && (assembling = freeLogs.poll()) == null)
        {
            stall = STALL_NO_LOG;
            return true;
        }
        if (decoder.type() == FrameType.PAGES_ENCODED && applier.appliedEpoch() != committedEpoch.getAsLong() &&
            hasXorDelta(decoder.payloadIndex(), decoder.length()))
        {
            stall = STALL_APPLIER_BEHIND;
            return true;
        }
        return false;
    }

    /**
     * Takes the epoch data frame the decoder describes; its epoch is {@link #nextEpoch()} (the receiver checked).
     *
     * @return the epoch, verified whole, when the frame was its end (the receiver commits it; the log is the
     *         receiver's to hand to the applier); null otherwise.
     * @throws ProtocolException naming the fault: the epoch is then to be discarded.
     * @throws IOException       if the epoch log's spill file or a baseline's disk write fails.
     */
    EpochLog onFrame() throws IOException
    {
        final FrameType type = decoder.type();
        final long epoch = decoder.epoch();
        final int index = decoder.payloadIndex();
        final int length = decoder.length();
        switch (type)
        {
            case DISK_WRITE:
                onDiskWrite(index, length);
                return null;
            case DISK_FLUSH:
                requireLength(type, length, FrameCodec.DISK_FLUSH_LENGTH);
                requireBeforeBarrier(type, epoch);
                disk(receiveBuffer.getInt(index));
                assembling.append(FrameType.DISK_FLUSH.code(), receiveBuffer.getInt(index), 0, reader.slice(index, 0));
                countDataFrame();
                epochDiskWrites++;
                return null;
            case BARRIER:
                requireLength(type, length, 0);
                requireBeforeBarrier(type, epoch);
                barrierSeen = true;
                barrierNs = clock.nanoTime();
                return null;
            case PAGES:
                onPages(epoch, index, length);
                return null;
            case PAGES_ENCODED:
                onEncodedPages(epoch, index, length);
                return null;
            case COMPONENT:
                requireAfterBarrier(type, epoch);
                if (length < FrameCodec.COMPONENT_HEADER)
                {
                    throw new ProtocolException(Fault.MALFORMED, "COMPONENT payload of " + length + " bytes");
                }
                assembling.append(FrameType.COMPONENT.code(), receiveBuffer.getInt(index),
                    receiveBuffer.getInt(index + 4),
                    reader.slice(index + FrameCodec.COMPONENT_HEADER, length - FrameCodec.COMPONENT_HEADER));
                countDataFrame();
                epochComponents++;
                return null;
            case EPOCH_END:
                return onEpochEnd(epoch, index, length);
            default:
                throw new ProtocolException(Fault.UNKNOWN_TYPE, type + " frame is not valid from an active");
        }
    }

    /**
     * Forgets the epoch in assembly (a refused frame, a lost connection) and any wait for the applier.
     */
    void discard()
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
        stall = STALL_NONE;
    }

    @Override
    public void close()
    {
        decodedRegion.close();
        codec.close();
    }

    /**
     * An XOR delta is decoded against the replica as of the last commit: while the applier lags it is not there yet.
     * Walks the entries' headers only; a malformed run is left to the decoder to refuse.
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
            disk.write(offset, reader.slice(index + FrameCodec.DISK_WRITE_HEADER, dataLength));
        }
        else
        {
            assembling.append(FrameType.DISK_WRITE.code(), diskId, offset,
                reader.slice(index + FrameCodec.DISK_WRITE_HEADER, dataLength));
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
            reader.slice(index + FrameCodec.PAGES_HEADER, length - FrameCodec.PAGES_HEADER));
    }

    private void onEncodedPages(final long epoch, final int index, final int length) throws IOException
    {
        final int count = checkPageRun(FrameType.PAGES_ENCODED, epoch, index, length);
        final int pageSize = ctx.pageSize();
        if ((long)count * pageSize > decodedBuffer.capacity())
        {
            throw new ProtocolException(Fault.MALFORMED, "PAGES_ENCODED of " + count + " pages");
        }
        // decoded now, against the replica as of the previous commit (the base the active encoded against; an XOR
        // delta waited in mustWait() until the applier had applied it), so a corrupt entry refuses the frame before
        // anything of the epoch is applied
        final long firstPage = receiveBuffer.getLong(index);
        int offset = index + FrameCodec.PAGES_HEADER;
        final int end = index + length;
        for (int i = 0; i < count; i++)
        {
            offset += codec.decode(firstPage + i, receiveBuffer, reader.checksumView(), offset, end - offset,
                decodedBuffer, decodedView, i * pageSize, image.memory());
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
            // a live baseline's rounds send pages while the guest runs, before its final pause's barrier; every
            // later epoch's pages are copied in its pause, after the barrier
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
     * A baseline into a replica that never committed has no earlier recovery point to protect: it goes straight into
     * the replica as it arrives, in arrival order (a live baseline's rounds and the guest's writes during the disk
     * copy rely on that order), never into an epoch log or its spill file, and the applier (idle: there was no commit
     * to apply) is not involved. A later session's first epoch keeps going through the log, so a session cut off
     * there leaves the committed recovery point as it was.
     */
    private boolean baselineInPlace()
    {
        return sessionBaselinePending && committedEpoch.getAsLong() == 0;
    }

    private void logPages(final long firstPage, final int count, final UnsafeBuffer buffer, final int bufferIndex,
        final ByteBuffer pages) throws IOException
    {
        if (baselineInPlace())
        {
            baselineInPlace = true;
            image.writePages(firstPage, count, buffer, bufferIndex);
        }
        else
        {
            assembling.append(FrameType.PAGES.code(), firstPage, count, pages);
        }
        countDataFrame();
        epochPages += count;
    }

    private EpochLog onEpochEnd(final long epoch, final int index, final int length)
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
        final EpochLog verified = assembling;
        assembling = null;
        verified.epoch = epoch;
        verified.crcSum = crcSum;
        verified.barrierNs = barrierNs;
        verified.receivedNs = clock.nanoTime();
        verified.ackedNs = -1;
        // the session's baseline (the whole first copy) is not the steady state: not in the stages
        verified.baseline = sessionBaselinePending;
        verified.inPlace = baselineInPlace;
        sessionBaselinePending = false;
        baselineInPlace = false;
        resetEpochCounts();
        nextEpoch = epoch + 1;
        return verified;
    }

    private void countDataFrame()
    {
        epochFrames++;
        epochCrcSum += decoder.crc();
    }

    private FileVirtualDisk disk(final int diskId)
    {
        final FileVirtualDisk disk = image.disk(diskId);
        if (disk == null)
        {
            throw new ProtocolException(Fault.BAD_DISK_EXTENT, "unknown disk id " + diskId);
        }
        return disk;
    }

    static void requireLength(final FrameType type, final int length, final int expectedLength)
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

    private void resetEpochCounts()
    {
        barrierSeen = false;
        epochPages = 0;
        epochFrames = 0;
        epochDiskWrites = 0;
        epochComponents = 0;
        epochCrcSum = 0;
    }
}
