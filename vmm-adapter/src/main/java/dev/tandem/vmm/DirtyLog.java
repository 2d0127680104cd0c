package dev.tandem.vmm;

/**
 * Dirty-page tracking of the guest's memory, shaped after {@code KVM_GET_DIRTY_LOG}.
 * <p>
 * Contract: between {@link #startTracking()} and {@link #stopTracking()}, every write to guest memory sets the
 * page's bit, whether it comes from a vCPU or from one of the VMM's own devices (DMA of a disk read, a received
 * network frame, a virtio ring update). {@link #harvest(DirtyBitmap)} is get-and-clear: it ORs into the given
 * bitmap every page written since the previous harvest and clears the log, atomically with respect to concurrent
 * writers, so that a write is reported by exactly one harvest. A write that lands after its page's bit was
 * harvested must set the bit again (write first, then mark).
 * <p>
 * Threading: called by the library's scheduler thread; {@code harvest} is normally called while paused but must
 * stay correct if it is not.
 */
public interface DirtyLog
{
    /**
     * Starts tracking; every page counts as clean from here on, so the caller follows with a full copy.
     */
    void startTracking();

    /**
     * Stops tracking; later harvests report nothing.
     */
    void stopTracking();

    /**
     * ORs every page written since the last harvest into {@code into} and clears this log.
     *
     * @param into bitmap with at least {@link GuestMemory#pageCount()} bits; must not allocate.
     */
    void harvest(DirtyBitmap into);
}
