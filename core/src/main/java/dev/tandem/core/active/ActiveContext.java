package dev.tandem.core.active;

import dev.tandem.core.ConfigurationException;
import dev.tandem.core.codec.PageCodec;
import dev.tandem.core.failover.GenerationFile;
import dev.tandem.core.policy.AdaptivePolicy;
import dev.tandem.core.policy.CheckpointPolicy;
import dev.tandem.core.policy.FixedPolicy;
import dev.tandem.core.failover.PromotionArbiter;
import dev.tandem.core.transport.Transport;
import dev.tandem.core.wire.FrameCodec;
import dev.tandem.core.wire.Handshake;
import dev.tandem.vmm.VmmAdapter;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.NanoClock;
import org.agrona.concurrent.SystemNanoClock;

import java.util.concurrent.TimeUnit;

/**
 * Configuration of the active side: one object, fluent accessors, documented defaults, validated once by
 * {@link #conclude()}.
 */
public final class ActiveContext
{
    /** Default checkpoint period: 10 ms. */
    public static final long CHECKPOINT_PERIOD_NS_DEFAULT = TimeUnit.MILLISECONDS.toNanos(10);
    /** Default bound on epochs checkpointed but not yet acknowledged. */
    public static final int MAX_EPOCHS_IN_FLIGHT_DEFAULT = 4;
    /** Default number of staging areas. */
    public static final int STAGING_AREAS_DEFAULT = 2;
    /** Default size of one staging area: 64 MiB of pages. */
    public static final int STAGING_AREA_BYTES_DEFAULT = 64 * 1024 * 1024;
    /** Default room for component state per checkpoint. */
    public static final int COMPONENT_STATE_BYTES_DEFAULT = 1024 * 1024;
    /** Default capacity of the ordered disk-write stream. */
    public static final int DISK_STREAM_BYTES_DEFAULT = 16 * 1024 * 1024;
    /** Default capacity of the output hold queue. */
    public static final int OUTPUT_HOLD_BYTES_DEFAULT = 8 * 1024 * 1024;
    /** Default heartbeat interval when otherwise idle: 20 ms. */
    public static final long HEARTBEAT_INTERVAL_NS_DEFAULT = TimeUnit.MILLISECONDS.toNanos(20);
    /**
     * Default time without progress (no ack and no byte written) while epochs are in flight, after which the standby
     * counts as lost: 3 s. Long on purpose: the standby applies a large delta without answering, and an active that
     * gives up early gains nothing, since its held output waits either way.
     */
    public static final long STANDBY_SILENCE_TIMEOUT_NS_DEFAULT = TimeUnit.SECONDS.toNanos(3);
    /** Default room for the last-sent versions of pages, the XOR bases of the page codec: 64 MiB. */
    public static final long SENT_PAGE_CACHE_BYTES_DEFAULT = 64L << 20;
    /** Default bound on the live baseline's copy rounds. */
    public static final int BASELINE_ROUNDS_DEFAULT = 8;
    /** Default dirty set small enough for the live baseline's final pause, in pages. */
    public static final int BASELINE_FINAL_PAGES_DEFAULT = 2048;
    /** Default connect and handshake timeout: 5 s. */
    public static final long CONNECT_TIMEOUT_MS_DEFAULT = 5000;

