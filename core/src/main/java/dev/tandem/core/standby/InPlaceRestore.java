package dev.tandem.core.standby;

import dev.tandem.core.wire.FrameCodec;
import dev.tandem.core.wire.FrameType;
import dev.tandem.core.wire.Handshake;
import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.RecoveryPoint;
import dev.tandem.vmm.VirtualDisk;
import org.agrona.concurrent.UnsafeBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.function.LongSupplier;

/**
 * The standby's half of a restore in place (the active's health probe asked for the guest to be restored on the
 * active's own host): the active holds its guest paused at its acknowledged epoch H, the standby's image holds H too,
 * and this sends what differs between H and the checkpoint chosen (H itself, or the newest one committed at or before
 * the probe's last known good time, materialised from the retained journal beside the standby's directory): the pages
 * and disk blocks whose contents differ, then every component's state, then RESTORED. The active writes them into its
 * guest and resumes it; its next epoch carries them back here, so this side stays the standby of one history.
 * <p>
 * Choosing and comparing (a point-in-time restore and a read of both images: seconds for a large guest) run on a
 * thread of their own; the session's duty cycle, which goes on hearing the active and answering it, then sends one
 * frame at a time ({@link #step}). Closing it at any point (a lost link, the standby's close) releases everything it
 * holds, once a preparation under way has ended ({@link #closeAndWait()} waits for that).
 */
final class InPlaceRestore implements AutoCloseable
{
    private static final Logger LOG = LoggerFactory.getLogger(InPlaceRestore.class);
    /** Content bytes per frame: within any active's receive limit, and pages are compared this many at a time. */
    static final int CHUNK_BYTES = 32 * 1024;

    /**
     * How the session sends a frame of the restore, without blocking: the sub-header put in {@link #subHeader()}
     * after the frame header, the payload's bytes left untouched until the frame is written ({@link #idle()}).
     */
    interface Frames
    {
        /**
         * @return true when no frame is under way (the next may begin).
         */
        boolean idle();

        /**
         * @return where the next frame's sub-header goes, from {@link FrameCodec#HEADER_LENGTH}.
         */
        UnsafeBuffer subHeader();

        /**
         * Begins a frame and writes what the connection takes now.
         *
         * @param type      its type.
         * @param epoch     its epoch.
         * @param subHeader bytes put in {@link #subHeader()}.
         * @param payload   the rest, or null.
         * @throws IOException if the link fails.
         */
        void send(FrameType type, long epoch, int subHeader, ByteBuffer payload) throws IOException;
    }

    private final StandbyContext ctx;
    private final RecoveryImage image;
    private final long heldEpoch;
    private final long heldCommittedAtMillis;
    private final long restoreAtMillis;
    private final LongSupplier generation;
    private final NativeMemory.Region content;
    private final UnsafeBuffer contentBuffer;

    private Thread preparing;
    private volatile boolean prepared;
    private volatile boolean closed;
    /** Set by the preparing thread, read by the session once {@link #prepared}. */
    private PointInTimeRestore.Opened earlier;
    private Path earlierDirectory;
    private long epoch;
    private String why = "";
    private BitSet pages = new BitSet();
    private final List<BitSet> blocks = new ArrayList<>();

    private long nextPage;
    private int diskIndex;
    private long nextBlock;
    private int componentIndex;
    private boolean restoredSent;
    private long pagesSent;
    private long diskBytesSent;

    /**
     * @param ctx                   the standby's configuration.
     * @param image                 its recovery image, holding {@code heldEpoch} once the applier applied it.
     * @param heldEpoch             the active's acknowledged epoch its guest is paused at.
     * @param heldCommittedAtMillis when this standby committed it (wall clock), 0 if unknown (held from before a
     *                              restart).
     * @param restoreAtMillis       the newest commit time the restore may give, or {@link Handshake#RESTORE_LATEST}.
     * @param generation            the session's generation (a restored image's recovery point reports it).
     */
    InPlaceRestore(final StandbyContext ctx, final RecoveryImage image, final long heldEpoch,
        final long heldCommittedAtMillis, final long restoreAtMillis, final LongSupplier generation)
    {
        this.ctx = ctx;
        this.image = image;
        this.heldEpoch = heldEpoch;
        this.heldCommittedAtMillis = heldCommittedAtMillis;
        this.restoreAtMillis = restoreAtMillis;
        this.generation = generation;
        this.epoch = heldEpoch;
        this.content = NativeMemory.allocateDirect(Math.max(CHUNK_BYTES, ctx.pageSize()), 4096);
        this.contentBuffer = new UnsafeBuffer(content.byteBuffer());
    }

