package dev.tandem.core.active;

import dev.tandem.core.metrics.CounterType;
import dev.tandem.core.metrics.CounterSet;
import org.agrona.concurrent.status.AtomicCounter;

import java.nio.file.Path;

/**
 * Counters of the active side, in the process's counters file so that {@code stat} reads what {@code status()}
 * reads. Each has one writer thread (a release store of its own increment, allocation-free); any thread may read.
 * Freed by {@link #close()} only once every writer stopped.
 */
final class ActiveCounters implements AutoCloseable
{
    private final CounterSet set;

    final AtomicCounter state;
    final AtomicCounter checkpoints;
    final AtomicCounter checkpointEpoch;
    final AtomicCounter ackedEpoch;
    final AtomicCounter pagesCopied;
    final AtomicCounter stagingOverflows;
    final AtomicCounter inFlightWaits;
    final AtomicCounter bytesSent;
    final AtomicCounter framesSent;
    final AtomicCounter heartbeats;
    final AtomicCounter pageBytesRaw;
    final AtomicCounter pageBytesEncoded;
    final AtomicCounter zeroPages;
    final AtomicCounter rawPages;
    final AtomicCounter lz4Pages;
    final AtomicCounter deltaPages;
    final AtomicCounter pauseP50Ns;
    final AtomicCounter pauseP99Ns;
    final AtomicCounter pauseMaxNs;
    final AtomicCounter commitP99Ns;
    final AtomicCounter outputHoldP99Ns;
    final AtomicCounter generation;
    final AtomicCounter arbiterAttempts;
    final AtomicCounter reconnects;
    final AtomicCounter resyncBytes;
    final AtomicCounter unprotectedNs;

    /**
     * Allocates every counter of one active; a failure frees what was allocated and leaves the file.
     */
    ActiveCounters(final Path directory, final String vmId)
    {
        set = new CounterSet(directory, vmId);
        try
        {
            state = set.add(CounterType.ACTIVE_STATE);
            checkpoints = set.add(CounterType.ACTIVE_CHECKPOINTS);
            checkpointEpoch = set.add(CounterType.ACTIVE_CHECKPOINT_EPOCH);
            ackedEpoch = set.add(CounterType.ACTIVE_ACKED_EPOCH);
            bytesSent = set.add(CounterType.ACTIVE_BYTES_SENT);
            framesSent = set.add(CounterType.ACTIVE_FRAMES_SENT);
            heartbeats = set.add(CounterType.ACTIVE_HEARTBEATS);
            pagesCopied = set.add(CounterType.ACTIVE_PAGES_COPIED);
            stagingOverflows = set.add(CounterType.ACTIVE_STAGING_OVERFLOWS);
            inFlightWaits = set.add(CounterType.ACTIVE_IN_FLIGHT_WAITS);
            pageBytesRaw = set.add(CounterType.ACTIVE_PAGE_BYTES_RAW);
            pageBytesEncoded = set.add(CounterType.ACTIVE_PAGE_BYTES_ENCODED);
            zeroPages = set.add(CounterType.ACTIVE_ZERO_PAGES);
            rawPages = set.add(CounterType.ACTIVE_RAW_PAGES);
            lz4Pages = set.add(CounterType.ACTIVE_LZ4_PAGES);
            deltaPages = set.add(CounterType.ACTIVE_DELTA_PAGES);
            pauseP50Ns = set.add(CounterType.ACTIVE_PAUSE_P50_NS);
            pauseP99Ns = set.add(CounterType.ACTIVE_PAUSE_P99_NS);
            pauseMaxNs = set.add(CounterType.ACTIVE_PAUSE_MAX_NS);
            commitP99Ns = set.add(CounterType.ACTIVE_COMMIT_P99_NS);
            outputHoldP99Ns = set.add(CounterType.ACTIVE_OUTPUT_HOLD_P99_NS);
            generation = set.add(CounterType.ACTIVE_GENERATION);
            arbiterAttempts = set.add(CounterType.ACTIVE_ARBITER_ATTEMPTS);
            reconnects = set.add(CounterType.ACTIVE_RECONNECTS);
            resyncBytes = set.add(CounterType.ACTIVE_RESYNC_BYTES);
            unprotectedNs = set.add(CounterType.ACTIVE_UNPROTECTED_NS);
        }
        catch (final RuntimeException ex)
        {
            close();
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
     * Frees every counter and leaves the file; no writer may run any more. Idempotent.
     */
    @Override
    public void close()
    {
        set.close();
    }
}
