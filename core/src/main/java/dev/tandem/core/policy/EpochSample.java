package dev.tandem.core.policy;

/**
 * What the last checkpoint showed, handed to a {@link CheckpointPolicy}. One instance is reused by the scheduler:
 * read it during the call only.
 */
public final class EpochSample
{
    long epoch;
    long periodNs;
    long dirtyPages;
    long pauseNs;
    long commitLatencyNs;
    long epochsInFlight;
    int maxEpochsInFlight;
    long applicationSignal;
    long sendNs;
    long encodedBytes;
    long outputHeldBytes;

    /**
     * @return the checkpoint just taken.
     */
    public long epoch()
    {
        return epoch;
    }

    /**
     * @return the period that ended with it.
     */
    public long periodNs()
    {
        return periodNs;
    }

    /**
     * @return pages dirtied during the epoch.
     */
    public long dirtyPages()
    {
        return dirtyPages;
    }

    /**
     * @return how long the guest was paused for the checkpoint.
     */
    public long pauseNs()
    {
        return pauseNs;
    }

    /**
     * @return the latest checkpoint-to-ack time seen (0 before the first ack): how long output waits beyond the
     * epoch itself.
     */
    public long commitLatencyNs()
    {
        return commitLatencyNs;
    }

    /**
     * @return epochs checkpointed and not yet acknowledged.
     */
    public long epochsInFlight()
    {
        return epochsInFlight;
    }

    /**
     * @return the bound on epochs in flight.
     */
    public int maxEpochsInFlight()
    {
        return maxEpochsInFlight;
    }

    /**
     * @return the application's own signal (e.g. requests in flight), 0 when none is fed.
     */
    public long applicationSignal()
    {
        return applicationSignal;
    }

    /**
     * @return time from barrier to epoch end on the wire of the newest epoch fully sent (0 if none yet).
     */
    public long sendNs()
    {
        return sendNs;
    }

    /**
     * @return page bytes on the wire (after the codec) of the newest epoch fully sent.
     */
    public long encodedBytes()
    {
        return encodedBytes;
    }

    /**
     * @return bytes of network output waiting for acks when the checkpoint was taken.
     */
    public long outputHeldBytes()
    {
        return outputHeldBytes;
    }

    /**
     * @param heldBytes bytes of network output waiting for acks.
     * @return this.
     */
    public EpochSample output(final long heldBytes)
    {
        this.outputHeldBytes = heldBytes;
        return this;
    }

    /**
     * Sets what the link showed for the newest epoch fully sent (it may be older than {@link #epoch()}).
     *
     * @param sendNs       time from barrier to epoch end.
     * @param encodedBytes page bytes after the codec.
     * @return this.
     */
    public EpochSample link(final long sendNs, final long encodedBytes)
    {
        this.sendNs = sendNs;
        this.encodedBytes = encodedBytes;
        return this;
    }

    /**
     * Fills the sample (used by the scheduler, and by tests driving a policy by hand).
     *
     * @param epoch             checkpoint just taken.
     * @param periodNs          period that ended with it.
     * @param dirtyPages        pages dirtied during the epoch.
     * @param pauseNs           pause of the checkpoint.
     * @param commitLatencyNs   latest checkpoint-to-ack time.
     * @param epochsInFlight    epochs not yet acknowledged.
     * @param maxEpochsInFlight bound on them.
     * @param applicationSignal the application's signal.
     * @return this.
     */
    public EpochSample set(final long epoch, final long periodNs, final long dirtyPages, final long pauseNs,
        final long commitLatencyNs, final long epochsInFlight, final int maxEpochsInFlight,
        final long applicationSignal)
    {
        this.epoch = epoch;
        this.periodNs = periodNs;
        this.dirtyPages = dirtyPages;
        this.pauseNs = pauseNs;
        this.commitLatencyNs = commitLatencyNs;
        this.epochsInFlight = epochsInFlight;
        this.maxEpochsInFlight = maxEpochsInFlight;
        this.applicationSignal = applicationSignal;
        this.sendNs = 0;
        this.encodedBytes = 0;
        this.outputHeldBytes = 0;
        return this;
    }
}
