package dev.tandem.vmm;

import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Bulk zeroing and copying go in chunks (so that a safepoint can come between two: one call over a whole guest held
 * every thread of the process), and the chunks cover the range exactly: nothing before or after it is touched, a
 * length that is not a multiple of the chunk ends where it should.
 */
class NativeMemoryTest
{
    private static final long LENGTH = 3 * NativeMemory.BULK_CHUNK_BYTES + 4096 + 40;

    @Test
    void zeroingCoversTheRangeExactlyAcrossChunks()
    {
        try (NativeMemory.Region region = NativeMemory.allocate(LENGTH + 16, 4096))
        {
            final UnsafeBuffer all = new UnsafeBuffer(region.address(), (int)region.length());
            assertEquals(-1, firstNonZero(all, 0, LENGTH + 16), "allocate() zeroes every byte");
            all.setMemory(0, (int)region.length(), (byte)0x5A);
            NativeMemory.zero(region.address() + 8, LENGTH);
            assertEquals(0x5A, all.getByte(7));
            assertEquals(-1, firstNonZero(all, 8, 8 + LENGTH));
            assertEquals(0x5A, all.getByte((int)(8 + LENGTH)), "the byte after the range is untouched");
        }
    }

    @Test
    void copyingCoversTheRangeExactlyAcrossChunks()
    {
        try (NativeMemory.Region src = NativeMemory.allocate(LENGTH, 4096);
            NativeMemory.Region dst = NativeMemory.allocate(LENGTH + 8, 4096))
        {
            final UnsafeBuffer from = new UnsafeBuffer(src.address(), (int)LENGTH);
            for (int i = 0; i < LENGTH; i += 4)
            {
                from.putInt(i, i * 31 + 7);
            }
            final UnsafeBuffer to = new UnsafeBuffer(dst.address(), (int)LENGTH + 8);
            to.setMemory(0, (int)LENGTH + 8, (byte)0x33);
            NativeMemory.copy(null, src.address(), null, dst.address() + 4, LENGTH);
            assertEquals(0x33, to.getByte(3));
            for (int i = 0; i < LENGTH; i += 4)
            {
                assertEquals(i * 31 + 7, to.getInt(i + 4), "int at " + i);
            }
            assertEquals(0x33, to.getByte((int)LENGTH + 4), "the byte after the range is untouched");
            // into the heap as well (a buffer over an array), the way a guest's run is copied out to staging
            final byte[] heap = new byte[(int)LENGTH];
            NativeMemory.copy(null, src.address(), heap, org.agrona.BufferUtil.ARRAY_BASE_OFFSET, LENGTH);
            assertEquals(from.getInt((int)LENGTH - 4), new UnsafeBuffer(heap).getInt((int)LENGTH - 4));
        }
    }

    /**
     * @return the index of the first non-zero byte in [from, to), or -1 if there is none.
     */
    private static long firstNonZero(final UnsafeBuffer buffer, final long from, final long to)
    {
        for (long i = from; i < to; i++)
        {
            if (buffer.getByte((int)i) != 0)
            {
                return i;
            }
        }
        return -1;
    }
}
