package dev.tandem.core.active;

import dev.tandem.vmm.DiskWriteSink;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.VirtualDisk;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.ControlledMessageHandler;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.MessageHandler;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.ringbuffer.ManyToOneRingBuffer;
import org.agrona.concurrent.ringbuffer.RingBufferDescriptor;

import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The ordered stream of the guest's disk writes, with the checkpoint markers (barriers) in the same order: an
 * off-heap many-to-one ring buffer. VMM threads append writes; the scheduler appends the checkpoint record while the
 * guest is paused, so every write of epoch N precedes barrier N; the sender drains it in order.
 */
final class DiskWriteStream implements DiskWriteSink, AutoCloseable
{
    static final int DISK_WRITE = 1;
    static final int DISK_FLUSH = 2;
    static final int CHECKPOINT = 3;

    /** DISK_WRITE record: diskId:int32 length:int32 offset:int64 data. */
    static final int WRITE_HEADER = 16;

    private final NativeMemory.Region region;
    private final ManyToOneRingBuffer ring;
    private final UnsafeBuffer ringBuffer;
    private final VirtualDisk[] disks;
    /** By disk id: the largest record's data, a whole number of that disk's blocks (the standby refuses less). */
    private final int[] chunkBytes;
    private final AtomicLong backPressured = new AtomicLong();
    private volatile boolean open = true;
    /**
     * Makes a writer's wait on a full stream, once per wait (a full stream is back-pressure, not the steady state).
     * Not a {@code ThreadLocal}: a long-lived VMM thread keeps a thread-local's value after the stream is gone (its
     * entry outlives the key until some later lookup happens to clear it), and a wait strategy that refers to its
     * owner (the simulation's does) kept whole protected sessions reachable: the deterministic simulation ran out of
     * heap after about 1 700 seeds once the sender left records in the stream while their frames were under way.
     */
    private final java.util.function.Supplier<IdleStrategy> waitStrategy;

    /**
     * @param capacity      power-of-two ring capacity.
     * @param disks         the guest's disks, by index = id lookup.
     * @param maxChunkBytes largest data chunk of one record (bounded by the frame payload); each disk's records are
     *                      cut at the largest multiple of its block size within it and the ring's record size.
     * @param waitStrategy  makes how a writer waits on a full stream; one per wait.
     */
    DiskWriteStream(final int capacity, final List<VirtualDisk> disks, final int maxChunkBytes,
        final java.util.function.Supplier<IdleStrategy> waitStrategy)
    {
        this.waitStrategy = waitStrategy;
        this.region = NativeMemory.allocateDirect(capacity + RingBufferDescriptor.TRAILER_LENGTH, 64);
        this.ringBuffer = new UnsafeBuffer(region.byteBuffer());
        this.ring = new ManyToOneRingBuffer(ringBuffer);
        int maxId = -1;
        for (final VirtualDisk disk : disks)
        {
            if (disk.id() < 0 || disk.id() > 1023)
            {
                throw new IllegalArgumentException("disk id " + disk.id() + " outside [0, 1023]");
            }
            maxId = Math.max(maxId, disk.id());
        }
        this.disks = new VirtualDisk[maxId + 1];
        for (final VirtualDisk disk : disks)
        {
            if (this.disks[disk.id()] != null)
            {
                throw new IllegalArgumentException("two disks share id " + disk.id());
            }
            this.disks[disk.id()] = disk;
        }
        final int byRing = ring.maxMsgLength() - WRITE_HEADER;
        if (byRing != maxRecordData(capacity))
        {
            throw new IllegalStateException("the ring of " + capacity + " bytes holds records of " + byRing +
                " data bytes, not the " + maxRecordData(capacity) + " that configuration checks assume");
        }
        final int limit = Math.min(byRing, maxChunkBytes);
        this.chunkBytes = new int[this.disks.length];
        for (final VirtualDisk disk : disks)
        {
            chunkBytes[disk.id()] = limit / disk.blockSize() * disk.blockSize();
            if (chunkBytes[disk.id()] == 0)
            {
                throw new IllegalArgumentException("disk " + disk.id() + ": a block of " + disk.blockSize() +
                    " bytes does not fit a disk-write record of at most " + limit + " bytes");
            }
        }
    }

    /**
     * @param capacity power-of-two ring capacity.
     * @return the most data bytes one DISK_WRITE record holds: the ring takes messages of up to an eighth of its
     *         capacity, less the record header.
     */
    static int maxRecordData(final int capacity)
    {
        return capacity / 8 - WRITE_HEADER;
    }

