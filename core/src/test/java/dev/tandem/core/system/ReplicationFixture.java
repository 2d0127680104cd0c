package dev.tandem.core.system;

import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyListener;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.transport.Transport;
import dev.tandem.vmm.RecoveryPoint;
import dev.tandem.vmm.StateDigest;
import dev.tandem.vmm.sim.SimulatedVmm;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BiConsumer;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * An active and a standby protecting one simulated guest, with the active's digest recorded at every checkpoint
 * and the standby's compared at every commit.
 */
public final class ReplicationFixture implements AutoCloseable
{
    public final SimulatedVmm vmm;
    public final StandbyReplica standby;
    public final ActiveReplicator active;
    public final Map<Long, Long> activeDigests = new ConcurrentHashMap<>();
    public final List<String> mismatches = new CopyOnWriteArrayList<>();
    public final AtomicLong verifiedCommits = new AtomicLong();
    public final List<Throwable> standbyErrors = new CopyOnWriteArrayList<>();
    private final boolean digests;
    private volatile java.util.function.BiConsumer<Long, RecoveryPoint> commitHook;

    public ReplicationFixture(
        final SimulatedVmm.Builder guest,
        final Transport transport,
        final String endpoint,
        final Path standbyDir,
        final boolean digests,
        final BiConsumer<ActiveContext, StandbyReplica> activeConfig) throws IOException
    {
        this(guest, transport, endpoint, standbyDir, digests, activeConfig, ctx -> { });
    }

    public ReplicationFixture(
        final SimulatedVmm.Builder guest,
        final Transport transport,
        final String endpoint,
        final Path standbyDir,
        final boolean digests,
        final BiConsumer<ActiveContext, StandbyReplica> activeConfig,
        final java.util.function.Consumer<StandbyContext> standbyConfig) throws IOException
    {
        this(guest, transport, endpoint, standbyDir, digests, activeConfig, standbyConfig, null);
    }

    /**
     * @param initialCommitHook called at every commit from the first one on (see {@link #onCommit}), or null.
     */
    public ReplicationFixture(
        final SimulatedVmm.Builder guest,
        final Transport transport,
        final String endpoint,
        final Path standbyDir,
        final boolean digests,
        final BiConsumer<ActiveContext, StandbyReplica> activeConfig,
        final java.util.function.Consumer<StandbyContext> standbyConfig,
        final BiConsumer<Long, RecoveryPoint> initialCommitHook) throws IOException
    {
        this.digests = digests;
        // not named commitHook: the listener below must read the field, which onCommit() may change later
        this.commitHook = initialCommitHook;
        vmm = guest.build();
        final StandbyContext standbyCtx = new StandbyContext()
            .transport(transport)
            .listenEndpoint(endpoint)
            .directory(standbyDir)
            .vmId(vmm.vmId())
            .memory(vmm.memory().pageSize(), vmm.memory().pageCount())
            .listener(new StandbyListener()
            {
                @Override
                public void onCommit(final long epoch, final RecoveryPoint point)
                {
                    final java.util.function.BiConsumer<Long, RecoveryPoint> hook = commitHook;
                    if (hook != null)
                    {
                        hook.accept(epoch, point);
                    }
                    if (digests)
                    {
                        final Long expected = activeDigests.get(epoch);
                        final long actual = StateDigest.of(point);
                        if (expected == null || expected != actual)
                        {
                            mismatches.add("epoch " + epoch + ": active " + expected + " standby " + actual);
                        }
                        verifiedCommits.incrementAndGet();
                    }
                }

                @Override
                public void onError(final Throwable error)
                {
                    standbyErrors.add(error);
                }
            });
        if (vmm.disk() != null)
        {
            standbyCtx.disk(vmm.disk().id(), vmm.disk().blockSize(), vmm.disk().sizeBytes());
        }
        standbyConfig.accept(standbyCtx);
        StandbyReplica createdStandby = null;
        ActiveReplicator createdActive = null;
        try
        {
            createdStandby = StandbyReplica.launch(standbyCtx);
            vmm.start();
            final ActiveContext activeCtx = new ActiveContext()
                .adapter(vmm)
                .transport(transport)
                .standbyEndpoint(createdStandby.endpoint())
                .stagingAreaBytes(4 << 20)
                .checkpointPeriodNs(Duration.ofMillis(2).toNanos());
            if (digests)
            {
                activeCtx.checkpointObserver((epoch, adapter) -> activeDigests.put(epoch, StateDigest.of(adapter)));
            }
            activeConfig.accept(activeCtx, createdStandby);
            createdActive = ActiveReplicator.launch(activeCtx);
        }
        catch (final IOException | RuntimeException ex)
        {
            if (createdStandby != null)
            {
                createdStandby.close();
            }
            vmm.close();
            throw ex;
        }
        standby = createdStandby;
        active = createdActive;
    }

    /**
     * @param hook also called at every commit once the epoch is applied, on the standby's applier thread.
     */
    public void onCommit(final java.util.function.BiConsumer<Long, RecoveryPoint> hook)
    {
        commitHook = hook;
    }

    /**
     * Waits until the standby committed {@code epochs} epochs, failing with the status after the timeout.
     */
    public void awaitCommits(final long epochs, final Duration timeout) throws InterruptedException
    {
        final long deadline = System.nanoTime() + timeout.toNanos();
        // the commit listener (which verifies digests) runs once the applier has applied the epoch
        while (standby.lastCommittedEpoch() < epochs || (digests && verifiedCommits.get() < epochs))
        {
            if (System.nanoTime() > deadline || !active.isProtecting())
            {
                fail("standby committed " + standby.lastCommittedEpoch() + " of " + epochs + " epochs; active: " +
                    active.status() + " failure " + active.failure() + "; standby: " + standby.status());
            }
            Thread.sleep(1);
        }
    }

    @Override
    public void close()
    {
        active.close();
        standby.close();
        vmm.close();
    }
}
