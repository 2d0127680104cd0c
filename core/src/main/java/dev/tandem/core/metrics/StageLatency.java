package dev.tandem.core.metrics;

import org.HdrHistogram.Histogram;

/**
 * The latency of one stage of the checkpoint pipeline (pause, encode, send, ack on the active; receive, apply,
 * commit on the standby) after the baseline: the baseline's full copy is reported apart. The totals run from the
 * baseline on and so keep the warm-up that follows it; the window percentiles cover the last
 * {@link LatencyDistribution#WINDOW_SECONDS} seconds only: the steady state.
 *
 * @param stage       the stage's name, from the design's vocabulary.
 * @param count       epochs measured since the baseline.
 * @param p50Ns       median since the baseline.
 * @param p99Ns       99th percentile since the baseline.
 * @param maxNs       longest since the baseline.
 * @param windowCount epochs measured in the window.
 * @param windowP50Ns median of the window (0 if it is empty).
 * @param windowP99Ns 99th percentile of the window (0 if it is empty).
 */
public record StageLatency(String stage, long count, long p50Ns, long p99Ns, long maxNs, long windowCount,
    long windowP50Ns, long windowP99Ns)
{
    /**
     * @param stage  the stage's name.
     * @param total  everything recorded since the baseline.
     * @param window what was recorded in the sliding window.
     * @return the stage's figures.
     */
    public static StageLatency of(final String stage, final Histogram total, final Histogram window)
    {
        final boolean empty = window == null || window.getTotalCount() == 0;
        return new StageLatency(stage, total.getTotalCount(), total.getValueAtPercentile(50),
            total.getValueAtPercentile(99), total.getMaxValue(), empty ? 0 : window.getTotalCount(),
            empty ? 0 : window.getValueAtPercentile(50), empty ? 0 : window.getValueAtPercentile(99));
    }

    /**
     * @return e.g. {@code encode p50 1.20 ms p99 3.40 ms (last 10 s: p50 1.10 ms p99 2.10 ms)}.
     */
    public String describe()
    {
        return String.format(java.util.Locale.ROOT, "%s p50 %.2f ms p99 %.2f ms (last %d s: p50 %.2f ms p99 %.2f ms)",
            stage, p50Ns / 1e6, p99Ns / 1e6, LatencyDistribution.WINDOW_SECONDS, windowP50Ns / 1e6,
            windowP99Ns / 1e6);
    }
}
