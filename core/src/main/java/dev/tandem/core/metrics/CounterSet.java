package dev.tandem.core.metrics;

import org.agrona.concurrent.status.AtomicCounter;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The counters of one active or standby in the process's counters file: allocated one by one, freed together, and
 * the file left when they are ({@link #close()}). The owner frees them only once every writer thread stopped and no
 * reader of its own reads them any more: a freed counter's slot can be handed to another owner at once.
 */
public final class CounterSet implements AutoCloseable
{
    private final ProcessCounters file;
    private final String vmId;
    private final List<AtomicCounter> all = new ArrayList<>();
    private boolean closed;

    /**
     * Joins the process's counters file in {@code directory}.
     *
     * @param directory where the file is, e.g. {@link CountersFile#defaultDirectory()}.
     * @param vmId      the VM whose counters these are.
     */
    public CounterSet(final Path directory, final String vmId)
    {
        this.file = ProcessCounters.acquire(directory);
        this.vmId = vmId;
    }

    /**
     * @param type what the counter counts.
     * @return a new counter of this set, zero.
     * @throws IllegalStateException if the file is full.
     */
    public AtomicCounter add(final CounterType type)
    {
        final AtomicCounter counter = file.newCounter(type, vmId);
        all.add(counter);
        return counter;
    }

    /**
     * Adds to a counter that only the calling thread writes: a plain read and a release store; never allocates.
     *
     * @param counter the counter.
     * @param delta   what to add.
     */
    public static void add(final AtomicCounter counter, final long delta)
    {
        counter.setRelease(counter.getPlain() + delta);
    }

    /**
     * @return the counters file, or null if the counters live in process memory only.
     */
    public Path file()
    {
        return file.file();
    }

    /**
     * Frees every counter of the set and leaves the file (the last user of the process deletes it). Idempotent.
     */
    @Override
    public void close()
    {
        if (closed)
        {
            return;
        }
        closed = true;
        all.forEach(file::free);
        all.clear();
        file.release();
    }
}
