package dev.tandem.vmm;

import org.agrona.MutableDirectBuffer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A disk image in a file: the simulated VMM's disks and the standby's replicas. Positional reads and writes on
 * one {@link FileChannel}; thread-safe for reads, one writer at a time.
 */
public class FileVirtualDisk implements VirtualDisk, AutoCloseable
{
    private final int id;
    private final int blockSize;
    private final long sizeBytes;
    private final Path path;
    private final FileChannel channel;
    private final ByteBuffer readBuffer = ByteBuffer.allocateDirect(64 * 1024);

    /**
     * Opens the image, creating it at {@code sizeBytes} if missing.
     *
     * @param path          the image file.
     * @param id            disk id.
     * @param blockSize     block size, a power of two >= 512.
     * @param sizeBytes     size, a positive multiple of the block size.
     * @param resizeExisting true to grow or shrink an existing image to the size; false to refuse one of another
     *                       size (it belongs to another VM or disk).
     * @throws IllegalStateException naming the file if an existing image has the wrong size and may not be resized.
     * @throws UncheckedIOException  if the file cannot be opened.
     */
    public FileVirtualDisk(
        final Path path, final int id, final int blockSize, final long sizeBytes, final boolean resizeExisting)
    {
        if (blockSize < 512 || Integer.bitCount(blockSize) != 1 || sizeBytes <= 0 || sizeBytes % blockSize != 0)
        {
            throw new IllegalArgumentException("disk " + id + ": size " + sizeBytes +
                " must be a positive multiple of a power-of-two block size >= 512, got block size " + blockSize);
        }
        this.id = id;
        this.blockSize = blockSize;
        this.sizeBytes = sizeBytes;
        this.path = path;
        try
        {
            final boolean existed = Files.exists(path);
            if (existed && !resizeExisting && Files.size(path) != sizeBytes)
            {
                throw new IllegalStateException("disk image " + path + " is " + Files.size(path) + " bytes but disk " +
                    id + " is " + sizeBytes + " bytes: it belongs to another VM or disk; move it away or use an " +
                    "empty directory");
            }
            // a new image is the guest's disk: owner-only, like everything that holds guest data
            channel = OwnerOnlyFiles.open(path, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE);
            if (channel.size() > sizeBytes)
            {
                channel.truncate(sizeBytes);
            }
            else if (channel.size() < sizeBytes)
            {
                channel.write(ByteBuffer.allocate(1), sizeBytes - 1);
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
        return blockSize;
    }

    /**
     * @return the image file.
     */
    public Path path()
    {
        return path;
    }

    /**
     * Writes the buffer's remaining bytes at {@code offset}; the position is advanced.
     *
     * @param offset byte offset.
     * @param data   bytes from position to limit.
     * @throws IOException if the write fails.
     */
    public void write(final long offset, final ByteBuffer data) throws IOException
    {
        long position = offset;
        while (data.hasRemaining())
        {
            position += channel.write(data, position);
        }
    }

    /**
     * A file image can be written by a restore in place.
     *
     * @return true.
     */
    @Override
    public boolean writable()
    {
        return true;
    }

    @Override
    public synchronized void write(final long offset, final org.agrona.DirectBuffer src, final int srcIndex,
        final int length)
    {
        if (offset < 0 || length <= 0 || offset > sizeBytes - length || offset % blockSize() != 0 ||
            length % blockSize() != 0)
        {
            throw new IndexOutOfBoundsException("write [" + offset + ", +" + length + ") is not whole blocks of " +
                blockSize() + " bytes inside disk of " + sizeBytes);
        }
        final ByteBuffer bytes = ByteBuffer.allocate(length);
        src.getBytes(srcIndex, bytes, 0, length);
        try
        {
            write(offset, bytes);
        }
        catch (final IOException ex)
        {
            throw new java.io.UncheckedIOException("write to disk image " + path + " failed", ex);
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
                    throw new IOException("unexpected end of " + path);
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
     *
     * @throws IOException if the flush fails.
     */
    public void force() throws IOException
    {
        channel.force(false);
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
