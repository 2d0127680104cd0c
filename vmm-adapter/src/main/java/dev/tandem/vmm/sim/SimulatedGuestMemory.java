package dev.tandem.vmm.sim;

import dev.tandem.vmm.DirtyBitmap;
import dev.tandem.vmm.DirtyLog;
import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.JvmAccess;
import dev.tandem.vmm.NativeGuestMemory;
import dev.tandem.vmm.NativeMemory;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.UnsafeApi;

/**
 * Off-heap guest memory of the simulated VMM with a software dirty log.
 * <p>
 * Every store goes through {@link #putLong} or {@link #deviceWrite}, which write first and then mark the page, so a
 * concurrent get-and-clear {@link #harvest} never loses a write: a store that lands after its bit was taken marks it
 * again for the next harvest.
 */
public final class SimulatedGuestMemory implements GuestMemory, DirtyLog, AutoCloseable
{
    private final int pageSize;
    private final int pageShift;
    private final long pageCount;
    private final NativeMemory.Region region;
    private final long address;
    private final DirtyBitmap dirty;
    private final NativeGuestMemory view;
    private volatile boolean tracking;

    /**
     * @param sizeBytes guest memory size, a multiple of {@code pageSize}.
     * @param pageSize  page size, a power of two of at least 512.
     * @throws IllegalStateException listing the JVM flags Agrona needs, when any is missing.
     */
    public SimulatedGuestMemory(final long sizeBytes, final int pageSize)
    {
        this(null, sizeBytes, pageSize);
    }

    /**
     * Guest memory on a region handed over by a recovery point ({@link dev.tandem.vmm.RecoveryPoint#adoptMemory()}):
     * no copy; this memory owns the region from now on and frees it at {@link #close()}.
     *
     * @param adopted  the region, holding the guest's pages.
     * @param pageSize page size, a power of two of at least 512.
     */
    public SimulatedGuestMemory(final NativeMemory.Region adopted, final int pageSize)
    {
        this(java.util.Objects.requireNonNull(adopted, "adopted"), adopted.length(), pageSize);
    }

    private SimulatedGuestMemory(final NativeMemory.Region adopted, final long sizeBytes, final int pageSize)
    {
        JvmAccess.check();
        if (pageSize < 512 || Integer.bitCount(pageSize) != 1)
        {
            throw new IllegalArgumentException("page size must be a power of two >= 512: " + pageSize);
        }
        if (sizeBytes < pageSize || sizeBytes % pageSize != 0)
        {
            throw new IllegalArgumentException(
                "guest memory size " + sizeBytes + " must be a positive multiple of the page size " + pageSize);
        }
        this.pageSize = pageSize;
        this.pageShift = Integer.numberOfTrailingZeros(pageSize);
        this.pageCount = sizeBytes / pageSize;
        this.region = adopted != null ? adopted : NativeMemory.allocate(sizeBytes, pageSize);
        this.address = region.address();
        this.dirty = new DirtyBitmap(pageCount);
        this.view = new NativeGuestMemory(address, pageSize, pageCount);
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
    public void copyOut(final long firstPage, final int pageCount, final MutableDirectBuffer dst, final int dstIndex)
    {
        view.copyOut(firstPage, pageCount, dst, dstIndex);
    }

    @Override
    public void copyIn(final long firstPage, final int pageCount, final DirectBuffer src, final int srcIndex)
    {
        view.copyIn(firstPage, pageCount, src, srcIndex);
    }

    /**
     * Fills this memory from another guest's in one copy per chunk, straight into this memory (no bounce buffer):
     * how a replica is built at promotion. The guest must not be running.
     *
     * @param source memory of the same geometry.
     */
    public void copyFrom(final GuestMemory source)
    {
        if (source.pageSize() != pageSize || source.pageCount() != pageCount)
        {
            throw new IllegalArgumentException("source has " + source.pageCount() + " pages of " + source.pageSize() +
                " bytes, this guest " + pageCount + " of " + pageSize);
        }
        final int pagesPerChunk = (1 << 30) >>> pageShift;
        final org.agrona.concurrent.UnsafeBuffer window = new org.agrona.concurrent.UnsafeBuffer(0, 0);
        for (long page = 0; page < pageCount; page += pagesPerChunk)
        {
            final int pages = (int)Math.min(pagesPerChunk, pageCount - page);
            window.wrap(address + (page << pageShift), pages << pageShift);
            source.copyOut(page, pages, window, 0);
        }
    }

    /**
     * A vCPU store of 8 bytes.
     *
     * @param guestAddress byte address in the guest, 8-byte aligned.
     * @param value        value stored.
     */
    public void putLong(final long guestAddress, final long value)
    {
        if (guestAddress < 0 || guestAddress > (pageCount << pageShift) - 8 || (guestAddress & 7) != 0)
        {
            throw new IndexOutOfBoundsException("guest address " + guestAddress);
        }
        UnsafeApi.putLong(address + guestAddress, value);
        mark(guestAddress >>> pageShift);
    }

    /**
     * @param guestAddress byte address in the guest, 8-byte aligned.
     * @return the value stored there.
     */
    public long getLong(final long guestAddress)
    {
        if (guestAddress < 0 || guestAddress > (pageCount << pageShift) - 8 || (guestAddress & 7) != 0)
        {
            throw new IndexOutOfBoundsException("guest address " + guestAddress);
        }
        return UnsafeApi.getLong(address + guestAddress);
    }

    /**
     * A device's DMA into guest memory (e.g. a received network frame); marks every page it touches.
     *
     * @param guestAddress byte address in the guest.
     * @param src          the bytes.
     * @param index        offset in {@code src}.
     * @param length       number of bytes.
     */
    public void deviceWrite(final long guestAddress, final DirectBuffer src, final int index, final int length)
    {
        if (guestAddress < 0 || length < 0 || guestAddress > (pageCount << pageShift) - length)
        {
            throw new IndexOutOfBoundsException("device write [" + guestAddress + ", +" + length + ")");
        }
        src.boundsCheck(index, length);
        UnsafeApi.copyMemory(src.byteArray(), src.addressOffset() + index, null, address + guestAddress, length);
        if (length > 0)
        {
            final long last = (guestAddress + length - 1) >>> pageShift;
            for (long page = guestAddress >>> pageShift; page <= last; page++)
            {
                mark(page);
            }
        }
    }

    private void mark(final long page)
    {
        if (tracking)
        {
            dirty.setConcurrent(page);
        }
    }

    @Override
    public void startTracking()
    {
        tracking = true;
        dirty.clearAll();
    }

    @Override
    public void stopTracking()
    {
        tracking = false;
    }

    @Override
    public void harvest(final DirtyBitmap into)
    {
        dirty.harvestConcurrentInto(into);
    }

    /**
     * Frees the memory; the guest must be stopped.
     */
    @Override
    public void close()
    {
        region.close();
    }
}
