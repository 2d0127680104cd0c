package dev.tandem.core.standby;

import dev.tandem.core.ConfigurationException;
import dev.tandem.core.wire.Handshake;
import dev.tandem.vmm.OwnerOnlyFiles;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.NavigableMap;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * Materialises a replica as of an earlier epoch or wall-clock time from a DURABLE standby's directory kept with a
 * retention window ({@link StandbyContext#retentionNs} or {@link StandbyContext#retentionEpochs}): the newest base
 * image that can give that epoch is copied
 * into a new directory and the retained journal is replayed over it up to exactly that epoch. The result is a DURABLE
 * standby directory holding that epoch (a standby can start on it, an inspection or a {@link dev.tandem.vmm.ReplicaTarget}
 * can read it), whose digest equals the active's checkpoint of that epoch.
 * <p>
 * Reads the source directory only (its image, bases and journal), so it may run beside the standby that owns it:
 * a segment being appended ends, for this reader, at its last whole epoch.
 */
public final class PointInTimeRestore
{
    private static final Logger LOG = LoggerFactory.getLogger(PointInTimeRestore.class);
    /** The largest frame payload a standby accepts, so the largest record its journal can hold. */
    private static final int LARGEST_RECORD = 16 << 20;

    private PointInTimeRestore()
    {
    }

    /**
     * What a restore made.
     *
     * @param epoch        the epoch the new directory holds.
     * @param committedAt  when the standby committed it (its wall clock).
     * @param directory    the new directory.
     * @param report       the base used and the epochs replayed.
     */
    public record Restored(long epoch, Instant committedAt, Path directory, String report)
    {
    }

    /**
     * @param standbyDirectory a DURABLE standby's directory.
     * @param epoch            the epoch to restore.
     * @param to               a new (absent or empty) directory for the replica.
     * @return what was made.
     * @throws ConfigurationException if the epoch is outside the retained window (naming the window), the source is
     *                                no DURABLE standby directory, or {@code to} is not empty.
     * @throws UncheckedIOException   if a file cannot be read or written.
     */
    public static Restored restore(final Path standbyDirectory, final long epoch, final Path to)
    {
        try (Opened opened = restore(standbyDirectory, epoch, null, to, null, StorageWitness.NONE))
        {
            return opened.restored();
        }
    }

    /**
     * @param standbyDirectory a DURABLE standby's directory.
     * @param time             restores the newest epoch committed at or before it.
     * @param to               a new (absent or empty) directory for the replica.
     * @return what was made.
     * @throws ConfigurationException if no retained epoch was committed at or before {@code time}, or as
     *                                {@link #restore(Path, long, Path)}.
     * @throws UncheckedIOException   if a file cannot be read or written.
     */
    public static Restored restoreAt(final Path standbyDirectory, final Instant time, final Path to)
    {
        try (Opened opened = restore(standbyDirectory, -1, time, to, null, StorageWitness.NONE))
        {
            return opened.restored();
        }
    }

    /**
     * A restore whose image is still open, for a promotion to resume: the caller closes it.
     *
     * @param restored what was made.
     * @param image    the image of {@code restored.directory()}, at {@code restored.epoch()}.
     */
    record Opened(Restored restored, DurableRecoveryImage image, DirectoryLock lock, String vmId)
        implements AutoCloseable
    {
        /**
         * Closes the image; its directory stays locked while a promoted guest that adopted its memory runs on its
         * files, as a standby's own directory does.
         */
        @Override
        public void close()
        {
            image.close();
            lock.releaseUnlessAGuestRunsOn(image, vmId);
        }
    }

    /**
     * As {@link #restoreAt}, leaving the image open for a promotion from an earlier checkpoint to resume at once: the
     * replayed state is neither forced nor labelled as a recovery point (the guest takes the files over).
     *
     * @param generation the generation the image's recovery point reports.
     * @param witness    told of the restore's own file steps.
     */
    static Opened restoreAt(final Path standbyDirectory, final Instant time, final Path to,
        final java.util.function.LongSupplier generation, final StorageWitness witness)
    {
        return restore(standbyDirectory, -1, time, to, generation, witness);
    }

    /**
     * @param generation what the image's recovery point reports as its generation; null: the one its meta holds.
     */
    private static Opened restore(final Path from, final long wantedEpoch, final Instant time, final Path to,
        final java.util.function.LongSupplier generation, final StorageWitness witness)
    {
        try
        {
            final Path metaPath = from.resolve(DurableRecoveryImage.META);
            if (!Files.exists(metaPath))
            {
                throw new ConfigurationException(from + " is not a DURABLE standby directory (no " +
                    DurableRecoveryImage.META + ")");
            }
            final DurableRecoveryImage.MetaFile meta = DurableRecoveryImage.MetaFile.read(metaPath);
            // every whole epoch the retained journal holds, and when it was committed
            final NavigableMap<Long, Long> committed = new TreeMap<>();
            final NavigableMap<Long, Path> segmentOf = new TreeMap<>();
            for (final Path segment : DurableRecoveryImage.segments(from))
            {
                final DurableRecoveryImage.Replay scan;
                try
                {
                    scan = DurableRecoveryImage.scan(segment, LARGEST_RECORD, null, (epoch, millis) ->
                    {
                        committed.put(epoch, millis);
                        segmentOf.put(epoch, segment);
                    });
                }
                catch (final NoSuchFileException agedOut)
                {
                    // the running standby deleted it since the listing: its epochs are older than every base it
                    // keeps (found by the durability measurement, restoring beside a running pair); a gap this
                    // leaves is refused below by name
                    continue;
                }
                if (scan.dropped() != null)
                {
                    break;
                }
            }
            final List<DurableRecoveryImage.Base> bases = DurableRecoveryImage.bases(from);
            final String window = bases.isEmpty() || committed.isEmpty() ?
                "nothing is retained: no base image (is retentionNs or retentionEpochs set? the window starts at the " +
                "first image checkpoint)" :
                "the retained window holds epochs " + bases.get(0).validFrom() + " to " + committed.lastKey() +
                " (committed " + Instant.ofEpochMilli(committed.getOrDefault(bases.get(0).validFrom(),
                committed.firstEntry().getValue())) + " to " + Instant.ofEpochMilli(committed.lastEntry().getValue()) +
                ")";
            final long epoch;
            if (time != null)
            {
                final var at = committed.entrySet().stream().filter(e -> e.getValue() <= time.toEpochMilli())
                    .reduce((a, b) -> b);
                if (at.isEmpty())
                {
                    throw new ConfigurationException("no retained epoch of VM " + meta.vmId() + " was committed at or " +
                        "before " + time + ": " + window);
                }
                epoch = at.get().getKey();
            }
            else
            {
                epoch = wantedEpoch;
            }
            DurableRecoveryImage.Base base = null;
            for (final DurableRecoveryImage.Base candidate : bases)
            {
                if (candidate.validFrom() <= epoch && candidate.epoch() <= epoch)
                {
                    base = candidate;
                }
            }
            if (base == null || !committed.containsKey(epoch) && epoch != base.epoch())
            {
                throw new ConfigurationException("epoch " + epoch + " of VM " + meta.vmId() + " cannot be restored: " +
                    window);
            }
            for (long e = base.epoch() + 1; e <= epoch; e++)
            {
                if (!committed.containsKey(e))
                {
                    throw new ConfigurationException("epoch " + e + " is missing from the retained journal between " +
                        "base epoch " + base.epoch() + " and epoch " + epoch + ": " + window);
                }
            }
            OwnerOnlyFiles.createDirectories(to);
            try (Stream<Path> existing = Files.list(to))
            {
                if (existing.findAny().isPresent())
                {
                    throw new ConfigurationException("restore target " + to + " is not empty");
                }
            }
            try
            {
                return copyAndReplay(meta, base, segmentOf.subMap(base.epoch(), false, epoch, true).values().stream()
                    .distinct().toList(), epoch, committed.getOrDefault(epoch, base.millis()), window, to, generation,
                    witness);
            }
            catch (final IOException | RuntimeException ex)
            {
                // the target was empty: nothing of a restore that failed stays to look like a whole image
                clear(to);
                throw ex;
            }
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException("restore from " + from + " into " + to + " failed: " + ex.getMessage(), ex);
        }
    }

    private static Opened copyAndReplay(final DurableRecoveryImage.MetaFile meta, final DurableRecoveryImage.Base base,
        final List<Path> segments, final long epoch, final long committedMillis, final String window, final Path to,
        final java.util.function.LongSupplier generation, final StorageWitness witness) throws IOException
    {
        try
        {
            try (Stream<Path> files = Files.list(base.path()))
            {
                for (final Path file : files.toList())
                {
                    Files.copy(file, to.resolve(file.getFileName()));
                }
            }
            for (final Path segment : segments)
            {
                Files.copy(segment, to.resolve(segment.getFileName()));
            }
        }
        catch (final NoSuchFileException agedOut)
        {
            throw agedOut(meta, epoch, agedOut.getFile(), window);
        }
        if (!Files.exists(to.resolve(DurableRecoveryImage.META)) ||
            !Files.exists(to.resolve(DurableRecoveryImage.MEMORY_IMAGE)))
        {
            // a base being deleted loses its memory image before its meta: a listing between the two has no error
            throw agedOut(meta, epoch, base.path().toString(), window);
        }
        final StandbyContext ctx = new StandbyContext().vmId(meta.vmId()).memory(meta.pageSize(),
            meta.pageCount()).directory(to).durability(Durability.DURABLE).maxFramePayload(LARGEST_RECORD)
            .storageWitness(witness);
        for (final Handshake.Disk disk : meta.disks())
        {
            ctx.disk(disk.id(), disk.blockSize(), disk.sizeBytes());
            if (!Files.exists(MemoryRecoveryImage.diskImagePath(ctx, disk.id())))
            {
                // opened under its default name, a missing image would be created empty: a guest with a blank disk
                throw new ConfigurationException("base " + base.path().getFileName() + " holds no " +
                    MemoryRecoveryImage.diskImagePath(ctx, disk.id()).getFileName() + " for disk " + disk.id() +
                    ": a standby whose DiskImageOpener keeps its images under other names cannot be restored " +
                    "from its window");
            }
        }
        // against a standby started on the directory while the restore or a guest resumed from it uses the files
        final DirectoryLock lock = DirectoryLock.acquire(to);
        DurableRecoveryImage image = null;
        try
        {
            // a restore for a promotion (a generation given) resumes the image at once: its files need no force
            image = new DurableRecoveryImage(ctx, generation != null ? generation : meta::generation, epoch,
                generation != null);
            if (image.recoveredEpoch() != epoch)
            {
                throw new IOException("the replay over base epoch " + base.epoch() + " reached epoch " +
                    image.recoveredEpoch() + ", not " + epoch + ": " + image.recoveryReport());
            }
            return new Opened(new Restored(epoch, Instant.ofEpochMilli(committedMillis), to, "base " +
                base.path().getFileName() + "; " + image.recoveryReport()), image, lock, meta.vmId());
        }
        catch (final IOException | RuntimeException ex)
        {
            if (image != null)
            {
                image.close();
            }
            lock.close();
            throw ex;
        }
    }

    private static ConfigurationException agedOut(final DurableRecoveryImage.MetaFile meta, final long epoch,
        final String file, final String window)
    {
        return new ConfigurationException("epoch " + epoch + " of VM " + meta.vmId() + " aged out of the retained " +
            "window while it was being restored (" + file + " was deleted by the running standby): " + window);
    }

    /**
     * Deletes what a failed restore put in {@code to} (which was empty), leaving the directory itself.
     */
    static void clear(final Path to)
    {
        try (Stream<Path> files = Files.walk(to))
        {
            for (final Path file : files.sorted(java.util.Comparator.reverseOrder()).toList())
            {
                if (!file.equals(to))
                {
                    Files.deleteIfExists(file);
                }
            }
        }
        catch (final IOException | UncheckedIOException ex)
        {
            LOG.warn("could not clear {} after a failed restore: {}", to, ex.toString());
        }
    }
}
