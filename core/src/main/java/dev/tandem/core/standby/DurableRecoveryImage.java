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
 * <li>{@code journal-NNNNNNNNNNNNNNNN.log}: every committed epoch's records (whole pages, LZ4-compressed where that
 *     saves an eighth or more, disk writes, component
 *     states, as its {@link EpochLog} holds them, so applying one twice does no harm) then a commit record whose
 *     CRC32C covers them and the commit's epoch, fingerprint and generation; forced before the epoch's ack.</li>
 * </ul>
 * The applier updates the image files from the committed epochs behind the acks; every
 * {@link StandbyContext#imageCheckpointBytes} of journal (or {@link StandbyContext#imageCheckpointIntervalNs}) it
 * forces them (fsync, which on Linux writes back a shared mapping's
 * dirty pages as {@code msync} would), writes {@code image.meta} at the applied epoch and deletes the journal
 * segments that only hold epochs up to it. With a retention window the journal is kept for the window instead, and
 * the image files are copied into a base image once per quarter of it, the first as soon as the first epoch is
 * applied (the window starts there). On open, the journal's whole epochs newer than the meta's are applied in
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
    static final String JOURNAL_PREFIX = "journal-";
    static final String BASE_PREFIX = "base-";
    static final String JOURNAL_SUFFIX = ".log";
    /** "TNDMIMG1". */
    private static final long MAGIC = 0x31474d494d444e54L;
    private static final int FORMAT = 1;
    /** Marks a record whose bytes are LZ4-compressed whole pages. */
    private static final int COMPRESSED = 0x4000_0000;
    private static final net.jpountz.lz4.LZ4Factory LZ4 = net.jpountz.lz4.LZ4Factory.fastestInstance();
    /** The record type of an epoch's commit record: no frame type has it. */
    private static final int COMMIT = -1;
    /** The commit record's data after its header {COMMIT, length, epoch, fingerprint}. */
    private static final int COMMIT_DATA = 32;
    private static final int COMMIT_GENERATION = EpochLog.RECORD_HEADER;
    private static final int COMMIT_GROUP_BYTES = EpochLog.RECORD_HEADER + 8;
    private static final int COMMIT_MILLIS = EpochLog.RECORD_HEADER + 16;
    private static final int COMMIT_CRC = EpochLog.RECORD_HEADER + 24;
    private static final int COMMIT_RECORD = EpochLog.RECORD_HEADER + COMMIT_DATA;

    private final StandbyContext ctx;
    /** Sees each force, rename and delete (a test's power-loss model); {@link StorageWitness#NONE} otherwise. */
    private final StorageWitness witness;
    /** The session is forcing the journal (an ack waits for it): an image force holds its next range back. */
    private volatile boolean journalForcing;
    /** The longest an image force waits for one journal force before it writes its next range anyway. */
    private static final long JOURNAL_FIRST_MAX_NS = java.util.concurrent.TimeUnit.MILLISECONDS.toNanos(20);
    private final Path directory;
    private final LongSupplier generation;
    private final int maxRecord;
    /** A journal segment is closed (and deleted once the image holds its epochs) past this size. */
    private final long segmentLimit;
    private final CRC32C crc = new CRC32C();
    private final ByteBuffer header = ByteBuffer.allocateDirect(COMMIT_RECORD + 8)
        .order(ByteOrder.LITTLE_ENDIAN);
    private final ByteBuffer padding = ByteBuffer.allocateDirect(8);
    /** A field: a method reference made per epoch would allocate on the session's thread. */
    private final EpochLog.Visitor journalRecord = this::journalRecord;
    /** Where a page record is compressed before it is journaled (the session's thread). */
    private final ByteBuffer compressedPages;
    /** Closed segments and the newest epoch each holds, oldest first: the applier deletes them behind the image. */
    private final ConcurrentLinkedQueue<Segment> closedSegments = new ConcurrentLinkedQueue<>();
    private FileChannel journal;
    private Path journalPath;
    private long segmentSequence;
    private long segmentBytes;
    private long segmentLastEpoch;
    private long segmentLastMillis;
    /** When the newest base image was taken (wall clock), 0 before the first. */
    private long newestBaseMillis;
    /** The newest base image's replay-from epoch, -1 before the first. */
    private long newestBaseEpoch = -1;
    /**
     * A retention window with no base image yet: the window starts at the first base, so the first applied epoch
     * checkpoints the image at once rather than after {@code imageCheckpointIntervalNs} (30 s by default), during
     * which no epoch could be restored. The applier's thread only.
     */
    private boolean firstBaseWanted;
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
    /** The newest epoch a replay applies: a restore to an earlier point stops there. */
    private final long replayUpTo;
    /** Replayed for a guest to resume at once: see the constructor. */
    private final boolean toResume;
    private String recoveryReport = "a new image";

    /**
     * A closed journal segment: the newest epoch it holds and when that was committed.
     */
    private record Segment(Path path, long lastEpoch, long lastMillis)
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
        this(ctx, generation, Long.MAX_VALUE, false);
    }

    /**
     * As {@link #DurableRecoveryImage(StandbyContext, LongSupplier)}, replaying the journal only up to
     * {@code replayUpTo} (a point-in-time restore).
     *
     * @param toResume the image is resumed as a guest right away (a promotion from an earlier checkpoint) and never
     *                 serves as a recovery image: the replayed state is not checkpointed (forced and labelled), which
     *                 would cost a write-back of the whole memory image for files the guest takes over anyway.
     */
    DurableRecoveryImage(final StandbyContext ctx, final LongSupplier generation, final long replayUpTo,
        final boolean toResume)
    {
        super(withoutUnfinishedImage(ctx), generation,
            () -> MemoryReplica.mapped(ctx.directory().resolve(MEMORY_IMAGE), ctx.pageSize(), ctx.pageCount()));
        this.replayUpTo = replayUpTo;
        this.toResume = toResume;
        this.ctx = ctx;
        this.witness = ctx.storageWitness();
        this.directory = ctx.directory();
        this.generation = generation;
        this.maxRecord = ctx.maxFramePayload();
        this.segmentLimit = Math.max(1 << 20, ctx.imageCheckpointBytes() / 4);
        this.compressedPages = ByteBuffer.allocateDirect(LZ4.fastCompressor().maxCompressedLength(maxRecord));
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

    /**
     * A directory with image files but neither {@code image.meta} nor a journal holds no recovery point: the files
     * are what a crash (a power loss) left of an image being created, their sizes perhaps not yet on the disk. They
     * are removed, so the image is created afresh rather than refused as another disk's.
     */
    private static StandbyContext withoutUnfinishedImage(final StandbyContext ctx)
    {
        final Path directory = ctx.directory();
        try
        {
            if (!Files.isDirectory(directory) || Files.exists(directory.resolve(META)))
            {
                return ctx;
            }
            try (Stream<Path> files = Files.list(directory))
            {
                if (files.anyMatch(p -> p.getFileName().toString().startsWith(JOURNAL_PREFIX)))
                {
                    // refused by name when the image opens: a journal without its meta is not left to chance
                    return ctx;
                }
            }
            final List<Path> unfinished = new ArrayList<>();
            unfinished.add(directory.resolve(MEMORY_IMAGE));
            for (final Handshake.Disk disk : ctx.disks())
            {
                unfinished.add(diskImagePath(ctx, disk.id()));
            }
            for (final Path file : unfinished)
            {
                if (Files.deleteIfExists(file))
                {
                    LOG.info("standby of VM {}: {} holds no {} or journal: {} is what was left of an image never " +
                        "completed, removed", ctx.vmId(), directory, META, file.getFileName());
                }
            }
            return ctx;
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException("cannot clear the unfinished DURABLE image in " + directory, ex);
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
                segments.get(0).getFileName() + ") but no " + META + ": it is not a whole DURABLE image (a " +
                "promotion gives the image up to the guest it resumes by deleting " + META + " first, so a host that " +
                "stopped during that leaves this: the files are then that guest's, no recovery point); move it away " +
                "or start on an empty directory");
        }
        final long fromImage = recoveredEpoch;
        int replayed = 0;
        String dropped = null;
        final List<Segment> kept = new ArrayList<>();
        for (int i = 0; i < segments.size(); i++)
        {
            final Path segment = segments.get(i);
            final Replay replay = replay(segment);
            replayed += replay.epochs();
            kept.add(new Segment(segment, replay.lastEpoch(), replay.lastMillis()));
            if (replay.dropped() != null)
            {
                dropped = segment.getFileName() + ": " + replay.dropped();
                // what follows the damage is never read again: the segment is cut back to its last whole epoch
                // and later ones (none in practice: a segment is closed only after a whole epoch) go
                try (FileChannel cut = FileChannel.open(segment, StandardOpenOption.WRITE))
                {
                    cut.truncate(replay.wholeBytes());
                    witness.forcing(segment);
                    cut.force(true);
                }
                for (final Path later : segments.subList(i + 1, segments.size()))
                {
                    delete(later);
                }
                break;
            }
            if (recoveredEpoch >= replayUpTo)
            {
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
        if (!toResume && (!segments.isEmpty() || !Files.exists(meta)))
        {
            // the recovered state becomes the image (a replayed epoch is in the files only once forced)
            checkpoint(recoveredEpoch, recoveredFingerprint);
            if (retains())
            {
                // kept for restores within the retention window; the policy drops them as they age
                closedSegments.addAll(kept.stream().filter(segment -> Files.exists(segment.path())).toList());
                dropAged(recoveredEpoch);
            }
            else
            {
                for (final Path segment : segments)
                {
                    delete(segment);
                }
            }
        }
        firstBaseWanted = retains() && !toResume && bases(directory).isEmpty();
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
     * Before a promoted guest runs on the image files (the target may run it on the mapped memory and the disk
     * images in place; a two-step target has built it, paused, by now), the directory stops being a recovery image: {@code image.meta} and the journal are
     * deleted and the directory forced, so a standby started on it later sees no recovery point (and gets a whole
     * baseline) rather than the running guest's files labelled as an old epoch.
     */
    @Override
    public void giveUp()
    {
        // a checkpoint under way would write the meta back after it is deleted below
        stopCheckpoints();
        try
        {
            if (journal != null)
            {
                journal.close();
                journal = null;
            }
            delete(directory.resolve(META));
            for (final Path segment : segments())
            {
                delete(segment);
            }
            forceDirectory(directory);
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException("cannot give up the DURABLE image in " + directory + " before the " +
                "promoted guest takes its files over; not resuming the guest on them", ex);
        }
    }

    @Override
    public void held(final long epoch, final long fingerprint) throws IOException
    {
        recoveredEpoch = epoch;
        recoveredFingerprint = fingerprint;
        checkpoint(epoch, fingerprint);
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
                forceImage();
            }
            final long start = segmentBytes;
            crc.reset();
            log.replay(journalRecord);
            // the commit record: {COMMIT, length, epoch, fingerprint, generation, group bytes, wall-clock millis,
            // CRC32C, 0}; the CRC covers the epoch's records and this record from its epoch to its time
            header.clear();
            final long millis = System.currentTimeMillis();
            header.putInt(COMMIT).putInt(COMMIT_DATA).putLong(log.epoch).putLong(log.fingerprint)
                .putLong(generation.getAsLong()).putLong(segmentBytes - start).putLong(millis);
            header.flip().position(8);
            crc.update(header);
            header.limit(COMMIT_RECORD);
            header.putInt(COMMIT_CRC, (int)crc.getValue());
            header.putInt(COMMIT_CRC + 4, 0);
            header.position(0);
            writeJournal(header);
            witness.forcing(journalPath);
            journalForcing = true;
            try
            {
                journal.force(false);
            }
            finally
            {
                journalForcing = false;
            }
            segmentLastEpoch = log.epoch;
            segmentLastMillis = millis;
            journalSinceCheckpoint.addAndGet(segmentBytes - start);
            if (segmentBytes >= segmentLimit)
            {
                closedSegments.add(new Segment(journalPath, segmentLastEpoch, segmentLastMillis));
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
        ByteBuffer bytes = data;
        int recordType = type;
        int recordLength = length;
        if (type == FrameType.PAGES.code())
        {
            // whole pages in LZ4: a guest's pages are mostly alike or empty, and the journal (and with a retention
            // window, the disk it keeps) grows with every epoch's pages, not with the wire's deltas
            compressedPages.clear();
            final int compressed = LZ4.fastCompressor().compress(data, data.position(), length, compressedPages, 0,
                compressedPages.capacity());
            if (compressed < length - length / 8)
            {
                bytes = compressedPages.limit(compressed).position(0);
                recordType = type | COMPRESSED;
                recordLength = compressed;
            }
        }
        header.clear();
        header.putInt(recordType).putInt(recordLength).putLong(a).putLong(b).flip();
        checkAndWrite(header);
        // the log's buffer is its own: its position is put back once the bytes are journaled
        final int position = bytes.position();
        final int limit = bytes.limit();
        try
        {
            checkAndWrite(bytes);
        }
        finally
        {
            bytes.limit(limit).position(position);
        }
        final int pad = align8(recordLength) - recordLength;
        if (pad > 0)
        {
            padding.clear().limit(pad);
            checkAndWrite(padding);
        }
    }

    /**
     * Adds {@code src}'s remaining bytes to the epoch's CRC32C and appends them to the journal (no view is made:
     * this runs per record on the session's thread).
     */
    private void checkAndWrite(final ByteBuffer src) throws IOException
    {
        final int position = src.position();
        crc.update(src);
        src.position(position);
        writeJournal(src);
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
        if (!firstBaseWanted && journalSinceCheckpoint.get() < ctx.imageCheckpointBytes() &&
            now - lastCheckpointNs < ctx.imageCheckpointIntervalNs())
        {
            return;
        }
        firstBaseWanted = false;
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
                writeMeta(meta.duplicate());
                if (retains())
                {
                    takeBase(epoch, meta.duplicate());
                }
                dropAged(epoch);
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

    private boolean retains()
    {
        return ctx.retentionNs() > 0 || ctx.retentionEpochs() > 0;
    }

    /**
     * Copies the image files, just forced at {@code epoch}, into a base image {@code base-E-V-T}: the replay-from
     * epoch E, the epoch V after the one the applier had finished when the copy ended, and its wall-clock time. The
     * applier writes on while the files are copied, so a page may be copied as of any epoch from E to V (V perhaps in
     * part: it marks an epoch applied only once written); replaying the journal's epochs after E (whole pages, whole
     * writes, in order) over it gives every epoch from V on exactly, which is what a restore asks of it.
     * One base per quarter of the retention window (of its time, or of its epochs).
     */
    private void takeBase(final long epoch, final ByteBuffer meta) throws IOException
    {
        final long now = System.currentTimeMillis();
        if (newestBaseMillis == 0)
        {
            final List<Base> existing = bases(directory);
            newestBaseMillis = existing.stream().mapToLong(Base::millis).max().orElse(0);
            newestBaseEpoch = existing.isEmpty() ? -1 : existing.get(existing.size() - 1).epoch();
        }
        final boolean byEpochs = ctx.retentionEpochs() > 0;
        if (byEpochs ? newestBaseEpoch >= 0 && epoch - newestBaseEpoch < ctx.retentionEpochs() / 4 :
            now - newestBaseMillis < java.util.concurrent.TimeUnit.NANOSECONDS.toMillis(ctx.retentionNs()) / 4)
        {
            return;
        }
        final Path partial = directory.resolve(BASE_PREFIX + "partial");
        deleteTree(partial);
        Files.createDirectories(partial);
        copyForced(directory.resolve(MEMORY_IMAGE), partial.resolve(MEMORY_IMAGE));
        for (final FileVirtualDisk disk : diskImages())
        {
            copyForced(disk.path(), partial.resolve(disk.path().getFileName()));
        }
        try (FileChannel out = OwnerOnlyFiles.open(partial.resolve(META), StandardOpenOption.CREATE,
            StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING))
        {
            while (meta.hasRemaining())
            {
                out.write(meta);
            }
            witness.forcing(partial.resolve(META));
            out.force(true);
        }
        forceDirectory(partial);
        // the applier marks an epoch applied only after writing it: one it was writing when the copy ended (the next
        // after epoch()) may be in the copy in part, so the base gives exactly only the epochs after that one's start
        // (found when the first base came at the first epoch, while the applier was busiest: a restore of epoch()
        // held pages of the epoch after it)
        final long validFrom = epoch() + 1;
        move(partial, directory.resolve(String.format(java.util.Locale.ROOT, "%s%016d-%016d-%013d",
            BASE_PREFIX, epoch, validFrom, now)));
        forceDirectory(directory);
        newestBaseMillis = now;
        newestBaseEpoch = epoch;
    }

    /**
     * Deletes what no longer serves: without retention, every closed journal segment the image holds
     * ({@code epoch} and before); with it, the base images and segments needed by no epoch of the window (the
     * newest base taken before the window's start stays, the journal from it on too).
     */
    private void dropAged(final long epoch) throws IOException
    {
        long keepFrom = epoch;
        if (retains())
        {
            final boolean byEpochs = ctx.retentionEpochs() > 0;
            final long windowStart = byEpochs ? epoch - ctx.retentionEpochs() : System.currentTimeMillis() -
                java.util.concurrent.TimeUnit.NANOSECONDS.toMillis(ctx.retentionNs());
            final List<Base> bases = bases(directory);
            int oldestNeeded = 0;
            for (int i = 0; i < bases.size(); i++)
            {
                // the newest base that still gives the window's first epoch (its first time)
                if ((byEpochs ? bases.get(i).validFrom() : bases.get(i).millis()) <= windowStart)
                {
                    oldestNeeded = i;
                }
            }
            for (int i = 0; i < oldestNeeded; i++)
            {
                deleteTree(bases.get(i).path());
            }
            keepFrom = bases.isEmpty() ? 0 : bases.get(oldestNeeded).epoch();
        }
        for (Segment segment = closedSegments.peek(); segment != null && segment.lastEpoch <= keepFrom;
            segment = closedSegments.peek())
        {
            delete(segment.path);
            closedSegments.poll();
        }
    }

    /**
     * A base image kept for restores.
     *
     * @param path      its directory.
     * @param epoch     the epoch the journal is replayed from over it.
     * @param validFrom the first epoch a restore from it may give.
     * @param millis    when it was taken (wall clock).
     */
    record Base(Path path, long epoch, long validFrom, long millis)
    {
    }

    /**
     * @return the whole base images in {@code directory}, oldest first.
     */
    static List<Base> bases(final Path directory) throws IOException
    {
        try (Stream<Path> files = Files.list(directory))
        {
            return files.filter(p -> p.getFileName().toString().startsWith(BASE_PREFIX) &&
                !p.getFileName().toString().endsWith("partial")).map(p ->
                {
                    final String[] parts = p.getFileName().toString().substring(BASE_PREFIX.length()).split("-");
                    return new Base(p, Long.parseLong(parts[0]), Long.parseLong(parts[1]), Long.parseLong(parts[2]));
                }).sorted(java.util.Comparator.comparingLong(Base::epoch)).toList();
        }
    }

    private void copyForced(final Path from, final Path to) throws IOException
    {
        Files.copy(from, to, StandardCopyOption.REPLACE_EXISTING);
        try (FileChannel out = FileChannel.open(to, StandardOpenOption.WRITE))
        {
            witness.forcing(to);
            out.force(true);
        }
    }

    /**
     * Forces a directory: its entries (files created, renamed or deleted in it) are durable from then on.
     */
    private void forceDirectory(final Path dir) throws IOException
    {
        witness.forcingDirectory(dir);
        OwnerOnlyFiles.forceDirectory(dir);
    }

    private void move(final Path from, final Path to) throws IOException
    {
        Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        witness.moved(from, to);
    }

    private void delete(final Path path) throws IOException
    {
        if (Files.exists(path))
        {
            witness.deleting(path);
            Files.deleteIfExists(path);
        }
    }

    private void deleteTree(final Path path) throws IOException
    {
        if (!Files.exists(path))
        {
            return;
        }
        try (Stream<Path> walk = Files.walk(path))
        {
            for (final Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList())
            {
                delete(p);
            }
        }
    }

    /**
     * Waits for a checkpoint under way (before the files are closed or handed over).
     */
    @Override
    public void stopCheckpoints()
    {
        awaitCheckpoint();
        checkpointer.shutdown();
    }

    @Override
    public void awaitCheckpoint()
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
        witness.forcing(directory.resolve(MEMORY_IMAGE));
        replica().force(this::letTheJournalGoFirst);
        for (final FileVirtualDisk disk : diskImages())
        {
            witness.forcing(disk.path());
            disk.force();
        }
    }

    /**
     * Between two ranges of an image force: while the session forces the journal (an ack waits for it), the next
     * range is held back, for at most {@link #JOURNAL_FIRST_MAX_NS}, so the journal's writes do not queue behind it.
     * The checkpoint takes longer; the acks do not.
     */
    private void letTheJournalGoFirst()
    {
        final long deadline = System.nanoTime() + JOURNAL_FIRST_MAX_NS;
        while (journalForcing && System.nanoTime() < deadline)
        {
            java.util.concurrent.locks.LockSupport.parkNanos(50_000);
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
            witness.forcing(next);
            out.force(true);
        }
        move(next, directory.resolve(META));
        // the rename itself is durable only once the directory is
        forceDirectory(directory);
    }

    private void readMeta(final Path path) throws IOException
    {
        final MetaFile meta = MetaFile.read(path);
        final String where = "the standby directory " + directory + " holds " + META;
        if (!meta.vmId().equals(ctx.vmId()))
        {
            throw new IOException(where + " of VM " + meta.vmId() + ", not of VM " + ctx.vmId() + ": a standby " +
                "directory serves one guest");
        }
        if (meta.pageSize() != ctx.pageSize() || meta.pageCount() != ctx.pageCount() ||
            !meta.disks().equals(ctx.disks()))
        {
            throw new IOException(where + " of " + meta.pageCount() + " pages of " + meta.pageSize() + " bytes and " +
                "disks " + meta.disks() + ", but this standby is configured for " + ctx.pageCount() + " of " +
                ctx.pageSize() + " and " + ctx.disks());
        }
        recoveredEpoch = meta.epoch();
        recoveredFingerprint = meta.fingerprint();
        for (final MetaFile.Component component : meta.components())
        {
            putComponent(component.id(), component.version(), new UnsafeBuffer(component.state()), 0,
                component.state().length);
        }
    }

    /**
     * The contents of an {@code image.meta}.
     *
     * @param vmId        the guest.
     * @param pageSize    its page size.
     * @param pageCount   its pages.
     * @param disks       its disks.
     * @param epoch       the epoch the image files hold whole.
     * @param fingerprint that epoch's fingerprint.
     * @param generation  the generation served when it was written.
     * @param components  every component's state at that epoch.
     */
    record MetaFile(String vmId, int pageSize, long pageCount, List<Handshake.Disk> disks, long epoch,
        long fingerprint, long generation, List<Component> components)
    {
        /**
         * One component's state.
         *
         * @param id      its id.
         * @param version its state's version.
         * @param state   the bytes.
         */
        record Component(int id, int version, byte[] state)
        {
        }

        /**
         * @param path an {@code image.meta}.
         * @return its contents, checked.
         * @throws IOException if it is not a Tandem image's meta, of another format, damaged or short, naming it.
         */
        static MetaFile read(final Path path) throws IOException
        {
            final ByteBuffer meta = ByteBuffer.wrap(Files.readAllBytes(path)).order(ByteOrder.LITTLE_ENDIAN);
            final String where = path + " is";
            try
            {
                if (meta.remaining() < 16 || meta.getLong(0) != MAGIC)
                {
                    throw new IOException(where + " not a Tandem image (no magic): move it away or start on an " +
                        "empty directory");
                }
                final CRC32C check = new CRC32C();
                check.update(meta.array(), 0, meta.limit() - 4);
                if ((int)check.getValue() != meta.getInt(meta.limit() - 4))
                {
                    throw new IOException(where + " damaged (bad CRC32C): the image cannot be trusted");
                }
                meta.position(8);
                final int format = meta.getInt();
                if (format != FORMAT)
                {
                    throw new IOException(where + " of format " + format + "; this build reads format " + FORMAT);
                }
                final byte[] vmId = new byte[meta.getInt()];
                meta.get(vmId);
                final int pageSize = meta.getInt();
                final long pageCount = meta.getLong();
                final List<Handshake.Disk> disks = new ArrayList<>();
                for (int i = meta.getInt(); i > 0; i--)
                {
                    disks.add(new Handshake.Disk(meta.getInt(), meta.getInt(), meta.getLong()));
                }
                final long epoch = meta.getLong();
                final long fingerprint = meta.getLong();
                final long generation = meta.getLong();
                final List<Component> components = new ArrayList<>();
                for (int i = meta.getInt(); i > 0; i--)
                {
                    final int id = meta.getInt();
                    final int version = meta.getInt();
                    final byte[] state = new byte[meta.getInt()];
                    meta.get(state);
                    components.add(new Component(id, version, state));
                }
                return new MetaFile(new String(vmId, StandardCharsets.UTF_8), pageSize, pageCount, List.copyOf(disks),
                    epoch, fingerprint, generation, List.copyOf(components));
            }
            catch (final java.nio.BufferUnderflowException | NegativeArraySizeException ex)
            {
                throw new IOException(where + " damaged: it ends early", ex);
            }
        }
    }

    /**
     * What one segment's replay did.
     *
     * @param epochs     whole epochs applied.
     * @param dropped    what ended it early, null if it read to its end.
     * @param wholeBytes where the last whole epoch ends: what a damaged segment is cut back to.
     * @param lastEpoch  the newest whole epoch in the segment, 0 if none.
     * @param lastMillis when that epoch was committed (wall clock).
     */
    record Replay(int epochs, String dropped, long wholeBytes, long lastEpoch, long lastMillis)
    {
    }

    /**
     * Hears every whole epoch a scan of the journal finds.
     */
    @FunctionalInterface
    interface EpochSeen
    {
        void seen(long epoch, long commitMillis);
    }

    /**
     * Applies the segment's whole epochs newer than the image, up to {@link #replayUpTo}, in order: each epoch's
     * records are verified against its commit record before any of them is applied.
     */
    private Replay replay(final Path segment) throws IOException
    {
        return scan(segment, maxRecord, this, null);
    }

    /**
     * Reads a journal segment epoch by epoch, verifying each against its commit record; applies the verified ones
     * newer than the image to {@code image} (null: only index them to {@code seen}).
     */
    static Replay scan(final Path segment, final int maxRecord, final DurableRecoveryImage image, final EpochSeen seen)
        throws IOException
    {
        int epochs = 0;
        long lastEpoch = 0;
        long lastMillis = 0;
        long groupStart = 0;
        try (FileChannel in = FileChannel.open(segment, StandardOpenOption.READ);
            NativeMemory.Region region = NativeMemory.allocateDirect(EpochLog.RECORD_HEADER + maxRecord + 16, 4096);
            NativeMemory.Region expandedRegion = NativeMemory.allocateDirect(EpochLog.RECORD_HEADER + maxRecord + 16,
                4096))
        {
            final ByteBuffer bytes = region.byteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            final UnsafeBuffer buffer = new UnsafeBuffer(bytes);
            final ByteBuffer expanded = expandedRegion.byteBuffer();
            final UnsafeBuffer expandedBuffer = new UnsafeBuffer(expanded);
            final long end = in.size();
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
                            "written before the crash, never acknowledged)", groupStart, lastEpoch, lastMillis);
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
                            "applied", groupStart, lastEpoch, lastMillis);
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
                        " (written before the crash, never acknowledged)", groupStart, lastEpoch, lastMillis);
                }
                if (end - commitAt < COMMIT_RECORD)
                {
                    return new Replay(epochs, "a torn commit record at byte " + commitAt, groupStart, lastEpoch,
                        lastMillis);
                }
                read(in, bytes, commitAt, COMMIT_RECORD);
                final long epoch = bytes.getLong(8);
                final long fingerprint = bytes.getLong(16);
                final long groupBytes = bytes.getLong(COMMIT_GROUP_BYTES);
                final long millis = bytes.getLong(COMMIT_MILLIS);
                final int commitLength = bytes.getInt(4);
                final int expectedCrc = bytes.getInt(COMMIT_CRC);
                bytes.limit(COMMIT_CRC).position(8);
                check.update(bytes);
                if (commitLength != COMMIT_DATA || groupBytes != commitAt - groupStart ||
                    expectedCrc != (int)check.getValue())
                {
                    return new Replay(epochs, "epoch " + epoch + " from byte " + groupStart + " fails its CRC32C " +
                        "(damaged on disk); it and every later record are not applied", groupStart, lastEpoch,
                        lastMillis);
                }
                if (image != null && epoch > image.replayUpTo)
                {
                    // a restore to an earlier epoch: what follows is not wanted
                    return new Replay(epochs, null, groupStart, lastEpoch, lastMillis);
                }
                if (image != null && epoch > image.recoveredEpoch)
                {
                    // pass 2: apply what was verified
                    for (long at = groupStart; at < commitAt; )
                    {
                        read(in, bytes, at, EpochLog.RECORD_HEADER);
                        final int length = bytes.getInt(4);
                        read(in, bytes, at, EpochLog.RECORD_HEADER + length);
                        bytes.limit(EpochLog.RECORD_HEADER + length).position(EpochLog.RECORD_HEADER);
                        final int type = bytes.getInt(0);
                        final String wrong = (type & COMPRESSED) == 0 ? image.applyRecord(type, bytes.getLong(8),
                            bytes.getLong(16), buffer, bytes, length) : image.applyCompressed(type & ~COMPRESSED,
                            bytes.getLong(8), bytes.getLong(16), bytes, length, expanded, expandedBuffer);
                        if (wrong != null)
                        {
                            return new Replay(epochs, "epoch " + epoch + " holds " + wrong + " at byte " + at +
                                "; the image may hold part of it: recovered only up to the epoch before", groupStart,
                                lastEpoch, lastMillis);
                        }
                        at += EpochLog.RECORD_HEADER + align8(length);
                    }
                    image.recoveredEpoch = epoch;
                    image.recoveredFingerprint = fingerprint;
                    epochs++;
                }
                if (seen != null)
                {
                    seen.seen(epoch, millis);
                }
                lastEpoch = epoch;
                lastMillis = millis;
                groupStart = commitAt + COMMIT_RECORD;
            }
        }
        return new Replay(epochs, null, groupStart, lastEpoch, lastMillis);
    }

    /**
     * Expands a compressed page record and applies it.
     *
     * @return null if applied, else what is wrong with the record.
     */
    private String applyCompressed(final int type, final long a, final long b, final ByteBuffer bytes,
        final int length, final ByteBuffer expanded, final UnsafeBuffer expandedBuffer) throws IOException
    {
        if (type != FrameType.PAGES.code() || b <= 0 || b > (expanded.capacity() - EpochLog.RECORD_HEADER) /
            ctx.pageSize())
        {
            return "a compressed record of type " + type + " and " + b + " pages, which no epoch holds";
        }
        final int pagesLength = (int)b * ctx.pageSize();
        try
        {
            final int produced = LZ4.safeDecompressor().decompress(bytes, EpochLog.RECORD_HEADER, length, expanded,
                EpochLog.RECORD_HEADER, pagesLength);
            if (produced != pagesLength)
            {
                return "compressed pages that expand to " + produced + " bytes, not " + pagesLength;
            }
        }
        catch (final net.jpountz.lz4.LZ4Exception ex)
        {
            return "compressed pages that do not expand (" + ex.getMessage() + ")";
        }
        expanded.limit(EpochLog.RECORD_HEADER + pagesLength).position(EpochLog.RECORD_HEADER);
        return applyRecord(type, a, b, expandedBuffer, expanded, pagesLength);
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

    static void read(final FileChannel in, final ByteBuffer bytes, final long position, final int length)
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
        return segments(directory);
    }

    /**
     * @return the journal segments in {@code directory}, oldest first.
     */
    static List<Path> segments(final Path directory) throws IOException
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
        forceDirectory(directory);
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
