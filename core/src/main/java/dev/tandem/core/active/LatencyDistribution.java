package dev.tandem.core.active;

import org.HdrHistogram.Histogram;
import org.HdrHistogram.SingleWriterRecorder;

/**
 * One latency distribution of the active side: a recorder its one writer thread records into without allocating,
 * and the histogram of everything recorded so far, brought up to date when a status snapshot is taken.
 */
final class LatencyDistribution
{
    private final SingleWriterRecorder recorder = new SingleWriterRecorder(ActiveReplicator.HIGHEST_RECORDED_NS, 3);
    private final Histogram total = new Histogram(ActiveReplicator.HIGHEST_RECORDED_NS, 3);
    private Histogram interval;

    /**
     * @return the recorder for the writer thread.
     */
    SingleWriterRecorder recorder()
    {
        return recorder;
    }

    /**
     * Folds what was recorded since the last call into the total; called under the status lock.
     *
     * @return the total, valid until the next call.
     */
    Histogram refresh()
    {
        interval = recorder.getIntervalHistogram(interval);
        total.add(interval);
        return total;
    }
}
