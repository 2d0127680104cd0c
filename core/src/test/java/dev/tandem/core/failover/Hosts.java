package dev.tandem.core.failover;

import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.standby.StandbyListener;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.RecoveryPoint;
import dev.tandem.vmm.StateDigest;
import dev.tandem.vmm.VmmAdapter;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The parts of a two-host test that every failback test builds alike: a standby listener that checks each commit
 * against the active's digest of that epoch, a promotion listener that keeps the promotion, and an active over real
 * loopback TCP that records its digest at every checkpoint.
 */
public final class Hosts
{
    private Hosts()
    {
    }

    /**
     * @param host       names the host in a mismatch.
     * @param expected   the active's digest by epoch.
     * @param mismatches where a commit that differs is noted.
     * @return a listener checking every commit.
     */
    public static StandbyListener checkingCommits(final String host, final Map<Long, Long> expected,
        final List<String> mismatches)
    {
        return new StandbyListener()
        {
            @Override
            public void onCommit(final long epoch, final RecoveryPoint point)
            {
                final Long want = expected.get(epoch);
                final long got = StateDigest.of(point);
                if (want == null || want != got)
                {
                    mismatches.add(host + " epoch " + epoch + ": active " + want + " standby " + got);
                }
            }
        };
    }

    /**
     * @param promoted where the promotion goes.
     * @return a listener keeping the promotion.
     */
    public static PromotionListener keepingPromotion(final AtomicReference<Promotion> promoted)
    {
        return new PromotionListener()
        {
            @Override
            public void onStep(final String step, final long sinceStartNs)
            {
            }

            @Override
            public void onPromoted(final Promotion promotion)
            {
                promoted.set(promotion);
            }
        };
    }

    /**
     * @return an active of {@code guest} towards {@code standby} at {@code generation}, a 5 ms period, recording its
     *         digest at every checkpoint into {@code digests}.
     */
    public static ActiveContext active(final VmmAdapter guest, final StandbyReplica standby,
        final PromotionArbiter arbiter, final long generation, final Map<Long, Long> digests)
    {
        return new ActiveContext()
            .adapter(guest)
            .transport(new TcpTransport())
            .standbyEndpoint(standby.endpoint())
            .stagingAreaBytes(4 << 20)
            .checkpointPeriodNs(Duration.ofMillis(5).toNanos())
            .promotionArbiter(arbiter)
            .generation(generation)
            .checkpointObserver((epoch, adapter) -> digests.put(epoch, StateDigest.of(adapter)));
    }
}
