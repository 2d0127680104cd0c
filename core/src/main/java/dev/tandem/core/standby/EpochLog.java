package dev.tandem.core.standby;

import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.OwnerOnlyFiles;
import org.agrona.concurrent.UnsafeBuffer;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Holds one epoch's disk writes, pages and component state, in arrival order, until its end has arrived and
 * verified; then {@link #replay} applies them. Bounded in memory: records beyond the memory tier spill to a file,
 * so a delta of any size (the baseline is all of memory) is assembled without unbounded heap or native memory.
 * <p>
 * Record: {@code type:int32 length:int32 a:int64 b:int64} then {@code length} bytes, padded to 8.
 * <p>
 * One owner at a time: the receiver appends to it; once the epoch verified, the receiver fills in the fields below
 * and hands the log to the applier through a queue (which orders these writes before the applier's reads); the
 * applier replays and resets it and hands it back the same way.
 */
final class EpochLog implements AutoCloseable
{
    static final int RECORD_HEADER = 24;

    /**
     * Receives replayed records; {@code data} is also positioned on the record's bytes.
     */
    interface Visitor
    {
        void onRecord(int type, long a, long b, UnsafeBuffer buffer, ByteBuffer data, int index, int length)
            throws IOException;
    }

    private final NativeMemory.Region memory;
    private final UnsafeBuffer memoryBuffer;
    private final ByteBuffer memoryView;
    private final NativeMemory.Region scratch;
    private final UnsafeBuffer scratchBuffer;
    private final ByteBuffer scratchView;
    private final ByteBuffer headerOut = ByteBuffer.allocateDirect(RECORD_HEADER).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    private final Path spillPath;
    private FileChannel spill;
    private int memoryUsed;
    private long spillUsed;

    /** The verified epoch this log holds, set by the receiver before the hand-over. */
    long epoch;
    /** When the epoch's barrier was read. */
    long barrierNs;
    /** When the epoch's end was read and verified. */
    long receivedNs;
    /** The sum of the epoch's frame CRCs its end carried: what the recovery point's fingerprint chains. */
    long crcSum;
    /** When its ack was written, or -1 if the write failed. */
    long ackedNs;
    /** The session's baseline (the whole first copy): not in the steady-state stage latencies. */
    boolean baseline;
    /** Its pages and disk copy went straight into the image (a first baseline): the log holds only the rest. */
    boolean inPlace;
    /** The recovery point's fingerprint once this epoch is committed ({@code Handshake.chain}). */
    long fingerprint;

    /**
     * @param memoryBytes bytes kept in memory before spilling.
     * @param maxRecord   largest record's data.
     * @param spillPath   file for the overflow, created when first needed.
     */
    EpochLog(final int memoryBytes, final int maxRecord, final Path spillPath)
    {
        this.memory = NativeMemory.allocateDirect(memoryBytes, 4096);
        this.memoryBuffer = new UnsafeBuffer(memory.byteBuffer());
        this.memoryView = memory.byteBuffer().duplicate();
        this.scratch = NativeMemory.allocateDirect(RECORD_HEADER + maxRecord + 8, 4096);
        this.scratchBuffer = new UnsafeBuffer(scratch.byteBuffer());
        this.scratchView = scratch.byteBuffer().duplicate();
        this.spillPath = spillPath;
    }

    /**
     * Appends a record whose bytes are {@code data}'s position to limit.
     */
    void append(final int type, final long a, final long b, final ByteBuffer data) throws IOException
    {
        final int length = data.remaining();
        final int total = RECORD_HEADER + align8(length);
        if (spillUsed == 0 && memoryUsed + total <= memoryBuffer.capacity())
        {
            memoryBuffer.putInt(memoryUsed, type);
            memoryBuffer.putInt(memoryUsed + 4, length);
            memoryBuffer.putLong(memoryUsed + 8, a);
            memoryBuffer.putLong(memoryUsed + 16, b);
            memoryBuffer.putBytes(memoryUsed + RECORD_HEADER, data, data.position(), length);
            memoryUsed += total;
        }
        else
        {
            if (spill == null)
            {
                spill = OwnerOnlyFiles.open(spillPath, StandardOpenOption.CREATE, StandardOpenOption.READ,
                    StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
            }
            headerOut.clear();
            headerOut.putInt(type).putInt(length).putLong(a).putLong(b).flip();
            spillUsed += writeFully(headerOut, spillUsed);
            final int position = data.position();
            spillUsed += writeFully(data, spillUsed);
            data.position(position);
            spillUsed = align8(spillUsed);
        }
    }

    /**
     * Hands every record to the visitor in arrival order.
     */
    void replay(final Visitor visitor) throws IOException
    {
        int offset = 0;
        while (offset < memoryUsed)
        {
            final int type = memoryBuffer.getInt(offset);
            final int length = memoryBuffer.getInt(offset + 4);
            final int index = offset + RECORD_HEADER;
            memoryView.limit(index + length).position(index);
            visitor.onRecord(type, memoryBuffer.getLong(offset + 8), memoryBuffer.getLong(offset + 16), memoryBuffer,
                memoryView, index, length);
            offset += RECORD_HEADER + align8(length);
        }
        long position = 0;
        while (position < spillUsed)
        {
            scratchView.clear().limit(RECORD_HEADER);
            readFully(scratchView, position);
            final int type = scratchBuffer.getInt(0);
            final int length = scratchBuffer.getInt(4);
            if (length < 0 || length > scratchBuffer.capacity() - RECORD_HEADER)
            {
                throw new IOException("epoch spill file " + spillPath + " is corrupt at " + position);
            }
            scratchView.limit(RECORD_HEADER + length).position(RECORD_HEADER);
            readFully(scratchView, position + RECORD_HEADER);
            scratchView.limit(RECORD_HEADER + length).position(RECORD_HEADER);
            visitor.onRecord(type, scratchBuffer.getLong(8), scratchBuffer.getLong(16), scratchBuffer, scratchView,
                RECORD_HEADER, length);
            position = align8(position + RECORD_HEADER + length);
        }
    }

    /**
     * Forgets the epoch (after commit, or to discard a partial epoch).
     */
    void reset() throws IOException
    {
        memoryUsed = 0;
        if (spillUsed > 0)
        {
            spillUsed = 0;
            spill.truncate(0);
        }
    }

    long bytes()
    {
        return memoryUsed + spillUsed;
    }

    private int writeFully(final ByteBuffer src, final long position) throws IOException
    {
        int written = 0;
        while (src.hasRemaining())
        {
            written += spill.write(src, position + written);
        }
        return written;
    }

    private void readFully(final ByteBuffer dst, final long position) throws IOException
    {
        int read = 0;
        while (dst.hasRemaining())
        {
            final int n = spill.read(dst, position + read);
            if (n < 0)
            {
                throw new IOException("epoch spill file " + spillPath + " ends early");
            }
            read += n;
        }
    }

    private static int align8(final int value)
    {
        return (value + 7) & ~7;
    }

    private static long align8(final long value)
    {
        return (value + 7) & ~7L;
    }

    @Override
    public void close() throws IOException
    {
        memory.close();
        scratch.close();
        if (spill != null)
        {
            spill.close();
        }
    }
}
