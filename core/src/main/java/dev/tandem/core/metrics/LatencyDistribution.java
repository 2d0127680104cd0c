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
    /** What was folded in since the previous {@link #refresh()}. */
    private Histogram window = new Histogram(HIGHEST_RECORDED_NS, 3);
    /** The window between the two latest {@link #refresh()} calls. */
    private Histogram recent = new Histogram(HIGHEST_RECORDED_NS, 3);
    private Histogram interval;

    /**
     * An empty distribution.
     */
    public LatencyDistribution()
    {
        // the recorder's first interval creates its spare histograms: here, not on a duty cycle's first fold
        interval = recorder.getIntervalHistogram();
    }

    /**
     * @return the recorder for the writer thread.
     */
    public SingleWriterRecorder recorder()
    {
        return recorder;
    }

    /**
     * Folds what was recorded since the last call into the total, without allocating; for a duty cycle that
     * publishes percentiles between status snapshots. Callers serialise it with {@link #refresh()}.
     *
     * @return the total, valid until the next call.
     */
    public Histogram fold()
    {
        interval = recorder.getIntervalHistogram(interval);
        total.add(interval);
        window.add(interval);
        return total;
    }

    /**
     * Folds what was recorded into the total and starts a new {@link #recent()} window; called under the status
     * lock.
     *
     * @return the total, valid until the next call.
     */
    public Histogram refresh()
    {
        fold();
        final Histogram previous = recent;
        recent = window;
        window = previous;
        window.reset();
        return total;
    }

    /**
     * @return what was recorded between the two latest {@link #refresh()} calls (folds in between included);
     *         valid until the next call.
     */
    public Histogram recent()
    {
        return recent;
    }
}
