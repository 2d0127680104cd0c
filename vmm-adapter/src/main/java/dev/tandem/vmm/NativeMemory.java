package dev.tandem.vmm;

import org.agrona.BufferUtil;
import org.agrona.UnsafeApi;

import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Owner of Tandem's off-heap allocations. Every region it hands out has exactly one owner that closes it; the
 * live totals let tests assert that nothing leaked ({@link #liveAllocations()} back to where it started).
 */
public final class NativeMemory
{
    private static final AtomicLong LIVE_ALLOCATIONS = new AtomicLong();
    private static final AtomicLong LIVE_BYTES = new AtomicLong();

    private NativeMemory()
    {
    }

    /**
     * @return allocations made through this class and not yet closed.
     */
    public static long liveAllocations()
    {
        return LIVE_ALLOCATIONS.get();
    }

    /**
     * @return bytes allocated through this class and not yet closed.
     */
    public static long liveBytes()
    {
        return LIVE_BYTES.get();
    }

    /**
     * Allocates zeroed native memory of any size (beyond 2 GiB too) outside the JVM's direct-memory limit.
     *
     * @param bytes     size.
     * @param alignment power of two the address is aligned to (e.g. the page size).
     * @return the owning region; close it to free.
     */
    public static Region allocate(final long bytes, final int alignment)
    {
        checkAlignment(alignment);
        if (bytes <= 0)
        {
            throw new IllegalArgumentException("native allocation size must be positive: " + bytes);
        }
        final long raw = UnsafeApi.allocateMemory(bytes + alignment);
        final long aligned = (raw + alignment - 1) & -(long)alignment;
        zero(aligned, bytes);
        LIVE_ALLOCATIONS.incrementAndGet();
        LIVE_BYTES.addAndGet(bytes);
        return new Region(raw, aligned, bytes, null, null);
    }

    /**
     * Allocates an aligned direct {@link ByteBuffer}, for memory that NIO must read or write.
     *
     * @param bytes     capacity.
     * @param alignment power of two the buffer's address is aligned to.
     * @return the owning region; {@link Region#byteBuffer()} is the aligned buffer.
     */
    public static Region allocateDirect(final int bytes, final int alignment)
    {
        checkAlignment(alignment);
        if (bytes <= 0 || bytes > Integer.MAX_VALUE - alignment)
        {
            throw new IllegalArgumentException("direct buffer size out of range: " + bytes);
        }
        // allocate the unaligned original so it can be freed; hand out an aligned slice of it
        final ByteBuffer original = ByteBuffer.allocateDirect(bytes + alignment);
        final long address = BufferUtil.address(original);
        final int shift = (int)(((address + alignment - 1) & -(long)alignment) - address);
        final ByteBuffer aligned = original.duplicate().position(shift).limit(shift + bytes).slice();
        LIVE_ALLOCATIONS.incrementAndGet();
        LIVE_BYTES.addAndGet(bytes);
        return new Region(0, address + shift, bytes, original, aligned);
    }

    /** The most one {@code Unsafe} bulk operation moves: see {@link #zero} and {@link #copy}. */
    public static final long BULK_CHUNK_BYTES = 1 << 20;

    /**
     * Zeroes {@code [address, address + bytes)} in chunks of {@link #BULK_CHUNK_BYTES}. One {@code Unsafe.setMemory}
     * runs inside the VM without a safepoint check for its whole length, and every other Java thread of the process
     * waits at the next safepoint until it ends: zeroing a 1 GiB replica in one call froze the JVM for 2.4 s here
     * (seen with {@code -XX:+SafepointTimeout}), long enough for a protected guest's sender in the same process to
     * go silent and its standby to promote. Between two chunks the thread returns to Java and a safepoint can be
     * reached.
     *
     * @param address first byte.
     * @param bytes   how many.
     */
    public static void zero(final long address, final long bytes)
    {
        for (long offset = 0; offset < bytes; offset += BULK_CHUNK_BYTES)
        {
            UnsafeApi.setMemory(address + offset, Math.min(BULK_CHUNK_BYTES, bytes - offset), (byte)0);
        }
    }

    /**
     * Copies {@code bytes} in chunks of {@link #BULK_CHUNK_BYTES}, for the reason {@link #zero} gives: a copy of a
     * long run (a whole guest, when a promotion falls back to copying) must not hold every thread of the process.
     * Either side may be on-heap ({@code base} an array) or off-heap ({@code base} null, the offset an address).
     *
     * @param srcBase   the source array, or null.
     * @param srcOffset offset in it, or the address.
     * @param dstBase   the destination array, or null.
     * @param dstOffset offset in it, or the address.
     * @param bytes     how many.
     */
    public static void copy(final Object srcBase, final long srcOffset, final Object dstBase, final long dstOffset,
        final long bytes)
    {
        for (long offset = 0; offset < bytes; offset += BULK_CHUNK_BYTES)
        {
            UnsafeApi.copyMemory(srcBase, srcOffset + offset, dstBase, dstOffset + offset,
                Math.min(BULK_CHUNK_BYTES, bytes - offset));
        }
    }

    private static void checkAlignment(final int alignment)
    {
        if (alignment < 8 || Integer.bitCount(alignment) != 1)
        {
            throw new IllegalArgumentException("alignment must be a power of two >= 8: " + alignment);
        }
    }

    /**
     * Takes ownership of memory this class did not allocate (a file mapped by the caller): the region releases it
     * with {@code release} when closed, and counts in {@link #liveAllocations()} until then like any other.
     *
     * @param address first byte.
     * @param length  bytes.
     * @param release frees the memory (e.g. unmaps the file); called once, by {@link Region#close()}.
     * @return the region, owned by the caller.
     */
    public static Region adopt(final long address, final long length, final Runnable release)
    {
        LIVE_ALLOCATIONS.incrementAndGet();
        LIVE_BYTES.addAndGet(length);
        final Region region = new Region(0, address, length, null, null);
        region.release = release;
        return region;
    }

    /**
     * One off-heap allocation and its single owner. Not thread-safe: close it once, after its users stopped.
     */
    public static final class Region implements AutoCloseable
    {
        private final long rawAddress;
        private final long address;
        private final long length;
        private final ByteBuffer original;
        private final ByteBuffer byteBuffer;
        /** Frees memory this class did not allocate ({@link #adopt}); null otherwise. */
        private Runnable release;
        private boolean closed;

        private Region(
            final long rawAddress,
            final long address,
            final long length,
            final ByteBuffer original,
            final ByteBuffer byteBuffer)
        {
            this.rawAddress = rawAddress;
            this.address = address;
            this.length = length;
            this.original = original;
            this.byteBuffer = byteBuffer;
        }

        /**
         * @return aligned address of the first byte.
         */
        public long address()
        {
            return address;
        }

        /**
         * @return size in bytes.
         */
        public long length()
        {
            return length;
        }

        /**
         * @return the aligned buffer of a region from {@link #allocateDirect}; null for {@link #allocate}.
         */
        public ByteBuffer byteBuffer()
        {
            return byteBuffer;
        }

        /**
         * @return true once closed.
         */
        public boolean isClosed()
        {
            return closed;
        }

        /**
         * Frees the memory. Idempotent.
         */
        @Override
        public void close()
        {
            if (closed)
            {
                return;
            }
            closed = true;
            if (release != null)
            {
                release.run();
            }
            else if (original != null)
            {
                BufferUtil.free(original);
            }
            else
            {
                UnsafeApi.freeMemory(rawAddress);
            }
            LIVE_ALLOCATIONS.decrementAndGet();
            LIVE_BYTES.addAndGet(-length);
        }
    }
}
