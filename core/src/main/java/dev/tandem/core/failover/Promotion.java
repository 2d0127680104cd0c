package dev.tandem.core.failover;

import dev.tandem.vmm.VmmAdapter;

/**
 * What a promotion did, with its timings.
 *
 * @param reason        why the standby promoted (silence of the active, a failure report, an operator).
 * @param recoveryEpoch the committed epoch the guest resumed from.
 * @param generation    the generation the promoted guest serves.
 * @param detectionNs   from the last frame of the active to the decision to promote (0 for a report).
 * @param promotionNs   from the decision to the guest running again.
 * @param guest         the running guest, as the {@link dev.tandem.vmm.ReplicaTarget} built it.
 * @param resumedFrom   the checkpoint it resumed from and what it changed since, for its next protection
 *                      ({@link dev.tandem.core.active.ActiveContext#resumedFrom}).
 */
public record Promotion(String reason, long recoveryEpoch, long generation, long detectionNs, long promotionNs,
    VmmAdapter guest, ResumedCheckpoint resumedFrom)
{
}
