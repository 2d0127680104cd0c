package dev.tandem.core.standby;

import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.NativeGuestMemory;
import dev.tandem.vmm.NativeMemory;

/**
 * The standby's copy of guest memory: one page-aligned off-heap region with 64-bit offsets (guests exceed the
 * 2 GiB limit of a {@code ByteBuffer}), owned here and seen through a {@link NativeGuestMemory}. Only committed
 * epochs are ever written into it.
 * <p>
 * At promotion a {@link dev.tandem.vmm.ReplicaTarget} may adopt the region as the new guest's memory
 * ({@link #adopt()}): ownership moves with it, nothing is copied, and this replica no longer frees it. (A MEMORY-mode
 * replica is anonymous memory of this process; the DURABLE mode's mapped files are the other side of this
 * interface.)
 */
final class MemoryReplica implements AutoCloseable
{
    private final NativeMemory.Region region;
    private final NativeGuestMemory view;
    private boolean adopted;

    MemoryReplica(final int pageSize, final long pageCount)
    {
        final long size = pageCount * pageSize;
        // zeroed (in chunks that let the rest of the process reach safepoints): the replica of a guest that never
        // wrote a page must read zero
        this.region = NativeMemory.allocate(size, pageSize);
        this.view = new NativeGuestMemory(region.address(), pageSize, pageCount);
    }

    GuestMemory view()
    {
        if (adopted)
        {
            throw new IllegalStateException("the replica's memory was adopted by the promoted guest");
        }
        return view;
    }

    /**
     * @return the region, now owned by the caller.
     */
    NativeMemory.Region adopt()
    {
        if (adopted)
        {
            throw new IllegalStateException("the replica's memory was adopted already");
        }
        adopted = true;
        return region;
    }

    boolean isAdopted()
    {
        return adopted;
    }

    @Override
    public void close()
    {
        if (!adopted)
        {
            region.close();
        }
    }
}
