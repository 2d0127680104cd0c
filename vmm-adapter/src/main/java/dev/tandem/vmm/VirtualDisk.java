package dev.tandem.vmm;

import org.agrona.MutableDirectBuffer;

/**
 * Read access to one of the guest's disks, used for the baseline copy and for digests.
 * Called only while the guest is paused or not running.
 */
public interface VirtualDisk
{
    /**
     * @return identifier of the disk, the same one given to {@link DiskWriteSink#write}.
     */
    int id();

    /**
     * @return size of the disk in bytes, a multiple of {@link #blockSize()}.
     */
    long sizeBytes();

    /**
     * @return the disk's block size, a power of two of at least 512; every write is a whole number of blocks at a
     *         block-aligned offset, and the library sends the disk in whole blocks. The library's configuration limits
     *         the largest block it can carry (one block must fit one frame and one disk-write record: see the
     *         active's {@code maxFramePayload} and {@code diskStreamBytes}) and refuses a larger one at start.
     */
    int blockSize();

    /**
     * Reads bytes from the disk.
     *
     * @param offset   byte offset in the disk.
     * @param dst      destination.
     * @param dstIndex offset in {@code dst}.
     * @param length   bytes to read; the range must lie inside the disk.
     */
    void read(long offset, MutableDirectBuffer dst, int dstIndex, int length);
}
