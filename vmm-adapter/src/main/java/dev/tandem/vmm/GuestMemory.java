package dev.tandem.vmm;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * The guest's physical memory as a sequence of fixed-size pages.
 * <p>
 * Threading: {@link #copyOut} is called by the library's checkpoint scheduler while the guest is paused
 * (see {@link VcpuControl#pause()}), and by the sender during a baseline while the guest is paused.
 * {@link #copyIn} is called only on a guest that is not running (a replica being built).
 * Neither method may allocate: they run inside the guest pause.
 */
public interface GuestMemory
{
    /**
     * @return bytes per page; a power of two, at least 512 (4096 for x86 guests).
     */
    int pageSize();

    /**
     * @return number of pages; the guest's memory is {@code pageCount() * pageSize()} bytes and may exceed 2 GiB.
     */
    long pageCount();

    /**
     * @return the guest memory size in bytes.
     */
    default long sizeBytes()
    {
        return pageCount() * pageSize();
    }

    /**
     * Copies {@code pageCount} contiguous pages starting at {@code firstPage} into {@code dst}.
     *
     * @param firstPage index of the first page, {@code 0 <= firstPage < pageCount()}.
     * @param pageCount number of pages, the run must end within the guest.
     * @param dst       destination with at least {@code pageCount * pageSize()} bytes from {@code dstIndex}.
     * @param dstIndex  offset in {@code dst}.
     * @throws IndexOutOfBoundsException if the run leaves the guest or the destination.
     */
    void copyOut(long firstPage, int pageCount, MutableDirectBuffer dst, int dstIndex);

    /**
     * Copies {@code pageCount} contiguous pages from {@code src} into guest memory starting at {@code firstPage}.
     *
     * @param firstPage index of the first page.
     * @param pageCount number of pages.
     * @param src       source holding {@code pageCount * pageSize()} bytes from {@code srcIndex}.
     * @param srcIndex  offset in {@code src}.
     * @throws IndexOutOfBoundsException if the run leaves the guest or the source.
     */
    void copyIn(long firstPage, int pageCount, DirectBuffer src, int srcIndex);

    /**
     * Checks that a run of pages lies inside a guest of {@code totalPages} pages.
     *
     * @param firstPage  first page of the run.
     * @param pageCount  length of the run.
     * @param totalPages pages in the guest.
     * @throws IndexOutOfBoundsException naming the run and the guest size when it does not.
     */
    static void checkRun(final long firstPage, final long pageCount, final long totalPages)
    {
        if (firstPage < 0 || pageCount < 0 || firstPage > totalPages - pageCount)
        {
            throw new IndexOutOfBoundsException(
                "page run [" + firstPage + ", +" + pageCount + ") is outside the guest's " + totalPages + " pages");
        }
    }
}
