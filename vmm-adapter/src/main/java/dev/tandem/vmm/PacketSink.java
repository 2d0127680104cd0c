package dev.tandem.vmm;

import org.agrona.DirectBuffer;

/**
 * Where released network output goes: the real NIC, a tap device, a socket.
 * <p>
 * Called by the library's sender thread when an epoch is acknowledged, in the order the guest produced the frames.
 * Must not block for long: it delays the release of later epochs.
 */
@FunctionalInterface
public interface PacketSink
{
    /**
     * Sends one frame the guest produced. The bytes are valid only during the call.
     *
     * @param frame  buffer holding the frame.
     * @param index  offset of the frame.
     * @param length length of the frame.
     */
    void send(DirectBuffer frame, int index, int length);
}