    private VmmAdapter adapter;
    private Transport transport;
    private String standbyEndpoint;
    private long checkpointPeriodNs = CHECKPOINT_PERIOD_NS_DEFAULT;
    private int maxEpochsInFlight = MAX_EPOCHS_IN_FLIGHT_DEFAULT;
    private int stagingAreas = STAGING_AREAS_DEFAULT;
    private int stagingAreaBytes = STAGING_AREA_BYTES_DEFAULT;
    private int baselineRounds = BASELINE_ROUNDS_DEFAULT;
    private int baselineFinalPages = BASELINE_FINAL_PAGES_DEFAULT;
    private int componentStateBytes = COMPONENT_STATE_BYTES_DEFAULT;
    private int diskStreamBytes = DISK_STREAM_BYTES_DEFAULT;
    private int outputHoldBytes = OUTPUT_HOLD_BYTES_DEFAULT;
    private int maxFramePayload = FrameCodec.MAX_PAYLOAD_DEFAULT;
    private long heartbeatIntervalNs = HEARTBEAT_INTERVAL_NS_DEFAULT;
    private long connectTimeoutMs = CONNECT_TIMEOUT_MS_DEFAULT;
    private UnprotectedOutput unprotectedOutput = UnprotectedOutput.HOLD;
    private NanoClock nanoClock = SystemNanoClock.INSTANCE;
    private java.util.function.Supplier<IdleStrategy> waitStrategy = ActiveContext::defaultWaitStrategy;
    private boolean useAgentInvoker;
    private CheckpointObserver checkpointObserver;
    private ActiveListener listener = new ActiveListener()
    {
    };
    private long generation;
    private boolean pageCodec = true;
    private CheckpointPolicy checkpointPolicy;
    private long sentPageCacheBytes = SENT_PAGE_CACHE_BYTES_DEFAULT;
    private int encoderThreads = 1;
    private java.nio.file.Path generationFile;
    private PromotionArbiter promotionArbiter;
    private long standbySilenceTimeoutNs = STANDBY_SILENCE_TIMEOUT_NS_DEFAULT;
    private long ownershipClaimDelayNs;
    private long reconnectWindowNs = TimeUnit.SECONDS.toNanos(10);
    private int resyncExtents = 65_536;
    private dev.tandem.core.failover.ResumedCheckpoint resumedFrom;
    private java.nio.file.Path countersDirectory;
    private boolean concluded;

    /**
     * @param adapter the guest to protect (required); its {@code vmId()} is 1 to
     *                {@link dev.tandem.vmm.VmmAdapter#MAX_VM_ID_BYTES} bytes in UTF-8.
     * @return this.
     */
    public ActiveContext adapter(final VmmAdapter adapter)
    {
        this.adapter = adapter;
        return this;
    }

    /**
     * @return the guest to protect.
     */
    public VmmAdapter adapter()
    {
        return adapter;
    }

    /**
     * @param transport how to reach the standby (required).
     * @return this.
     */
    public ActiveContext transport(final Transport transport)
    {
        this.transport = transport;
        return this;
    }

    /**
     * @return how to reach the standby.
     */
    public Transport transport()
    {
        return transport;
    }

    /**
     * @param endpoint where the standby listens (required).
     * @return this.
     */
    public ActiveContext standbyEndpoint(final String endpoint)
    {
        this.standbyEndpoint = endpoint;
        return this;
    }

    /**
     * @return where the standby listens.
     */
    public String standbyEndpoint()
    {
        return standbyEndpoint;
    }

    /**
     * @param periodNs time from one checkpoint to the next, 1 ms to 10 s; default 10 ms.
     * @return this.
     */
    public ActiveContext checkpointPeriodNs(final long periodNs)
    {
        this.checkpointPeriodNs = periodNs;
        return this;
    }

    /**
     * @return the checkpoint period.
     */
    public long checkpointPeriodNs()
    {
        return checkpointPeriodNs;
    }

    /**
     * @param epochs checkpoints taken but not yet acknowledged before the next checkpoint waits, 1 to 1024;
     *               default 4. Bounds held output and memory.
     * @return this.
     */
    public ActiveContext maxEpochsInFlight(final int epochs)
    {
        this.maxEpochsInFlight = epochs;
        return this;
    }

    /**
     * @return the bound on epochs in flight.
     */
    public int maxEpochsInFlight()
    {
        return maxEpochsInFlight;
    }

    /**
     * @param areas staging areas, 2 to 64; default 2. A delta larger than one area overflows into the next.
     * @return this.
     */
    public ActiveContext stagingAreas(final int areas)
    {
        this.stagingAreas = areas;
        return this;
    }

    /**
     * @return number of staging areas.
     */
    public int stagingAreas()
    {
        return stagingAreas;
    }

