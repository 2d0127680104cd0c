package dev.tandem.vmm;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * Guest memory laid out contiguously at a native address: the common case of an adapter whose guest RAM is one
 * {@code mmap}, and of the standby's replica. Copies are {@code Unsafe.copyMemory} per run in 1 MiB chunks
 * ({@link NativeMemory#copy}: a safepoint can come between two), with bounds checks,
 * and allocate nothing. The memory is owned elsewhere; this is only a view.
 */
public final class NativeGuestMemory implements GuestMemory
{
    private final long address;
    private final int pageSize;
    private final int pageShift;
    private final long pageCount;

    /**
     * @param address   address of page 0.
     * @param pageSize  page size, a power of two.
     * @param pageCount number of pages mapped at {@code address}.
     */
    public NativeGuestMemory(final long address, final int pageSize, final long pageCount)
    {
        if (pageSize < 512 || Integer.bitCount(pageSize) != 1)
        {
            throw new IllegalArgumentException("page size must be a power of two >= 512: " + pageSize);
        }
        this.address = address;
        this.pageSize = pageSize;
        this.pageShift = Integer.numberOfTrailingZeros(pageSize);
        this.pageCount = pageCount;
    }

    /**
     * @return address of page 0.
     */
    public long address()
    {
        return address;
    }

    @Override
    public int pageSize()
    {
        return pageSize;
    }

    @Override
    public long pageCount()
    {
        return pageCount;
    }

    @Override
    public void copyOut(final long firstPage, final int count, final MutableDirectBuffer dst, final int dstIndex)
    {
        GuestMemory.checkRun(firstPage, count, pageCount);
        final int length = count << pageShift;
        dst.boundsCheck(dstIndex, length);
        NativeMemory.copy(null, address + (firstPage << pageShift), dst.byteArray(), dst.addressOffset() + dstIndex,
            length);
    }

    @Override
    public void copyIn(final long firstPage, final int count, final DirectBuffer src, final int srcIndex)
    {
        GuestMemory.checkRun(firstPage, count, pageCount);
        final int length = count << pageShift;
        src.boundsCheck(srcIndex, length);
        NativeMemory.copy(src.byteArray(), src.addressOffset() + srcIndex, null, address + (firstPage << pageShift),
            length);
    }
}
