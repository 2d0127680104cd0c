package dev.tandem.core.active;

import java.util.Arrays;

/**
 * The disk half of the dirty-since-ack record: the extent of every disk write of an epoch the standby has not
 * acknowledged, and of every write the guest made while the link was down. On a reconnect whose standby resumes its
 * recovery point, only these extents are copied again (DRBD's quick resync); the memory half is the scheduler's
 * per-epoch dirty sets.
 * <p>
 * Bounded: a ring of {@code capacity} extents (about 24 bytes each). When it is full, further writes are not recorded
 * and the record is <em>overflowed</em> until the standby acknowledges the epoch of the last write it missed; a
 * reconnect meanwhile copies the disks whole. Owned by the sender's thread: nothing here is shared.
 */
final class DiskResyncRecord
{
    /** The epoch of writes made while no session ran: newer than any epoch. */
    static final long SINCE_LOSS = Long.MAX_VALUE;
    private static final int PIECE_BYTES = 1 << 30;

    private final long[] epochs;
    private final int[] disks;
    private final long[] offsets;
    private final int[] lengths;
    private final int capacity;
    private long head;
    private long tail;
    /** Writes up to this epoch were not recorded (the ring was full); 0 if none was missed. */
    private long missedThroughEpoch;
    /** The disks were copied whole in {@link #missedThroughEpoch}, rather than writes missed. */
    private boolean wholeCopyPending;

    /**
     * @param capacity extents the record holds at most.
     */
    DiskResyncRecord(final int capacity)
    {
        this.capacity = capacity;
        this.epochs = new long[capacity];
        this.disks = new int[capacity];
        this.offsets = new long[capacity];
        this.lengths = new int[capacity];
    }

    /**
     * Records one write.
     *
     * @param epoch  the epoch the write belongs to, or {@link #SINCE_LOSS}.
     * @param diskId the disk.
     * @param offset first byte.
     * @param length bytes.
     */
    void record(final long epoch, final int diskId, final long offset, final int length)
    {
        if (tail - head == capacity)
        {
            missedThroughEpoch = Math.max(missedThroughEpoch, epoch);
            wholeCopyPending = false;
            return;
        }
        final int i = (int)(tail % capacity);
        epochs[i] = epoch;
        disks[i] = diskId;
        offsets[i] = offset;
        lengths[i] = length;
        tail++;
    }

    /**
     * The standby committed every epoch up to {@code epoch}: their writes are no longer needed.
     *
     * @param epoch the acknowledged epoch.
     */
    void acknowledged(final long epoch)
    {
        while (head < tail && epochs[(int)(head % capacity)] <= epoch)
        {
            head++;
        }
        if (missedThroughEpoch != 0 && missedThroughEpoch <= epoch)
        {
            missedThroughEpoch = 0;
            wholeCopyPending = false;
        }
    }

    /**
     * @param recoveryEpoch the standby's recovery point.
     * @return true if some write after that point was not recorded: the disks must be copied whole.
     */
    boolean overflowed(final long recoveryEpoch)
    {
        return missedThroughEpoch > recoveryEpoch;
    }

    /**
     * Forgets everything recorded and every whole copy pending: the standby's image is known to hold every write up
     * to its recovery point (a promoted guest's checkpoint), and what follows is recorded from here.
     */
    void clear()
    {
        head = 0;
        tail = 0;
        missedThroughEpoch = 0;
        wholeCopyPending = false;
    }

    /**
     * Writes made while no session ran were not all recorded (a record kept elsewhere overflowed): the next resync
     * copies the disks whole.
     */
    void missedSinceLoss()
    {
        missedThroughEpoch = SINCE_LOSS;
        wholeCopyPending = false;
    }

    /**
     * @param recoveryEpoch the standby's recovery point.
     * @return why the disks must be copied whole, if {@link #overflowed} says so.
     */
    String whyWhole(final long recoveryEpoch)
    {
        if (!wholeCopyPending && missedThroughEpoch == SINCE_LOSS)
        {
            return "the record of " + capacity + " extents overflowed: writes made while no session ran (after a " +
                "lost link, or since a promoted guest resumed) after the standby's recovery point " + recoveryEpoch +
                " were not all recorded";
        }
        return wholeCopyPending ? "the disks' whole copy of epoch " + missedThroughEpoch + " is not acknowledged yet" :
            "the record of " + capacity + " extents overflowed: writes up to epoch " + missedThroughEpoch +
            " after the standby's recovery point " + recoveryEpoch + " were not recorded";
    }

    /**
     * @return extents held.
     */
    int size()
    {
        return (int)(tail - head);
    }

    /**
     * Takes the extents of every write after {@code recoveryEpoch}, merged per disk into disjoint, sorted extents,
     * and keeps them recorded under {@code resyncEpoch} (the epoch that copies them): if the link is lost again
     * before that epoch is acknowledged, they are copied again.
     *
     * @param recoveryEpoch the standby's recovery point.
     * @param resyncEpoch   the epoch the copy belongs to.
     * @return extents as {@code [disk, offset, length]} triples, sorted by disk and offset.
     */
    long[][] takeSince(final long recoveryEpoch, final long resyncEpoch)
    {
        final long[][] extents = new long[size()][];
        int count = 0;
        for (long at = head; at < tail; at++)
        {
            final int i = (int)(at % capacity);
            if (epochs[i] > recoveryEpoch)
            {
                extents[count++] = new long[]{disks[i], offsets[i], lengths[i]};
            }
        }
        final long[][] sorted = Arrays.copyOf(extents, count);
        Arrays.sort(sorted, (a, b) -> a[0] != b[0] ? Long.compare(a[0], b[0]) : Long.compare(a[1], b[1]));
        int merged = 0;
        for (final long[] extent : sorted)
        {
            final long[] last = merged == 0 ? null : sorted[merged - 1];
            if (last != null && last[0] == extent[0] && extent[1] <= last[1] + last[2])
            {
                last[2] = Math.max(last[1] + last[2], extent[1] + extent[2]) - last[1];
            }
            else
            {
                sorted[merged++] = extent;
            }
        }
        head = 0;
        tail = 0;
        final long[][] result = Arrays.copyOf(sorted, merged);
        for (final long[] extent : result)
        {
            // an extent merged past an int's range is recorded in pieces of 1 GiB (a multiple of any block size)
            for (long done = 0; done < extent[2]; done += PIECE_BYTES)
            {
                record(resyncEpoch, (int)extent[0], extent[1] + done, (int)Math.min(PIECE_BYTES, extent[2] - done));
            }
        }
        return result;
    }

    /**
     * The disks are copied whole in {@code resyncEpoch}: nothing before it is needed, and until the standby
     * acknowledges it a reconnect copies them whole again.
     *
     * @param resyncEpoch the epoch of the whole copy.
     */
    void wholeCopy(final long resyncEpoch)
    {
        head = 0;
        tail = 0;
        missedThroughEpoch = resyncEpoch;
        wholeCopyPending = true;
    }
}