    /**
     * @param bytes size of one staging area, 1 MiB to 1 GiB; default 64 MiB.
     * @return this.
     */
    public ActiveContext stagingAreaBytes(final int bytes)
    {
        this.stagingAreaBytes = bytes;
        return this;
    }

    /**
     * @return size of one staging area.
     */
    public int stagingAreaBytes()
    {
        return stagingAreaBytes;
    }

    /**
     * How the baseline (the first, full copy) is taken. With rounds &gt; 0 it is live, as in live migration: every
     * page is copied while the guest runs, then the pages it dirtied meanwhile, round after round, until the dirty
     * set is at most {@link #baselineFinalPages(int)}, stops shrinking by a quarter a round, or the rounds run out;
     * then one short pause copies what is left with the component state and makes the baseline checkpoint. The
     * disks are copied while the guest runs too; its writes meanwhile are sent after the copy and so win. With 0 the
     * guest stays paused while all memory and the disks are copied and sent (the guest stops for the whole baseline).
     *
     * @param rounds copy rounds while the guest runs, 0 to 64; default 8.
     * @return this.
     */
    public ActiveContext baselineRounds(final int rounds)
    {
        this.baselineRounds = rounds;
        return this;
    }

    /**
     * @return the bound on the live baseline's copy rounds; 0 for a paused baseline.
     */
    public int baselineRounds()
    {
        return baselineRounds;
    }

    /**
     * @param pages a dirty set this small ends the live baseline's rounds: the final pause copies it, 1 to 2^30;
     *              default 2048 (8 MiB of 4 KiB pages, a few milliseconds of memcpy).
     * @return this.
     */
    public ActiveContext baselineFinalPages(final int pages)
    {
        this.baselineFinalPages = pages;
        return this;
    }

    /**
     * @return the dirty set small enough for the live baseline's final pause, in pages.
     */
    public int baselineFinalPages()
    {
        return baselineFinalPages;
    }

    /**
     * @param bytes room for all component state of one checkpoint, 4 KiB to 256 MiB; default 1 MiB.
     * @return this.
     */
    public ActiveContext componentStateBytes(final int bytes)
    {
        this.componentStateBytes = bytes;
        return this;
    }

    /**
     * @return room for component state.
     */
    public int componentStateBytes()
    {
        return componentStateBytes;
    }

    /**
     * @param bytes capacity of the ordered disk-write stream, a power of two from 64 KiB to 1 GiB; default 16 MiB.
     *              One record holds an eighth of it less 16 bytes, and must hold one block of every disk (e.g.
     *              64 KiB blocks need at least 1 MiB).
     * @return this.
     */
    public ActiveContext diskStreamBytes(final int bytes)
    {
        this.diskStreamBytes = bytes;
        return this;
    }

    /**
     * @return capacity of the disk-write stream.
     */
    public int diskStreamBytes()
    {
        return diskStreamBytes;
    }

    /**
     * @param bytes capacity of the output hold queue, a power of two from 64 KiB to 1 GiB; default 8 MiB.
     * @return this.
     */
    public ActiveContext outputHoldBytes(final int bytes)
    {
        this.outputHoldBytes = bytes;
        return this;
    }

    /**
     * @return capacity of the output hold queue.
     */
    public int outputHoldBytes()
    {
        return outputHoldBytes;
    }

    /**
     * @param bytes largest frame payload, 64 KiB to 16 MiB; must not exceed the standby's, and must hold one block of
     *              every disk plus a 16-byte header; default 1 MiB + 64.
     * @return this.
     */
    public ActiveContext maxFramePayload(final int bytes)
    {
        this.maxFramePayload = bytes;
        return this;
    }

    /**
     * @return largest frame payload.
     */
    public int maxFramePayload()
    {
        return maxFramePayload;
    }

    /**
     * @param intervalNs heartbeat when nothing else was sent for this long, 1 ms to 10 s; default 20 ms.
     * @return this.
     */
    public ActiveContext heartbeatIntervalNs(final long intervalNs)
    {
        this.heartbeatIntervalNs = intervalNs;
        return this;
    }

    /**
     * @return heartbeat interval.
     */
    public long heartbeatIntervalNs()
    {
        return heartbeatIntervalNs;
    }

