package dev.tandem.vmm;

import org.agrona.DirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

import java.util.List;
import java.util.zip.CRC32C;

/**
 * A deterministic 64-bit digest of a guest's whole state (memory, component state, disks), so that two replicas,
 * or a replica and the active at a checkpoint, can be compared. Equal states give equal digests; different states
 * give different digests with overwhelming probability (each 256 KiB chunk contributes its CRC32C and position).
 * <p>
 * Not for the hot path: it reads everything. Compute it only on a paused guest or a committed recovery point.
 */
public final class StateDigest
{
    private static final int CHUNK_BYTES = 256 * 1024;

    private final UnsafeBuffer scratch = new UnsafeBuffer(new byte[CHUNK_BYTES]);
    private final CRC32C crc = new CRC32C();
    private long hash = 0x9E3779B97F4A7C15L;

    /**
     * Digest of a paused guest.
     *
     * @param adapter the guest; must be paused or not running.
     * @return the digest.
     */
    public static long of(final VmmAdapter adapter)
    {
        final StateDigest digest = new StateDigest();
        digest.addMemory(adapter.memory());
        for (final StatefulComponent component : adapter.components())
        {
            digest.addComponent(component);
        }
        digest.addDisks(adapter.disks());
        return digest.value();
    }

    /**
     * Digest of a recovery point; equals {@link #of(VmmAdapter)} of the guest it was taken from.
     *
     * @param point the recovery point.
     * @return the digest.
     */
    public static long of(final RecoveryPoint point)
    {
        final StateDigest digest = new StateDigest();
        digest.addMemory(point.memory());
        for (final RecoveryPoint.ComponentState state : point.components())
        {
            digest.addComponentState(state.id(), state.version(), state.state(), 0, state.state().capacity());
        }
        digest.addDisks(point.disks());
        return digest.value();
    }

    /**
     * @param memory memory to add.
     */
    public void addMemory(final GuestMemory memory)
    {
        final int pageSize = memory.pageSize();
        final int pagesPerChunk = Math.max(1, CHUNK_BYTES / pageSize);
        final long pageCount = memory.pageCount();
        mix(pageCount);
        mix(pageSize);
        for (long page = 0; page < pageCount; page += pagesPerChunk)
        {
            final int pages = (int)Math.min(pagesPerChunk, pageCount - page);
            memory.copyOut(page, pages, scratch, 0);
            mixChunk(page, pages * pageSize);
        }
    }

    /**
     * @param component component whose saved state is added.
     */
    public void addComponent(final StatefulComponent component)
    {
        final byte[] state = StatefulComponent.saveToArray(component);
        addComponentState(component.id(), component.version(), new UnsafeBuffer(state), 0, state.length);
    }

    /**
     * @param id      component id.
     * @param version state version.
     * @param state   saved bytes.
     * @param index   offset of the state.
     * @param length  length of the state.
     */
    public void addComponentState(
        final int id, final int version, final DirectBuffer state, final int index, final int length)
    {
        mix(((long)id << 32) | (version & 0xFFFF_FFFFL));
        mix(length);
        crc.reset();
        for (int i = 0; i < length; i++)
        {
            crc.update(state.getByte(index + i));
        }
        mix(crc.getValue());
    }

    /**
     * @param disks disks whose whole content is added.
     */
    public void addDisks(final List<VirtualDisk> disks)
    {
        for (final VirtualDisk disk : disks)
        {
            mix(disk.id());
            mix(disk.sizeBytes());
            for (long offset = 0; offset < disk.sizeBytes(); offset += CHUNK_BYTES)
            {
                final int length = (int)Math.min(CHUNK_BYTES, disk.sizeBytes() - offset);
                disk.read(offset, scratch, 0, length);
                mixChunk(offset, length);
            }
        }
    }

    /**
     * @return the digest of everything added so far.
     */
    public long value()
    {
        return hash;
    }

    private void mixChunk(final long position, final int length)
    {
        crc.reset();
        crc.update(scratch.byteArray(), 0, length);
        mix(position);
        mix(crc.getValue());
    }

    private void mix(final long value)
    {
        // splitmix64 finaliser over an order-dependent accumulator
        long z = (hash ^ value) + 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        hash = z ^ (z >>> 31) ^ (hash * 31);
    }
}
