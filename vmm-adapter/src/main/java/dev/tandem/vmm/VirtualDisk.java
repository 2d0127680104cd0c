package dev.tandem.vmm;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * Access to one of the guest's disks: read for the baseline copy and for digests, written only by a restore in place
 * ({@link HealthProbe#restoreHere()}). Called only while the guest is paused or not running.
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

    /**
     * @return true if the library may write this disk ({@link #write}): a health-triggered restore in place needs it
     *         of every disk; false (the default) makes such a restore hand the guest over to the standby instead.
     */
    default boolean writable()
    {
        return false;
    }

    /**
     * Writes bytes into the disk, as of a checkpoint being restored in place on this host (the guest is paused).
     * Not a guest write: the VMM must not report it to its {@link DiskWriteSink}, the library carries it to the
     * standby itself. Durable when the VMM's own writes are (the guest's next flush, or the VMM's policy).
     *
     * @param offset   byte offset in the disk, aligned to the block size.
     * @param src      the bytes.
     * @param srcIndex offset in {@code src}.
     * @param length   bytes to write, a whole number of blocks inside the disk.
     * @throws UnsupportedOperationException unless {@link #writable()}.
     */
    default void write(final long offset, final DirectBuffer src, final int srcIndex, final int length)
    {
        throw new UnsupportedOperationException("disk " + id() + " cannot be written by the library (writable() " +
            "is false): it cannot be restored in place");
    }
}
