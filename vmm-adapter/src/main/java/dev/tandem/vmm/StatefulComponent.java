package dev.tandem.vmm;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * A vCPU or device whose state travels with each checkpoint (registers, device queues, counters).
 * <p>
 * Components are keyed by {@link #id()}, unique within a VM and stable across versions of the VMM; the state format
 * is versioned by {@link #version()} so a newer standby can restore an older active's state.
 * {@link #save} is called by the scheduler thread while the guest is paused and must not allocate;
 * {@link #restore} is called on a guest that is not running.
 */
public interface StatefulComponent
{
    /**
     * @return stable identifier, unique among the VM's components.
     */
    int id();

    /**
     * @return version of the saved state format.
     */
    int version();

    /**
     * @return a name for logs and errors, e.g. {@code "vcpu0"}.
     */
    String name();

    /**
     * Writes the component's state.
     *
     * @param buffer    destination.
     * @param index     offset in {@code buffer}.
     * @param maxLength room available from {@code index}.
     * @return bytes written, or a negative number whose magnitude is the room needed when {@code maxLength} is too
     * small (then nothing of value was written).
     */
    int save(MutableDirectBuffer buffer, int index, int maxLength);

    /**
     * Replaces the component's state with one produced by {@link #save}.
     *
     * @param version version the state was saved with.
     * @param buffer  source.
     * @param index   offset in {@code buffer}.
     * @param length  length of the state.
     * @throws VmmAdapterException with phase {@link VmmAdapterException.Phase#RESTORE} if the state is malformed or
     *                             of an unknown version.
     */
    void restore(int version, DirectBuffer buffer, int index, int length);

    /**
     * Saves a component into a new array, growing the room as the component asks. Allocates: for tools, tests and
     * digests, not the checkpoint path.
     *
     * @param component the component.
     * @return its saved state.
     * @throws VmmAdapterException if the component asks for more room twice.
     */
    static byte[] saveToArray(final StatefulComponent component)
    {
        final org.agrona.ExpandableArrayBuffer buffer = new org.agrona.ExpandableArrayBuffer(256);
        int length = component.save(buffer, 0, buffer.capacity());
        if (length < 0)
        {
            buffer.checkLimit(-length);
            length = component.save(buffer, 0, buffer.capacity());
        }
        if (length < 0)
        {
            throw new VmmAdapterException(VmmAdapterException.Phase.SNAPSHOT,
                component.name() + " asked for " + (-length) + " bytes after being given " + buffer.capacity());
        }
        final byte[] bytes = new byte[length];
        buffer.getBytes(0, bytes);
        return bytes;
    }
}
