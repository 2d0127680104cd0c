package dev.tandem.vmm;

import java.util.List;

/**
 * One guest of a VMM, as the library sees it. A VMM implements this (and the parts it hands out) once per guest.
 * <p>
 * Lifecycle: the library calls {@link #attach} when protection starts; from then on every disk write and every
 * network frame of the guest must go through the given sink and gate. {@link #detach()} ends that.
 * The accessors are called once at start; they must return the same objects every time.
 */
public interface VmmAdapter
{
    /** Longest {@link #vmId()}, in UTF-8 bytes (not characters): what the handshake carries. */
    int MAX_VM_ID_BYTES = 256;

    /**
     * @return a stable identity of the guest, exchanged at handshake so a standby never mixes two VMs: 1 to
     *         {@link #MAX_VM_ID_BYTES} bytes in UTF-8 (a character may take up to 4).
     */
    String vmId();

    /**
     * @return the guest's memory.
     */
    GuestMemory memory();

    /**
     * @return the guest's dirty-page log.
     */
    DirtyLog dirtyLog();

    /**
     * @return pause and resume of the guest.
     */
    VcpuControl vcpus();

    /**
     * @return vCPU and device state that travels with each checkpoint, in a stable order.
     */
    List<StatefulComponent> components();

    /**
     * @return the guest's disks, in a stable order; may be empty.
     */
    List<VirtualDisk> disks();

    /**
     * @return where released network output goes.
     */
    PacketSink packetSink();

    /**
     * @return the guest's health probe.
     */
    default HealthProbe healthProbe()
    {
        return HealthProbe.ALWAYS_HEALTHY;
    }

    /**
     * Routes the guest's disk writes and network output through the library from now on.
     *
     * @param diskWrites every disk write and flush, in order.
     * @param output     every network frame.
     */
    void attach(DiskWriteSink diskWrites, OutputGate output);

    /**
     * Another side owns this guest now (the standby promoted, or this side could not prove it owns it): the library
     * has paused the vCPUs through {@link VcpuControl#pause()} and will never resume them. The VMM must treat the
     * guest as dead: never resume it, release no more of its output, and tear it down when convenient. Called once,
     * from the library's scheduler thread (or from {@code close()}); the default does nothing more than the pause.
     *
     * @param reason why, for the VMM's log.
     */
    default void fenced(String reason)
    {
    }

    /**
     * Stops routing through the library; disk writes are no longer reported and output goes straight to the
     * {@link #packetSink()}. The library calls it with the guest paused ({@link VcpuControl#pause()}), so no thread
     * of the VMM is inside the sink or the gate passed to {@link #attach}; their memory is freed once it returns.
     */
    void detach();
}
