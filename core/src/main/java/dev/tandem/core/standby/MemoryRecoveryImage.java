package dev.tandem.core.standby;

import dev.tandem.core.wire.Handshake;
import dev.tandem.vmm.FileVirtualDisk;
import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.RecoveryPoint;
import dev.tandem.vmm.VirtualDisk;
import org.agrona.CloseHelper;
import org.agrona.ExpandableDirectByteBuffer;
import org.agrona.collections.Int2IntHashMap;
import org.agrona.concurrent.UnsafeBuffer;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongSupplier;

/**
 * The MEMORY mode's recovery image (Remus): the memory replica is this process's own memory, the disk images are
 * files in the standby's directory written without forcing, and the component store is on the heap; nothing of it
 * survives the standby process. Owns the memory and the disk images and frees them in {@link #close()}, except
 * memory a promoted guest adopted.
 */
class MemoryRecoveryImage implements RecoveryImage
{
    private final String vmId;
    private final LongSupplier generation;
    private final MemoryReplica memory;
    private final List<FileVirtualDisk> disks;
    private final FileVirtualDisk[] disksById;
    private final ComponentStore components = new ComponentStore();
    /** The epoch the image's contents are, set as soon as an epoch is applied. */
    private volatile long epoch;
    /** True only while the ReplicaTarget builds the guest (resume or prepare): the one moment it may adopt memory. */
    private boolean resuming;
    private final RecoveryPoint view = new View();

    /**
     * Opens (or creates) each disk image in the standby's directory and allocates the memory replica; a failure
     * releases whatever was opened before it.
     *
     * @param ctx        the standby's configuration, concluded.
     * @param generation the generation the standby serves, as the recovery point reports it.
     */
    MemoryRecoveryImage(final StandbyContext ctx, final LongSupplier generation)
    {
        this(ctx, generation, () -> new MemoryReplica(ctx.pageSize(), ctx.pageCount()));
    }

    /**
     * @param ctx        the standby's configuration, concluded.
     * @param generation the generation the standby serves, as the recovery point reports it.
     * @param memoryReplica makes the memory replica, after the disk images opened.
     */
    MemoryRecoveryImage(final StandbyContext ctx, final LongSupplier generation,
        final java.util.function.Supplier<MemoryReplica> memoryReplica)
    {
        this.vmId = ctx.vmId();
        this.generation = generation;
        int maxId = -1;
        for (final Handshake.Disk disk : ctx.disks())
        {
            maxId = Math.max(maxId, disk.id());
        }
        this.disksById = new FileVirtualDisk[maxId + 1];
        final List<FileVirtualDisk> opened = new ArrayList<>();
        try
        {
            for (final Handshake.Disk disk : ctx.disks())
            {
                final FileVirtualDisk replica = ctx.diskImageOpener().open(
                    diskImagePath(ctx, disk.id()), disk);
                opened.add(replica);
                disksById[disk.id()] = replica;
            }
            this.memory = memoryReplica.get();
        }
        catch (final RuntimeException ex)
        {
            opened.forEach(FileVirtualDisk::close);
            throw ex;
        }
        this.disks = List.copyOf(opened);
    }

    /**
     * @return where the standby keeps disk {@code diskId}'s image: {@code disk-<id>.img} in its directory.
     */
    static Path diskImagePath(final StandbyContext ctx, final int diskId)
    {
        return ctx.directory().resolve("disk-" + diskId + ".img");
    }

    @Override
    public GuestMemory memory()
    {
        return memory.view();
    }

    @Override
    public FileVirtualDisk disk(final int diskId)
    {
        return diskId < 0 || diskId >= disksById.length ? null : disksById[diskId];
    }

    @Override
    public void writePages(final long firstPage, final int count, final UnsafeBuffer buffer, final int index)
    {
        memory.view().copyIn(firstPage, count, buffer, index);
    }

    @Override
    public void writeDisk(final int diskId, final long offset, final ByteBuffer data) throws IOException
    {
        disksById[diskId].write(offset, data);
    }

    @Override
    public void putComponent(final int id, final int version, final UnsafeBuffer src, final int index, final int length)
    {
        components.put(id, version, src, index, length);
    }

    @Override
    public void epoch(final long applied)
    {
        epoch = applied;
    }

    @Override
    public long epoch()
    {
        return epoch;
    }

    @Override
    public RecoveryPoint recoveryPoint()
    {
        return view;
    }

    @Override
    public void resuming(final boolean resumingNow)
    {
        resuming = resumingNow;
    }

    @Override
    public boolean whenAdoptedMemoryReleased(final Runnable action)
    {
        return memory.whenAdoptedReleased(action);
    }

    @Override
    public void close()
    {
        CloseHelper.quietClose(memory);
        disks.forEach(FileVirtualDisk::close);
    }

    /**
     * @return the memory replica.
     */
    final MemoryReplica replica()
    {
        return memory;
    }

    /**
     * @return the disk images.
     */
    final List<FileVirtualDisk> diskImages()
    {
        return disks;
    }

    private final class View implements RecoveryPoint
    {
        @Override
        public String vmId()
        {
            return vmId;
        }

        @Override
        public long epoch()
        {
            return epoch;
        }

        @Override
        public long generation()
        {
            return generation.getAsLong();
        }

        @Override
        public GuestMemory memory()
        {
            return memory.view();
        }

        @Override
        public NativeMemory.Region adoptMemory()
        {
            if (!resuming)
            {
                throw new IllegalStateException("the replica's memory can be adopted only by the ReplicaTarget " +
                    "during promotion");
            }
            return memory.adopt();
        }

        @Override
        public List<ComponentState> components()
        {
            return components.states();
        }

        @Override
        public List<VirtualDisk> disks()
        {
            return List.copyOf(disks);
        }

        @Override
        public Path diskImage(final int diskId)
        {
            final FileVirtualDisk disk = disk(diskId);
            if (disk == null)
            {
                throw new IllegalArgumentException("no disk " + diskId);
            }
            return disk.path();
        }
    }

    /**
     * Committed component state by id, in first-seen order; buffers are reused from commit to commit.
     */
    private static final class ComponentStore
    {
        private final Int2IntHashMap indexById = new Int2IntHashMap(-1);
        private final List<ExpandableDirectByteBuffer> buffers = new ArrayList<>();
        private final List<int[]> meta = new ArrayList<>();

        void put(final int id, final int version, final UnsafeBuffer src, final int index, final int length)
        {
            int slot = indexById.get(id);
            if (slot < 0)
            {
                slot = buffers.size();
                indexById.put(id, slot);
                buffers.add(new ExpandableDirectByteBuffer(Math.max(64, length)));
                meta.add(new int[] {id, version, 0});
            }
            buffers.get(slot).putBytes(0, src, index, length);
            meta.get(slot)[1] = version;
            meta.get(slot)[2] = length;
        }

        List<RecoveryPoint.ComponentState> states()
        {
            final List<RecoveryPoint.ComponentState> states = new ArrayList<>(buffers.size());
            for (int i = 0; i < buffers.size(); i++)
            {
                final int[] m = meta.get(i);
                states.add(new RecoveryPoint.ComponentState(m[0], m[1], new UnsafeBuffer(buffers.get(i), 0, m[2])));
            }
            return states;
        }
    }
}
