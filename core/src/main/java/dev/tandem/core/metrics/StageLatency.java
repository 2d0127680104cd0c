package dev.tandem.core.metrics;

import org.HdrHistogram.Histogram;

/**
 * The latency of one stage of the checkpoint pipeline (pause, encode, send, ack on the active; receive, apply,
 * commit on the standby) after the baseline: the baseline's full copy is reported apart, so these percentiles are
 * the steady state from launch on, and {@code recentP99Ns} covers only the time since the previous status snapshot.
 *
 * @param stage       the stage's name, from the design's vocabulary.
 * @param count       epochs measured.
 * @param p50Ns       median since the baseline.
 * @param p99Ns       99th percentile since the baseline.
 * @param maxNs       longest since the baseline.
 * @param recentP99Ns 99th percentile since the previous snapshot (0 if none was measured since).
 */
public record StageLatency(String stage, long count, long p50Ns, long p99Ns, long maxNs, long recentP99Ns)
{
    /**
     * @param stage  the stage's name.
     * @param total  everything recorded since the baseline.
     * @param recent what was recorded since the previous snapshot.
     * @return the stage's figures.
     */
    public static StageLatency of(final String stage, final Histogram total, final Histogram recent)
    {
        return new StageLatency(stage, total.getTotalCount(), total.getValueAtPercentile(50),
            total.getValueAtPercentile(99), total.getMaxValue(),
            recent == null || recent.getTotalCount() == 0 ? 0 : recent.getValueAtPercentile(99));
    }

    /**
     * @return e.g. {@code encode p50 1.20 ms p99 3.40 ms (recent 2.10 ms)}.
     */
    public String describe()
    {
        return String.format(java.util.Locale.ROOT, "%s p50 %.2f ms p99 %.2f ms (recent %.2f ms)", stage, p50Ns / 1e6,
            p99Ns / 1e6, recentP99Ns / 1e6);
    }
}
