package dev.tandem.vmm;

import org.agrona.DirectBuffer;

/**
 * Given by the library to the VMM: every network frame the guest sends is offered here instead of to the NIC.
 * Frames offered during epoch N are held and handed to the {@link PacketSink} only after the standby acknowledged
 * checkpoint N, so that no client ever sees output of a state the standby could not resume from.
 * <p>
 * Called from the VMM's vCPU or device threads, never while paused; never blocks.
 */
public interface OutputGate
{
    /**
     * Offers one frame; the bytes are copied before the call returns.
     *
     * @param frame  buffer holding the frame.
     * @param index  offset of the frame.
     * @param length length of the frame.
     * @return true if held (or passed through), false if dropped because the hold queue is full; the VMM treats a
     * drop like a full NIC transmit ring.
     */
    boolean offer(DirectBuffer frame, int index, int length);
}
