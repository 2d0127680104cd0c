package dev.tandem.vmm;

import org.agrona.DirectBuffer;

import java.nio.file.Path;
import java.util.List;

/**
 * One whole committed checkpoint on the standby: memory, component state and disks from the same epoch.
 * Handed to a {@link ReplicaTarget} at promotion; valid until that call ({@code resume} or {@code prepare}) returns.
 */
public interface RecoveryPoint
{
    /**
     * @return identity of the protected guest.
     */
    String vmId();

    /**
     * @return the committed epoch this point holds.
     */
    long epoch();

    /**
     * @return the fencing generation the point was committed under.
     */
    long generation();

    /**
     * @return the guest's memory as of the checkpoint; read with {@link GuestMemory#copyOut}.
     */
    GuestMemory memory();

    /**
     * Hands the memory of this recovery point over to the caller instead of a copy (zero-copy promotion): the
     * returned region holds the guest's memory as of the checkpoint (page {@code p} at offset {@code p * pageSize}),
     * and from this call on the caller owns it: it becomes the new guest's memory, and the caller closes it when
     * the guest goes. Call at most once, inside {@link ReplicaTarget#resume} or {@link ReplicaTarget#prepare};
     * afterwards {@link #memory()} must not be used, and the standby no longer holds a replica (it has become the new
     * guest). A KVM target would map the region into its memory slot.
     *
     * @return the region, now owned by the caller; or null if this recovery point cannot hand it over (copy from
     *         {@link #memory()} then).
     */
    default NativeMemory.Region adoptMemory()
    {
        return null;
    }

    /**
     * Asks the library to keep the record a quick failback needs: which pages and disk blocks the resumed guest
     * changes from this checkpoint on. When the guest is later protected onto a standby that still holds this very
     * checkpoint (the old active after a planned switchover, a durable standby), only those are sent, not every page
     * and block; without it, that protection starts with a whole baseline.
     * <p>
     * Calling it is a promise the target keeps, inside {@link ReplicaTarget#resume} or {@link ReplicaTarget#prepare}
     * and before any vCPU or device of the new guest runs: it starts the guest's {@link DirtyLog} ({@link DirtyLog#startTracking()}), and it passes
     * every disk write the guest makes to the returned sink as well (after applying it to its own image, as with the
     * library's own sink) until the library attaches to the guest ({@link VmmAdapter#attach}), which replaces it.
     * Writes the sink misses make the standby's disks differ from the guest's without anyone noticing, so a target
     * that cannot keep the promise does not call this. Call at most once.
     *
     * @return where the resumed guest's disk writes go too until its next protection; or null if this recovery point
     *         keeps no such record (the target then does nothing more).
     */
    default DiskWriteSink trackFromResume()
    {
        return null;
    }

    /**
     * @return the saved state of every component, in the order the active listed them.
     */
    List<ComponentState> components();

    /**
     * @return the guest's disks as of the checkpoint.
     */
    List<VirtualDisk> disks();

    /**
     * @param diskId id of a disk.
     * @return the file holding that disk's image; a target may adopt it instead of copying.
     */
    Path diskImage(int diskId);

    /**
     * Saved state of one component.
     *
     * @param id      the component's id.
     * @param version the state format version.
     * @param state   the saved bytes.
     */
    record ComponentState(int id, int version, DirectBuffer state)
    {
    }
}