    /**
     * @param millis connect and handshake timeout, 1 ms to 10 min; default 5 s.
     * @return this.
     */
    public ActiveContext connectTimeoutMs(final long millis)
    {
        this.connectTimeoutMs = millis;
        return this;
    }

    /**
     * @return connect timeout.
     */
    public long connectTimeoutMs()
    {
        return connectTimeoutMs;
    }

    /**
     * @param policy what the output gate does while unprotected; default {@link UnprotectedOutput#HOLD}.
     * @return this.
     */
    public ActiveContext unprotectedOutput(final UnprotectedOutput policy)
    {
        this.unprotectedOutput = policy;
        return this;
    }

    /**
     * @return the unprotected-output policy.
     */
    public UnprotectedOutput unprotectedOutput()
    {
        return unprotectedOutput;
    }

    /**
     * @param clock time source of the duty cycles; inject a simulated clock for deterministic tests.
     * @return this.
     */
    public ActiveContext nanoClock(final NanoClock clock)
    {
        this.nanoClock = clock;
        return this;
    }

    /**
     * @return time source.
     */
    public NanoClock nanoClock()
    {
        return nanoClock;
    }

    /**
     * @param supplier makes the strategy each place that must wait for another duty cycle uses (the scheduler for a
     *                 free staging area or the baseline's send, the sender on a full connection, a VMM thread on a
     *                 full disk-write stream, the handshake, {@code close()}); one is made per waiting place. The
     *                 default backs off from spinning to 50 us parks. A deterministic simulation supplies one whose
     *                 {@code idle()} runs the other parts on the calling thread.
     * @return this.
     */
    public ActiveContext waitStrategy(final java.util.function.Supplier<IdleStrategy> supplier)
    {
        this.waitStrategy = supplier;
        return this;
    }

    /**
     * @return a new strategy for one waiting place.
     */
    public IdleStrategy newWaitStrategy()
    {
        return waitStrategy.get();
    }

    private static IdleStrategy defaultWaitStrategy()
    {
        return new BackoffIdleStrategy(10, 10, 1_000, 50_000);
    }

    /**
     * @param useAgentInvoker true to start no threads: the caller steps the scheduler and the sender through
     *                        {@link ActiveReplicator#schedulerInvoker()} and {@link ActiveReplicator#senderInvoker()}
     *                        (deterministic simulation, or a VMM that runs its own duty-cycle threads). Requires
     *                        {@code encoderThreads(1)}.
     * @return this.
     */
    public ActiveContext useAgentInvoker(final boolean useAgentInvoker)
    {
        this.useAgentInvoker = useAgentInvoker;
        return this;
    }

    /**
     * @return whether the caller steps the duty cycles.
     */
    public boolean useAgentInvoker()
    {
        return useAgentInvoker;
    }

    /**
     * @param observer sees each checkpoint while paused (verification only; it lengthens the pause).
     * @return this.
     */
    public ActiveContext checkpointObserver(final CheckpointObserver observer)
    {
        this.checkpointObserver = observer;
        return this;
    }

    /**
     * @return the checkpoint observer, or null.
     */
    public CheckpointObserver checkpointObserver()
    {
        return checkpointObserver;
    }

    /**
     * @param listener acks and errors.
     * @return this.
     */
    public ActiveContext listener(final ActiveListener listener)
    {
        this.listener = listener;
        return this;
    }

    /**
     * @return the listener.
     */
    public ActiveListener listener()
    {
        return listener;
    }

    /**
     * @param generation the fencing generation this active last served (persist it with the VM), or 0 on a first
     *                   start; the standby refuses an active whose generation is lower than its own.
     * @return this.
     */
    public ActiveContext generation(final long generation)
    {
        this.generation = generation;
        return this;
    }

    /**
     * @return the generation this active last served, 0 if none.
     */
    public long generation()
    {
        return generation;
    }

    /**
     * @param policy chooses each next period from what the last epochs showed (e.g. {@link AdaptivePolicy});
     *               default a {@link FixedPolicy} of {@link #checkpointPeriodNs()}.
     * @return this.
     */
    public ActiveContext checkpointPolicy(final CheckpointPolicy policy)
    {
        this.checkpointPolicy = policy;
        return this;
    }

