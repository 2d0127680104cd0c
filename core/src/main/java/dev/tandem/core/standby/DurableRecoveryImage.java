package dev.tandem.core.standby;

import dev.tandem.core.wire.FrameType;
import dev.tandem.core.wire.Handshake;
import dev.tandem.vmm.FileVirtualDisk;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.OwnerOnlyFiles;
import dev.tandem.vmm.RecoveryPoint;
import org.agrona.concurrent.UnsafeBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.LongSupplier;
import java.util.stream.Stream;
import java.util.zip.CRC32C;

/**
 * The DURABLE mode's recovery image (DESIGN.md "The standby"): the MEMORY image's parts kept in files of the
 * standby's directory, so that a restarted standby process still holds its recovery point.
 * <ul>
 * <li>{@code memory.img}: the memory replica, a file mapped whole (64-bit offsets; the applier writes pages into the
 *     mapping); the {@code disk-N.img} disk images; and {@code image.meta}: geometry, the epoch the image files hold
 *     whole, its fingerprint and generation, and every component's state, replaced atomically (written beside,
 *     forced, renamed, directory forced) with a CRC32C.</li>
 * <li>{@code journal-NNNNNNNNNNNNNNNN.log}: every committed epoch's records (whole pages, disk writes, component
 *     states, as its {@link EpochLog} holds them, so applying one twice does no harm) then a commit record whose
 *     CRC32C covers them and the commit's epoch, fingerprint and generation; forced before the epoch's ack.</li>
 * </ul>
 * The applier updates the image files from the committed epochs behind the acks; every
 * {@link StandbyContext#imageCheckpointBytes} of journal (or {@link StandbyContext#imageCheckpointIntervalNs}) it
 * forces them (fsync, which on Linux writes back a shared mapping's
 * dirty pages as {@code msync} would), writes {@code image.meta} at the applied epoch and deletes the journal
 * segments that only hold epochs up to it. On open, the journal's whole epochs newer than the meta's are applied in
 * order; a torn tail, a bad CRC or a record that cannot be right ends the replay at the last whole epoch, and the log
 * says what was dropped. A write or force that fails is never retried: the image is broken from then on and says why
 * ({@link #brokenReason()}), and no later epoch is acknowledged (the PostgreSQL fsync lesson).
 * <p>
 * Threads: {@link #commit} on the session's, {@link #applied} and the writes on the applier's (or the session's for a
 * first baseline written in place, while the applier is idle).
 */
final class DurableRecoveryImage extends MemoryRecoveryImage
{
    private static final Logger LOG = LoggerFactory.getLogger(DurableRecoveryImage.class);

    static final String META = "image.meta";
    static final String MEMORY_IMAGE = "memory.img";
    private static final String JOURNAL_PREFIX = "journal-";
    private static final String JOURNAL_SUFFIX = ".log";
    /** "TNDMIMG1". */
    private static final long MAGIC = 0x31474d494d444e54L;
    private static final int FORMAT = 1;
    /** The record type of an epoch's commit record: no frame type has it. */
    private static final int COMMIT = -1;
    private static final int COMMIT_DATA = 24;

    private final StandbyContext ctx;
    private final Path directory;
    private final LongSupplier generation;
    private final int maxRecord;
    /** A journal segment is closed (and deleted once the image holds its epochs) past this size. */
    private final long segmentLimit;
    private final CRC32C crc = new CRC32C();
    private final ByteBuffer header = ByteBuffer.allocateDirect(EpochLog.RECORD_HEADER + COMMIT_DATA + 8)
        .order(ByteOrder.LITTLE_ENDIAN);
    private final ByteBuffer padding = ByteBuffer.allocateDirect(8);
    /** Closed segments and the newest epoch each holds, oldest first: the applier deletes them behind the image. */
    private final ConcurrentLinkedQueue<Segment> closedSegments = new ConcurrentLinkedQueue<>();
    private FileChannel journal;
    private Path journalPath;
    private long segmentSequence;
    private long segmentBytes;
    private long segmentLastEpoch;
    /** Journal bytes written since the image was last forced (session writes, applier reads and resets). */
    private final java.util.concurrent.atomic.AtomicLong journalSinceCheckpoint = new java.util.concurrent.atomic.AtomicLong();
    private long lastCheckpointNs;
    /** Forces the image files and replaces the meta beside the applier, one checkpoint at a time. */
    private final java.util.concurrent.ExecutorService checkpointer =
        java.util.concurrent.Executors.newSingleThreadExecutor(task ->
        {
            final Thread thread = new Thread(task, "tandem-image-checkpoint");
            thread.setDaemon(true);
            return thread;
        });
    private volatile java.util.concurrent.Future<?> checkpointing;
    private volatile String broken;
    private long recoveredEpoch;
    private long recoveredFingerprint;
    private String recoveryReport = "a new image";

