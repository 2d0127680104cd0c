package dev.tandem.core.metrics;

import org.HdrHistogram.Histogram;
import org.HdrHistogram.SingleWriterRecorder;

import java.util.concurrent.TimeUnit;

/**
 * One latency distribution: a recorder its one writer thread records into without allocating, the histogram of
 * everything recorded so far, and a sliding window of the last {@link #WINDOW_SECONDS} seconds ({@link #window()}).
 * The window is the steady state a dashboard wants: a total keeps the warm-up after the baseline and a bad minute for
 * ever. It slides with time, not with readers: any number of callers of {@code status()} see the same window (an
 * earlier window "since the previous snapshot" shrank for one reader whenever another read).
 * <p>
 * The window is kept as one histogram per second in a ring; a fold adds what was recorded since the last fold to the
 * current second's. The slots keep two significant digits (1% resolution, a seventh of the memory of the total's
 * three): a window of ten seconds costs about 340 KB per distribution rather than 2.4 MB.
 */
public final class LatencyDistribution
{
    /** Longest latency recorded; fixed so that recording never resizes (allocates) on a hot path. */
    public static final long HIGHEST_RECORDED_NS = TimeUnit.SECONDS.toNanos(60);
    /** Seconds the sliding window covers (the current second, partly, and the nine before it). */
    public static final int WINDOW_SECONDS = 10;

    private static final long SECOND_NS = TimeUnit.SECONDS.toNanos(1);
    private static final int WINDOW_DIGITS = 2;

    private final SingleWriterRecorder recorder = new SingleWriterRecorder(HIGHEST_RECORDED_NS, 3);
    private final Histogram total = new Histogram(HIGHEST_RECORDED_NS, 3);
    /** One histogram per second, the ring of the window; slot {@code second % WINDOW_SECONDS}. */
    private final Histogram[] seconds = new Histogram[WINDOW_SECONDS];
    /** The sum of the ring, brought up to date by {@link #refresh(long)}. */
    private final Histogram window = new Histogram(HIGHEST_RECORDED_NS, WINDOW_DIGITS);
    /** The second the newest slot covers, or {@link Long#MIN_VALUE} before the first fold. */
    private long newestSecond = Long.MIN_VALUE;
    private Histogram interval;

    /**
     * An empty distribution.
     */
    public LatencyDistribution()
    {
        for (int i = 0; i < WINDOW_SECONDS; i++)
        {
            seconds[i] = new Histogram(HIGHEST_RECORDED_NS, WINDOW_DIGITS);
        }
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
     * Folds what was recorded since the last call into the total and the current second of the window, without
     * allocating; for a duty cycle that publishes percentiles between status snapshots. Callers serialise it with
     * {@link #refresh(long)}.
     *
     * @param nowNs the caller's clock (monotonic), which places the samples in the window.
     * @return the total, valid until the next call.
     */
    public Histogram fold(final long nowNs)
    {
        interval = recorder.getIntervalHistogram(interval);
        total.add(interval);
        slot(nowNs).add(interval);
        return total;
    }

    /**
     * Folds what was recorded and sums the window; called under the status lock.
     *
     * @param nowNs the caller's clock (monotonic).
     * @return the total, valid until the next call.
     */
    public Histogram refresh(final long nowNs)
    {
        fold(nowNs);
        window.reset();
        for (final Histogram second : seconds)
        {
            window.add(second);
        }
        return total;
    }

    /**
     * @return what was recorded in the last {@link #WINDOW_SECONDS} seconds (between nine and ten whole seconds
     *         before the latest {@link #refresh(long)}), at two significant digits; valid until the next refresh.
     */
    public Histogram window()
    {
        return window;
    }

    /**
     * @return the slot of {@code nowNs}'s second, after emptying the slots of the seconds passed since the last fold.
     */
    private Histogram slot(final long nowNs)
    {
        final long second = Math.floorDiv(nowNs, SECOND_NS);
        if (newestSecond == Long.MIN_VALUE)
        {
            newestSecond = second;
        }
        else if (second > newestSecond)
        {
            final long passed = Math.min(WINDOW_SECONDS, second - newestSecond);
            for (long s = 1; s <= passed; s++)
            {
                seconds[(int)Math.floorMod(newestSecond + s, (long)WINDOW_SECONDS)].reset();
            }
            newestSecond = second;
        }
        // a clock read before the newest second (another thread's, a moment older) adds to the newest slot
        return seconds[(int)Math.floorMod(newestSecond, (long)WINDOW_SECONDS)];
    }
}