    /**
     * @return the checkpoint policy (after {@link #conclude()}, never null).
     */
    public CheckpointPolicy checkpointPolicy()
    {
        return checkpointPolicy;
    }

    /**
     * @param enabled encode pages (zero, raw, LZ4, XOR delta then LZ4; the smallest) on the sender, after resume;
     *                default true. False sends every page raw, straight from staging.
     * @return this.
     */
    public ActiveContext pageCodec(final boolean enabled)
    {
        this.pageCodec = enabled;
        return this;
    }

    /**
     * @return whether pages are encoded.
     */
    public boolean pageCodec()
    {
        return pageCodec;
    }

    /**
     * @param threads threads that encode pages, 1 to 64; default 1, the sender's own thread. More spreads encoding
     *                over that many worker threads (each owning a share of the pages and of the sent-page cache)
     *                while the sender still writes frames in epoch order: worth it when one core encodes slower
     *                than the link sends and cores are free. Ignored without the page codec.
     * @return this.
     */
    public ActiveContext encoderThreads(final int threads)
    {
        this.encoderThreads = threads;
        return this;
    }

    /**
     * @return threads that encode pages.
     */
    public int encoderThreads()
    {
        return encoderThreads;
    }

    /**
     * @param bytes room for last-sent pages, the XOR bases, 0 (no XOR deltas) to 64 GiB; default 64 MiB.
     * @return this.
     */
    public ActiveContext sentPageCacheBytes(final long bytes)
    {
        this.sentPageCacheBytes = bytes;
        return this;
    }

    /**
     * @return room for last-sent pages.
     */
    public long sentPageCacheBytes()
    {
        return sentPageCacheBytes;
    }

    /**
     * @param file where this active persists the generation it serves (read at launch, rewritten after the
     *             handshake); the higher of it and {@link #generation(long)} is used. Null (the default) leaves
     *             persistence to the VMM through {@link ActiveReplicator#generation()}.
     * @return this.
     */
    public ActiveContext generationFile(final java.nio.file.Path file)
    {
        this.generationFile = file;
        return this;
    }

    /**
     * @return the generation file, or null.
     */
    public java.nio.file.Path generationFile()
    {
        return generationFile;
    }

    /**
     * @param arbiter the same arbiter the standby promotes through; lets this active learn it was fenced (and
     *                refuse to start if it already was).
     * @return this.
     */
    public ActiveContext promotionArbiter(final PromotionArbiter arbiter)
    {
        this.promotionArbiter = arbiter;
        return this;
    }

    /**
     * @return the arbiter, or null.
     */
    public PromotionArbiter promotionArbiter()
    {
        return promotionArbiter;
    }

    /**
     * @param timeoutNs time without a frame from the standby (acks, its heartbeats) after which protection counts
     *                  as lost (bytes this side's socket accepted do not count), 10 ms to 10 min; default 3 s; ten
     *                  times as long until the baseline is acknowledged (the standby may apply it for long without
     *                  answering). Already after the standby's own failure timeout of silence this active asks the
     *                  arbiter whether the standby promoted, and stops its guest at once if so.
     * @return this.
     */
    public ActiveContext standbySilenceTimeoutNs(final long timeoutNs)
    {
        this.standbySilenceTimeoutNs = timeoutNs;
        return this;
    }

    /**
     * @return the standby silence timeout.
     */
    public long standbySilenceTimeoutNs()
    {
        return standbySilenceTimeoutNs;
    }

    /**
     * @param delayNs after losing its standby, how long this active only watches the arbiter (holding output) before
     *                it claims the next generation itself; the standby, if alive, gets that long to promote. 0 (the
     *                default) means twice the standby's failure timeout, which the standby states in its WELCOME;
     *                otherwise 1 ms to 10 min.
     * @return this.
     */
    public ActiveContext ownershipClaimDelayNs(final long delayNs)
    {
        this.ownershipClaimDelayNs = delayNs;
        return this;
    }

