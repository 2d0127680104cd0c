package dev.tandem.core.active;

/**
 * Events of the active side, called on the sender thread: keep them short.
 */
public interface ActiveListener
{
    /**
     * The standby committed an epoch and its output was released.
     *
     * @param epoch            the acknowledged epoch.
     * @param commitLatencyNs  from the checkpoint to the ack.
     */
    default void onAck(long epoch, long commitLatencyNs)
    {
    }

    /**
     * Barrier N went out and the pages of delta N start to follow.
     *
     * @param epoch the epoch being sent.
     */
    default void onDeltaSending(long epoch)
    {
    }

    /**
     * The end of delta N went out; its ack is awaited.
     *
     * @param epoch the epoch sent.
     */
    default void onDeltaSent(long epoch)
    {
    }

    /**
     * The guest was restored in place on this host, as the health probe asked ({@code HealthProbe.restoreHere}),
     * and resumes now; called with the guest still paused, so a check of its state here sees exactly the checkpoint
     * restored.
     *
     * @param heldEpoch the acknowledged epoch the guest was paused at.
     * @param epoch     the checkpoint it was restored to ({@code heldEpoch} for the latest).
     * @param report    the standby's account: what was restored, or why not the checkpoint asked for.
     */
    default void onRestoredInPlace(long heldEpoch, long epoch, String report)
    {
    }

    /**
     * Protection failed (connection lost, protocol error); the guest keeps running unprotected.
     *
     * @param error what happened.
     */
    default void onError(Throwable error)
    {
    }
}