    private record Segment(Path path, long lastEpoch)
    {
    }

    /**
     * Opens the image in the standby's directory, or creates it: maps the memory image, opens the disk images,
     * reads {@code image.meta} and replays the journal to its newest whole epoch, then forces that state and starts a
     * new journal. A failure releases whatever was opened.
     *
     * @param ctx        the standby's configuration, concluded.
     * @param generation the generation the standby serves.
     * @throws UncheckedIOException if the directory holds another VM's image, an unknown format, or cannot be read
     *                              or written, naming the file and what is wrong.
     */
    DurableRecoveryImage(final StandbyContext ctx, final LongSupplier generation)
    {
        super(ctx, generation, () -> MemoryReplica.mapped(ctx.directory().resolve(MEMORY_IMAGE), ctx.pageSize(),
            ctx.pageCount()));
        this.ctx = ctx;
        this.directory = ctx.directory();
        this.generation = generation;
        this.maxRecord = ctx.maxFramePayload();
        this.segmentLimit = Math.max(1 << 20, ctx.imageCheckpointBytes() / 4);
        try
        {
            open();
        }
        catch (final IOException | RuntimeException ex)
        {
            close();
            throw ex instanceof UncheckedIOException unchecked ? unchecked :
                ex instanceof IOException io ? new UncheckedIOException(io.getMessage(), io) : (RuntimeException)ex;
        }
    }

    private void open() throws IOException
    {
        final Path meta = directory.resolve(META);
        final List<Path> segments = segments();
        if (Files.exists(meta))
        {
            readMeta(meta);
            recoveryReport = "image of epoch " + recoveredEpoch;
        }
        else if (!segments.isEmpty())
        {
            throw new IOException("the standby directory " + directory + " holds a journal (" +
                segments.get(0).getFileName() + ") but no " + META + ": it is not a whole DURABLE image; move it away " +
                "or start on an empty directory");
        }
        final long fromImage = recoveredEpoch;
        int replayed = 0;
        String dropped = null;
        for (final Path segment : segments)
        {
            final Replay replay = replay(segment);
            replayed += replay.epochs;
            if (replay.dropped != null)
            {
                dropped = segment.getFileName() + ": " + replay.dropped;
                break;
            }
        }
        if (replayed > 0 || dropped != null)
        {
            recoveryReport = "image of epoch " + fromImage + ", " + replayed + " epoch(s) replayed from the " +
                "journal to epoch " + recoveredEpoch + (dropped == null ? "" : "; replay ended at " + dropped);
        }
        if (dropped != null)
        {
            LOG.warn("standby of VM {}: the journal ends in damage, recovered to epoch {}: {}", ctx.vmId(),
                recoveredEpoch, dropped);
        }
        epoch(recoveredEpoch);
        if (!segments.isEmpty() || !Files.exists(meta))
        {
            // the recovered state becomes the image (a replayed epoch is in the files only once forced), and the
            // journal starts empty: nothing damaged is read twice
            checkpoint(recoveredEpoch, recoveredFingerprint);
            for (final Path segment : segments)
            {
                Files.deleteIfExists(segment);
            }
        }
        segmentSequence = segments.isEmpty() ? 1 : sequenceOf(segments.get(segments.size() - 1)) + 1;
        openSegment();
        lastCheckpointNs = ctx.nanoClock().nanoTime();
        if (recoveredEpoch > 0)
        {
            LOG.info("standby of VM {} recovered epoch {} from {}: {}", ctx.vmId(), recoveredEpoch, directory,
                recoveryReport);
        }
    }

