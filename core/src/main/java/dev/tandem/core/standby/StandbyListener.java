package dev.tandem.core.standby;

import dev.tandem.vmm.RecoveryPoint;

/**
 * Events of the standby side. Keep them short: {@link #onCommit} runs on the applier thread and delays the applier
 * (and so a promotion, which first finishes every committed epoch), the others on the thread that met the error.
 */
public interface StandbyListener
{
    /**
     * Epoch {@code epoch}, committed (received whole and verified) and already acknowledged, has been applied: the
     * replica now holds exactly that epoch. Called on the applier thread, once per epoch, in epoch order.
     *
     * @param epoch the applied epoch.
     * @param point the replica as of {@code epoch} ({@link RecoveryPoint#epoch()} says so); valid only during the
     *              call.
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