    /**
     * One duty cycle's share: starts the preparation once the applier has applied the held epoch, then sends the
     * next frame whenever none is under way.
     *
     * @param applied true once the image holds the held epoch.
     * @param frames  the session's way to send.
     * @return work done.
     * @throws IOException if the link fails.
     */
    int step(final boolean applied, final Frames frames) throws IOException
    {
        if (preparing == null && !prepared)
        {
            if (!applied)
            {
                return 0;
            }
            if (ctx.useAgentInvoker())
            {
                // a caller that steps the standby itself (the deterministic simulation) gets no thread of ours
                prepare();
                return 1;
            }
            preparing = new Thread(this::prepare, "tandem-restore-" + ctx.vmId());
            preparing.setDaemon(true);
            preparing.start();
            return 1;
        }
        if (!prepared || !frames.idle() || restoredSent)
        {
            return 0;
        }
        final RecoveryPoint from = earlier != null ? earlier.image().recoveryPoint() : image.recoveryPoint();
        final UnsafeBuffer sub = frames.subHeader();
        final int at = FrameCodec.HEADER_LENGTH;
        final long page = nextPage < 0 ? -1 : pages.nextSetBit((int)nextPage);
        if (page >= 0)
        {
            final GuestMemory memory = from.memory();
            final int most = Math.max(1, CHUNK_BYTES / memory.pageSize());
            final int count = (int)Math.min(most, pages.nextClearBit((int)page) - page);
            memory.copyOut(page, count, contentBuffer, 0);
            sub.putLong(at, page);
            sub.putInt(at + 8, count);
            sub.putInt(at + 12, 0);
            frames.send(FrameType.PAGES, epoch, FrameCodec.PAGES_HEADER, payload(count * memory.pageSize()));
            nextPage = page + count;
            pagesSent += count;
            return 1;
        }
        nextPage = -1;
        while (diskIndex < blocks.size())
        {
            final BitSet changed = blocks.get(diskIndex);
            final long block = changed.nextSetBit((int)nextBlock);
            if (block < 0)
            {
                diskIndex++;
                nextBlock = 0;
                continue;
            }
            final VirtualDisk disk = from.disks().get(diskIndex);
            final int most = Math.max(1, CHUNK_BYTES / disk.blockSize());
            final int count = (int)Math.min(most, changed.nextClearBit((int)block) - block);
            final int length = count * disk.blockSize();
            disk.read(block * disk.blockSize(), contentBuffer, 0, length);
            sub.putInt(at, disk.id());
            sub.putInt(at + 4, length);
            sub.putLong(at + 8, block * disk.blockSize());
            frames.send(FrameType.DISK_WRITE, epoch, FrameCodec.DISK_WRITE_HEADER, payload(length));
            nextBlock = block + count;
            diskBytesSent += length;
            return 1;
        }
        final List<RecoveryPoint.ComponentState> components = from.components();
        if (componentIndex < components.size())
        {
            final RecoveryPoint.ComponentState state = components.get(componentIndex++);
            final int length = state.state().capacity();
            // a state larger than the content buffer (rare: a device with a large queue) gets a buffer of its own
            final ByteBuffer bytes = length <= content.byteBuffer().capacity() ? payload(length) :
                ByteBuffer.allocateDirect(length);
            state.state().getBytes(0, bytes, 0, length);
            sub.putInt(at, state.id());
            sub.putInt(at + 4, state.version());
            frames.send(FrameType.COMPONENT, epoch, FrameCodec.COMPONENT_HEADER, bytes);
            return 1;
        }
        sub.putLong(at, pagesSent);
        sub.putLong(at + 8, diskBytesSent);
        sub.putInt(at + 16, components.size());
        sub.putInt(at + 20, 0);
        final String said = epoch == heldEpoch ? "restored the latest checkpoint, epoch " + epoch + why :
            "restored epoch " + epoch + ", the newest checkpoint from " + Instant.ofEpochMilli(restoreAtMillis) +
            " or before: " + pagesSent + " pages and " + diskBytesSent + " disk bytes differed from epoch " + heldEpoch;
        final int reason = Handshake.encodeReason(sub, at + 24, said);
        frames.send(FrameType.RESTORED, epoch, 24 + reason, null);
        restoredSent = true;
        LOG.warn("VM {}: {} (restore in place on the active's host)", ctx.vmId(), said);
        return 1;
    }

    /**
     * @return true once RESTORED is on its way (the restore is over for this side once that frame is written).
     */
    boolean done()
    {
        return restoredSent;
    }

