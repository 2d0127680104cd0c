package dev.tandem.core.standby;

import dev.tandem.core.metrics.CounterSet;
import dev.tandem.core.metrics.CounterType;
import org.agrona.concurrent.status.AtomicCounter;

import java.nio.file.Path;

/**
 * Counters of the standby side, in the process's counters file so that {@code stat} reads what {@code status()}
 * reads. The receiver thread writes them (release stores, allocation-free); any thread may read. Freed by
 * {@link #close()} only once the receiver stopped.
 */
final class StandbyCounters implements AutoCloseable
{
    private final CounterSet set;

    final AtomicCounter connected;
    final AtomicCounter commits;
    final AtomicCounter committedEpoch;
    final AtomicCounter framesReceived;
    final AtomicCounter bytesReceived;
    final AtomicCounter refusals;
    final AtomicCounter sessions;
    final AtomicCounter promotions;
    final AtomicCounter commitP99Ns;
    final AtomicCounter generation;

    /**
     * Allocates every counter of one standby; a failure frees what was allocated and leaves the file.
     */
    StandbyCounters(final Path directory, final String vmId)
    {
        set = new CounterSet(directory, vmId);
        try
        {
            connected = set.add(CounterType.STANDBY_CONNECTED);
            commits = set.add(CounterType.STANDBY_COMMITS);
            committedEpoch = set.add(CounterType.STANDBY_COMMITTED_EPOCH);
            framesReceived = set.add(CounterType.STANDBY_FRAMES_RECEIVED);
            bytesReceived = set.add(CounterType.STANDBY_BYTES_RECEIVED);
            refusals = set.add(CounterType.STANDBY_REFUSALS);
            sessions = set.add(CounterType.STANDBY_SESSIONS);
            promotions = set.add(CounterType.STANDBY_PROMOTIONS);
            commitP99Ns = set.add(CounterType.STANDBY_COMMIT_P99_NS);
            generation = set.add(CounterType.STANDBY_GENERATION);
        }
        catch (final RuntimeException ex)
        {
            set.close();
            throw ex;
        }
    }


    /**
     * @return the counters file, or null if the counters live in process memory only.
     */
    Path file()
    {
        return set.file();
    }

    /**
     * Frees every counter and leaves the file; the receiver must have stopped. Idempotent.
     */
    @Override
    public void close()
    {
        set.close();
    }
}
