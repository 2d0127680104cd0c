package dev.tandem.vmm.sim;

import dev.tandem.vmm.FileVirtualDisk;
import dev.tandem.vmm.JvmAccess;
import dev.tandem.vmm.VmmAdapterException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * A file-backed virtual disk of the simulated VMM. The guest's writes go to the file first and then to the library's
 * disk-write sink (done by the caller, {@link SimulatedVmm}).
 */
public final class SimulatedDisk extends FileVirtualDisk
{
    /** Default block size of simulated disks. */
    public static final int BLOCK_SIZE = 512;
    /** Largest block size of a simulated disk: the guest's disk-write buffer holds one such block. */
    public static final int MAX_BLOCK_SIZE = 64 * 1024;

    /**
     * Opens (creating if needed) the image and sizes it, with blocks of {@link #BLOCK_SIZE}.
     *
     * @param id        disk id.
     * @param path      image file.
     * @param sizeBytes size, a positive multiple of {@link #BLOCK_SIZE}.
     */
    public SimulatedDisk(final int id, final Path path, final long sizeBytes)
    {
        this(id, path, BLOCK_SIZE, sizeBytes);
    }

    /**
     * Opens (creating if needed) the image and sizes it.
     *
     * @param id        disk id.
     * @param path      image file.
     * @param blockSize block size, a power of two from 512 to {@link #MAX_BLOCK_SIZE}.
     * @param sizeBytes size, a positive multiple of the block size.
     * @throws IllegalArgumentException naming the disk if the block size or size is out of range.
     * @throws IllegalStateException listing the JVM flags Agrona needs, when any is missing.
     */
    public SimulatedDisk(final int id, final Path path, final int blockSize, final long sizeBytes)
    {
        super(path, id, checkBlockSize(id, blockSize), sizeBytes, true);
    }

    private static int checkBlockSize(final int id, final int blockSize)
    {
        // here because it runs before the superclass touches Agrona, which would fail without naming the flags
        JvmAccess.check();
        if (blockSize > MAX_BLOCK_SIZE)
        {
            throw new IllegalArgumentException("disk " + id + ": block size " + blockSize + " over the simulated " +
                "VMM's largest, " + MAX_BLOCK_SIZE);
        }
        return blockSize;
    }

    /**
     * A guest write: the buffer's remaining bytes at {@code offset}.
     *
     * @param offset byte offset.
     * @param data   bytes from position to limit; the position is advanced.
     * @throws VmmAdapterException if the image cannot be written.
     */
    public void guestWrite(final long offset, final ByteBuffer data)
    {
        try
        {
            write(offset, data);
        }
        catch (final IOException ex)
        {
            throw new VmmAdapterException(VmmAdapterException.Phase.IO, "write to disk image " + path() + " failed", ex);
        }
    }
}