    @Override
    public long recoveredEpoch()
    {
        return recoveredEpoch;
    }

    @Override
    public long recoveredFingerprint()
    {
        return recoveredFingerprint;
    }

    @Override
    public String recoveryReport()
    {
        return recoveryReport;
    }

    /**
     * Before a promoted guest takes the image files over (the target may run the guest on the mapped memory and the
     * disk images in place), the directory stops being a recovery image: {@code image.meta} and the journal are
     * deleted and the directory forced, so a standby started on it later sees no recovery point (and gets a whole
     * baseline) rather than the running guest's files labelled as an old epoch.
     */
    @Override
    public void resuming(final boolean resumingNow)
    {
        if (resumingNow)
        {
            // a checkpoint under way would write the meta back after it is deleted below
            awaitCheckpoint();
            checkpointer.shutdown();
            try
            {
                if (journal != null)
                {
                    journal.close();
                    journal = null;
                }
                Files.deleteIfExists(directory.resolve(META));
                for (final Path segment : segments())
                {
                    Files.deleteIfExists(segment);
                }
                try (FileChannel dir = FileChannel.open(directory, StandardOpenOption.READ))
                {
                    dir.force(true);
                }
            }
            catch (final IOException ex)
            {
                throw new UncheckedIOException("cannot give up the DURABLE image in " + directory + " before the " +
                    "promoted guest takes its files over; not resuming the guest on them", ex);
            }
        }
        super.resuming(resumingNow);
    }

    @Override
    public String brokenReason()
    {
        return broken;
    }

    @Override
    public void commit(final EpochLog log) throws IOException
    {
        if (broken != null)
        {
            throw new IOException(broken);
        }
        try
        {
            if (log.inPlace)
            {
                // the pages and the disk copy went straight into the files: they are durable before the ack too
                replica().force();
                for (final FileVirtualDisk disk : diskImages())
                {
                    disk.force();
                }
            }
            final long start = segmentBytes;
            crc.reset();
            log.replay(this::journalRecord);
            // the commit record: {COMMIT, length, epoch, fingerprint, generation, group bytes, CRC32C, 0}; the CRC
            // covers the epoch's records and this record from its epoch to its group bytes
            header.clear();
            header.putInt(COMMIT).putInt(COMMIT_DATA).putLong(log.epoch).putLong(log.fingerprint)
                .putLong(generation.getAsLong()).putLong(segmentBytes - start);
            header.flip().position(8);
            crc.update(header);
            header.limit(EpochLog.RECORD_HEADER + COMMIT_DATA);
            header.putInt(EpochLog.RECORD_HEADER + 16, (int)crc.getValue());
            header.putInt(EpochLog.RECORD_HEADER + 20, 0);
            header.position(0);
            writeJournal(header);
            journal.force(false);
            segmentLastEpoch = log.epoch;
            journalSinceCheckpoint.addAndGet(segmentBytes - start);
            if (segmentBytes >= segmentLimit)
            {
                closedSegments.add(new Segment(journalPath, segmentLastEpoch));
                journal.close();
                segmentSequence++;
                openSegment();
            }
        }
        catch (final IOException | RuntimeException ex)
        {
            broken = "the DURABLE image in " + directory + " could not make epoch " + log.epoch + " durable (" + ex +
                "); a failed write or fsync is never retried: this standby acknowledges nothing more. Restart it " +
                "on its directory (it recovers its last durable epoch) or on an empty one";
            throw new IOException(broken, ex);
        }
    }

    private void journalRecord(final int type, final long a, final long b, final UnsafeBuffer buffer,
        final ByteBuffer data, final int index, final int length) throws IOException
    {
        header.clear();
        header.putInt(type).putInt(length).putLong(a).putLong(b).flip();
        crc.update(header.duplicate());
        writeJournal(header);
        final ByteBuffer bytes = data.duplicate();
        crc.update(bytes.duplicate());
        writeJournal(bytes);
        final int pad = align8(length) - length;
        if (pad > 0)
        {
            padding.clear().limit(pad);
            crc.update(padding.duplicate());
            writeJournal(padding);
        }
    }

