package dev.tandem.vmm;

/**
 * Stops and restarts the guest for a checkpoint.
 * <p>
 * Contract: {@link #pause()} returns only when no guest memory write, disk write, network output or device DMA can
 * happen until {@link #resume()} is called: every vCPU is out of guest mode (on KVM: kicked with
 * {@code immediate_exit} and returned from {@code KVM_RUN}) and every device thread is parked at a safe point.
 * Both are called by the library's scheduler thread only, strictly alternating, and must not allocate.
 */
public interface VcpuControl
{
    /**
     * Quiesces the guest; returns when the guest can no longer change memory, disks or output.
     */
    void pause();

    /**
     * Lets the guest run again.
     */
    void resume();

    /**
     * @return true between {@link #pause()} and {@link #resume()}.
     */
    boolean isPaused();
}
