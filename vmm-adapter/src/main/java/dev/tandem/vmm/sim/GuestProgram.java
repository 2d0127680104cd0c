package dev.tandem.vmm.sim;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * Software running inside a simulated guest, beside the synthetic workload: it owns the low
 * {@link #reservedPages()} of guest memory (the workload leaves them alone) and handles each frame the NIC
 * receives, on the vCPU, where it may write memory, write the disk and send frames. It must keep all its state in
 * guest memory or on the guest's disk, never in Java fields, so that a replica resumed from a checkpoint continues
 * exactly where the checkpointed guest was.
 */
public interface GuestProgram
{
    /**
     * @return pages at the start of guest memory that belong to the program.
     */
    int reservedPages();

    /**
     * Initialises the program's memory in a fresh guest (not called for a guest built from a recovery point: the
     * recovered memory replaces whatever this wrote).
     *
     * @param guest the guest's devices.
     */
    void boot(Io guest);

    /**
     * Handles a received frame, on the vCPU while the guest runs.
     *
     * @param guest  the guest's devices.
     * @param frame  the frame.
     * @param index  its offset.
     * @param length its length.
     */
    void onFrame(Io guest, DirectBuffer frame, int index, int length);

    /**
     * What a guest program can touch.
     */
    interface Io
    {
        /**
         * @return guest memory; stores through it are tracked.
         */
        SimulatedGuestMemory memory();

        /**
         * Writes the guest's disk (through the disk-write sink when protected).
         *
         * @param offset byte offset, block aligned.
         * @param data   bytes, a multiple of the block size.
         * @param index  offset in {@code data}.
         * @param length length.
         */
        void writeDisk(long offset, DirectBuffer data, int index, int length);

        /**
         * Reads the guest's disk.
         *
         * @param offset byte offset.
         * @param dst    destination.
         * @param index  offset in {@code dst}.
         * @param length length.
         */
        void readDisk(long offset, MutableDirectBuffer dst, int index, int length);

        /**
         * @return the disk's size in bytes, 0 without a disk.
         */
        long diskBytes();

        /**
         * Sends a frame (through the output gate when protected).
         *
         * @param frame  the frame.
         * @param index  its offset.
         * @param length its length.
         */
        void send(DirectBuffer frame, int index, int length);
    }
}