    private void writeJournal(final ByteBuffer src) throws IOException
    {
        while (src.hasRemaining())
        {
            segmentBytes += journal.write(src, segmentBytes);
        }
    }

    @Override
    public void applied(final EpochLog log) throws IOException
    {
        if (broken != null || checkpointing != null && !checkpointing.isDone())
        {
            // one checkpoint at a time; the journal keeps everything until the next one
            return;
        }
        final long now = ctx.nanoClock().nanoTime();
        if (journalSinceCheckpoint.get() < ctx.imageCheckpointBytes() &&
            now - lastCheckpointNs < ctx.imageCheckpointIntervalNs())
        {
            return;
        }
        // the image holds epoch log.epoch whole now (every write of it is in the page cache, so the forces below
        // carry it; writes of later epochs the applier makes meanwhile may be carried too, which a replay from this
        // epoch repeats harmlessly): the meta is taken here, the slow forces run beside the applier, which would
        // otherwise hold the next epochs' decoding (and with it their acks) for the length of an fsync of the image
        final long epoch = log.epoch;
        final ByteBuffer meta = encodeMeta(epoch, log.fingerprint);
        journalSinceCheckpoint.set(0);
        lastCheckpointNs = now;
        checkpointing = checkpointer.submit(() ->
        {
            try
            {
                forceImage();
                writeMeta(meta);
                for (Segment segment = closedSegments.peek(); segment != null && segment.lastEpoch <= epoch;
                    segment = closedSegments.peek())
                {
                    Files.deleteIfExists(segment.path);
                    closedSegments.poll();
                }
            }
            catch (final IOException | RuntimeException ex)
            {
                // after a failed fsync the kernel may have dropped the dirty pages it could not write: a later fsync
                // that succeeds says nothing about them, so the image is never forced again and the journal is kept
                broken = "the DURABLE image in " + directory + " could not be forced at epoch " + epoch + " (" + ex +
                    "); a failed fsync is never retried: this standby acknowledges nothing more. Restart it on its " +
                    "directory (it replays the journal, which still holds every acknowledged epoch)";
                LOG.error("standby of VM {}: {}", ctx.vmId(), broken, ex);
            }
            return null;
        });
    }