    private ByteBuffer payload(final int length)
    {
        return content.byteBuffer().duplicate().limit(length).position(0);
    }

    /**
     * On its own thread: chooses the checkpoint and finds what differs from the held epoch.
     */
    private void prepare()
    {
        try
        {
            // an image checkpoint under way may age segments and bases out; none starts before another epoch comes
            image.awaitCheckpoint();
            final boolean earlierAsked = restoreAtMillis != Handshake.RESTORE_LATEST &&
                (heldCommittedAtMillis == 0 || restoreAtMillis < heldCommittedAtMillis);
            if (earlierAsked)
            {
                openEarlier();
            }
            if (earlier != null)
            {
                // published together, and only whole: a comparison cut short must not send part of the difference
                final BitSet differing = new BitSet();
                final List<BitSet> changed = new ArrayList<>();
                compare(earlier.image().recoveryPoint(), image.recoveryPoint(), differing, changed);
                pages = differing;
                blocks.addAll(changed);
                epoch = earlier.restored().epoch();
            }
        }
        catch (final RuntimeException | Error ex)
        {
            // nothing earlier can be given: the held epoch's component states, which the active holds already
            LOG.error("VM {}: the restore in place could not prepare the checkpoint asked for", ctx.vmId(), ex);
            synchronized (this)
            {
                if (earlier != null)
                {
                    earlier.close();
                    earlier = null;
                }
            }
            removeEarlier();
            pages = new BitSet();
            blocks.clear();
            epoch = heldEpoch;
            why = "; not the one asked for: " + ex;
        }
        finally
        {
            prepared = true;
            if (closed)
            {
                release();
            }
        }
    }

    private void openEarlier()
    {
        final Instant at = Instant.ofEpochMilli(restoreAtMillis);
        if (ctx.durability() != Durability.DURABLE)
        {
            why = "; not the one from " + at + " or before as asked: a MEMORY standby keeps no earlier checkpoint";
            return;
        }
        final Path directory = ctx.directory().toAbsolutePath();
        Path to = directory.resolveSibling(directory.getFileName() + ".restoring-" + restoreAtMillis);
        for (int i = 2; Files.exists(to); i++)
        {
            to = directory.resolveSibling(directory.getFileName() + ".restoring-" + restoreAtMillis + "-" + i);
        }
        earlierDirectory = to;
        try
        {
            final PointInTimeRestore.Opened opened = PointInTimeRestore.restoreAt(ctx.directory(), at, to, generation,
                StorageWitness.NONE);
            if (opened.restored().epoch() >= heldEpoch)
            {
                // the journal committed the held epoch by then: nothing earlier to give
                opened.close();
                removeEarlier();
                return;
            }
            earlier = opened;
        }
        catch (final RuntimeException ex)
        {
            removeEarlier();
            why = "; not the one from " + at + " or before as asked: " + ex.getMessage();
        }
    }

    /**
     * Removes what a restore in place of an earlier run left beside the standby's directory (a process killed while
     * it materialised an earlier checkpoint leaves a whole copy of the image): called with the directory's lock held,
     * so no restore of this directory is under way.
     *
     * @param directory the standby's directory.
     */
    static void removeStale(final Path directory)
    {
        final Path absolute = directory.toAbsolutePath();
        final String prefix = absolute.getFileName() + ".restoring-";
        try (java.util.stream.Stream<Path> siblings = Files.list(absolute.getParent()))
        {
            for (final Path stale : siblings.filter(p -> p.getFileName().toString().startsWith(prefix)).toList())
            {
                LOG.warn("removing {}, an earlier checkpoint a restore in place of an earlier run materialised and " +
                    "never removed (its process ended first)", stale);
                PointInTimeRestore.clear(stale);
                Files.deleteIfExists(stale);
            }
        }
        catch (final IOException | RuntimeException ex)
        {
            LOG.warn("could not remove what earlier restores in place left beside {}: {}", absolute, ex.toString());
        }
    }

