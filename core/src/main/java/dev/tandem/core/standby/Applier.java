package dev.tandem.core.standby;

import dev.tandem.core.metrics.LatencyDistribution;
import dev.tandem.core.metrics.StandbyCommitEvent;
import dev.tandem.core.wire.FrameType;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.NanoClock;
import org.agrona.concurrent.OneToOneConcurrentArrayQueue;
import org.agrona.concurrent.UnsafeBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * The apply duty cycle (DESIGN.md "The standby"): replays each verified epoch, in epoch order, into the
 * {@link RecoveryImage} (disk writes up to the barrier, pages, component state), one epoch per step, and hands the
 * log back to the receiver for the next epochs to be assembled in.
 * <p>
 * In MEMORY mode an epoch is committed and acknowledged before it is applied here. An apply that fails therefore
 * tears the replica after the active released that epoch's output: the applier then takes nothing more and the
 * standby refuses sessions and promotion with {@link #tornReason()}.
 */
final class Applier implements Agent, EpochLog.Visitor
{
    private static final Logger LOG = LoggerFactory.getLogger(Applier.class);

    private final StandbyContext ctx;
    private final RecoveryImage image;
    private final OneToOneConcurrentArrayQueue<EpochLog> verifiedLogs;
    private final OneToOneConcurrentArrayQueue<EpochLog> freeLogs;
    private final LatencyDistribution applyStage;
    private final NanoClock clock;
    private final BooleanSupplier closing;
    private final Consumer<String> errors;
    /**
     * The newest epoch this applier is done with (applied, and the commit listener called): equal to the last
     * committed epoch when it holds no epoch and will get none until the receiver commits again, so the receiver may
     * then read or hand over the image.
     */
    private volatile long appliedEpoch;
    private volatile String torn;
    private volatile Thread thread;

    /**
     * @param ctx          the standby's configuration (its listener hears every applied epoch).
     * @param image        what epochs are applied to.
     * @param verifiedLogs receiver to applier: verified epochs, in epoch order.
     * @param freeLogs     applier to receiver: applied (and reset) logs.
     * @param applyStage   where the steady state's apply latency is recorded.
     * @param closing      true once the standby is closing: a failed apply is then no fault of the replica.
     * @param errors       hears why the replica tore, for the standby's last error.
     */
    Applier(final StandbyContext ctx, final RecoveryImage image, final OneToOneConcurrentArrayQueue<EpochLog> verifiedLogs,
        final OneToOneConcurrentArrayQueue<EpochLog> freeLogs, final LatencyDistribution applyStage,
        final BooleanSupplier closing, final Consumer<String> errors)
    {
        this.ctx = ctx;
        this.image = image;
        this.verifiedLogs = verifiedLogs;
        this.freeLogs = freeLogs;
        this.applyStage = applyStage;
        this.clock = ctx.nanoClock();
        this.closing = closing;
        this.errors = errors;
    }

    /**
     * The image starts out holding epoch {@code epoch} whole (a held checkpoint), before the applier runs.
     *
     * @param epoch the epoch.
     */
    void held(final long epoch)
    {
        appliedEpoch = epoch;
    }

    /**
     * @return the newest epoch applied and announced to the listener.
     */
    long appliedEpoch()
    {
        return appliedEpoch;
    }

    /**
     * @return null while the image holds a whole recovery point; otherwise why it does not.
     */
    String tornReason()
    {
        return torn;
    }

    /**
     * @return the thread running this applier once started, or null when it is stepped by hand.
     */
    Thread thread()
    {
        return thread;
    }

    @Override
    public String roleName()
    {
        return "tandem-standby-applier";
    }

    @Override
    public void onStart()
    {
        thread = Thread.currentThread();
    }

    @Override
    public int doWork()
    {
        final EpochLog log = verifiedLogs.poll();
        if (log == null)
        {
            return 0;
        }
        try
        {
            apply(log);
        }
        finally
        {
            try
            {
                log.reset();
            }
            catch (final IOException ex)
            {
                // the log is empty for reuse all the same; only its spill file keeps its length
                LOG.warn("could not truncate the spill file of an applied epoch: {}", ex.toString());
            }
            freeLogs.offer(log);
        }
        return 1;
    }

    private void apply(final EpochLog log)
    {
        if (torn != null)
        {
            // a torn replica takes nothing more
            return;
        }
        final long startNs = clock.nanoTime();
        try
        {
            log.replay(this);
        }
        catch (final IOException | RuntimeException ex)
        {
            if (closing.getAsBoolean())
            {
                // close() interrupted a long apply (a FileChannel write then fails): the standby is going away on
                // purpose, its replica was not torn by a fault
                LOG.info("standby of VM {} closed while applying epoch {}: {}", ctx.vmId(), log.epoch, ex.toString());
                return;
            }
            tear(log.epoch, ex);
            return;
        }
        final long appliedNs = clock.nanoTime();
        image.epoch(log.epoch);
        try
        {
            image.applied(log);
        }
        catch (final IOException ex)
        {
            // the epoch is in the journal, forced: the image files are behind, which a restart replays; the image
            // is broken from here (the session refuses with its reason), the replica in memory stays whole
            LOG.error("standby of VM {}: {}", ctx.vmId(), ex.getMessage());
            errors.accept(ex.getMessage());
        }
        if (!log.baseline)
        {
            applyStage.recorder().recordValue(StandbyReplica.clamp(appliedNs - startNs));
            if (StandbyCommitEvent.enabled())
            {
                final StandbyCommitEvent event = new StandbyCommitEvent();
                event.vmId = ctx.vmId();
                event.epoch = log.epoch;
                event.receiveNs = log.receivedNs - log.barrierNs;
                event.applyNs = appliedNs - startNs;
                event.commitNs = log.ackedNs < 0 ? -1 : log.ackedNs - log.barrierNs;
                event.commit();
            }
        }
        try
        {
            ctx.listener().onCommit(log.epoch, image.recoveryPoint());
        }
        catch (final RuntimeException ex)
        {
            LOG.warn("standby listener failed at epoch {}", log.epoch, ex);
        }
        appliedEpoch = log.epoch;
    }

    /**
     * Half applied: the replica no longer holds a whole recovery point. The epoch was already acknowledged, so the
     * active has released its output as safe: this standby must say so loudly and never be promoted.
     */
    private void tear(final long epoch, final Exception ex)
    {
        final String reason = "applying epoch " + epoch + " failed (" + ex + "); the replica is torn and holds " +
            "no whole recovery point: start this standby on an empty directory and re-protect the guest";
        torn = reason;
        errors.accept(reason);
        LOG.error("STANDBY OF VM {} CAN NO LONGER TAKE OVER: {}. Epoch {} was already acknowledged, so the active " +
            "released its output as safe: until the guest is protected again, losing the active loses the guest",
            ctx.vmId(), reason, epoch, ex);
        try
        {
            ctx.listener().onError(new IOException(reason, ex));
        }
        catch (final RuntimeException listenerFailure)
        {
            LOG.warn("standby listener failed", listenerFailure);
        }
    }

    @Override
    public void onRecord(final int type, final long a, final long b, final UnsafeBuffer buffer, final ByteBuffer data,
        final int index, final int length) throws IOException
    {
        if (type == FrameType.PAGES.code())
        {
            image.writePages(a, (int)b, buffer, index);
        }
        else if (type == FrameType.DISK_WRITE.code())
        {
            image.writeDisk((int)a, b, data);
        }
        else if (type == FrameType.COMPONENT.code())
        {
            image.putComponent((int)a, (int)b, buffer, index, length);
        }
        // DISK_FLUSH: in MEMORY mode the ordering is all a flush asks of the replica
    }
}