    /**
     * Waits for a checkpoint under way (before the files are closed or handed over).
     */
    private void awaitCheckpoint()
    {
        final java.util.concurrent.Future<?> pending = checkpointing;
        if (pending != null)
        {
            try
            {
                pending.get();
            }
            catch (final java.util.concurrent.ExecutionException ex)
            {
                // recorded as broken by the task itself
            }
            catch (final InterruptedException ex)
            {
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * Forces the image files and records that they hold {@code epoch} whole (on the caller's thread: the launch).
     */
    private void checkpoint(final long epoch, final long fingerprint) throws IOException
    {
        journalSinceCheckpoint.set(0);
        forceImage();
        writeMeta(encodeMeta(epoch, fingerprint));
    }

    private void forceImage() throws IOException
    {
        replica().force();
        for (final FileVirtualDisk disk : diskImages())
        {
            disk.force();
        }
    }

    /**
     * @return {@code image.meta}'s bytes for the image as of {@code epoch}: geometry, epoch, fingerprint,
     *         generation and every component's state, then a CRC32C.
     */
    private ByteBuffer encodeMeta(final long epoch, final long fingerprint)
    {
        final List<RecoveryPoint.ComponentState> states = recoveryPoint().components();
        final byte[] vmId = ctx.vmId().getBytes(StandardCharsets.UTF_8);
        int size = 8 + 4 + 4 + vmId.length + 4 + 8 + 4 + ctx.disks().size() * 16 + 24 + 4;
        for (final RecoveryPoint.ComponentState state : states)
        {
            size += 12 + state.state().capacity();
        }
        final ByteBuffer meta = ByteBuffer.allocate(size + 4).order(ByteOrder.LITTLE_ENDIAN);
        meta.putLong(MAGIC).putInt(FORMAT).putInt(vmId.length).put(vmId).putInt(ctx.pageSize())
            .putLong(ctx.pageCount()).putInt(ctx.disks().size());
        for (final Handshake.Disk disk : ctx.disks())
        {
            meta.putInt(disk.id()).putInt(disk.blockSize()).putLong(disk.sizeBytes());
        }
        meta.putLong(epoch).putLong(fingerprint).putLong(generation.getAsLong()).putInt(states.size());
        for (final RecoveryPoint.ComponentState state : states)
        {
            final byte[] bytes = new byte[state.state().capacity()];
            state.state().getBytes(0, bytes);
            meta.putInt(state.id()).putInt(state.version()).putInt(bytes.length).put(bytes);
        }
        final CRC32C check = new CRC32C();
        check.update(meta.array(), 0, meta.position());
        meta.putInt((int)check.getValue());
        meta.flip();
        return meta;
    }

    /**
     * Replaces {@code image.meta} atomically: written beside, forced, renamed, the directory forced.
     */
    private void writeMeta(final ByteBuffer meta) throws IOException
    {
        final Path next = directory.resolve(META + ".next");
        try (FileChannel out = OwnerOnlyFiles.open(next, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
            StandardOpenOption.TRUNCATE_EXISTING))
        {
            while (meta.hasRemaining())
            {
                out.write(meta);
            }
            out.force(true);
        }
        Files.move(next, directory.resolve(META), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        try (FileChannel dir = FileChannel.open(directory, StandardOpenOption.READ))
        {
            // the rename itself is durable only once the directory is
            dir.force(true);
        }
    }

    private void readMeta(final Path path) throws IOException
    {
        final ByteBuffer meta = ByteBuffer.wrap(Files.readAllBytes(path)).order(ByteOrder.LITTLE_ENDIAN);
        final String where = "the standby directory " + directory + " holds " + META;
        try
        {
            if (meta.remaining() < 16 || meta.getLong(0) != MAGIC)
            {
                throw new IOException(where + " that is not a Tandem image (no magic): move it away or start on " +
                    "an empty directory");
            }
            final CRC32C check = new CRC32C();
            check.update(meta.array(), 0, meta.limit() - 4);
            if ((int)check.getValue() != meta.getInt(meta.limit() - 4))
            {
                throw new IOException(where + " with a bad CRC32C: it is damaged; the image cannot be trusted");
            }
            meta.position(8);
            final int format = meta.getInt();
            if (format != FORMAT)
            {
                throw new IOException(where + " of format " + format + "; this build reads format " + FORMAT);
            }
            final byte[] vmId = new byte[meta.getInt()];
            meta.get(vmId);
            final String heldVm = new String(vmId, StandardCharsets.UTF_8);
            if (!heldVm.equals(ctx.vmId()))
            {
                throw new IOException(where + " of VM " + heldVm + ", not of VM " + ctx.vmId() + ": a standby " +
                    "directory serves one guest");
            }
            final int pageSize = meta.getInt();
            final long pageCount = meta.getLong();
            final List<Handshake.Disk> disks = new ArrayList<>();
            for (int i = meta.getInt(); i > 0; i--)
            {
                disks.add(new Handshake.Disk(meta.getInt(), meta.getInt(), meta.getLong()));
            }
            if (pageSize != ctx.pageSize() || pageCount != ctx.pageCount() || !disks.equals(ctx.disks()))
            {
                throw new IOException(where + " of " + pageCount + " pages of " + pageSize + " bytes and disks " +
                    disks + ", but this standby is configured for " + ctx.pageCount() + " of " + ctx.pageSize() +
                    " and " + ctx.disks());
            }
            recoveredEpoch = meta.getLong();
            recoveredFingerprint = meta.getLong();
            meta.getLong();
            for (int i = meta.getInt(); i > 0; i--)
            {
                final int id = meta.getInt();
                final int version = meta.getInt();
                final byte[] state = new byte[meta.getInt()];
                meta.get(state);
                putComponent(id, version, new UnsafeBuffer(state), 0, state.length);
            }
        }
        catch (final java.nio.BufferUnderflowException | NegativeArraySizeException ex)
        {
            throw new IOException(where + " that ends early: it is damaged", ex);
        }
    }

    /**
     * What one segment's replay did.
     *
     * @param epochs  whole epochs applied.
     * @param dropped what ended it early, null if it read to its end.
     */
    private record Replay(int epochs, String dropped)
    {
    }

    /**
     * Applies the segment's whole epochs newer than the image, in order: each epoch's records are verified against
     * its commit record before any of them is applied.
     */
    private Replay replay(final Path segment) throws IOException
    {
        int epochs = 0;
        try (FileChannel in = FileChannel.open(segment, StandardOpenOption.READ);
            NativeMemory.Region region = NativeMemory.allocateDirect(EpochLog.RECORD_HEADER + maxRecord + 16, 4096))
        {
            final ByteBuffer bytes = region.byteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            final UnsafeBuffer buffer = new UnsafeBuffer(bytes);
            final long end = in.size();
            long groupStart = 0;
            while (groupStart < end)
            {
                // pass 1: the epoch's records up to its commit record, and their CRC32C
                final CRC32C check = new CRC32C();
                long position = groupStart;
                long commitAt = -1;
                while (position < end)
                {
                    if (end - position < EpochLog.RECORD_HEADER)
                    {
                        return new Replay(epochs, "a torn record at byte " + position + " (the tail of an epoch " +
                            "written before the crash, never acknowledged)");
                    }
                    read(in, bytes, position, EpochLog.RECORD_HEADER);
                    final int type = bytes.getInt(0);
                    final int length = bytes.getInt(4);
                    if (type == COMMIT)
                    {
                        commitAt = position;
                        break;
                    }
                    if (length < 0 || length > maxRecord || position + EpochLog.RECORD_HEADER + align8(length) > end)
                    {
                        return new Replay(epochs, (position + EpochLog.RECORD_HEADER + align8(length) > end &&
                            length >= 0 && length <= maxRecord ? "a torn record" : "a record of " + length +
                            " bytes, which no epoch holds,") + " at byte " + position + "; what follows is not " +
                            "applied");
                    }
                    final int total = EpochLog.RECORD_HEADER + align8(length);
                    read(in, bytes, position, total);
                    bytes.limit(total).position(0);
                    check.update(bytes);
                    position += total;
                }
                if (commitAt < 0)
                {
                    return new Replay(epochs, "an epoch without its commit record from byte " + groupStart +
                        " (written before the crash, never acknowledged)");
                }
                if (end - commitAt < EpochLog.RECORD_HEADER + COMMIT_DATA)
                {
                    return new Replay(epochs, "a torn commit record at byte " + commitAt);
                }
                read(in, bytes, commitAt, EpochLog.RECORD_HEADER + COMMIT_DATA);
                final long epoch = bytes.getLong(8);
                final long fingerprint = bytes.getLong(16);
                final long groupBytes = bytes.getLong(EpochLog.RECORD_HEADER + 8);
                final int commitLength = bytes.getInt(4);
                final int expectedCrc = bytes.getInt(EpochLog.RECORD_HEADER + 16);
                bytes.limit(EpochLog.RECORD_HEADER + 16).position(8);
                check.update(bytes);
                if (commitLength != COMMIT_DATA || groupBytes != commitAt - groupStart ||
                    expectedCrc != (int)check.getValue())
                {
                    return new Replay(epochs, "epoch " + epoch + " from byte " + groupStart + " fails its CRC32C " +
                        "(damaged on disk); it and every later record are not applied");
                }
                if (epoch > recoveredEpoch)
                {
                    // pass 2: apply what was verified
                    for (long at = groupStart; at < commitAt; )
                    {
                        read(in, bytes, at, EpochLog.RECORD_HEADER);
                        final int length = bytes.getInt(4);
                        read(in, bytes, at, EpochLog.RECORD_HEADER + length);
                        bytes.limit(EpochLog.RECORD_HEADER + length).position(EpochLog.RECORD_HEADER);
                        final String wrong = applyRecord(bytes.getInt(0), bytes.getLong(8), bytes.getLong(16), buffer,
                            bytes, length);
                        if (wrong != null)
                        {
                            return new Replay(epochs, "epoch " + epoch + " holds " + wrong + " at byte " + at +
                                "; the image may hold part of it: recovered only up to the epoch before");
                        }
                        at += EpochLog.RECORD_HEADER + align8(length);
                    }
                    recoveredEpoch = epoch;
                    recoveredFingerprint = fingerprint;
                    epochs++;
                }
                groupStart = commitAt + EpochLog.RECORD_HEADER + COMMIT_DATA;
            }
        }
        return new Replay(epochs, null);
    }

    /**
     * @return null if applied, else what is wrong with the record (checked before anything of it is written).
     */
    private String applyRecord(final int type, final long a, final long b, final UnsafeBuffer buffer,
        final ByteBuffer data, final int length) throws IOException
    {
        if (type == FrameType.PAGES.code())
        {
            if (b <= 0 || a < 0 || a > ctx.pageCount() - b || b * ctx.pageSize() != length)
            {
                return "pages [" + a + ", +" + b + ") of " + length + " bytes outside the guest";
            }
            writePages(a, (int)b, buffer, EpochLog.RECORD_HEADER);
        }
        else if (type == FrameType.DISK_WRITE.code())
        {
            final FileVirtualDisk disk = disk((int)a);
            if (disk == null || b < 0 || b > disk.sizeBytes() - length)
            {
                return "a write of " + length + " bytes at " + b + " of disk " + a + ", outside the guest's disks";
            }
            writeDisk((int)a, b, data);
        }
        else if (type == FrameType.COMPONENT.code())
        {
            putComponent((int)a, (int)b, buffer, EpochLog.RECORD_HEADER, length);
        }
        else if (type != FrameType.DISK_FLUSH.code())
        {
            return "a record of unknown type " + type;
        }
        return null;
    }

    private static void read(final FileChannel in, final ByteBuffer bytes, final long position, final int length)
        throws IOException
    {
        bytes.clear().limit(length);
        while (bytes.hasRemaining())
        {
            if (in.read(bytes, position + bytes.position()) < 0)
            {
                throw new IOException("journal ends early at byte " + (position + bytes.position()));
            }
        }
        bytes.flip();
    }

    private List<Path> segments() throws IOException
    {
        try (Stream<Path> files = Files.list(directory))
        {
            return files.filter(p -> p.getFileName().toString().startsWith(JOURNAL_PREFIX) &&
                p.getFileName().toString().endsWith(JOURNAL_SUFFIX)).sorted().toList();
        }
    }

    private static long sequenceOf(final Path segment)
    {
        final String name = segment.getFileName().toString();
        try
        {
            return Long.parseLong(name.substring(JOURNAL_PREFIX.length(), name.length() - JOURNAL_SUFFIX.length()));
        }
        catch (final NumberFormatException ex)
        {
            throw new UncheckedIOException(new IOException("journal segment " + segment + " has no sequence number"));
        }
    }

    private void openSegment() throws IOException
    {
        journalPath = directory.resolve(String.format(java.util.Locale.ROOT, "%s%016d%s", JOURNAL_PREFIX,
            segmentSequence, JOURNAL_SUFFIX));
        journal = OwnerOnlyFiles.open(journalPath, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        segmentBytes = 0;
        try (FileChannel dir = FileChannel.open(directory, StandardOpenOption.READ))
        {
            dir.force(true);
        }
    }

    private static int align8(final int value)
    {
        return (value + 7) & ~7;
    }

    @Override
    public void close()
    {
        awaitCheckpoint();
        checkpointer.shutdownNow();
        try
        {
            // its thread is gone when the image is
            checkpointer.awaitTermination(10, java.util.concurrent.TimeUnit.SECONDS);
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
        }
        try
        {
            if (journal != null)
            {
                journal.close();
            }
        }
        catch (final IOException ex)
        {
            LOG.warn("could not close the journal {}: {}", journalPath, ex.toString());
        }
        super.close();
    }
}
