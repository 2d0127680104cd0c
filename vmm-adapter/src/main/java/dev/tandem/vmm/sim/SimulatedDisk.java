package dev.tandem.vmm.sim;

import dev.tandem.vmm.VirtualDisk;
import dev.tandem.vmm.VmmAdapterException;
import org.agrona.MutableDirectBuffer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A file-backed virtual disk of the simulated VMM. The guest's writes go to the file first and then to the library's
 * disk-write sink (done by the caller, {@link SimulatedVmm}).
 */
public final class SimulatedDisk implements VirtualDisk, AutoCloseable
{
    /** Block size of simulated disks. */
    public static final int BLOCK_SIZE = 512;

    private final int id;
    private final Path path;
    private final long sizeBytes;
    private final FileChannel channel;
    private final ByteBuffer readBuffer = ByteBuffer.allocateDirect(64 * 1024);

    /**
     * Opens (creating if needed) the image and sizes it.
     *
     * @param id        disk id.
     * @param path      image file.
     * @param sizeBytes size, a positive multiple of {@link #BLOCK_SIZE}.
     */
    public SimulatedDisk(final int id, final Path path, final long sizeBytes)
    {
        if (sizeBytes <= 0 || sizeBytes % BLOCK_SIZE != 0)
        {
            throw new IllegalArgumentException(
                "disk size " + sizeBytes + " must be a positive multiple of " + BLOCK_SIZE);
        }
        this.id = id;
        this.path = path;
        this.sizeBytes = sizeBytes;
        try
        {
            channel = FileChannel.open(
                path, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
            if (channel.size() != sizeBytes)
            {
                if (channel.size() > sizeBytes)
                {
                    channel.truncate(sizeBytes);
                }
                else
                {
                    channel.write(ByteBuffer.allocate(1), sizeBytes - 1);
                }
            }
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException("cannot open disk image " + path, ex);
        }
    }

    @Override
    public int id()
    {
        return id;
    }

    @Override
    public long sizeBytes()
    {
        return sizeBytes;
    }

    @Override
    public int blockSize()
    {
        return BLOCK_SIZE;
    }

    /**
     * @return the image file.
     */
    public Path path()
    {
        return path;
    }

    /**
     * Writes the buffer's remaining bytes at {@code offset}.
     *
     * @param offset byte offset.
     * @param data   bytes from position to limit; the position is advanced.
     */
    public void write(final long offset, final ByteBuffer data)
    {
        try
        {
            long position = offset;
            while (data.hasRemaining())
            {
                position += channel.write(data, position);
            }
        }
        catch (final IOException ex)
        {
            throw new VmmAdapterException(VmmAdapterException.Phase.IO, "write to disk image " + path + " failed", ex);
        }
    }

    @Override
    public synchronized void read(final long offset, final MutableDirectBuffer dst, final int dstIndex, final int length)
    {
        if (offset < 0 || length < 0 || offset > sizeBytes - length)
        {
            throw new IndexOutOfBoundsException("read [" + offset + ", +" + length + ") outside disk of " + sizeBytes);
        }
        try
        {
            int done = 0;
            while (done < length)
            {
                readBuffer.clear().limit(Math.min(readBuffer.capacity(), length - done));
                final int n = channel.read(readBuffer, offset + done);
                if (n < 0)
                {
                    throw new IOException("unexpected end of disk image");
                }
                dst.putBytes(dstIndex + done, readBuffer, 0, n);
                done += n;
            }
        }
        catch (final IOException ex)
        {
            throw new VmmAdapterException(VmmAdapterException.Phase.IO, "read of disk image " + path + " failed", ex);
        }
    }

    /**
     * Forces the image to storage.
     */
    public void force()
    {
        try
        {
            channel.force(false);
        }
        catch (final IOException ex)
        {
            throw new VmmAdapterException(VmmAdapterException.Phase.IO, "flush of disk image " + path + " failed", ex);
        }
    }

    @Override
    public void close()
    {
        try
        {
            channel.close();
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
    }
}