    /**
     * @return the claim delay, 0 for twice the standby's failure timeout.
     */
    public long ownershipClaimDelayNs()
    {
        return ownershipClaimDelayNs;
    }

    /**
     * @param windowNs after losing its standby (a reset, silence, a refusal), how long this active keeps trying to
     *                 reconnect, with back-off from 50 ms to 1 s between attempts. Meanwhile the state is
     *                 {@code RECONNECTING}: output is held, the guest runs, and the arbiter is watched and (after
     *                 the claim delay) claimed exactly as while {@code ARBITRATING}. A standby that answers with its
     *                 recovery point gets only the pages and disk extents changed since (a quick resync), or a whole
     *                 baseline when its history cannot be trusted. A standby whose failure timeout is shorter than
     *                 the outage has promoted by then: this side is fenced. Default 10 s; 0 disables reconnecting
     *                 (the first loss ends protection, as before); otherwise 10 ms to 1 h.
     * @return this.
     */
    public ActiveContext reconnectWindowNs(final long windowNs)
    {
        this.reconnectWindowNs = windowNs;
        return this;
    }

    /**
     * @return the reconnect window, 0 if reconnecting is off.
     */
    public long reconnectWindowNs()
    {
        return reconnectWindowNs;
    }

    /**
     * @param extents disk-write extents the dirty-since-ack record holds (about 24 bytes each on the heap): every
     *                write of an unacknowledged epoch and every write while the link is down. When it is full,
     *                a reconnect copies the disks whole until the standby has acknowledged the missed writes'
     *                epochs. Default 65 536; 16 to 16 Mi.
     * @return this.
     */
    public ActiveContext resyncExtents(final int extents)
    {
        this.resyncExtents = extents;
        return this;
    }

    /**
     * @return extents of the disk resync record.
     */
    public int resyncExtents()
    {
        return resyncExtents;
    }

    /**
     * Protects a promoted guest as the continuation of the history it resumed from (a failback, or the reverse
     * protection after a planned switchover): its epochs go on from that checkpoint, and a standby that still holds
     * the same checkpoint (same epoch and fingerprint: the old active's host after a switchover) gets only the pages
     * and disk extents the guest changed since, if the promotion's target recorded them
     * ({@link dev.tandem.vmm.RecoveryPoint#trackFromResume()}). Any other standby gets a whole baseline, as without
     * this setting. Default null: a guest that never was a standby's.
     *
     * @param checkpoint {@link dev.tandem.core.failover.Promotion#resumedFrom()} of the promotion that made this
     *                   guest; its VM must be the adapter's.
     * @return this.
     */
    public ActiveContext resumedFrom(final dev.tandem.core.failover.ResumedCheckpoint checkpoint)
    {
        this.resumedFrom = checkpoint;
        return this;
    }

    /**
     * @return the checkpoint the guest resumed from, null if none.
     */
    public dev.tandem.core.failover.ResumedCheckpoint resumedFrom()
    {
        return resumedFrom;
    }

    /**
     * @param directory where this process's counters file ({@code <pid>.counters}) is, shared by every active and
     *                  standby of the process that names the same directory; null (the default) means
     *                  {@link dev.tandem.core.metrics.CountersFile#defaultDirectory()}: the system property
     *                  {@code tandem.counters.dir}, else {@code <java.io.tmpdir>/tandem-<user.name>}. The
     *                  {@code stat} command of the examples jar reads the counters there while the process runs.
     * @return this.
     */
    public ActiveContext countersDirectory(final java.nio.file.Path directory)
    {
        this.countersDirectory = directory;
        return this;
    }

    /**
     * @return the directory of the counters file (resolved to the default by {@link #conclude()}).
     */
    public java.nio.file.Path countersDirectory()
    {
        return countersDirectory;
    }

