package dev.tandem.vmm.tck;

import dev.tandem.vmm.DirtyBitmap;
import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.RecoveryPoint;
import dev.tandem.vmm.StatefulComponent;
import dev.tandem.vmm.VirtualDisk;
import dev.tandem.vmm.VmmAdapter;
import org.agrona.DirectBuffer;
import org.agrona.ExpandableArrayBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.UnsafeApi;
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
    private final Memory memory;
    private final List<ComponentState> components = new ArrayList<>();
    private final List<VirtualDisk> disks = new ArrayList<>();
    private final List<Path> diskPaths = new ArrayList<>();

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
        memory = new Memory(memoryRegion.address(), source.pageSize(), source.pageCount());
        final UnsafeBuffer chunk = new UnsafeBuffer(new byte[256 * source.pageSize()]);
        for (long page = 0; page < source.pageCount(); page += 256)
        {
            final int pages = (int)Math.min(256, source.pageCount() - page);
            source.copyOut(page, pages, chunk, 0);
            memory.copyIn(page, pages, chunk, 0);
        }
        for (final StatefulComponent component : adapter.components())
        {
            final ExpandableArrayBuffer buffer = new ExpandableArrayBuffer(256);
            int length = component.save(buffer, 0, buffer.capacity());
            if (length < 0)
            {
                buffer.checkLimit(-length);
                length = component.save(buffer, 0, buffer.capacity());
            }
            final byte[] bytes = new byte[length];
            buffer.getBytes(0, bytes);
            components.add(new ComponentState(component.id(), component.version(), new UnsafeBuffer(bytes)));
        }
        for (final VirtualDisk disk : adapter.disks())
        {
            final Path path = dir.resolve("snapshot-disk-" + disk.id() + ".img");
            copyDisk(disk, path);
            diskPaths.add(path);
            disks.add(new FileDisk(disk.id(), path, disk.sizeBytes(), disk.blockSize()));
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

    @Override
    public void close()
    {
        memoryRegion.close();
    }

    /**
     * @return a bitmap sized for this point's memory.
     */
    public DirtyBitmap newBitmap()
    {
        return new DirtyBitmap(memory.pageCount());
    }

    private static final class Memory implements GuestMemory
    {
        private final long address;
        private final int pageSize;
        private final long pageCount;

        Memory(final long address, final int pageSize, final long pageCount)
        {
            this.address = address;
            this.pageSize = pageSize;
            this.pageCount = pageCount;
        }

        @Override
        public int pageSize()
        {
            return pageSize;
        }

        @Override
        public long pageCount()
        {
            return pageCount;
        }

        @Override
        public void copyOut(final long firstPage, final int pages, final MutableDirectBuffer dst, final int dstIndex)
        {
            GuestMemory.checkRun(firstPage, pages, pageCount);
            dst.boundsCheck(dstIndex, pages * pageSize);
            UnsafeApi.copyMemory(null, address + firstPage * pageSize, dst.byteArray(),
                dst.addressOffset() + dstIndex, (long)pages * pageSize);
        }

        @Override
        public void copyIn(final long firstPage, final int pages, final DirectBuffer src, final int srcIndex)
        {
            GuestMemory.checkRun(firstPage, pages, pageCount);
            src.boundsCheck(srcIndex, pages * pageSize);
            UnsafeApi.copyMemory(src.byteArray(), src.addressOffset() + srcIndex, null,
                address + firstPage * pageSize, (long)pages * pageSize);
        }
    }

    private static final class FileDisk implements VirtualDisk
    {
        private final int id;
        private final Path path;
        private final long size;
        private final int blockSize;

        FileDisk(final int id, final Path path, final long size, final int blockSize)
        {
            this.id = id;
            this.path = path;
            this.size = size;
            this.blockSize = blockSize;
        }

        @Override
        public int id()
        {
            return id;
        }

        @Override
        public long sizeBytes()
        {
            return size;
        }

        @Override
        public int blockSize()
        {
            return blockSize;
        }

        @Override
        public void read(final long offset, final MutableDirectBuffer dst, final int dstIndex, final int length)
        {
            try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ))
            {
                final ByteBuffer bb = ByteBuffer.allocate(length);
                while (bb.hasRemaining() && channel.read(bb, offset + bb.position()) >= 0)
                {
                    // keep reading until the range is complete
                }
                dst.putBytes(dstIndex, bb.array(), 0, length);
            }
            catch (final IOException ex)
            {
                throw new UncheckedIOException(ex);
            }
        }
    }
}