    /**
     * Marks every page and disk block whose contents differ between the two points.
     */
    private void compare(final RecoveryPoint wanted, final RecoveryPoint held, final BitSet differing,
        final List<BitSet> changedBlocks)
    {
        final int pageSize = wanted.memory().pageSize();
        if (wanted.memory().pageCount() > Integer.MAX_VALUE)
        {
            throw new IllegalStateException("a guest of " + wanted.memory().pageCount() + " pages is more than a " +
                "restore in place compares");
        }
        for (final VirtualDisk disk : wanted.disks())
        {
            if (disk.sizeBytes() / disk.blockSize() > Integer.MAX_VALUE)
            {
                throw new IllegalStateException("disk " + disk.id() + " of " + disk.sizeBytes() / disk.blockSize() +
                    " blocks is more than a restore in place compares");
            }
        }
        try (NativeMemory.Region other = NativeMemory.allocateDirect(content.byteBuffer().capacity(), 4096))
        {
            final UnsafeBuffer otherBuffer = new UnsafeBuffer(other.byteBuffer());
            markDiffering(pageSize, wanted.memory().pageCount(), (first, count, into) -> wanted.memory().copyOut(first,
                count, into, 0), (first, count, into) -> held.memory().copyOut(first, count, into, 0), otherBuffer,
                differing);
            for (int d = 0; d < wanted.disks().size(); d++)
            {
                final VirtualDisk from = wanted.disks().get(d);
                final VirtualDisk to = held.disks().get(d);
                final int block = from.blockSize();
                final BitSet changed = new BitSet();
                markDiffering(block, from.sizeBytes() / block, (first, count, into) -> from.read(first * block, into, 0,
                    count * block), (first, count, into) -> to.read(first * block, into, 0, count * block), otherBuffer,
                    changed);
                changedBlocks.add(changed);
            }
            if (closed)
            {
                throw new IllegalStateException("the restore was closed while it compared");
            }
        }
    }

    /**
     * Reads a run of units (pages or disk blocks) of one side into a buffer.
     */
    @FunctionalInterface
    private interface Units
    {
        void read(long first, int count, UnsafeBuffer into);
    }

    /**
     * Compares two sides unit by unit, a chunk at a time (the content buffer, then {@code otherBuffer}), and marks the
     * units whose bytes differ; stops early once the restore is closed.
     */
    private void markDiffering(final int unitBytes, final long units, final Units wanted, final Units held,
        final UnsafeBuffer otherBuffer, final BitSet differing)
    {
        final int run = Math.max(1, CHUNK_BYTES / unitBytes);
        final ByteBuffer a = content.byteBuffer().duplicate();
        final ByteBuffer b = otherBuffer.byteBuffer().duplicate();
        for (long first = 0; first < units && !closed; first += run)
        {
            final int count = (int)Math.min(run, units - first);
            wanted.read(first, count, contentBuffer);
            held.read(first, count, otherBuffer);
            for (int i = 0; i < count; i++)
            {
                a.limit((i + 1) * unitBytes).position(i * unitBytes);
                b.limit((i + 1) * unitBytes).position(i * unitBytes);
                if (a.mismatch(b) >= 0)
                {
                    differing.set((int)(first + i));
                }
            }
        }
    }

    private void removeEarlier()
    {
        if (earlierDirectory == null)
        {
            return;
        }
        try
        {
            if (Files.isDirectory(earlierDirectory))
            {
                PointInTimeRestore.clear(earlierDirectory);
                Files.deleteIfExists(earlierDirectory);
            }
        }
        catch (final IOException ex)
        {
            LOG.warn("could not remove {} after a restore in place: {}", earlierDirectory, ex.toString());
        }
    }

    /**
     * Gives back what the restore holds: its buffer, the earlier checkpoint's image and its directory, at once if no
     * preparation runs, else when it ends (a comparison stops at its next chunk; a point-in-time restore under way
     * runs to its end). Does not wait: the session thread closes it on a lost link.
     */
    @Override
    public void close()
    {
        if (closed)
        {
            return;
        }
        closed = true;
        if (preparing == null || prepared)
        {
            release();
        }
    }

    /**
     * @return true while its preparation's thread runs.
     */
    boolean preparing()
    {
        final Thread thread = preparing;
        return thread != null && thread.isAlive();
    }

    /**
     * As {@link #close()}, then waits (up to a minute) for a preparation still running: before the standby's image it
     * reads is closed.
     */
    void closeAndWait()
    {
        close();
        final Thread thread = preparing;
        if (thread != null)
        {
            try
            {
                thread.join(java.util.concurrent.TimeUnit.MINUTES.toMillis(1));
            }
            catch (final InterruptedException ex)
            {
                Thread.currentThread().interrupt();
            }
            if (thread.isAlive())
            {
                LOG.error("VM {}: the restore in place's preparation did not end within a minute of the standby's " +
                    "close", ctx.vmId());
            }
        }
    }

    private synchronized void release()
    {
        if (content.isClosed())
        {
            return;
        }
        if (earlier != null)
        {
            earlier.close();
            earlier = null;
        }
        removeEarlier();
        content.close();
    }
}
