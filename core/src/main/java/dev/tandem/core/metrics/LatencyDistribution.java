package dev.tandem.core.metrics;

import org.HdrHistogram.Histogram;
import org.HdrHistogram.SingleWriterRecorder;

/**
 * One latency distribution: a recorder its one writer thread records into without allocating, the histogram of
 * everything recorded so far, and the window since the previous snapshot ({@link #recent()}), brought up to date
 * when a status snapshot is taken. The window is what a dashboard polling {@code status()} wants: a total keeps a
 * bad minute for ever.
 */
public final class LatencyDistribution
{
    /** Longest latency recorded; fixed so that recording never resizes (allocates) on a hot path. */
    public static final long HIGHEST_RECORDED_NS = java.util.concurrent.TimeUnit.SECONDS.toNanos(60);

    private final SingleWriterRecorder recorder = new SingleWriterRecorder(HIGHEST_RECORDED_NS, 3);
    private final Histogram total = new Histogram(HIGHEST_RECORDED_NS, 3);

    /**
     * An empty distribution.
     */
    public LatencyDistribution()
    {
    }
    private Histogram interval;

    /**
     * @return the recorder for the writer thread.
     */
    public SingleWriterRecorder recorder()
    {
        return recorder;
    }

    /**
     * Folds what was recorded since the last call into the total; called under the status lock.
     *
     * @return the total, valid until the next call.
     */
    public Histogram refresh()
    {
        interval = recorder.getIntervalHistogram(interval);
        total.add(interval);
        return total;
    }

    /**
     * @return what was recorded between the two latest {@link #refresh()} calls; valid until the next call.
     */
    public Histogram recent()
    {
        return interval;
    }
}
