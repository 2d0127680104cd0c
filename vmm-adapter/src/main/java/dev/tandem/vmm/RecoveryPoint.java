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