    /**
     * Validates every setting once; later changes are not allowed.
     *
     * @return this.
     * @throws ConfigurationException naming the first setting out of range.
     */
    public ActiveContext conclude()
    {
        if (concluded)
        {
            throw new ConfigurationException("ActiveContext already concluded; use a new context per replicator");
        }
        ConfigurationException.checkSet("adapter", adapter);
        ConfigurationException.checkSet("transport", transport);
        ConfigurationException.checkSet("standbyEndpoint", standbyEndpoint);
        ConfigurationException.checkSet("unprotectedOutput", unprotectedOutput);
        ConfigurationException.checkSet("nanoClock", nanoClock);
        ConfigurationException.checkSet("waitStrategy", waitStrategy);
        ConfigurationException.checkSet("listener", listener);
        ConfigurationException.checkRange("checkpointPeriodNs", checkpointPeriodNs,
            TimeUnit.MILLISECONDS.toNanos(1), TimeUnit.SECONDS.toNanos(10));
        ConfigurationException.checkRange("maxEpochsInFlight", maxEpochsInFlight, 1, 1024);
        ConfigurationException.checkRange("stagingAreas", stagingAreas, 2, 64);
        ConfigurationException.checkRange("stagingAreaBytes", stagingAreaBytes, 1 << 20, 1 << 30);
        ConfigurationException.checkRange("baselineRounds", baselineRounds, 0, 64);
        ConfigurationException.checkRange("baselineFinalPages", baselineFinalPages, 1, 1 << 30);
        ConfigurationException.checkRange("componentStateBytes", componentStateBytes, 4096, 256 << 20);
        ConfigurationException.checkRange("diskStreamBytes", diskStreamBytes, 64 << 10, 1 << 30);
        ConfigurationException.checkRange("outputHoldBytes", outputHoldBytes, 64 << 10, 1 << 30);
        ConfigurationException.checkRange("maxFramePayload", maxFramePayload, 64 << 10, 16 << 20);
        ConfigurationException.checkRange("heartbeatIntervalNs", heartbeatIntervalNs,
            TimeUnit.MILLISECONDS.toNanos(1), TimeUnit.SECONDS.toNanos(10));
        ConfigurationException.checkRange("connectTimeoutMs", connectTimeoutMs, 1, TimeUnit.MINUTES.toMillis(10));
        ConfigurationException.checkRange("generation", generation, 0, Long.MAX_VALUE);
        ConfigurationException.checkRange("sentPageCacheBytes", sentPageCacheBytes, 0, 64L << 30);
        ConfigurationException.checkRange("encoderThreads", encoderThreads, 1, 64);
        if (useAgentInvoker && encoderThreads > 1 && pageCodec)
        {
            throw new ConfigurationException("encoderThreads = " + encoderThreads + " starts encoder threads, but " +
                "useAgentInvoker(true) asks for none; use encoderThreads(1) when stepping the duty cycles by hand");
        }
        if (checkpointPolicy == null)
        {
            checkpointPolicy = new FixedPolicy(checkpointPeriodNs);
        }
        if (countersDirectory == null)
        {
            countersDirectory = dev.tandem.core.metrics.CountersFile.defaultDirectory();
        }
        if (generationFile != null)
        {
            generation = Math.max(generation, new GenerationFile(generationFile).read());
        }
        ConfigurationException.checkRange("standbySilenceTimeoutNs", standbySilenceTimeoutNs,
            TimeUnit.MILLISECONDS.toNanos(10), TimeUnit.MINUTES.toNanos(10));
        if (reconnectWindowNs != 0)
        {
            ConfigurationException.checkRange("reconnectWindowNs", reconnectWindowNs,
                TimeUnit.MILLISECONDS.toNanos(10), TimeUnit.HOURS.toNanos(1));
        }
        ConfigurationException.checkRange("resyncExtents", resyncExtents, 16, 16 << 20);
        if (ownershipClaimDelayNs != 0)
        {
            ConfigurationException.checkRange("ownershipClaimDelayNs", ownershipClaimDelayNs,
                TimeUnit.MILLISECONDS.toNanos(1), TimeUnit.MINUTES.toNanos(10));
        }
        requirePowerOfTwo("diskStreamBytes", diskStreamBytes);
        requirePowerOfTwo("outputHoldBytes", outputHoldBytes);
        if (adapter.packetSink() == null || adapter.memory() == null || adapter.dirtyLog() == null ||
            adapter.vcpus() == null || adapter.components() == null || adapter.disks() == null)
        {
            throw new ConfigurationException("adapter " + adapter.vmId() + " returned null for packetSink(), " +
                "memory(), dirtyLog(), vcpus(), components() or disks(); each must be non-null (lists may be empty)");
        }
        // checked here, in bytes, rather than refused by the standby deep in the handshake
        ConfigurationException.checkVmId(adapter.vmId());
        if (resumedFrom != null && !resumedFrom.vmId().equals(adapter.vmId()))
        {
            throw new ConfigurationException("resumedFrom names a checkpoint of VM " + resumedFrom.vmId() +
                " but the adapter's guest is VM " + adapter.vmId());
        }
        transport.checkCarries(adapter.vmId());
        final int pageSize = adapter.memory().pageSize();
        if (pageSize < 512 || Integer.bitCount(pageSize) != 1 || pageSize > stagingAreaBytes)
        {
            throw new ConfigurationException("adapter page size " + pageSize +
                " must be a power of two >= 512 and fit a staging area of " + stagingAreaBytes + " bytes");
        }
        if (maxFramePayload < pageSize + FrameCodec.PAGES_HEADER + PageCodec.ENTRY_HEADER)
        {
            throw new ConfigurationException("maxFramePayload " + maxFramePayload + " cannot carry one page of " +
                pageSize + " bytes");
        }
        checkDisks();
        concluded = true;
        return this;
    }

