package dev.tandem.examples.simulation;

import dev.tandem.core.standby.StorageWitness;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.LongSupplier;
import java.util.stream.Stream;

/**
 * What a DURABLE standby's disk holds after the machine loses power, kept from what the DURABLE image says it does
 * ({@link StorageWitness}): a file's bytes as of its last force, the directory's entries as of its last force, and, as
 * a real disk may, any part of what was written since (pages of a file written back early, a torn tail, a rename or a
 * delete that reached the disk without its directory's force, or did not). At chosen steps (every kind of step at
 * least once, the others at random) it writes such a disk into a directory of its own, recording the newest epoch
 * the standby had acknowledged before that step: a restart on that directory must recover it or a later one, whole.
 * The simulation asks for such a disk at the instant it kills the standby instead ({@link #materialise}).
 * <p>
 * It models the image's files in the standby's directory (the journal, the memory and disk images, the meta); base
 * images in its subdirectories are not modelled, and the other files (the generation, the lock) are copied as they
 * are.
 */
final class PowerLossModel implements StorageWitness
{
    private static final int PAGE = 4096;

    /**
     * A file as the disk knows it: its bytes as of its last force (null: never forced, found empty).
     */
    private static final class FileState
    {
        byte[] durable;
        /**
         * A journal segment, only ever appended to (or cut back and forced at once): its forced bytes are the first
         * this many of the file, read when needed rather than at every append's force. -1 for other files.
         */
        long forcedLength = -1;
        /**
         * The file's identity (its inode), once seen: the image renames and deletes outside the model's lock and
         * tells it after (a rename) or before (a delete), so a power loss taken on another thread in between finds
         * a name that refers to another file than the model's map says.
         */
        Object fileKey;
    }

    /**
     * A disk as it would be found after the power came back.
     *
     * @param directory    where it was written.
     * @param acknowledged the newest epoch the standby had acknowledged before the step.
     * @param step         the step the power was lost at.
     */
    record Crash(Path directory, long acknowledged, String step)
    {
    }

    /** The image's files, as the standby lays them out (see {@code Durability.DURABLE}). */
    private static final String JOURNAL_PREFIX = "journal-";
    private static final String META = "image.meta";
    private static final String MEMORY_IMAGE = "memory.img";
    private static final String DISK_PREFIX = "disk-";

    private final Path root;
    private final Path crashes;
    private final Random random;
    private final int spacing;
    private volatile java.util.function.Consumer<String> onStep = step -> { };
    private boolean lying;
    private volatile LongSupplier acknowledged = () -> 0;
    /** What each name in the directory refers to now. */
    private final Map<Path, FileState> live = new HashMap<>();
    /**
     * Files whose delete was announced ({@link #deleting}) but which the image deletes only after that call, outside
     * this lock: until then the name still refers to that file as it was, never to a new, never-forced one.
     */
    private final Map<Path, FileState> beingDeleted = new HashMap<>();
    /** The directory's entries as of its last force. */
    private Map<Path, FileState> durableEntries = new HashMap<>();
    private final Set<String> kindsCrashed = new HashSet<>();
    private final List<Crash> taken = new ArrayList<>();
    private int steps;
    private int nextCrash;

    /**
     * @param root    the standby's directory.
     * @param crashes where the disks after a power loss are written.
     * @param seed    the seed of every choice (named in a failure).
     * @param spacing at most this many steps between two power losses; 0 for none (only {@link #materialise}).
     */
    PowerLossModel(final Path root, final Path crashes, final long seed, final int spacing)
    {
        this.root = root;
        this.crashes = crashes;
        this.random = new Random(seed);
        this.spacing = spacing;
        this.nextCrash = spacing == 0 ? Integer.MAX_VALUE : 1 + random.nextInt(spacing);
    }

    /**
     * @param lying true for a disk that acknowledges forces it does not keep: a test of the checks (the newest
     *              journal segment loses its last forced bytes in a power loss).
     */
    void lies(final boolean lying)
    {
        this.lying = lying;
    }

    /**
     * @param listener told of each step (its kind) after the model took it in, on the standby's thread; it may kill
     *                 the standby there (throw).
     */
    void onStep(final java.util.function.Consumer<String> listener)
    {
        this.onStep = listener;
    }

