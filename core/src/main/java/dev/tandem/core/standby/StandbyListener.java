package dev.tandem.core.standby;

import dev.tandem.vmm.RecoveryPoint;

/**
 * Events of the standby side, called on the receiver thread: keep them short (a commit callback delays the ack).
 */
public interface StandbyListener
{
    /**
     * Epoch {@code epoch} was committed and is now the recovery point; called before the ack is sent.
     *
     * @param epoch the committed epoch.
     * @param point the recovery point; valid only during the call.
     */
    default void onCommit(long epoch, RecoveryPoint point)
    {
    }

    /**
     * A frame or handshake was refused, or the connection failed; the replica still holds its last commit.
     *
     * @param error what happened.
     */
    default void onError(Throwable error)
    {
    }
}