    /**
     * A disk is sent in whole blocks, so one block must fit one DISK_WRITE frame and one record of the disk-write
     * stream; found when 16 and 64 KiB blocks broke protection with frame and stream sizes inside their ranges.
     */
    private void checkDisks()
    {
        final java.util.List<dev.tandem.vmm.VirtualDisk> disks = adapter.disks();
        if (disks.size() > Handshake.MAX_DISKS)
        {
            throw new ConfigurationException("adapter " + adapter.vmId() + " has " + disks.size() +
                " disks; at most " + Handshake.MAX_DISKS + " are supported");
        }
        final java.util.Set<Integer> ids = new java.util.HashSet<>();
        final int byFrame = maxFramePayload - FrameCodec.DISK_WRITE_HEADER;
        final int byStream = DiskWriteStream.maxRecordData(diskStreamBytes);
        for (final dev.tandem.vmm.VirtualDisk disk : disks)
        {
            final int block = disk.blockSize();
            if (disk.id() < 0 || disk.id() > 1023 || !ids.add(disk.id()) || block < 512 ||
                Integer.bitCount(block) != 1 || disk.sizeBytes() <= 0 || disk.sizeBytes() % block != 0)
            {
                throw new ConfigurationException("disk " + disk.id() + " of adapter " + adapter.vmId() +
                    " (block size " + block + ", " + disk.sizeBytes() + " bytes): ids must be unique in [0, 1023], " +
                    "the block size a power of two >= 512 and the size a positive multiple of it");
            }
            if (block > byFrame)
            {
                throw new ConfigurationException("maxFramePayload = " + maxFramePayload + " cannot carry one " +
                    block + "-byte block of disk " + disk.id() + " in a DISK_WRITE frame; it must be at least " +
                    (block + FrameCodec.DISK_WRITE_HEADER) + " (on the standby too)");
            }
            if (block > byStream)
            {
                throw new ConfigurationException("diskStreamBytes = " + diskStreamBytes + " cannot hold one " + block +
                    "-byte block of disk " + disk.id() + ": a record of the disk-write stream carries at most an " +
                    "eighth of it less " + DiskWriteStream.WRITE_HEADER + " bytes (" + byStream + "); it must be at " +
                    "least " + Integer.highestOneBit(8 * (block + DiskWriteStream.WRITE_HEADER) - 1) * 2);
            }
        }
    }

    private static void requirePowerOfTwo(final String name, final int value)
    {
        if (Integer.bitCount(value) != 1)
        {
            throw new ConfigurationException(name + " = " + value + " must be a power of two");
        }
    }
}
