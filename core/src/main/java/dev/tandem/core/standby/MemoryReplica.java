package dev.tandem.core.standby;

import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.NativeGuestMemory;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.OwnerOnlyFiles;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The standby's copy of guest memory, with 64-bit offsets (guests exceed the 2 GiB limit of a {@code ByteBuffer}),
 * owned here and seen through a {@link NativeGuestMemory}. Only committed epochs are ever written into it. Two
 * backings: MEMORY mode's page-aligned anonymous region of this process, and DURABLE mode's file mapped whole
 * ({@link #mapped}), whose contents survive the process and are forced to disk with {@link #force()}.
 * <p>
 * At promotion a {@link dev.tandem.vmm.ReplicaTarget} may adopt the memory as the new guest's ({@link #adopt()}):
 * ownership moves with it, nothing is copied, and this replica no longer frees it. A mapped file's mapping is handed
 * over the same way: the promoted guest then runs on the file's pages (the DURABLE image gives up its claim to them
 * before the guest runs, see {@link DurableRecoveryImage#giveUp()}). The adopted region says when the guest lets it
 * go ({@link #whenAdoptedReleased}); in MEMORY mode it wraps the replica's own region, so until then the process's
 * native allocation counts show it twice.
 */
final class MemoryReplica implements AutoCloseable
{
    /** How much of a mapped image one {@code msync} writes back (see {@link #force}). */
    static final long FORCE_RANGE_BYTES = 1L << 20;
    /** The largest window one {@link java.nio.MappedByteBuffer} maps for the forces (its indices are ints). */
    private static final int FORCE_WINDOW_BYTES = 1 << 30;

    private final NativeMemory.Region region;
    private final FileChannel file;
    private final long mappedAddress;
    private final long size;
    private final NativeGuestMemory view;
    private boolean adopted;
    private boolean closed;
    /**
     * Mappings of the file, a window of {@link #FORCE_WINDOW_BYTES} each, made at the first force and kept: a range
     * is forced through them ({@code MappedByteBuffer.force(index, length)}), not through a new mapping per range,
     * which only the garbage collector would unmap (a steady state that allocates nothing would pile them up).
     */
    private java.nio.MappedByteBuffer[] forceWindows;
    /** The promoted guest let the adopted memory go. */
    private boolean adoptedReleased;
    /** Runs once it does ({@link #whenAdoptedReleased}). */
    private Runnable afterAdoptedRelease;

    MemoryReplica(final int pageSize, final long pageCount)
    {
        this.size = pageCount * pageSize;
        // zeroed (in chunks that let the rest of the process reach safepoints): the replica of a guest that never
        // wrote a page must read zero
        this.region = NativeMemory.allocate(size, pageSize);
        this.file = null;
        this.mappedAddress = 0;
        this.view = new NativeGuestMemory(region.address(), pageSize, pageCount);
    }

    private MemoryReplica(final FileChannel file, final long mappedAddress, final int pageSize, final long pageCount)
    {
        this.size = pageCount * pageSize;
        this.region = null;
        this.file = file;
        this.mappedAddress = mappedAddress;
        this.view = new NativeGuestMemory(mappedAddress, pageSize, pageCount);
    }

    /**
     * Maps {@code path} whole, read-write and shared, creating or extending it to the guest's size (a new file
     * reads zero).
     *
     * @param path      the memory image.
     * @param pageSize  page size.
     * @param pageCount pages.
     * @return the replica over the file.
     * @throws UncheckedIOException if the file cannot be opened, sized or mapped, naming it.
     */
    static MemoryReplica mapped(final Path path, final int pageSize, final long pageCount)
    {
        final long size = pageCount * pageSize;
        FileChannel channel = null;
        try
        {
            channel = OwnerOnlyFiles.open(path, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE);
            if (channel.size() > size)
            {
                throw new IOException("it holds " + channel.size() + " bytes, more than the guest's " + size);
            }
            if (channel.size() < size)
            {
                // sparse: the blocks are allocated as the pages are written
                channel.write(java.nio.ByteBuffer.allocate(1), size - 1);
            }
            final long address = net.openhft.chronicle.core.OS.map(channel, FileChannel.MapMode.READ_WRITE, 0, size);
            return new MemoryReplica(channel, address, pageSize, pageCount);
        }
        catch (final IOException | RuntimeException ex)
        {
            if (channel != null)
            {
                try
                {
                    channel.close();
                }
                catch (final IOException suppressed)
                {
                    ex.addSuppressed(suppressed);
                }
            }
            throw new UncheckedIOException(new IOException("cannot map the memory image " + path + " of " + size +
                " bytes: " + ex.getMessage(), ex));
        }
    }

    GuestMemory view()
    {
        if (adopted)
        {
            throw new IllegalStateException("the replica's memory was adopted by the promoted guest");
        }
        return view;
    }

    /**
     * @return the region, now owned by the caller: the anonymous region, or the file's mapping (which outlives the
     *         file's channel, closed with this replica; the caller's close unmaps it).
     */
    NativeMemory.Region adopt()
    {
        if (adopted)
        {
            throw new IllegalStateException("the replica's memory was adopted already");
        }
        adopted = true;
        if (region != null)
        {
            // the guest's close frees the region through this one, and says so
            return NativeMemory.adopt(region.address(), region.length(), () ->
            {
                try
                {
                    region.close();
                }
                finally
                {
                    adoptedReleased();
                }
            });
        }
        final long address = mappedAddress;
        final long length = size;
        return NativeMemory.adopt(address, length, () ->
        {
            try
            {
                net.openhft.chronicle.core.OS.unmap(address, length);
            }
            catch (final IOException ex)
            {
                throw new UncheckedIOException("cannot unmap an adopted memory image", ex);
            }
            finally
            {
                adoptedReleased();
            }
        });
    }

    /**
     * @param action runs once the promoted guest lets the adopted memory go (on the thread that closes it).
     * @return false, without keeping {@code action}, if the memory was not adopted or was let go already.
     */
    synchronized boolean whenAdoptedReleased(final Runnable action)
    {
        if (!adopted || adoptedReleased)
        {
            return false;
        }
        afterAdoptedRelease = action;
        return true;
    }

    private void adoptedReleased()
    {
        final Runnable action;
        synchronized (this)
        {
            adoptedReleased = true;
            action = afterAdoptedRelease;
            afterAdoptedRelease = null;
        }
        if (action != null)
        {
            action.run();
        }
    }

    boolean isAdopted()
    {
        return adopted;
    }

    /**
     * Writes every page changed through the mapping back to the file and waits for the device, range by range
     * ({@code msync} of {@link #FORCE_RANGE_BYTES} at a time: on Linux it writes back the file's dirty pages there,
     * whichever mapping dirtied them). One fsync of the whole file would queue every dirty page of the image at once,
     * and the journal's fsync of the next epoch (which its ack waits for) would wait behind all of it; range by range
     * it waits behind one range at most, and {@code beforeEachRange} may hold the next range back while the journal
     * forces. The range was 32 MiB: the scattered pages a hotset dirties made one range thousands of random writes,
     * and acks waited up to 180 ms behind a checkpoint (ack p99 150 ms at 20 page writes/ms on a 1 GiB guest, 55 ms
     * with 1 MiB ranges held back for the journal; {@code jmh-results/durability.md}). Every page written
     * before the call is durable when it returns. Nothing for anonymous memory.
     *
     * @param beforeEachRange runs before each range is written back (on the caller's thread).
     * @throws IOException if the file cannot be forced.
     */
    void force(final Runnable beforeEachRange) throws IOException
    {
        if (file == null)
        {
            return;
        }
        if (forceWindows == null)
        {
            final int windows = (int)((size + FORCE_WINDOW_BYTES - 1) / FORCE_WINDOW_BYTES);
            final java.nio.MappedByteBuffer[] mapped = new java.nio.MappedByteBuffer[windows];
            for (int w = 0; w < windows; w++)
            {
                final long at = (long)w * FORCE_WINDOW_BYTES;
                mapped[w] = file.map(FileChannel.MapMode.READ_WRITE, at, Math.min(FORCE_WINDOW_BYTES, size - at));
            }
            forceWindows = mapped;
        }
        for (long at = 0; at < size; at += FORCE_RANGE_BYTES)
        {
            beforeEachRange.run();
            final java.nio.MappedByteBuffer window = forceWindows[(int)(at / FORCE_WINDOW_BYTES)];
            final int index = (int)(at % FORCE_WINDOW_BYTES);
            window.force(index, (int)Math.min(FORCE_RANGE_BYTES, window.capacity() - index));
        }
    }

    @Override
    public void close()
    {
        if (closed)
        {
            return;
        }
        closed = true;
        if (file != null)
        {
            try
            {
                if (!adopted)
                {
                    net.openhft.chronicle.core.OS.unmap(mappedAddress, size);
                }
                file.close();
            }
            catch (final IOException ex)
            {
                throw new UncheckedIOException("cannot unmap the memory image", ex);
            }
        }
        else if (!adopted)
        {
            region.close();
        }
    }
}
