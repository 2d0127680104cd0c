package dev.tandem.core.metrics;

import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.status.AtomicCounter;
import org.agrona.concurrent.status.CountersManager;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The counters file of this process in one directory, shared by every active and standby of the JVM that publishes
 * there, each allocating its own labelled counters ({@link CounterType}) and freeing them when it closes.
 * <p>
 * Lifetime: the first {@link #acquire(Path)} of a directory creates {@code <directory>/<pid>.counters}; the last
 * {@link #release()} frees it: the file is unmapped and deleted. It is also registered for deletion at JVM exit, so
 * only a process that dies without running its shutdown (killed, crashed) leaves its file; {@code stat} reports such
 * a file as of a dead process and {@code stat --clean} removes it.
 * <p>
 * Counters are observability, not protection: if the file cannot be created (directory not writable, disk full),
 * a warning is logged and the counters live in process memory only ({@link #file()} is null); {@code status()}
 * works as before.
 * <p>
 * Allocation and freeing are serialised here (Agrona's {@link CountersManager} is single-threaded); each counter has
 * one writer thread and any number of readers, in this process or outside it.
 */
public final class ProcessCounters
{
    /** How often a running side publishes its latency percentiles into its counters at most: 500 ms. */
    public static final long LATENCY_PUBLISH_INTERVAL_NS = TimeUnit.MILLISECONDS.toNanos(500);
    /** Counters of the in-memory fallback. */
    private static final int FALLBACK_CAPACITY = 64;
    private static final Logger LOG = LoggerFactory.getLogger(ProcessCounters.class);
    /** Open files by absolute directory; guarded by the class. */
    private static final Map<Path, ProcessCounters> OPEN = new HashMap<>();

    private final Path directory;
    private final CountersFile file;
    private final CountersManager manager;
    private int users;

    private ProcessCounters(final Path directory, final CountersFile file, final CountersManager manager)
    {
        this.directory = directory;
        this.file = file;
        this.manager = manager;
    }

    /**
     * Joins (or creates) this process's counters file in {@code directory}; pair with one {@link #release()}.
     *
     * @param directory where the file goes, e.g. {@link CountersFile#defaultDirectory()}.
     * @return the shared counters of this process there (in memory only if the file cannot be created).
     */
    public static synchronized ProcessCounters acquire(final Path directory)
    {
        final Path key = directory.toAbsolutePath().normalize();
        ProcessCounters counters = OPEN.get(key);
        if (counters == null)
        {
            counters = create(key);
            if (counters.file != null)
            {
                OPEN.put(key, counters);
            }
        }
        counters.users++;
        return counters;
    }

    private static ProcessCounters create(final Path directory)
    {
        final ProcessHandle self = ProcessHandle.current();
        final long startMs = self.info().startInstant().map(java.time.Instant::toEpochMilli)
            .orElse(System.currentTimeMillis());
        final Path path = CountersFile.fileOf(directory, self.pid());
        try
        {
            final CountersFile file = CountersFile.create(path, self.pid(), startMs, CountersFile.CAPACITY_DEFAULT);
            path.toFile().deleteOnExit();
            return new ProcessCounters(directory, file, file.manager());
        }
        catch (final IOException ex)
        {
            LOG.warn("{}; Tandem's counters stay in process memory, status() works but stat cannot see them " +
                "(set -D{} or the context's countersDirectory to a writable directory)", ex.getMessage(),
                CountersFile.DIRECTORY_PROP_NAME);
            return new ProcessCounters(directory, null, new CountersManager(
                new UnsafeBuffer(ByteBuffer.allocateDirect(FALLBACK_CAPACITY *
                    org.agrona.concurrent.status.CountersReader.METADATA_LENGTH)),
                new UnsafeBuffer(ByteBuffer.allocateDirect(FALLBACK_CAPACITY *
                    org.agrona.concurrent.status.CountersReader.COUNTER_LENGTH)), StandardCharsets.UTF_8));
        }
    }

    /**
     * Allocates a counter, zero.
     *
     * @param type what it counts.
     * @param vmId the VM it is of (in its key and label).
     * @return the counter; free it with {@link #free(AtomicCounter)}.
     * @throws IllegalStateException if the file is full, naming it.
     */
    public synchronized AtomicCounter newCounter(final CounterType type, final String vmId)
    {
        try
        {
            return manager.newCounter(type.label(vmId), type.typeId(), key -> type.writeKey(key, vmId));
        }
        catch (final IllegalStateException ex)
        {
            throw new IllegalStateException("the counters file " + (file == null ? "(in memory)" : file.file()) +
                " is full (" + manager.capacity() + " counters in use by this process): " + ex.getMessage(), ex);
        }
    }

    /**
     * Frees a counter; its writer must have stopped. Idempotent.
     *
     * @param counter a counter from {@link #newCounter}.
     */
    public synchronized void free(final AtomicCounter counter)
    {
        counter.close();
    }

    /**
     * Leaves the file: the last user unmaps and deletes it. Call once per {@link #acquire(Path)}, after freeing
     * this user's counters.
     */
    public void release()
    {
        synchronized (ProcessCounters.class)
        {
            if (users <= 0)
            {
                throw new IllegalStateException("counters of " + directory + " released more often than acquired");
            }
            if (--users > 0)
            {
                return;
            }
            if (file == null)
            {
                return;
            }
            OPEN.remove(directory);
            file.close();
            try
            {
                Files.deleteIfExists(file.file());
            }
            catch (final IOException ex)
            {
                LOG.warn("cannot delete the counters file {}: {}", file.file(), ex.toString());
            }
        }
    }

    /**
     * @return the mapped file, or null when the counters live in process memory only.
     */
    public Path file()
    {
        return file == null ? null : file.file();
    }

    /**
     * @return counters files this process has mapped now (0 once every active and standby closed); for leak checks.
     */
    public static synchronized int mappedFiles()
    {
        return OPEN.size();
    }
}