    /**
     * Writes the standby's disk as the machine would find it now: after a power loss (the model's choice among what
     * the disk may hold), or after a process crash (every file as it is: the page cache survives).
     *
     * @param to        an empty directory to write it into.
     * @param powerLoss true for a power loss, false for a process crash.
     */
    synchronized void materialise(final Path to, final boolean powerLoss)
    {
        if (powerLoss)
        {
            write(to);
            return;
        }
        try
        {
            Files.createDirectories(to);
            for (final Path file : files())
            {
                Files.copy(file, to.resolve(file.getFileName()));
            }
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
    }

    /**
     * @param epoch the standby's newest acknowledged epoch, read at each power loss.
     */
    void acknowledged(final LongSupplier epoch)
    {
        this.acknowledged = epoch;
    }

    /**
     * @return the power losses taken so far.
     */
    synchronized List<Crash> crashes()
    {
        return List.copyOf(taken);
    }

    @Override
    public synchronized void forcing(final Path file)
    {
        if (!root.equals(file.getParent()))
        {
            return;
        }
        step("force " + kind(file));
        beingDeleted.remove(file);
        final FileState state = live.computeIfAbsent(file, name -> new FileState());
        state.fileKey = fileKey(file);
        if (kind(file).equals("journal"))
        {
            state.forcedLength = size(file);
        }
        else
        {
            state.durable = read(file);
        }
    }

    @Override
    public synchronized void forcingDirectory(final Path directory)
    {
        if (!root.equals(directory))
        {
            return;
        }
        step("force directory");
        final Map<Path, FileState> entries = new HashMap<>();
        for (final Path file : files())
        {
            if (ofTheImage(file))
            {
                final FileState state = state(file);
                if (state.fileKey == null)
                {
                    state.fileKey = fileKey(file);
                }
                entries.put(file, state);
            }
        }
        durableEntries = entries;
    }

    @Override
    public synchronized void moved(final Path from, final Path to)
    {
        if (!root.equals(from.getParent()) || !root.equals(to.getParent()))
        {
            return;
        }
        final FileState state = live.remove(from);
        beingDeleted.remove(to);
        final FileState moved = state == null ? new FileState() : state;
        moved.fileKey = fileKey(to);
        live.put(to, moved);
        step("rename " + kind(from));
    }

    @Override
    public synchronized void deleting(final Path path)
    {
        if (!root.equals(path.getParent()))
        {
            return;
        }
        step("delete " + kind(path));
        final FileState state = live.remove(path);
        if (state != null && state.forcedLength >= 0)
        {
            // the delete may not reach the disk: what the file held stays the model's to give back
            state.durable = java.util.Arrays.copyOf(read(path), (int)state.forcedLength);
            state.forcedLength = -1;
        }
        if (state != null)
        {
            beingDeleted.put(path, state);
        }
    }

    /**
     * @return what {@code file}, found in the directory, is: its live state, the state of a file whose delete was
     *         announced but not yet done, or (a file created since the model last saw it) a new, never-forced one.
     */
    private FileState state(final Path file)
    {
        final FileState deleted = live.containsKey(file) ? null : beingDeleted.get(file);
        return deleted != null ? deleted : live.computeIfAbsent(file, name -> new FileState());
    }

    /**
     * @return the state of the file {@code name} refers to on the disk now: null if none, and, when the name was
     *         renamed over (or deleted and created again) since the model last heard, the state of the file it refers
     *         to rather than the one the model's map still names.
     */
    private FileState current(final Path name)
    {
        final Object key = fileKey(name);
        final FileState mapped = live.get(name);
        if (key == null || mapped == null || mapped.fileKey == null || mapped.fileKey.equals(key))
        {
            return key == null ? null : mapped;
        }
        for (final FileState other : live.values())
        {
            if (key.equals(other.fileKey))
            {
                return other;
            }
        }
        // a file the model has not heard of yet: as written since, never forced
        return new FileState();
    }

    private static Object fileKey(final Path file)
    {
        try
        {
            return Files.readAttributes(file, java.nio.file.attribute.BasicFileAttributes.class).fileKey();
        }
        catch (final java.nio.file.NoSuchFileException ex)
        {
            return null;
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
    }

    private static boolean ofTheImage(final Path file)
    {
        final String name = file.getFileName().toString();
        return name.startsWith(JOURNAL_PREFIX) || name.startsWith(META) || name.equals(MEMORY_IMAGE) ||
            name.startsWith(DISK_PREFIX);
    }

    private static String kind(final Path file)
    {
        final String name = file.getFileName().toString();
        return name.startsWith(JOURNAL_PREFIX) ? "journal" : name;
    }

    private void step(final String kind)
    {
        steps++;
        if (spacing > 0 && (steps >= nextCrash || kindsCrashed.add(kind)))
        {
            kindsCrashed.add(kind);
            final long acked = acknowledged.getAsLong();
            final Path to = crashes.resolve(String.format("crash-%04d", taken.size()));
            write(to);
            taken.add(new Crash(to, acked, kind));
            nextCrash = steps + 1 + random.nextInt(spacing);
        }
        onStep.accept(kind);
    }

    /**
     * Writes the disk as a power loss now could leave it.
     */
    private void write(final Path to)
    {
        try
        {
            Files.createDirectories(to);
            final Set<Path> names = new TreeSet<>(durableEntries.keySet());
            for (final Path file : files())
            {
                if (!ofTheImage(file))
                {
                    // the generation file, the lock: not the image's, and not modelled here
                    Files.copy(file, to.resolve(file.getFileName()));
                    continue;
                }
                state(file);
                names.add(file);
            }
            final Path newestJournal = names.stream().filter(p -> kind(p).equals("journal")).reduce((a, b) -> b)
                .orElse(null);
            for (final Path name : names)
            {
                final FileState durable = durableEntries.get(name);
                final FileState now = current(name);
                FileState chosen;
                if (durable != null && durable == now)
                {
                    chosen = durable;
                }
                else if (durable != null && now != null)
                {
                    // renamed over since the directory's force: the old file or the new one
                    chosen = random.nextBoolean() ? durable : now;
                }
                else if (durable != null)
                {
                    // deleted since: the delete may not have reached the disk
                    chosen = random.nextBoolean() ? durable : null;
                }
                else
                {
                    // created or renamed in since: the entry may not have reached the disk
                    chosen = random.nextBoolean() ? now : null;
                }
                // the image renames and unlinks outside this lock (then tells the model): a file listed above may
                // be gone by now, which is what a power loss then finds of it
                final byte[] current = chosen != null && chosen == now ? readIfPresent(name) : null;
                if (chosen != null && chosen == now && current == null)
                {
                    chosen = durable;
                }
                if (chosen != null)
                {
                    byte[] found = contents(chosen, current);
                    if (lying && name.equals(newestJournal) && chosen.forcedLength > 0)
                    {
                        found = java.util.Arrays.copyOf(found, (int)Math.max(0, Math.min(found.length,
                            chosen.forcedLength - 8)));
                    }
                    Files.write(to.resolve(name.getFileName()), found);
                }
            }
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
    }

    /**
     * @return the file's forced bytes, with any of the pages written since (a quarter of them, at random) and a
     *         random part of what was appended since.
     */
    private byte[] contents(final FileState state, final byte[] now)
    {
        final byte[] forced = state.forcedLength >= 0 && now != null ? java.util.Arrays.copyOf(now,
            (int)Math.min(now.length, state.forcedLength)) : state.durable == null ? new byte[0] : state.durable;
        if (now == null)
        {
            return forced;
        }
        final int length = now.length <= forced.length ? forced.length :
            forced.length + random.nextInt(now.length - forced.length + 1);
        final byte[] found = java.util.Arrays.copyOf(forced, length);
        for (int page = 0; page < length; page += PAGE)
        {
            final int end = Math.min(length, page + PAGE);
            if (page < now.length && (page >= forced.length || random.nextInt(4) == 0))
            {
                System.arraycopy(now, page, found, page, Math.min(end, now.length) - page);
            }
        }
        return found;
    }

    private List<Path> files()
    {
        try (Stream<Path> list = Files.list(root))
        {
            return list.filter(Files::isRegularFile).toList();
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
    }

    private static long size(final Path file)
    {
        try
        {
            return Files.size(file);
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
    }

    /**
     * @return the file's bytes, or null if it is gone (deleted or renamed away since it was listed).
     */
    private static byte[] readIfPresent(final Path file)
    {
        try
        {
            return Files.readAllBytes(file);
        }
        catch (final java.nio.file.NoSuchFileException ex)
        {
            return null;
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
    }

    private static byte[] read(final Path file)
    {
        try
        {
            return Files.readAllBytes(file);
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
    }
}
