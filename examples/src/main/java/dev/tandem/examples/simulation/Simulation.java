package dev.tandem.examples.simulation;

import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.active.ActiveListener;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.active.UnprotectedOutput;
import dev.tandem.core.failover.FileArbiter;
import dev.tandem.core.failover.Ownership;
import dev.tandem.core.failover.PromotionArbiter;
import dev.tandem.core.failover.PromotionListener;
import dev.tandem.core.metrics.ProtectionState;
import dev.tandem.core.standby.Durability;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyListener;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.standby.StorageWitness;
import dev.tandem.core.wire.FrameType;
import dev.tandem.vmm.FileVirtualDisk;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.RecoveryPoint;
import dev.tandem.vmm.ReplicaTarget;
import dev.tandem.vmm.StateDigest;
import dev.tandem.vmm.VmmAdapter;
import dev.tandem.vmm.sim.SimulatedDisk;
import dev.tandem.vmm.sim.SimulatedReplicaTarget;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.agrona.CloseHelper;
import org.agrona.collections.Long2LongHashMap;
import org.agrona.concurrent.IdleStrategy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * One deterministic run: a simulated guest, its active replicator and a standby, joined by a {@link SimNetwork}, all
 * stepped from the calling thread under a {@link SimClock}, with faults from a {@link FaultPlan} drawn from the seed.
 * Nothing in it reads the wall clock or another thread, so the seed alone replays the run.
 * <p>
 * The duty cycles run through their {@code AgentInvoker}s in an order the seed shuffles each tick; the standby's
 * applier gets only every n-th of its turns (n drawn per run), so it lags behind the receiver's acks by up to all of
 * its epoch logs and the receiver meets the back-pressure of a full pool. Where one of them
 * must wait for another (a full connection, no free staging area, the baseline in flight, a full disk-write stream),
 * the wait strategy the simulation hands them runs the other parts on the same thread and moves the clock on,
 * which is the interleaving two threads could have produced. A part that is waiting is never re-entered, and the
 * scheduler is never stepped while the guest is inside a tick (on real threads its pause would wait for the vCPU).
 * <p>
 * After the run, the invariants of DESIGN.md are checked: the recovery point is one whole checkpoint (its digest
 * equals the active's digest at that epoch); no output of epoch N was released before ack N; after failover the
 * promoted state is byte-equal to the active's at an epoch at least the last one acked and at least every epoch
 * whose output was released; nothing from a malformed or stale frame was applied (a live standby's state equals the
 * active's at its committed epoch); a standby that still has a recovery point takes over when the active dies,
 * unless the active had won the next generation (it owned the guest); and no off-heap memory leaked.
 * <p>
 * Invariants 7 and 8 are judged continuously, after every step, by {@link OwnershipChecks}: on the claims the arbiter
 * granted, the frames that reached the world from the old guest and from the promoted one (which the simulation
 * steps after its resume), and whether the old guest is stopped.
 */
public final class Simulation implements SimNetwork.Hooks
{
    /** Simulated time a run starts at. */
    static final long START_NS = 1_000_000_000L;
    private static final long TICK_NS = 100_000;
    private static final long IDLE_NS = 20_000;
    private static final long MS = 1_000_000L;
    private static final String VM_ID = "sim-guest";
    private static final long FAILURE_TIMEOUT_NS = 100 * MS;
    private static final long SILENCE_TIMEOUT_NS = 150 * MS;
    /** How long a planned switchover waits for its checkpoint's ack and for the standby's answer, each. */
    private static final long SWITCHOVER_TIMEOUT_MS = 300;
    private static final long HEARTBEAT_NS = 5 * MS;
    private static final int MAX_IDLE_DEPTH = 6;
    /** Simulated time past a run's end after which a wait that has not ended counts as stuck. */
    private static final long STUCK_NS = 30_000 * MS;

    /** The parts one tick steps. */
    private enum Part
    {
        /** the vCPUs: a tick of guest work; waits for the sender when the disk-write stream is full. */
        GUEST,
        /** the checkpoint scheduler: waits for the sender (staging areas, baseline, stream) and for a vCPU's tick. */
        SCHEDULER,
        /** the sender: waits for the standby to read when the connection is full (it reads acks meanwhile). */
        SENDER,
        /** the standby's receiver: never waits for the applier (it stops reading instead). */
        STANDBY,
        /** the standby's applier: applies one verified epoch per step; never waits. */
        APPLIER;

        Part[] waitsOn()
        {
            switch (this)
            {
                case GUEST:
                    return new Part[] {SENDER};
                case SCHEDULER:
                    return new Part[] {SENDER, GUEST};
                case SENDER:
                    return new Part[] {STANDBY};
                default:
                    return new Part[0];
            }
        }
    }

    /**
     * Unwinds the stack of a node that just died: nothing it does afterwards can be seen.
     */
    static final class NodeDeath extends Error
    {
        private static final long serialVersionUID = 1L;

        NodeDeath(final String node)
        {
            super(node + " died", null, false, false);
        }
    }

    /**
     * A deliberate defect, to show that the checks bite; every mutation is test-only and printed in the replay
     * command.
     */
    enum Mutation
    {
        /** the product as it is. */
        NONE("none"),
        /**
         * the active passes output through once it owns the guest unprotected, but the checks judge it as if it held
         * its output: invariant 2's check must report the unacknowledged frames.
         */
        PASS_THROUGH_JUDGED_AS_HOLD("pass-through-judged-as-hold"),
        /**
         * each side asks its own arbiter directory, so both win the next generation (an arbiter that says "won" to
         * both sides): invariant 7's checks must report the old guest running on, or releasing, after the standby's
         * claim.
         */
        SPLIT_ARBITER("split-arbiter"),
        /**
         * the DURABLE standby's disk acknowledges forces it does not keep: after a power loss the newest journal
         * segment has lost its last forced bytes (the newest commit record). Invariant 6's check must report the
         * committed epoch the restarted standby no longer has.
         */
        LYING_DISK("lying-disk");

        /** The name the command line takes. */
        final String option;

        Mutation(final String option)
        {
            this.option = option;
        }

        /**
         * @param option a name from the command line.
         * @return the mutation.
         * @throws IllegalArgumentException naming the valid ones.
         */
        static Mutation of(final String option)
        {
            for (final Mutation mutation : values())
            {
                if (mutation.option.equals(option))
                {
                    return mutation;
                }
            }
            throw new IllegalArgumentException("unknown mutation " + option + "; one of none, " +
                "pass-through-judged-as-hold, split-arbiter, lying-disk");
        }
    }

    private final Mutation mutation;
    /** The active's setting: pass output through once it owns the guest unprotected (drawn, or the mutation). */
    private final boolean passThrough;
    private final OwnershipChecks checks;
    private final long latencyNs;
    private final Path dir;
    private final SplittableRandom random;
    private final SimClock clock = new SimClock(START_NS);
    private final FaultPlan plan;
    private final long runNs;
    private final SimNetwork network;
    private final List<String> violations = new ArrayList<>();
    private final ArrayDeque<Part> stack = new ArrayDeque<>();
    private final Long2LongHashMap digests = new Long2LongHashMap(Long.MIN_VALUE);
    private final Long2LongHashMap producedEpoch = new Long2LongHashMap(-1);
    private final Part[] order = Part.values().clone();
    /** The applier takes one of this many of its turns: 1 keeps up, 20 lags behind every ack. */
    private final int applierEvery;
    private long applierTurns;
    /** Bypasses {@link #applierEvery} while the run's end lets the applier catch up. */
    private boolean drainingApplier;

    private SimulatedVmm guest;
    private SimulatedVmm.Builder guestConfig;
    private ActiveReplicator active;
    private StandbyReplica standby;
    private VmmAdapter promotedGuest;
    /** A guest the standby's target built, paused, and the standby has yet to run. */
    private ReplicaTarget.PreparedGuest preparedGuest;
    private boolean activeDead;
    private boolean standbyDead;
    private long standbyDiedNs = -1;
    private boolean ownershipFaultDone;
    private boolean closingActive;
    private long closeStartNs = -1;
    private long promotedFrames;
    private long activeDiedNs = -1;
    private long promotedNs = -1;
    private long promotedEpoch = -1;
    private long ackedAtPromotion = -1;
    private long lastTxSeen;
    private long releasedFrames;
    private long rejectedFrames;
    private long maxReleasedEpoch;
    private long diskWritesSent;
    private long standbyDiskWrites;
    private boolean killDone;
    private boolean duplicateSent;
    private int idleDepth;
    private boolean stuck;
    private String outcome = "";
    /** What became of the old active: its protection state at the end, or how it ended. */
    private String activeEnd = "never launched";
    /** How long the active tries to reconnect after a lost link (0: never). */
    private final long reconnectWindowNs;
    /** Sessions the active resumed after a lost link, and how many of them were quick resyncs. */
    private long reconnects;
    private long quickResyncs;
    /** When a planned switchover is asked for (retried each tick until the active is PROTECTED), or never. */
    private final long switchoverAtNs;
    /** A DURABLE standby, which a standby kill restarts on what its disk holds (invariant 6). */
    private final boolean durable;
    /** In a DURABLE run killing the standby at a random moment: the durability step (1..) it dies before. */
    private final int killAtDurabilityStep;
    private final long standbyRestartDelayNs;
    private final long powerLossSeed;
    private PowerLossModel powerLoss;
    private int epochLogs = -1;
    private int durabilitySteps;
    private long standbyRestartAtNs = Long.MAX_VALUE;
    private Path standbyRestartDirectory;
    private long committedAtStandbyDeath = -1;
    /**
     * The promoting standby began giving its image up to the guest it built (the meta's delete was taken): from then
     * on it is the new active, and its death the death of the one running guest, not a standby's.
     */
    private boolean standbyGaveUpImage;
    /** {@link #standbyGaveUpImage} when the standby died. */
    private boolean gaveUpAtStandbyDeath;
    private String standbyRestart = "";
    /** Standbys that died and were restarted: closed at the end. */
    private final List<StandbyReplica> deadStandbys = new ArrayList<>();
    /** The active has yet to notice the restarted standby's predecessor lost power (invariant 8 still judged). */
    private boolean standbyDeathUnnoticed;
    /** The run is over: it is being judged and closed. */
    private boolean judging;
    private PromotionArbiter standbyArbiter;
    private SimulatedReplicaTarget target;
    private ActiveReplicator.SwitchoverTask switchoverTask;
    /** How the planned switchover ended: "" if none was planned, else completed, abandoned or never began. */
    private String switchover = "";
    /** The epoch a completed switchover handed over at, -1 if none. */
    private long switchoverEpoch = -1;

    private Simulation(final long seed, final Path dir, final Mutation mutation)
    {
        this.mutation = mutation;
        this.dir = dir;
        this.random = new SplittableRandom(seed);
        this.runNs = (400 + random.nextInt(800)) * MS;
        this.plan = FaultPlan.draw(random, START_NS, runNs);
        this.latencyNs = (20 + random.nextInt(500)) * 1000L;
        this.network = new SimNetwork(clock, plan, this, latencyNs, (64 << 10) << random.nextInt(5));
        this.passThrough = plan.passThrough || mutation == Mutation.PASS_THROUGH_JUDGED_AS_HOLD;
        this.applierEvery = new int[] {1, 2, 5, 20}[random.nextInt(4)];
        // drawn apart from the run's own sequence, so that every other draw of a seed stays what it was: a third of
        // the runs do not reconnect (a lost link ends the session), the others try for 50..1000 ms
        final SplittableRandom reconnectDraw = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + 12);
        this.reconnectWindowNs = reconnectDraw.nextInt(3) == 0 ? 0 : (50 + reconnectDraw.nextInt(951)) * MS;
        // likewise apart: a quarter of the runs ask for a planned switchover at some point of the run
        final SplittableRandom switchoverDraw = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + 13);
        this.switchoverAtNs = switchoverDraw.nextInt(4) == 0 ? START_NS + switchoverDraw.nextLong(runNs) :
            Long.MAX_VALUE;
        this.switchover = switchoverAtNs == Long.MAX_VALUE ? "" : "never began";
        // likewise apart: a third of the runs keep the standby's image on disk, and a standby killed there comes back
        final SplittableRandom durableDraw = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + 14);
        this.durable = durableDraw.nextInt(3) == 0;
        this.killAtDurabilityStep = 1 + durableDraw.nextInt(80);
        this.standbyRestartDelayNs = (5 + durableDraw.nextInt(396)) * MS;
        this.powerLossSeed = durableDraw.nextLong();
        this.checks = new OwnershipChecks(violations, START_NS, plan,
            passThrough && mutation != Mutation.PASS_THROUGH_JUDGED_AS_HOLD,
            Math.max(FAILURE_TIMEOUT_NS, SILENCE_TIMEOUT_NS), HEARTBEAT_NS,
            Ownership.MAX_RETRY_MS * MS, latencyNs + (plan.network == FaultPlan.NetworkFault.DELAY ? plan.delayNs : 0) +
            TICK_NS, SILENCE_TIMEOUT_NS + 4 * HEARTBEAT_NS);
        // (the checks take the longer of the two timeouts as detection: see OwnershipChecks#stopDeadlineNs)
    }

    /**
     * Runs one seed.
     *
     * @param seed    the seed.
     * @param workDir a directory for the run's disk images (deleted afterwards).
     * @return what happened and every invariant violation.
     */
    public static SimulationResult run(final long seed, final Path workDir)
    {
        return run(seed, workDir, Mutation.NONE);
    }

    /**
     * @param seed     the seed.
     * @param workDir  a directory for the run's disk images (deleted afterwards).
     * @param mutation a deliberate defect the checks must report, or {@link Mutation#NONE}.
     * @return what happened and every invariant violation.
     */
    static SimulationResult run(final long seed, final Path workDir, final Mutation mutation)
    {
        final long liveBefore = NativeMemory.liveBytes();
        final Path dir = workDir.resolve("seed-" + seed);
        final Simulation simulation = new Simulation(seed, dir, mutation);
        try
        {
            simulation.execute();
        }
        catch (final RuntimeException | Error ex)
        {
            simulation.violations.add("the simulation itself failed: " + describe(ex));
        }
        finally
        {
            simulation.closeAll();
            deleteTree(dir);
        }
        final long leaked = NativeMemory.liveBytes() - liveBefore;
        if (leaked != 0)
        {
            simulation.violations.add("off-heap memory leaked: " + leaked + " bytes still allocated after the run");
        }
        return new SimulationResult(seed, simulation.plan.describe(START_NS) + (simulation.switchoverAtNs ==
            Long.MAX_VALUE ? "" : "; switchover (" + (simulation.switchoverAtNs - START_NS) / MS + " ms)") +
            (simulation.durable ? "; DURABLE standby" + (simulation.restartsStandby() ? ", restarted " +
            simulation.standbyRestartDelayNs / MS + " ms after its kill" + (simulation.plan.kill ==
            FaultPlan.Kill.STANDBY_AT_TIME ? " (before durability step " + simulation.killAtDurabilityStep + ")" :
            "") : "") : ""),
            simulation.outcome + simulation.standbyRestart,
            List.copyOf(simulation.violations), (simulation.clock.nanoTime() - START_NS) / MS,
            simulation.plan.kill != FaultPlan.Kill.NONE, simulation.killDone, simulation.activeEnd,
            simulation.checks.superseded(), simulation.checks.claimToStopNs(),
            simulation.checks.unackedUnderWonGeneration(), mutation == Mutation.NONE ? "" : mutation.option,
            simulation.reconnects, simulation.quickResyncs, simulation.switchover);
    }

    private void execute() throws RuntimeException
    {
        try
        {
            Files.createDirectories(dir);
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
        final Workload[] workloads = {Workload.UNIFORM, Workload.HOTSET, Workload.SEQUENTIAL};
        guestConfig = SimulatedVmm.builder()
            .vmId(VM_ID)
            .memoryBytes((1L << 20) << random.nextInt(2))
            .vcpus(1 + random.nextInt(2))
            .workload(workloads[random.nextInt(workloads.length)])
            .pagesPerMillisecond(1 + random.nextInt(24))
            .hotsetPages(64)
            .disk(dir.resolve("active-disk.img"), 256 << 10)
            .diskEveryTicks(1 + random.nextInt(4))
            .packetEveryTicks(1 + random.nextInt(3))
            .seed(random.nextLong())
            .packetSink(this::onRelease);
        if (plan.ownership == FaultPlan.OwnershipFault.LONG_HEALTH_REASON)
        {
            final String reason = longReason(plan.healthReasonChars);
            guestConfig.healthProbe(new dev.tandem.vmm.HealthProbe()
            {
                @Override
                public String unhealthyReason()
                {
                    return clock.nanoTime() >= plan.ownershipAtNs ? reason : null;
                }

                @Override
                public boolean restoreHere()
                {
                    return plan.restoreHere;
                }
            });
        }
        guest = guestConfig.build();
        final PromotionArbiter shared = new FileArbiter(dir.resolve("arbiter"), "simulation");
        final PromotionArbiter activeArbiter = new SimArbiter(shared, OwnershipChecks.Side.ACTIVE, clock, plan, checks,
            () -> 0);
        standbyArbiter = new SimArbiter(mutation == Mutation.SPLIT_ARBITER ?
            new FileArbiter(dir.resolve("arbiter-of-the-standby"), "simulation") : shared,
            OwnershipChecks.Side.STANDBY, clock, plan, checks, () -> standby == null ? 0 : standby.lastCommittedEpoch());
        // the promoted guest's frames reach the world through their own sink: they are judged as the new owner's
        target = new SimulatedReplicaTarget(guestConfig.copy()
            .diskPath(dir.resolve("promoted-disk.img")).packetSink(this::onPromotedRelease), false);
        if (durable)
        {
            powerLoss = new PowerLossModel(dir.resolve("standby"), dir, powerLossSeed, 0);
            powerLoss.lies(mutation == Mutation.LYING_DISK);
            powerLoss.onStep(this::onDurabilityStep);
        }
        final StandbyContext standbyCtx = standbyContext(dir.resolve("standby"));
        try
        {
            standby = StandbyReplica.launch(standbyCtx);
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
        final ActiveContext activeCtx = new ActiveContext()
            .adapter(guest)
            .transport(network)
            .standbyEndpoint("standby")
            .checkpointPeriodNs((1 + random.nextInt(20)) * MS)
            .maxEpochsInFlight(1 + random.nextInt(4))
            .stagingAreas(2 + random.nextInt(2))
            .stagingAreaBytes(1 << 20)
            .diskStreamBytes(64 << 10 << random.nextInt(3))
            .heartbeatIntervalNs(HEARTBEAT_NS)
            .reconnectWindowNs(reconnectWindowNs)
            .standbySilenceTimeoutNs(SILENCE_TIMEOUT_NS)
            .pageCodec(random.nextBoolean())
            .sentPageCacheBytes(random.nextBoolean() ? 0 : 256 << 10)
            .promotionArbiter(activeArbiter)
            .generationFile(dir.resolve("active-generation"))
            .unprotectedOutput(passThrough ? UnprotectedOutput.PASS_THROUGH : UnprotectedOutput.HOLD)
            .checkpointObserver((epoch, adapter) -> digests.put(epoch, StateDigest.of(adapter)))
            .listener(new ActiveListener()
            {
                @Override
                public void onError(final Throwable error)
                {
                    if (error instanceof dev.tandem.core.wire.ProtocolException &&
                        plan.network == FaultPlan.NetworkFault.CORRUPT)
                    {
                        // the standby refused the corrupted frame and, since protocol version 2, says so in a
                        // REFUSE frame: the active reports the standby's refusal rather than a lost connection
                        return;
                    }
                    if (error instanceof IllegalStateException && plan.ownership ==
                        FaultPlan.OwnershipFault.LONG_HEALTH_REASON && (String.valueOf(error.getMessage())
                        .startsWith("the guest's health probe reports: ") || plan.restoreHere &&
                        String.valueOf(error.getMessage()).startsWith("the restore in place of epoch ")))
                    {
                        // the probe's report, handed over to the standby on purpose
                        return;
                    }
                    if (!(error instanceof UncheckedIOException) && !(error instanceof IOException) &&
                        !(error instanceof NodeDeath) && !activeDead)
                    {
                        violations.add("the active failed on its own: " + describe(error));
                    }
                }
            })
            .nanoClock(clock)
            .waitStrategy(this::newWaitStrategy)
            .useAgentInvoker(true);
        try
        {
            active = ActiveReplicator.launch(activeCtx);
        }
        catch (final IOException | dev.tandem.core.wire.ProtocolException ex)
        {
            // the handshake itself met the fault (a drop at byte k < its length, a partition), or the standby refused
            // it (an arbiter down from the start: it cannot check the active's generation; seed 305884): nothing to
            // protect, as launch documents
            outcome = "never protected: " + ex.getMessage();
            return;
        }
        final long end = START_NS + runNs;
        while (clock.nanoTime() < end || (activeDead && !standbyDead && promotedNs < 0 &&
            clock.nanoTime() < failoverDeadlineNs()) ||
            (promotedNs > 0 && clock.nanoTime() < promotedNs + SILENCE_TIMEOUT_NS + 100 * MS) ||
            (!activeDead && checks.awaitingStop(clock.nanoTime())))
        {
            clock.advance(TICK_NS);
            timedFaults();
            shuffle();
            for (final Part part : order)
            {
                step(part);
            }
            stepPromotedGuest();
            checkOwnership();
            if (activeDead && standbyDead)
            {
                break;
            }
        }
        finish();
    }

    /**
     * @return how many epoch logs the standby has, drawn once: a restarted standby has as many.
     */
    private int standbyEpochLogs()
    {
        if (epochLogs < 0)
        {
            epochLogs = 2 + random.nextInt(2);
        }
        return epochLogs;
    }

    /**
     * @param directory the standby's directory.
     * @return a new standby's configuration (the first, or one restarted on what a dead one's disk held).
     */
    private StandbyContext standbyContext(final Path directory)
    {
        final StandbyContext standbyCtx = new StandbyContext()
            .transport(network)
            .listenEndpoint("standby")
            .directory(directory)
            .vmId(VM_ID)
            .memory(SimulatedVmm.PAGE_SIZE, guest.memory().pageCount())
            .disk(0, SimulatedDisk.BLOCK_SIZE, 256 << 10)
            .epochLogMemoryBytes(1 << 20)
            .epochLogs(standbyEpochLogs())
            .failureTimeoutNs(FAILURE_TIMEOUT_NS)
            .autoPromote(true)
            .promotionArbiter(standbyArbiter)
            .replicaTarget(new ReplicaTarget()
            {
                @Override
                public VmmAdapter resume(final RecoveryPoint point)
                {
                    throw new IllegalStateException("the simulation's target builds in two steps");
                }

                @Override
                public PreparedGuest prepare(final RecoveryPoint point)
                {
                    checkRecoveryPoint(point.epoch(), StateDigest.of(point));
                    final PreparedGuest built = target.prepare(point);
                    // closed at the end if a kill during the give-up leaves it built but never run
                    preparedGuest = built;
                    return new PreparedGuest()
                    {
                        @Override
                        public VmmAdapter run()
                        {
                            preparedGuest = null;
                            promotedGuest = built.run();
                            checks.promotedResumed(clock.nanoTime());
                            return promotedGuest;
                        }

                        @Override
                        public void discard()
                        {
                            preparedGuest = null;
                            built.discard();
                        }
                    };
                }
            })
            .promotionListener(new PromotionListener()
            {
                @Override
                public void onStep(final String step, final long sinceStartNs)
                {
                    if (plan.kill == FaultPlan.Kill.STANDBY_DURING_PROMOTION && "claim generation".equals(step))
                    {
                        killStandby("during promotion, after claiming the generation");
                    }
                }
            })
            .diskImageOpener((path, disk) -> new FileVirtualDisk(path, disk.id(), disk.blockSize(), disk.sizeBytes(),
                false)
            {
                @Override
                public void write(final long offset, final ByteBuffer data) throws IOException
                {
                    standbyDiskWrites++;
                    if (plan.kill == FaultPlan.Kill.STANDBY_DURING_APPLY && standbyDiskWrites == plan.killOrdinal)
                    {
                        // half of this write reaches the image, then the host dies
                        final int limit = data.limit();
                        data.limit(data.position() + (data.remaining() + 1) / 2);
                        super.write(offset, data);
                        data.limit(limit);
                        killStandby("in the middle of applying disk write #" + standbyDiskWrites);
                    }
                    super.write(offset, data);
                }
            })
            .listener(new StandbyListener()
            {
                @Override
                public void onError(final Throwable error)
                {
                    if (error instanceof dev.tandem.core.wire.ProtocolException)
                    {
                        // a refused frame: expected of a corrupted byte or a replayed connection, or of a reconnect's
                        // HELLO while the arbiter cannot be asked (the standby must check the generation first), a
                        // defect otherwise
                        rejectedFrames++;
                        final dev.tandem.core.wire.ProtocolException refusal =
                            (dev.tandem.core.wire.ProtocolException)error;
                        final boolean arbiterAway =
                            refusal.fault() == dev.tandem.core.wire.ProtocolException.Fault.REFUSED &&
                            String.valueOf(refusal.getMessage()).contains("cannot reach its arbiter") &&
                            (plan.ownership == FaultPlan.OwnershipFault.ARBITER_DOWN ||
                            plan.ownership == FaultPlan.OwnershipFault.ARBITER_SLOW);
                        if (plan.network != FaultPlan.NetworkFault.CORRUPT && !duplicateSent && !arbiterAway)
                        {
                            violations.add("the standby refused a frame nobody corrupted: " + error.getMessage());
                        }
                    }
                    else if (!(error instanceof IOException) && !(error instanceof NodeDeath) && !standbyDead)
                    {
                        violations.add("the standby's receiver failed: " + describe(error));
                    }
                }
            })
            .nanoClock(clock)
            .waitStrategy(this::newWaitStrategy)
            .useAgentInvoker(true);
        if (durable)
        {
            // no image checkpoint on its own thread (the run is one thread, replayable): the journal and the
            // recovery's own checkpoint are what a run's kills meet; PowerLossTest covers the image checkpoints
            standbyCtx.durability(Durability.DURABLE).imageCheckpointBytes(64L << 30)
                .imageCheckpointIntervalNs(java.util.concurrent.TimeUnit.HOURS.toNanos(1)).storageWitness(directory.equals(dir.resolve("standby")) ?
                powerLoss : StorageWitness.NONE);
        }
        return standbyCtx;
    }

    /**
     * @return until when a standby must have taken over from a dead active: its failure timeout and a margin after
     *         the death, or after the arbiter's fault window plus the standby's longest back-off, whichever is later.
     */
    private long failoverDeadlineNs()
    {
        final long afterDeath = activeDiedNs + FAILURE_TIMEOUT_NS + 500 * MS;
        if (plan.ownership == FaultPlan.OwnershipFault.ARBITER_DOWN ||
            plan.ownership == FaultPlan.OwnershipFault.ARBITER_SLOW)
        {
            return Math.max(afterDeath, plan.ownershipUntilNs + Ownership.MAX_RETRY_MS * MS + plan.arbiterSlowNs +
                500 * MS);
        }
        return afterDeath;
    }

    /**
     * The promoted guest runs from its resume, with its output leaving, until its host dies.
     */
    private void stepPromotedGuest()
    {
        if (promotedGuest instanceof SimulatedVmm && !standbyDead)
        {
            ((SimulatedVmm)promotedGuest).step();
        }
    }

    /**
     * Invariants 7 and 8 at this instant.
     */
    private void checkOwnership()
    {
        if (active == null)
        {
            return;
        }
        if (standbyDeathUnnoticed && (activeDead || active.status().state() != ProtectionState.PROTECTED))
        {
            // the active left the dead host's connection: from now on the restarted standby is what it hears
            standbyDeathUnnoticed = false;
            standbyDiedNs = -1;
        }
        // close() waits up to a second for the GOODBYE's answer without judging silence (bounded, and it then claims
        // or stops the guest): invariant 8 is judged on the run, not on the clean stop at its end
        checks.tick(clock.nanoTime(), !activeDead, active.isGuestStopped(), guest.isPaused(),
            guest.fencedReason() != null, closingActive ? -1 : standbyUnreachableSinceNs(),
            () -> active.isProtecting() && active.status().state() == ProtectionState.PROTECTED,
            () -> active.status().state() + (closingActive ? ", inside close() called at " +
                (closeStartNs - START_NS) / MS + " ms" : ""));
    }

    /**
     * @return since when nothing the standby sends can reach the active (a partition, or its power lost), -1 if it
     *         can (a crash is heard at once: its kernel closes the connection). After a power loss the replies the
     *         standby sent while it ran still arrive, a delay window or a partition's heal later (seed 1996: lost at
     *         649 ms, its last reply readable at 711 ms under a 64 ms delay): the active is right to count its
     *         silence from that reply, not from the death it cannot see.
     */
    private long standbyUnreachableSinceNs()
    {
        final long now = clock.nanoTime();
        long since = now >= plan.partitionFromNs && now < plan.partitionUntilNs ? plan.partitionFromNs : -1;
        if (standbyDiedNs >= 0 && !plan.killCrashes)
        {
            final long silentNs = Math.max(standbyDiedNs, network.standbyHeardUntilNs());
            if (silentNs <= now)
            {
                since = since < 0 ? silentNs : Math.min(since, silentNs);
            }
        }
        return since;
    }

    /**
     * @param chars how long.
     * @return a health-probe reason of that many characters, one, two, three and four UTF-8 bytes each.
     */
    private static String longReason(final int chars)
    {
        final String pattern = "vCPU watchdog: Gerät überhitzt, 过热保护 🔥🧯 ";
        final StringBuilder reason = new StringBuilder(chars + pattern.length());
        while (reason.length() < chars)
        {
            reason.append(pattern);
        }
        reason.setLength(chars);
        return reason.toString();
    }

    private void shuffle()
    {
        for (int i = order.length - 1; i > 0; i--)
        {
            final int j = random.nextInt(i + 1);
            final Part swap = order[i];
            order[i] = order[j];
            order[j] = swap;
        }
    }

    private void timedFaults()
    {
        final long now = clock.nanoTime();
        if (!killDone && now >= plan.killAtNs)
        {
            if (plan.kill == FaultPlan.Kill.ACTIVE_AT_TIME || plan.kill == FaultPlan.Kill.STANDBY_DURING_PROMOTION)
            {
                killActive("at " + (now - START_NS) / MS + " ms");
            }
            else if (plan.kill == FaultPlan.Kill.STANDBY_AT_TIME && !durable)
            {
                killStandby("at " + (now - START_NS) / MS + " ms");
            }
        }
        if (!ownershipFaultDone && now >= plan.ownershipAtNs)
        {
            ownershipFaultDone = true;
            switch (plan.ownership)
            {
                case OPERATOR_PROMOTION:
                    if (!activeDead && !standbyDead)
                    {
                        standby.promote("operator");
                    }
                    break;
                case LOSE_STANDBY_GENERATION_FILE:
                    deleteQuietly(dir.resolve("standby").resolve("generation"));
                    break;
                case LOSE_ACTIVE_GENERATION_FILE:
                    deleteQuietly(dir.resolve("active-generation"));
                    break;
                default:
                    break;
            }
        }
        restartStandby(now);
        plannedSwitchover(now);
        if (plan.duplicateConnection && !duplicateSent && activeDead && !standbyDead)
        {
            duplicateSent = true;
            replayDuplicate();
        }
    }

    /**
     * The planned switchover, a task the run advances each tick as it steps every other part: asked for once the
     * active is PROTECTED at or after its time (until the run's end), then polled until it completes or gives up.
     * An abandoned switchover is no violation (a fault may take the standby or the link away meanwhile); what the
     * checks judge is where the guest runs and which output left.
     */
    private void plannedSwitchover(final long now)
    {
        if (switchoverTask == null && "never began".equals(switchover) && now >= switchoverAtNs &&
            now < START_NS + runNs && !activeDead && !standbyDead && active != null && !closingActive &&
            promotedNs < 0 && active.isProtecting() && active.status().state() == ProtectionState.PROTECTED)
        {
            try
            {
                switchoverTask = active.beginSwitchover(java.time.Duration.ofMillis(SWITCHOVER_TIMEOUT_MS));
                switchover = "under way";
            }
            catch (final IllegalStateException ex)
            {
                // not PROTECTED at this instant after all: asked again next tick
            }
        }
        if (switchoverTask == null || activeDead)
        {
            return;
        }
        try
        {
            final ActiveReplicator.Switchover done = switchoverTask.poll();
            if (done != null)
            {
                switchoverTask = null;
                switchoverEpoch = done.epoch();
                switchover = "completed";
            }
        }
        catch (final IllegalStateException ex)
        {
            switchoverTask = null;
            switchover = "abandoned";
        }
    }

    /**
     * A second connection that replays the first bytes the active sent, as a stale copy of the active (or a
     * retransmitting middlebox) would: the standby may take it only after its live connection ended, and must not
     * apply anything of it over a newer recovery point.
     */
    private void replayDuplicate()
    {
        try
        {
            final dev.tandem.core.transport.Connection ghost = network.connect("standby", 1000);
            final ByteBuffer prefix = network.recordedPrefix();
            final ByteBuffer[] gather = {prefix};
            for (int i = 0; i < 10_000 && prefix.hasRemaining(); i++)
            {
                if (ghost.write(gather, 0, 1) == 0)
                {
                    idle();
                }
            }
            ghost.close();
        }
        catch (final IOException ex)
        {
            // the standby stopped listening (it promoted) or the connection broke: nothing was replayed
        }
    }

    private int step(final Part part)
    {
        if (stack.contains(part))
        {
            return 0;
        }
        for (final Part awaited : part.waitsOn())
        {
            if (stack.contains(awaited))
            {
                // stepped here it could wait on a part that is itself waiting further down this stack, and nothing
                // would ever wake either; on threads that part would still be running
                return 0;
            }
        }
        switch (part)
        {
            case GUEST:
                if (activeDead || guest.isPaused() || closingActive)
                {
                    // while the active closes, a vCPU waiting on a full disk-write stream would sit on the stack
                    // above close(), which on threads frees it by shutting the stream: the guest idles instead
                    return 0;
                }
                break;
            case SCHEDULER:
            case SENDER:
                if (activeDead || active == null)
                {
                    return 0;
                }
                break;
            case STANDBY:
                if (standbyDead)
                {
                    return 0;
                }
                break;
            case APPLIER:
                if (standbyDead || (!drainingApplier && ++applierTurns % applierEvery != 0))
                {
                    return 0;
                }
                break;
            default:
                break;
        }
        stack.push(part);
        try
        {
            switch (part)
            {
                case GUEST:
                    if (active == null)
                    {
                        return 0;
                    }
                    guest.step();
                    recordProducedOutput();
                    return 1;
                case SCHEDULER:
                    return active.schedulerInvoker().invoke();
                case SENDER:
                    return active.senderInvoker().invoke();
                case STANDBY:
                    return standby.receiverInvoker().invoke();
                case APPLIER:
                    return standby.applierInvoker().invoke();
                default:
                    return 0;
            }
        }
        catch (final NodeDeath death)
        {
            return 0;
        }
        finally
        {
            stack.pop();
        }
    }

    private void recordProducedOutput()
    {
        final long tx = guest.txFrames();
        // frames made since the checkpoint of epoch N-1 belong to epoch N: the gate tags them so
        final long epoch = active.lastCheckpointEpoch() + 1;
        for (long sequence = lastTxSeen + 1; sequence <= tx; sequence++)
        {
            producedEpoch.put(sequence, epoch);
        }
        lastTxSeen = tx;
    }

    private IdleStrategy newWaitStrategy()
    {
        return new IdleStrategy()
        {
            @Override
            public void idle(final int workCount)
            {
                if (workCount <= 0)
                {
                    idle();
                }
            }

            @Override
            public void idle()
            {
                Simulation.this.idle();
            }

            @Override
            public void reset()
            {
            }
        };
    }

    /**
     * A part waits: time passes and every other part gets a step.
     */
    private void idle()
    {
        final Part waiting = stack.peek();
        if (waiting != null && isDead(waiting))
        {
            throw new NodeDeath(waiting.name().toLowerCase());
        }
        clock.advance(IDLE_NS);
        if (clock.nanoTime() > START_NS + runNs + STUCK_NS && !stuck)
        {
            // liveness: on threads this wait would never end either; stop both nodes so the run can be judged
            stuck = true;
            violations.add("stuck: the " + (waiting == null ? "simulation" : waiting.name().toLowerCase()) +
                " waited past " + (runNs + STUCK_NS) / MS + " ms of simulated time");
            activeDead = true;
            standbyDead = true;
        }
        if (idleDepth >= MAX_IDLE_DEPTH)
        {
            return;
        }
        idleDepth++;
        try
        {
            timedFaults();
            for (final Part part : order)
            {
                step(part);
            }
            stepPromotedGuest();
            checkOwnership();
        }
        finally
        {
            idleDepth--;
        }
        if (waiting != null && isDead(waiting))
        {
            throw new NodeDeath(waiting.name().toLowerCase());
        }
    }

    private boolean isDead(final Part part)
    {
        return part == Part.STANDBY || part == Part.APPLIER ? standbyDead : activeDead;
    }

    private void killActive(final String where)
    {
        if (activeDead)
        {
            return;
        }
        killDone = true;
        activeDead = true;
        activeDiedNs = clock.nanoTime();
        network.kill(true, plan.killCrashes, true);
        // unwind only if the active is what runs now; an active part lower on the stack finds out in its wait
        final Part running = stack.peek();
        if (running != null && running != Part.STANDBY && running != Part.APPLIER)
        {
            throw new NodeDeath("active " + where);
        }
    }

    /**
     * @return true if a DURABLE run's standby kill restarts it (not one during its promotion: the active died first,
     *         and the checks judge that run as one without a standby).
     */
    private boolean restartsStandby()
    {
        return durable && (plan.kill == FaultPlan.Kill.STANDBY_AT_TIME ||
            plan.kill == FaultPlan.Kill.STANDBY_BEFORE_ACK || plan.kill == FaultPlan.Kill.STANDBY_DURING_APPLY);
    }

    /**
     * A DURABLE run killing the standby at a random moment kills it before its n-th durability step (a journal
     * append's force, the image's forces, the meta's write and rename, a directory's force, a delete), taken on the
     * standby's own steps.
     */
    private void onDurabilityStep(final String step)
    {
        if (plan.kill == FaultPlan.Kill.STANDBY_AT_TIME && !killDone && !standbyDead &&
            (stack.peek() == Part.STANDBY || stack.peek() == Part.APPLIER) &&
            ++durabilitySteps == killAtDurabilityStep)
        {
            killStandby("before '" + step + "' (durability step " + durabilitySteps + ")");
        }
        if ("delete image.meta".equals(step) && !standbyDead && preparedGuest != null)
        {
            // only a promotion deletes the meta, and this one once its target built the guest paused: the
            // standby's files are the guest's from here on (a kill before this step, or a give-up before any guest
            // was built, is still checked)
            standbyGaveUpImage = true;
        }
    }

    /**
     * Starts a standby again on what its dead predecessor's disk held, and checks invariant 6: it recovers a whole
     * epoch, at least the newest it had committed (every committed epoch was forced before its ack), byte-equal to
     * the active's checkpoint of that epoch. The active, if it still tries, reconnects to it.
     */
    private void restartStandby(final long now)
    {
        if (now < standbyRestartAtNs || !standbyDead || stuck || judging || stack.contains(Part.STANDBY) ||
            stack.contains(Part.APPLIER))
        {
            // not while the run is judged and closed (a standby started then would be judged by nobody and closed
            // by nothing), and not under a dead standby's part still unwinding on the stack (it would run on)
            return;
        }
        standbyRestartAtNs = Long.MAX_VALUE;
        deadStandbys.add(standby);
        // the dead host's port is free again
        network.forget("standby");
        final StandbyReplica restarted;
        try
        {
            restarted = StandbyReplica.launch(standbyContext(standbyRestartDirectory));
        }
        catch (final IOException | RuntimeException ex)
        {
            if (gaveUpAtStandbyDeath && String.valueOf(ex.getMessage()).contains("but no image.meta"))
            {
                // the power went while the promotion gave the image up (the meta goes first): the files were the
                // new active's, which died with the host, and the restart refuses them by name rather than
                // labelling them a recovery point (found by seed 312960)
                standbyRestart += ", its restart refused the directory (no image.meta: the image had been given " +
                    "up to the guest it promoted, so the new active died)";
                return;
            }
            violations.add("invariant 6: the standby restarted on its disk could not open it: " + describe(ex));
            standbyRestart += ", its restart failed";
            return;
        }
        standby = restarted;
        standbyDead = false;
        // while the active has not yet noticed the lost power (its connection to the dead host is silent), it is
        // still judged on that silence (invariant 8)
        standbyDeathUnnoticed = standbyDiedNs >= 0 && !plan.killCrashes;
        if (!standbyDeathUnnoticed)
        {
            standbyDiedNs = -1;
        }
        final long recovered = restarted.lastCommittedEpoch();
        standbyRestart += ", restarted at " + (now - START_NS) / MS + " ms recovering epoch " + recovered + " (" +
            restarted.recoveryReport() + ")";
        if (gaveUpAtStandbyDeath)
        {
            // its recovery point went to the guest it had built and was about to run: the new active died, a
            // second fault after the partition or the active's death, which no replica outlives (a kill before
            // the give-up, while the target built, keeps the recovery point and is checked below)
            standbyRestart += "; it had given its image up to the guest it promoted, so the new active died";
        }
        else if (recovered < committedAtStandbyDeath)
        {
            violations.add("invariant 6: the restarted standby recovered epoch " + recovered + " but had committed " +
                "(forced, perhaps acknowledged) epoch " + committedAtStandbyDeath + ": " + restarted.recoveryReport());
        }
        if (recovered > 0)
        {
            final long digest = restarted.inspect(StateDigest::of);
            if (digests.get(recovered) != digest)
            {
                violations.add("invariant 6: the restarted standby's image of epoch " + recovered + " is not the " +
                    "active's checkpoint of that epoch: " + restarted.recoveryReport());
            }
        }
    }

    private void killStandby(final String where)
    {
        if (standbyDead)
        {
            return;
        }
        killDone = true;
        standbyDead = true;
        standbyDiedNs = clock.nanoTime();
        network.kill(false, plan.killCrashes, false);
        if (restartsStandby())
        {
            // what the machine finds on its disk when it comes back: the files as they are after a process crash
            // (the page cache survives it), the model's choice of what may have reached the disk after a power loss
            committedAtStandbyDeath = standby.lastCommittedEpoch();
            gaveUpAtStandbyDeath = standbyGaveUpImage;
            standbyRestartDirectory = dir.resolve("standby-restarted");
            powerLoss.materialise(standbyRestartDirectory, !plan.killCrashes);
            standbyRestartAtNs = clock.nanoTime() + standbyRestartDelayNs;
            standbyRestart = "; standby " + (plan.killCrashes ? "crashed" : "lost power") + " " + where +
                " holding epoch " + committedAtStandbyDeath;
        }
        if (stack.peek() == Part.STANDBY || stack.peek() == Part.APPLIER)
        {
            throw new NodeDeath("standby " + where);
        }
    }

    @Override
    public void onFrameStart(final SimNetwork.Direction direction, final int type, final long epoch)
    {
        if (direction == SimNetwork.Direction.BACK && type == FrameType.ACK.code() &&
            plan.kill == FaultPlan.Kill.STANDBY_BEFORE_ACK && epoch == plan.killEpoch)
        {
            killStandby("with epoch " + epoch + " committed, before its ack left");
        }
    }

    @Override
    public void onFrameMiddle(final SimNetwork.Direction direction, final int type, final long epoch)
    {
        if (direction == SimNetwork.Direction.FORWARD && plan.kill == FaultPlan.Kill.ACTIVE_MID_DELTA &&
            epoch == plan.killEpoch && (type == FrameType.PAGES.code() || type == FrameType.PAGES_ENCODED.code()))
        {
            killActive("half-way through a page frame of delta " + epoch);
        }
    }

    @Override
    public void onFrameEnd(final SimNetwork.Direction direction, final int type, final long epoch)
    {
        if (direction != SimNetwork.Direction.FORWARD)
        {
            return;
        }
        if (type == FrameType.DISK_WRITE.code() && ++diskWritesSent == plan.killOrdinal &&
            plan.kill == FaultPlan.Kill.ACTIVE_AFTER_DISK_WRITE)
        {
            killActive("after disk write #" + diskWritesSent + " was sent");
        }
        else if (type == FrameType.BARRIER.code() && epoch == plan.killEpoch &&
            plan.kill == FaultPlan.Kill.ACTIVE_AFTER_BARRIER)
        {
            killActive("after barrier " + epoch + " was sent");
        }
        else if (type == FrameType.EPOCH_END.code() && epoch == plan.killEpoch &&
            plan.kill == FaultPlan.Kill.ACTIVE_AFTER_EPOCH_END)
        {
            killActive("after the end of epoch " + epoch + " was sent");
        }
    }

    /**
     * The packet sink behind the active's output gate: every frame released to the world.
     */
    private void onRelease(final org.agrona.DirectBuffer frame, final int index, final int length)
    {
        if (activeDead)
        {
            // a dead host sends nothing; code still unwinding on its stack cannot reach the world
            return;
        }
        final long sequence = frame.getLong(index);
        final long epoch = producedEpoch.get(sequence);
        final long acked = active.lastAckedEpoch();
        if (epoch < 0)
        {
            violations.add("invariant 2: frame #" + sequence + " was released but the guest never produced it");
            return;
        }
        // an unacknowledged frame is invariant 2 when output is held, and ownership when it passes through
        checks.activeReleased(clock.nanoTime(), sequence, epoch, acked, promotedGuest != null && !standbyDead);
        releasedFrames++;
        maxReleasedEpoch = Math.max(maxReleasedEpoch, epoch);
    }

    /**
     * The packet sink of the promoted guest: every frame it sends reaches the world at once (it is not protected).
     */
    private void onPromotedRelease(final org.agrona.DirectBuffer frame, final int index, final int length)
    {
        if (standbyDead)
        {
            return;
        }
        promotedFrames++;
        checks.promotedReleased(clock.nanoTime());
    }

    private void checkRecoveryPoint(final long epoch, final long digest)
    {
        promotedNs = clock.nanoTime();
        promotedEpoch = epoch;
        ackedAtPromotion = active == null ? 0 : active.lastAckedEpoch();
        final long expected = digests.get(epoch);
        if (expected == Long.MIN_VALUE)
        {
            violations.add("invariant 1: the recovery point is epoch " + epoch + ", which the active never checkpointed");
        }
        else if (expected != digest)
        {
            violations.add("invariant 1/3: the promoted state of epoch " + epoch +
                " differs from the active's checkpoint of that epoch");
        }
        if (epoch < ackedAtPromotion)
        {
            violations.add("invariant 3: promoted from epoch " + epoch + " but the active had seen epoch " +
                ackedAtPromotion + " acknowledged");
        }
    }

    private void noteReconnects()
    {
        if (active != null)
        {
            reconnects = active.status().reconnect().reconnects();
            quickResyncs = active.status().reconnect().quickResyncs();
        }
    }

    private void finish()
    {
        judging = true;
        final String activeState = activeDead ? "active died" : active.isProtecting() ? "active protecting" :
            "active " + describe(active.status().state());
        activeEnd = activeDead ? "died" : describe(active.status().state());
        noteReconnects();
        if (promotedEpoch >= 0)
        {
            if (promotedEpoch < maxReleasedEpoch)
            {
                violations.add("acknowledged output lost: frames of epoch " + maxReleasedEpoch +
                    " were released but the standby resumed from epoch " + promotedEpoch);
            }
            if (!activeDead && active.isProtecting())
            {
                violations.add("two guests: the standby promoted at epoch " + promotedEpoch +
                    " and the old active still believes it protects (acked " + active.lastAckedEpoch() + ")");
            }
            if (switchoverEpoch >= 0 && promotedEpoch != switchoverEpoch)
            {
                violations.add("planned switchover: handed over at epoch " + switchoverEpoch + " but the standby " +
                    "resumed from epoch " + promotedEpoch);
            }
            outcome = (switchoverEpoch >= 0 ? "switchover" : "failover") + " to epoch " + promotedEpoch + " (" +
                activeState + ", acked " +
                ackedAtPromotion + ")";
        }
        else if (!standbyDead)
        {
            final String refused = standby.promotionRefused();
            final long committed = standby.lastCommittedEpoch();
            drainApplier(committed);
            // an active that won the next generation before it died owned the guest and may have run it past the
            // recovery point (passing its output through): the standby's claim of that generation is refused, and it
            // rightly stays a standby (seed 2029: the active won generation 2 at 222 ms, died at 407 ms)
            final boolean activeOwned = activeDead && checks.activeOwnsWonGeneration(activeDiedNs);
            if (activeDead && committed >= 1 && !activeOwned)
            {
                violations.add("no failover: the active died at " + (activeDiedNs - START_NS) / MS +
                    " ms and the standby, holding epoch " + committed + ", did not take over" +
                    (refused == null ? "" : ": " + refused));
            }
            if (standby.tornReason() != null)
            {
                violations.add("the standby is torn without a disk fault: " + standby.tornReason());
            }
            else if (committed >= 1 && !standbyDead)
            {
                if (!activeDead && committed > active.lastCheckpointEpoch())
                {
                    violations.add("the standby committed epoch " + committed + " beyond the active's last " +
                        "checkpoint " + active.lastCheckpointEpoch());
                }
                final long[] seen = standby.inspect(point -> new long[] {point.epoch(), StateDigest.of(point)});
                if (seen[0] != committed)
                {
                    violations.add("the standby's applier stopped at epoch " + seen[0] + " of " + committed +
                        " committed");
                }
                final long expected = digests.get(seen[0]);
                if (expected != seen[1])
                {
                    violations.add("invariant 1/4: the standby's replica of epoch " + seen[0] +
                        " differs from the active's checkpoint of that epoch");
                }
            }
            outcome = (activeOwned ? "active died owning generation " + checks.activeGeneration() :
                activeDead ? "active died before a recovery point" : activeState) + ", standby holds epoch " +
                committed;
        }
        else
        {
            outcome = "standby died (" + activeState + ")";
        }
        outcome += ", " + releasedFrames + " frames released through epoch " + maxReleasedEpoch +
            (promotedFrames > 0 ? ", " + promotedFrames + " by the promoted guest" : "") +
            (rejectedFrames > 0 ? ", " + rejectedFrames + " frames refused" : "");
        if (!activeDead && promotedEpoch < 0 && active.isProtecting())
        {
            // a clean stop: every epoch in flight is acknowledged first
            closingActive = true;
            closeStartNs = clock.nanoTime();
            active.close();
            // close() may have stopped a superseded guest itself, after the last step it took
            checkOwnership();
            // the world ran on while close() waited (up to 2 s for acks, 1 s for the GOODBYE's answer)
            activeEnd = describe(active.status().state());
            noteReconnects();
            outcome += "; stopped at " + (closeStartNs - START_NS) / MS + " ms: " + activeEnd +
                (promotedEpoch >= 0 ? ", the standby promoted at epoch " + promotedEpoch + " meanwhile" : "");
            if (!standbyDead && standby.tornReason() == null && active.lastAckedEpoch() >= 1)
            {
                final long committed = standby.lastCommittedEpoch();
                if (committed < active.lastAckedEpoch())
                {
                    violations.add("the standby holds epoch " + committed + " but the active saw epoch " +
                        active.lastAckedEpoch() + " acknowledged");
                }
            }
        }
    }

    /**
     * Lets the applier apply every committed epoch (it is never stuck: it only has to be given its turns).
     */
    private void drainApplier(final long committed)
    {
        drainingApplier = true;
        try
        {
            for (int i = 0; i < 16 && !standbyDead && standby.appliedEpoch() < committed &&
                standby.tornReason() == null; i++)
            {
                step(Part.APPLIER);
            }
        }
        finally
        {
            drainingApplier = false;
        }
    }

    private void closeAll()
    {
        // the run is judged: closing the dead sides' objects may still ask the arbiter, which no longer counts
        checks.close();
        // closing the active may wait for acks through the wait strategy: keep the standby steppable meanwhile
        activeDead = true;
        standbyDead = true;
        CloseHelper.quietCloseAll(active, standby);
        deadStandbys.forEach(CloseHelper::quietClose);
        if (promotedGuest instanceof AutoCloseable)
        {
            CloseHelper.quietClose((AutoCloseable)promotedGuest);
        }
        if (preparedGuest != null)
        {
            // built by a standby killed before it could run it (the library discards it on its own failures)
            preparedGuest.discard();
            preparedGuest = null;
        }
        CloseHelper.quietClose(guest);
    }

    /**
     * @return the state in the words of the outcome: FAILED is only reached by owning the guest.
     */
    private String describe(final ProtectionState state)
    {
        switch (state)
        {
            case FENCED:
                return "fenced" + (active.isGuestStopped() ? " (guest stopped)" : " (guest not yet stopped)");
            case FAILED:
                return "owner unprotected " + (passThrough ? "passing output" : "holding output") + " (FAILED)";
            case ARBITRATING:
                return "arbitrating (output held)";
            default:
                return state.name().toLowerCase();
        }
    }

    private static void deleteQuietly(final Path file)
    {
        try
        {
            Files.deleteIfExists(file);
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException("cannot delete " + file, ex);
        }
    }

    private static String describe(final Throwable error)
    {
        final StackTraceElement[] trace = error.getStackTrace();
        String text = String.valueOf(error);
        if (text.length() > 400)
        {
            // a long reason (the health probe's) would bury the rest of the report
            text = text.substring(0, 400) + "... (" + text.length() + " chars)";
        }
        return text + (trace.length > 0 ? " at " + trace[0] : "");
    }

    private static void deleteTree(final Path dir)
    {
        if (!Files.exists(dir))
        {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir))
        {
            paths.sorted(Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException("cannot delete " + dir, ex);
        }
    }
}
