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
     * @return the disk's block size; writes are aligned to it.
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
