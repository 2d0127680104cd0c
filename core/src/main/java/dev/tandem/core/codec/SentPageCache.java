package dev.tandem.core.codec;

import dev.tandem.vmm.NativeMemory;
import org.agrona.DirectBuffer;
import org.agrona.collections.Long2LongHashMap;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * The last version of recently sent pages, the base of XOR deltas (QEMU's XBZRLE cache). Bounded, off-heap,
 * evicting by CLOCK. Used by one thread (the sender); allocates nothing after construction.
 */
final class SentPageCache implements AutoCloseable
{
    private final int pageSize;
    private final int slots;
    private final NativeMemory.Region region;
    private final Long2LongHashMap slotByPage;
    private final long[] pageBySlot;
    private final boolean[] referenced;
    private final UnsafeBuffer slotView = new UnsafeBuffer(0, 0);
    private int hand;
    private int used;

    SentPageCache(final long capacityBytes, final int pageSize)
    {
        this.pageSize = pageSize;
        this.slots = (int)Math.max(1, Math.min(Integer.MAX_VALUE / 2, capacityBytes / pageSize));
        this.region = NativeMemory.allocate((long)slots * pageSize, pageSize);
        this.slotByPage = new Long2LongHashMap(slots * 2, 0.65f, -1);
        this.pageBySlot = new long[slots];
        this.referenced = new boolean[slots];
        java.util.Arrays.fill(pageBySlot, -1);
    }

    /**
     * @return a view of the cached version of {@code page}, valid until the next call, or null if not cached. Writing
     *         through it updates the cached version in place (the codec does, in its XOR pass).
     */
    UnsafeBuffer get(final long page)
    {
        final long slot = slotByPage.get(page);
        if (slot < 0)
        {
            return null;
        }
        referenced[(int)slot] = true;
        return view((int)slot);
    }

    /**
     * Remembers {@code src} as the last sent version of {@code page}.
     */
    void put(final long page, final DirectBuffer src, final int srcIndex)
    {
        long slot = slotByPage.get(page);
        if (slot < 0)
        {
            slot = used < slots ? used++ : victim();
            final long old = pageBySlot[(int)slot];
            if (old >= 0)
            {
                slotByPage.remove(old);
            }
            pageBySlot[(int)slot] = page;
            slotByPage.put(page, slot);
        }
        referenced[(int)slot] = true;
        view((int)slot).putBytes(0, src, srcIndex, pageSize);
    }

    private int victim()
    {
        while (true)
        {
            final int slot = hand;
            hand = hand + 1 == slots ? 0 : hand + 1;
            if (!referenced[slot])
            {
                return slot;
            }
            referenced[slot] = false;
        }
    }

    private UnsafeBuffer view(final int slot)
    {
        slotView.wrap(region.address() + (long)slot * pageSize, pageSize);
        return slotView;
    }

    @Override
    public void close()
    {
        region.close();
    }
}
