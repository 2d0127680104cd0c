package dev.tandem.vmm;

import org.agrona.DirectBuffer;

import java.nio.file.Path;
import java.util.List;

/**
 * One whole committed checkpoint on the standby: memory, component state and disks from the same epoch.
 * Handed to a {@link ReplicaTarget} at promotion; valid until that call returns.
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
     * the guest goes. Call at most once, inside {@link ReplicaTarget#resume}; afterwards {@link #memory()} must not
     * be used, and the standby no longer holds a replica (it has become the new guest). A KVM target would map the
     * region into its memory slot.
     *
     * @return the region, now owned by the caller; or null if this recovery point cannot hand it over (copy from
     *         {@link #memory()} then).
     */
    default NativeMemory.Region adoptMemory()
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