    @Override
    public void write(final int diskId, final long offset, final DirectBuffer data, final int index, final int length)
    {
        checkExtent(diskId, offset, length);
        final int maxChunk = chunkBytes[diskId];
        int done = 0;
        while (done < length)
        {
            final int chunk = Math.min(maxChunk, length - done);
            final int at = claim(DISK_WRITE, WRITE_HEADER + chunk);
            if (at < 0)
            {
                return;
            }
            put(at, diskId, offset + done, data, index + done, chunk);
            done += chunk;
        }
    }

    /**
     * Appends a write the library itself made (a restore in place, from the sender's thread, which drains this
     * stream and so must never wait on it): as many whole chunks as fit now.
     *
     * @param diskId the disk; the extent is checked as the sink's writes are.
     * @param offset byte offset.
     * @param data   the bytes.
     * @param index  offset in {@code data}.
     * @param length bytes.
     * @return bytes appended (whole chunks from the start; the caller offers the rest later).
     */
    int tryWrite(final int diskId, final long offset, final DirectBuffer data, final int index, final int length)
    {
        checkExtent(diskId, offset, length);
        int done = 0;
        while (done < length && open)
        {
            final int chunk = Math.min(chunkBytes[diskId], length - done);
            final int at = ring.tryClaim(DISK_WRITE, WRITE_HEADER + chunk);
            if (at < 0)
            {
                break;
            }
            put(at, diskId, offset + done, data, index + done, chunk);
            done += chunk;
        }
        return done;
    }

    @Override
    public void flush(final int diskId)
    {
        disk(diskId);
        final int at = claim(DISK_FLUSH, 4);
        if (at >= 0)
        {
            ringBuffer.putInt(at, diskId);
            ring.commit(at);
        }
    }

    /**
     * Appends barrier N with the staging area holding (a segment of) delta N. Called by the scheduler while paused.
     *
     * @return false if the stream was closed.
     */
    boolean appendCheckpoint(final long epoch, final int areaIndex)
    {
        final int at = claim(CHECKPOINT, 12);
        if (at < 0)
        {
            return false;
        }
        ringBuffer.putLong(at, epoch);
        ringBuffer.putInt(at + 8, areaIndex);
        ring.commit(at);
        return true;
    }

    /**
     * @return a new view of the ring's memory for gathering writes; create once, reuse for every record.
     */
    java.nio.ByteBuffer newView()
    {
        return region.byteBuffer().duplicate();
    }

    int read(final MessageHandler handler, final int limit)
    {
        return ring.read(handler, limit);
    }

    /**
     * Reads records until the handler stops; a record it aborts stays in the stream, its bytes untouched, so a frame
     * that writes from them may be finished on a later duty cycle.
     */
    int controlledRead(final ControlledMessageHandler handler, final int limit)
    {
        return ring.controlledRead(handler, limit);
    }

    long backPressured()
    {
        return backPressured.get();
    }

    /**
     * Stops accepting records; blocked writers return.
     */
    void shutdown()
    {
        open = false;
    }

    private int claim(final int type, final int length)
    {
        int at = ring.tryClaim(type, length);
        if (at < 0 && open)
        {
            // back-pressure: the stream to the standby is full, so the guest's disk I/O (or the pause) waits
            backPressured.incrementAndGet();
            // many VMM threads write: each wait has its own strategy
            final IdleStrategy idle = waitStrategy.get();
            idle.reset();
            while ((at = ring.tryClaim(type, length)) < 0 && open)
            {
                idle.idle();
            }
        }
        return at;
    }

    private void checkExtent(final int diskId, final long offset, final int length)
    {
        final VirtualDisk disk = disk(diskId);
        final int block = disk.blockSize();
        if (length <= 0 || length % block != 0 || offset < 0 || offset % block != 0 ||
            offset > disk.sizeBytes() - length)
        {
            throw new IllegalArgumentException("disk " + diskId + " write [" + offset + ", +" + length +
                ") is empty, misaligned to " + block + " bytes, or outside the disk's " + disk.sizeBytes() + " bytes");
        }
    }

    private void put(final int at, final int diskId, final long offset, final DirectBuffer data, final int index,
        final int chunk)
    {
        ringBuffer.putInt(at, diskId);
        ringBuffer.putInt(at + 4, chunk);
        ringBuffer.putLong(at + 8, offset);
        ringBuffer.putBytes(at + WRITE_HEADER, data, index, chunk);
        ring.commit(at);
    }

    private VirtualDisk disk(final int diskId)
    {
        if (diskId < 0 || diskId >= disks.length || disks[diskId] == null)
        {
            throw new IllegalArgumentException("unknown disk id " + diskId);
        }
        return disks[diskId];
    }


    @Override
    public void close()
    {
        open = false;
        region.close();
    }
}
