package dev.tandem.core.metrics;

import java.util.Locale;

/**
 * A snapshot of the active side, cheap enough to take every second.
 *
 * @param state               where protection stands.
 * @param lastCheckpointEpoch newest checkpoint taken.
 * @param lastAckedEpoch      newest epoch the standby committed.
 * @param checkpoints         checkpoints taken.
 * @param checkpointsPerSecond rate over the latest window of at least a second, the same whoever else reads the
 *                            status and how often.
 * @param bytesSent           bytes written to the standby.
 * @param pagesCopied         dirty pages copied into staging.
 * @param stagingOverflows    deltas larger than one staging area.
 * @param inFlightWaits       times a checkpoint waited for acks (epochs in flight at the bound).
 * @param diskBackPressure    times a disk write waited for room in the stream.
 * @param outputHeldBytes     bytes of output waiting for acks.
 * @param outputReleased      frames released after their ack.
 * @param outputDropped       frames dropped because the hold queue was full.
 * @param pauseP50Ns          median guest pause of a checkpoint after the baseline.
 * @param pauseP99Ns          99th percentile guest pause.
 * @param pauseMaxNs          longest guest pause.
 * @param commitP50Ns         median time from checkpoint to ack, after the baseline.
 * @param commitP99Ns         99th percentile time from checkpoint to ack, after the baseline.
 * @param pageBytesRaw        bytes of pages handed to the page codec.
 * @param pageBytesEncoded    bytes the page codec turned them into (equal to raw without the codec).
 * @param policy              name of the checkpoint policy.
 * @param periodNs            the period it chose last.
 * @param policyDecision      why (see {@code CheckpointPolicy.Decision}).
 * @param outputHoldP99Ns     99th percentile of the time a network frame was held, offer to release, for frames
 *                            offered after the baseline.
 * @param baselinePauseNs     the pause of the baseline (a paused full copy of memory and disks), not in the
 *                            pause percentiles.
 * @param encodeP99Ns         99th percentile of the time spent encoding one epoch's pages, after resume (summed over
 *                            encoder threads; 0 without the codec).
 * @param sendP99Ns           99th percentile of the time from an epoch's barrier to its end on the wire.
 * @param zeroPages           pages sent as zero pages.
 * @param rawPages            pages sent raw (every page without the codec).
 * @param lz4Pages            pages sent as LZ4 of the page.
 * @param deltaPages          pages sent as LZ4 of the XOR with the version sent before.
 * @param encoderThreads      threads encoding pages (1: the sender's own; 0: no codec).
 * @param generation          the generation this side serves (moves up when it wins the next one).
 * @param arbiterAttempts     questions asked of the arbiter so far (while ARBITRATING, or silent).
 * @param arbiterError        why the arbiter last could not be reached, or null once it answered.
 * @param outputHoldP50Ns     median hold of a frame offered after the baseline.
 * @param outputHoldWindowP50Ns median hold of the frames released in the last
 *                            {@link LatencyDistribution#WINDOW_SECONDS} seconds (the steady state; 0 if none).
 * @param outputHoldWindowP99Ns 99th percentile of those.
 * @param baselineCommitNs    checkpoint to ack of the baseline (the whole first copy), 0 until acknowledged.
 * @param baselineHoldMaxNs   longest hold of a frame offered during the baseline.
 * @param stages              per stage of the active (pause, encode, send, ack), after the baseline.
 * @param lastCheckpointDirtyPages pages dirtied during epoch {@code lastCheckpointEpoch} (its delta: what
 *                            checkpoint {@code lastCheckpointEpoch} copied; every page for the baseline).
 * @param baseline            where the baseline stands (rounds, pages copied and left, disk bytes sent).
 * @param reconnect           reconnects after lost links, their resyncs and the time spent unprotected.
 */
public record ProtectionStatus(
    ProtectionState state,
    long lastCheckpointEpoch,
    long lastAckedEpoch,
    long checkpoints,
    double checkpointsPerSecond,
    long bytesSent,
    long pagesCopied,
    long stagingOverflows,
    long inFlightWaits,
    long diskBackPressure,
    long outputHeldBytes,
    long outputReleased,
    long outputDropped,
    long pauseP50Ns,
    long pauseP99Ns,
    long pauseMaxNs,
    long commitP50Ns,
    long commitP99Ns,
    long pageBytesRaw,
    long pageBytesEncoded,
    String policy,
    long periodNs,
    String policyDecision,
    long outputHoldP99Ns,
    long baselinePauseNs,
    long encodeP99Ns,
    long sendP99Ns,
    long zeroPages,
    long rawPages,
    long lz4Pages,
    long deltaPages,
    int encoderThreads,
    long generation,
    long arbiterAttempts,
    String arbiterError,
    long outputHoldP50Ns,
    long outputHoldWindowP50Ns,
    long outputHoldWindowP99Ns,
    long baselineCommitNs,
    long baselineHoldMaxNs,
    java.util.List<StageLatency> stages,
    long lastCheckpointDirtyPages,
    BaselineProgress baseline,
    ReconnectStatus reconnect)
{
    /**
     * @return epochs checkpointed but not yet acknowledged (the replication lag).
     */
    public long lagEpochs()
    {
        return Math.max(0, lastCheckpointEpoch - lastAckedEpoch);
    }

    /**
     * @return raw page bytes per encoded byte (1 without the codec).
     */
    public double pageCompressionRatio()
    {
        return pageBytesEncoded == 0 ? 1 : (double)pageBytesRaw / pageBytesEncoded;
    }

    /**
     * @return the compact one-line progress format used by the examples.
     */
    public String progressLine()
    {
        if (state == ProtectionState.RECONNECTING && reconnect != null)
        {
            return String.format(Locale.ROOT, "%-9s attempt %d, %.1f s left | acked %d | held %d KiB",
                state, reconnect.attempts(), reconnect.windowLeftNs() / 1e9, lastAckedEpoch, outputHeldBytes / 1024);
        }
        if (state == ProtectionState.SYNCING && baseline != null && !baseline.done())
        {
            return String.format(Locale.ROOT, "%-9s %s | sent %.1f MiB", state, baseline.describe(),
                bytesSent / (1024.0 * 1024.0));
        }
        return String.format(Locale.ROOT,
            "%-9s epoch %d acked %d | %.0f ckpt/s (%s %.1f ms) | pause p50 %.0f us p99 %.0f us | commit p99 %.1f ms | " +
            "lag %d | held %d KiB | sent %.1f MiB (pages %.1fx, encode p99 %.1f ms)",
            state, lastCheckpointEpoch, lastAckedEpoch, checkpointsPerSecond, policy, periodNs / 1e6, pauseP50Ns / 1e3,
            pauseP99Ns / 1e3,
            commitP99Ns / 1e6, lagEpochs(), outputHeldBytes / 1024, bytesSent / (1024.0 * 1024.0),
            pageCompressionRatio(), encodeP99Ns / 1e6);
    }

    /**
     * @param name a stage's name ({@code pause}, {@code encode}, {@code send}, {@code ack}).
     * @return that stage's figures.
     * @throws IllegalArgumentException if no stage has that name.
     */
    public StageLatency stage(final String name)
    {
        for (final StageLatency stage : stages)
        {
            if (stage.stage().equals(name))
            {
                return stage;
            }
        }
        throw new IllegalArgumentException("no stage " + name + "; the active's are pause, encode, send and ack");
    }
}
