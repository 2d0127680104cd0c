package dev.tandem.vmm.tck;

import dev.tandem.vmm.FileVirtualDisk;
import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.NativeGuestMemory;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.RecoveryPoint;
import dev.tandem.vmm.StatefulComponent;
import dev.tandem.vmm.VirtualDisk;
import dev.tandem.vmm.VmmAdapter;
import org.agrona.concurrent.UnsafeBuffer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * A recovery point copied straight out of a paused adapter, so the TCK can test a {@code ReplicaTarget} without the
 * library. Owns an off-heap copy of memory and files for the disks; close it.
 */
public final class SnapshotRecoveryPoint implements RecoveryPoint, AutoCloseable
{
    private final String vmId;
    private final NativeMemory.Region memoryRegion;
    private final NativeGuestMemory memory;
    private final List<ComponentState> components = new ArrayList<>();
    private final List<VirtualDisk> disks = new ArrayList<>();
    private final List<Path> diskPaths = new ArrayList<>();
    private final List<FileVirtualDisk> openDisks = new ArrayList<>();
    private boolean adopted;

    /**
     * Copies everything out of a paused adapter.
     *
     * @param adapter the paused guest.
     * @param dir     where disk copies are written.
     */
    public SnapshotRecoveryPoint(final VmmAdapter adapter, final Path dir)
    {
        vmId = adapter.vmId();
        final GuestMemory source = adapter.memory();
        memoryRegion = NativeMemory.allocate(source.sizeBytes(), source.pageSize());
        memory = new NativeGuestMemory(memoryRegion.address(), source.pageSize(), source.pageCount());
        final UnsafeBuffer chunk = new UnsafeBuffer(new byte[256 * source.pageSize()]);
        for (long page = 0; page < source.pageCount(); page += 256)
        {
            final int pages = (int)Math.min(256, source.pageCount() - page);
            source.copyOut(page, pages, chunk, 0);
            memory.copyIn(page, pages, chunk, 0);
        }
        for (final StatefulComponent component : adapter.components())
        {
            components.add(new ComponentState(component.id(), component.version(),
                new UnsafeBuffer(StatefulComponent.saveToArray(component))));
        }
        for (final VirtualDisk disk : adapter.disks())
        {
            final Path path = dir.resolve("snapshot-disk-" + disk.id() + ".img");
            copyDisk(disk, path);
            diskPaths.add(path);
            final FileVirtualDisk copy = new FileVirtualDisk(path, disk.id(), disk.blockSize(), disk.sizeBytes(), false);
            disks.add(copy);
            openDisks.add(copy);
        }
    }

    private static void copyDisk(final VirtualDisk disk, final Path path)
    {
        final UnsafeBuffer chunk = new UnsafeBuffer(ByteBuffer.allocateDirect(1 << 20));
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
            StandardOpenOption.TRUNCATE_EXISTING))
        {
            for (long offset = 0; offset < disk.sizeBytes(); offset += chunk.capacity())
            {
                final int length = (int)Math.min(chunk.capacity(), disk.sizeBytes() - offset);
                disk.read(offset, chunk, 0, length);
                final ByteBuffer bb = chunk.byteBuffer().duplicate().position(0).limit(length);
                while (bb.hasRemaining())
                {
                    channel.write(bb, offset + bb.position());
                }
            }
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
    }

    @Override
    public String vmId()
    {
        return vmId;
    }

    @Override
    public long epoch()
    {
        return 0;
    }

    @Override
    public long generation()
    {
        return 0;
    }

    @Override
    public GuestMemory memory()
    {
        return memory;
    }

    @Override
    public List<ComponentState> components()
    {
        return components;
    }

    @Override
    public List<VirtualDisk> disks()
    {
        return disks;
    }

    @Override
    public Path diskImage(final int diskId)
    {
        for (int i = 0; i < disks.size(); i++)
        {
            if (disks.get(i).id() == diskId)
            {
                return diskPaths.get(i);
            }
        }
        throw new IllegalArgumentException("no disk " + diskId);
    }

    /**
     * Hands the snapshot's memory over: from now on the caller owns it (see {@link RecoveryPoint#adoptMemory()}).
     *
     * @return the region.
     */
    @Override
    public NativeMemory.Region adoptMemory()
    {
        if (adopted)
        {
            throw new IllegalStateException("memory adopted twice");
        }
        adopted = true;
        return memoryRegion;
    }

    /**
     * @return true once a target adopted the memory.
     */
    public boolean memoryAdopted()
    {
        return adopted;
    }

    /**
     * @return where the snapshot's memory starts (the adopted region's address).
     */
    public long memoryAddress()
    {
        return memoryRegion.address();
    }

    @Override
    public void close()
    {
        openDisks.forEach(FileVirtualDisk::close);
        if (!adopted)
        {
            memoryRegion.close();
        }
    }

}
