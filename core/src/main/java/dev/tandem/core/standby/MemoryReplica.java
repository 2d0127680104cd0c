package dev.tandem.core.standby;

import dev.tandem.vmm.GuestMemory;
import net.openhft.chronicle.bytes.BytesStore;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.UnsafeApi;

/**
 * The standby's copy of guest memory: a Chronicle Bytes native store with 64-bit offsets (guests exceed the 2 GiB
 * limit of a {@code ByteBuffer}). Only committed epochs are ever written into it.
 */
final class MemoryReplica implements GuestMemory, AutoCloseable
{
    private final BytesStore<?, Void> store;
    private final long address;
    private final int pageSize;
    private final int pageShift;
    private final long pageCount;

    MemoryReplica(final int pageSize, final long pageCount)
    {
        this.pageSize = pageSize;
        this.pageShift = Integer.numberOfTrailingZeros(pageSize);
        this.pageCount = pageCount;
        final long size = pageCount << pageShift;
        this.store = BytesStore.nativeStoreWithFixedCapacity(size);
        // one contiguous allocation: the base address covers every page
        this.address = store.addressForWrite(0);
        UnsafeApi.setMemory(address, size, (byte)0);
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
        UnsafeApi.copyMemory(null, address + (firstPage << pageShift), dst.byteArray(), dst.addressOffset() + dstIndex,
            length);
    }

    @Override
    public void copyIn(final long firstPage, final int count, final DirectBuffer src, final int srcIndex)
    {
        GuestMemory.checkRun(firstPage, count, pageCount);
        final int length = count << pageShift;
        src.boundsCheck(srcIndex, length);
        UnsafeApi.copyMemory(src.byteArray(), src.addressOffset() + srcIndex, null, address + (firstPage << pageShift),
            length);
    }

    @Override
    public void close()
    {
        store.releaseLast();
    }
}
