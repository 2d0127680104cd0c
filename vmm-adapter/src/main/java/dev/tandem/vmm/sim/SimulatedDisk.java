package dev.tandem.vmm.sim;

import dev.tandem.vmm.FileVirtualDisk;
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
    /** Block size of simulated disks. */
    public static final int BLOCK_SIZE = 512;

    /**
     * Opens (creating if needed) the image and sizes it.
     *
     * @param id        disk id.
     * @param path      image file.
     * @param sizeBytes size, a positive multiple of {@link #BLOCK_SIZE}.
     */
    public SimulatedDisk(final int id, final Path path, final long sizeBytes)
    {
        super(path, id, BLOCK_SIZE, sizeBytes, true);
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
