package dev.tandem.core.standby;

import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.NativeGuestMemory;
import net.openhft.chronicle.bytes.BytesStore;
import org.agrona.UnsafeApi;

/**
 * The standby's copy of guest memory: a Chronicle Bytes native store with 64-bit offsets (guests exceed the 2 GiB
 * limit of a {@code ByteBuffer}), owned here and seen through a {@link NativeGuestMemory}. Only committed epochs
 * are ever written into it.
 */
final class MemoryReplica implements AutoCloseable
{
    private final BytesStore<?, Void> store;
    private final NativeGuestMemory view;

    MemoryReplica(final int pageSize, final long pageCount)
    {
        final long size = pageCount * pageSize;
        this.store = BytesStore.nativeStoreWithFixedCapacity(size);
        // one contiguous allocation: the base address covers every page
        final long address = store.addressForWrite(0);
        UnsafeApi.setMemory(address, size, (byte)0);
        this.view = new NativeGuestMemory(address, pageSize, pageCount);
    }

    GuestMemory view()
    {
        return view;
    }

    @Override
    public void close()
    {
        store.releaseLast();
    }
}
