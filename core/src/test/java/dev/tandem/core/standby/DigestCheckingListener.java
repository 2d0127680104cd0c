package dev.tandem.core.standby;

import dev.tandem.vmm.RecoveryPoint;
import dev.tandem.vmm.StateDigest;

import java.util.List;
import java.util.Map;

/**
 * Checks every epoch a standby commits against the active's own checkpoint of it (its digest, recorded by the
 * active's checkpoint observer), noting each that differs.
 */
final class DigestCheckingListener implements StandbyListener
{
    private final Map<Long, Long> digests;
    private final List<String> mismatches;

    /**
     * @param digests    the active's checkpoint digests by epoch.
     * @param mismatches where an epoch that differs (or was never checkpointed) is noted.
     */
    DigestCheckingListener(final Map<Long, Long> digests, final List<String> mismatches)
    {
        this.digests = digests;
        this.mismatches = mismatches;
    }

    @Override
    public void onCommit(final long epoch, final RecoveryPoint point)
    {
        final Long want = digests.get(epoch);
        final long got = StateDigest.of(point);
        if (want == null || want != got)
        {
            mismatches.add("epoch " + epoch + ": active " + want + " standby " + got);
        }
    }
}
