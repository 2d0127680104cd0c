package dev.tandem.vmm;

import org.agrona.DirectBuffer;

/**
 * Given by the library to the VMM: every guest disk write and flush passes through it, in the order the guest
 * issued them, after the VMM applied the write to its own disk image. The library streams them to the standby,
 * where they wait behind the barrier of their epoch.
 * <p>
 * Called from the VMM's I/O or vCPU threads, never while the guest is paused. A call may block while the stream to
 * the standby is back-pressured; this stalls the guest's disk I/O, not the guest.
 */
public interface DiskWriteSink
{
    /**
     * Records a write.
     *
     * @param diskId id of the {@link VirtualDisk}.
     * @param offset byte offset in the disk, aligned to the disk's block size.
     * @param data   the written bytes.
     * @param index  offset in {@code data}.
     * @param length bytes written, a positive multiple of the block size.
     * @throws IllegalArgumentException if the extent is outside the disk, misaligned or empty.
     */
    void write(int diskId, long offset, DirectBuffer data, int index, int length);

    /**
     * Records a flush (the guest asked for its earlier writes to be durable).
     *
     * @param diskId id of the {@link VirtualDisk}.
     */
    void flush(int diskId);
}
