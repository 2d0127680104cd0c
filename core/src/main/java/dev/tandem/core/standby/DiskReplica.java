package dev.tandem.core.standby;

import dev.tandem.vmm.VirtualDisk;
import org.agrona.MutableDirectBuffer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The standby's image of one guest disk: a file, written only with committed epochs' writes, in order.
 */
final class DiskReplica implements VirtualDisk, AutoCloseable
{
    private final int id;
    private final int blockSize;
    private final long sizeBytes;
    private final Path path;
    private final FileChannel channel;
    private final ByteBuffer readBuffer = ByteBuffer.allocateDirect(64 * 1024);

    /**
     * Opens or creates the image.
     *
     * @throws IllegalStateException if an existing image has the wrong size (another VM's, or a different disk).
     */
    DiskReplica(final Path path, final int id, final int blockSize, final long sizeBytes)
    {
        this.id = id;
        this.blockSize = blockSize;
        this.sizeBytes = sizeBytes;
        this.path = path;
        try
        {
            final boolean existed = Files.exists(path);
            if (existed && Files.size(path) != sizeBytes)
            {
                throw new IllegalStateException("standby disk image " + path + " is " + Files.size(path) +
                    " bytes but disk " + id + " is " + sizeBytes + " bytes: it belongs to another VM or disk; move it" +
                    " away or point the standby at an empty directory");
            }
            channel = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE);
            if (!existed)
            {
                channel.write(ByteBuffer.allocate(1), sizeBytes - 1);
            }
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException("cannot open standby disk image " + path, ex);
        }
    }

    Path path()
    {
        return path;
    }

    void write(final long offset, final ByteBuffer data) throws IOException
    {
        long position = offset;
        while (data.hasRemaining())
        {
            position += channel.write(data, position);
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
        return blockSize;
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
                    throw new IOException("unexpected end of " + path);
                }
                dst.putBytes(dstIndex + done, readBuffer, 0, n);
                done += n;
            }
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException("read of standby disk image " + path + " failed", ex);
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
