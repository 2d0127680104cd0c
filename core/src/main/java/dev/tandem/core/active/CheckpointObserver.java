package dev.tandem.core.active;

import dev.tandem.vmm.VmmAdapter;

/**
 * Sees the guest at each checkpoint, while it is still paused: for verification harnesses that record a digest of
 * the state the standby must reproduce. Whatever it does adds to the guest's pause; leave it unset in production.
 */
@FunctionalInterface
public interface CheckpointObserver
{
    /**
     * @param epoch   the checkpoint just taken.
     * @param adapter the paused guest.
     */
    void onCheckpoint(long epoch, VmmAdapter adapter);
}
