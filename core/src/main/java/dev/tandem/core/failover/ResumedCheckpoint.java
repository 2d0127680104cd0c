package dev.tandem.core.failover;

import dev.tandem.vmm.DiskWriteSink;
import org.agrona.DirectBuffer;

/**
 * The checkpoint a promoted guest resumed from, and what it changed since: the record a quick failback needs
 * (DESIGN.md "Initial sync, reconnect, failback"). Made by the library at promotion and handed out in the
 * {@link Promotion}; given to {@link dev.tandem.core.active.ActiveContext#resumedFrom} when the promoted guest is
 * protected, so that a standby which still holds this very checkpoint (the old active after a planned switchover)
 * gets only the pages the guest's dirty log reports and the disk extents recorded here, not a whole baseline.
 * <p>
 * The disk half is the sink of {@link dev.tandem.vmm.RecoveryPoint#trackFromResume()}: the target passes it every
 * disk write from before the guest runs until the library attaches. It is bounded: past {@link #capacity()} extents
 * it stops recording and says so ({@link #overflowed()}), and that protection copies the disks whole. The memory half
 * is the guest's own dirty log, started by the same promise. If the target made no promise ({@link #tracked()} is
 * false), protection starts with a whole baseline. Thread-safe: the VMM's I/O threads write, the library reads once.
 */
public final class ResumedCheckpoint implements DiskWriteSink
{
    /** Extents recorded at most by default (24 bytes each): 1.5 MiB. */
    public static final int DEFAULT_CAPACITY = 65_536;

    private final String vmId;
    private final long epoch;
    private final long fingerprint;
    private final int capacity;
    private final int[] disks;
    private final long[] offsets;
    private final int[] lengths;
    private int count;
    private boolean overflowed;
    private volatile boolean tracked;

    /**
     * @param vmId        the guest.
     * @param epoch       the committed epoch the guest resumed from.
     * @param fingerprint that checkpoint's fingerprint (the chain of every epoch committed up to it).
     * @param capacity    extents recorded at most.
     */
    public ResumedCheckpoint(final String vmId, final long epoch, final long fingerprint, final int capacity)
    {
        if (epoch < 1 || capacity < 1)
        {
            throw new IllegalArgumentException("a resumed checkpoint needs an epoch >= 1 and a capacity >= 1, got " +
                "epoch " + epoch + ", capacity " + capacity);
        }
        this.vmId = vmId;
        this.epoch = epoch;
        this.fingerprint = fingerprint;
        this.capacity = capacity;
        this.disks = new int[capacity];
        this.offsets = new long[capacity];
        this.lengths = new int[capacity];
    }

    /**
     * @return the guest.
     */
    public String vmId()
    {
        return vmId;
    }

    /**
     * @return the committed epoch the guest resumed from.
     */
    public long epoch()
    {
        return epoch;
    }

    /**
     * @return that checkpoint's fingerprint, which a standby holding the same checkpoint states too.
     */
    public long fingerprint()
    {
        return fingerprint;
    }

    /**
     * @return extents recorded at most.
     */
    public int capacity()
    {
        return capacity;
    }

    /**
     * The target promised to keep the record ({@link dev.tandem.vmm.RecoveryPoint#trackFromResume()}): called by
     * the library's recovery point on the target's behalf.
     *
     * @return this, the sink the target passes the guest's disk writes to.
     */
    public DiskWriteSink track()
    {
        tracked = true;
        return this;
    }

    /**
     * @return true if the target promised to record every change from the checkpoint on.
     */
    public boolean tracked()
    {
        return tracked;
    }

    /**
     * @return true if more writes came than the record holds: the disks must be copied whole.
     */
    public synchronized boolean overflowed()
    {
        return overflowed;
    }

    /**
     * @return extents recorded.
     */
    public synchronized int size()
    {
        return count;
    }

    @Override
    public synchronized void write(final int diskId, final long offset, final DirectBuffer data, final int index,
        final int length)
    {
        if (offset < 0 || length <= 0)
        {
            throw new IllegalArgumentException("disk write of VM " + vmId + " at offset " + offset + " of " + length +
                " bytes on disk " + diskId + ": the offset must be >= 0 and the length > 0");
        }
        if (count > 0 && disks[count - 1] == diskId && offsets[count - 1] + lengths[count - 1] == offset &&
            (long)lengths[count - 1] + length <= Integer.MAX_VALUE)
        {
            // sequential writes (a log, a copy) extend the last extent instead of taking one each
            lengths[count - 1] += length;
            return;
        }
        if (count == capacity)
        {
            overflowed = true;
            return;
        }
        disks[count] = diskId;
        offsets[count] = offset;
        lengths[count] = length;
        count++;
    }

    @Override
    public void flush(final int diskId)
    {
        // the standby's copy of these blocks is made durable with the epoch that carries it
    }

    /**
     * Hands every recorded extent, in the order written, to {@code extents}.
     *
     * @param extents receives disk id, offset and length of each.
     */
    public synchronized void forEachExtent(final Extents extents)
    {
        for (int i = 0; i < count; i++)
        {
            extents.accept(disks[i], offsets[i], lengths[i]);
        }
    }

    /**
     * Receives recorded extents.
     */
    @FunctionalInterface
    public interface Extents
    {
        /**
         * @param diskId the disk.
         * @param offset first byte.
         * @param length bytes.
         */
        void accept(int diskId, long offset, int length);
    }

    @Override
    public String toString()
    {
        return "epoch " + epoch + " of VM " + vmId + (tracked ? ", " + size() + " disk extents since" +
            (overflowed() ? " (overflowed)" : "") : ", untracked");
    }
}
