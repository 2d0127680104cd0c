package dev.tandem.core.standby;

import dev.tandem.core.ConfigurationException;
import dev.tandem.core.codec.PageCodec;
import dev.tandem.core.failover.PromotionArbiter;
import dev.tandem.core.failover.PromotionListener;
import dev.tandem.core.transport.Transport;
import dev.tandem.core.wire.FrameCodec;
import dev.tandem.core.wire.Handshake;

import dev.tandem.vmm.ReplicaTarget;
import dev.tandem.vmm.VmmAdapter;

import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.NanoClock;
import org.agrona.concurrent.SystemNanoClock;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Configuration of the standby side: what it protects (VM identity and geometry, which the active must match at
 * handshake), where it listens and keeps its images. Validated once by {@link #conclude()}.
 */
public final class StandbyContext
{
    /** Default bytes of memory for the epoch logs together, before an epoch spills to a file. */
    public static final int EPOCH_LOG_MEMORY_BYTES_DEFAULT = 64 * 1024 * 1024;
    /** Default epoch logs: one assembling the next epoch while the applier applies the one before. */
    public static final int EPOCH_LOGS_DEFAULT = 2;
    /** Default silence after which the active counts as failed: 200 ms (ten default heartbeats). */
    public static final long FAILURE_TIMEOUT_NS_DEFAULT = TimeUnit.MILLISECONDS.toNanos(200);
    /** The failure timeout must be at least this many of the active's heartbeat intervals. */
    public static final int MIN_HEARTBEATS_PER_TIMEOUT = 3;
    /** Default generation of a fresh standby. */
    public static final long GENERATION_DEFAULT = 1;

    private Transport transport;
    private String listenEndpoint;
    private Path directory;
    private String vmId;
    private int pageSize = 4096;
    private long pageCount;
    private final List<Handshake.Disk> disks = new ArrayList<>();
    private long generation = GENERATION_DEFAULT;
    private Durability durability = Durability.MEMORY;
    private long imageCheckpointBytes = 256L << 20;
    private long imageCheckpointIntervalNs = TimeUnit.SECONDS.toNanos(30);
    private long retentionNs;
    private long retentionEpochs;
    private StorageWitness storageWitness = StorageWitness.NONE;
    private VmmAdapter heldGuest;
    private long heldEpoch;
    private long heldFingerprint;
    private int maxFramePayload = FrameCodec.MAX_PAYLOAD_DEFAULT;
    private int epochLogMemoryBytes = EPOCH_LOG_MEMORY_BYTES_DEFAULT;
    private int epochLogs = EPOCH_LOGS_DEFAULT;
    private StandbyListener listener = new StandbyListener()
    {
    };
    private long failureTimeoutNs = FAILURE_TIMEOUT_NS_DEFAULT;
    private boolean autoPromote;
    private boolean unsafeAutoPromoteWithoutArbiter;
    private PromotionArbiter promotionArbiter;
    private ReplicaTarget replicaTarget;
    private PromotionListener promotionListener = new PromotionListener()
    {
    };
    private DiskImageOpener diskImageOpener = DiskImageOpener.DEFAULT;
    private NanoClock nanoClock = SystemNanoClock.INSTANCE;
    private java.util.function.Supplier<IdleStrategy> waitStrategy = StandbyContext::defaultWaitStrategy;
    private boolean useAgentInvoker;
    private Path countersDirectory;
    private boolean concluded;

    /**
     * @param transport how the active connects (required).
     * @return this.
     */
    public StandbyContext transport(final Transport transport)
    {
        this.transport = transport;
        return this;
    }

    /**
     * @return the transport.
     */
    public Transport transport()
    {
        return transport;
    }

    /**
     * @param endpoint where to listen (required): for TCP and TLS, {@code host:port}, e.g. {@code 0.0.0.0:7400} to
     *                 take connections from other hosts; a bare port ({@code 7400}) listens on loopback only.
     * @return this.
     */
    public StandbyContext listenEndpoint(final String endpoint)
    {
        this.listenEndpoint = endpoint;
        return this;
    }

    /**
     * @return where to listen.
     */
    public String listenEndpoint()
    {
        return listenEndpoint;
    }

    /**
     * @param directory where disk images and the epoch spill file live (required, created if missing).
     * @return this.
     */
    public StandbyContext directory(final Path directory)
    {
        this.directory = directory;
        return this;
    }

    /**
     * @return the standby's directory.
     */
    public Path directory()
    {
        return directory;
    }

    /**
     * @param vmId identity of the protected guest (required), 1 to {@link Handshake#MAX_VM_ID_BYTES} bytes in UTF-8.
     * @return this.
     */
    public StandbyContext vmId(final String vmId)
    {
        this.vmId = vmId;
        return this;
    }

    /**
     * @return identity of the protected guest.
     */
    public String vmId()
    {
        return vmId;
    }

    /**
     * @param pageSize  bytes per guest page, a power of two from 512 to 1 GiB; default 4096.
     * @param pageCount pages of guest memory (required).
     * @return this.
     */
    public StandbyContext memory(final int pageSize, final long pageCount)
    {
        this.pageSize = pageSize;
        this.pageCount = pageCount;
        return this;
    }

    /**
     * @return bytes per page.
     */
    public int pageSize()
    {
        return pageSize;
    }

    /**
     * @return pages of guest memory.
     */
    public long pageCount()
    {
        return pageCount;
    }

    /**
     * Adds a disk of the guest.
     *
     * @param id        disk id as the VMM names it, 0 to 1023.
     * @param blockSize block size, a power of two of at least 512 that one frame can carry (see
     *                  {@link #maxFramePayload(int)}).
     * @param sizeBytes size, a multiple of the block size.
     * @return this.
     */
    public StandbyContext disk(final int id, final int blockSize, final long sizeBytes)
    {
        disks.add(new Handshake.Disk(id, blockSize, sizeBytes));
        return this;
    }

    /**
     * @return the guest's disks.
     */
    public List<Handshake.Disk> disks()
    {
        return List.copyOf(disks);
    }

    /**
     * @param generation fencing generation this standby serves, >= 1; default 1.
     * @return this.
     */
    public StandbyContext generation(final long generation)
    {
        this.generation = generation;
        return this;
    }

    /**
     * @return the generation.
     */
    public long generation()
    {
        return generation;
    }

    /**
     * @param durability where the recovery image lives: {@link Durability#MEMORY} (the default) or
     *                   {@link Durability#DURABLE}, in files of {@link #directory} that survive a restart of this
     *                   process (each ack waits for the epoch's journal to be forced).
     * @return this.
     */
    public StandbyContext durability(final Durability durability)
    {
        this.durability = durability;
        return this;
    }

    /**
     * @return where the recovery image lives.
     */
    public Durability durability()
    {
        return durability;
    }

    /**
     * @param bytes in {@link Durability#DURABLE} mode, journal bytes after which the image files are forced at the
     *              applied epoch and the journal behind them deleted: the most a restart replays, and (with the
     *              image) the disk the standby uses. Default 256 MiB; 1 MiB to 64 GiB.
     * @return this.
     */
    public StandbyContext imageCheckpointBytes(final long bytes)
    {
        this.imageCheckpointBytes = bytes;
        return this;
    }

    /**
     * @return journal bytes between image checkpoints.
     */
    public long imageCheckpointBytes()
    {
        return imageCheckpointBytes;
    }

    /**
     * @param intervalNs in {@link Durability#DURABLE} mode, the longest time between image checkpoints even with
     *                   less journal. Default 30 s; 10 ms to 1 h.
     * @return this.
     */
    public StandbyContext imageCheckpointIntervalNs(final long intervalNs)
    {
        this.imageCheckpointIntervalNs = intervalNs;
        return this;
    }

    /**
     * @return the longest time between image checkpoints.
     */
    public long imageCheckpointIntervalNs()
    {
        return imageCheckpointIntervalNs;
    }

    /**
     * @param windowNs in {@link Durability#DURABLE} mode, how far back a replica can be restored as of an earlier
     *                 epoch or time ({@link PointInTimeRestore}): journal segments are kept for that long, and a copy
     *                 of the image files (a base) is taken every quarter of it. 0 (the default) keeps nothing
     *                 older than the image; otherwise 1 s to 30 days.
     * @return this.
     */
    public StandbyContext retentionNs(final long windowNs)
    {
        this.retentionNs = windowNs;
        return this;
    }

    /**
     * @return the retention window, 0 for none.
     */
    public long retentionNs()
    {
        return retentionNs;
    }

    /**
     * @param epochs in {@link Durability#DURABLE} mode, how many epochs back a replica can be restored
     *               ({@link PointInTimeRestore}): the window by epoch count rather than by time ({@link #retentionNs}),
     *               for a guest whose checkpoint rate varies; the journal of that many epochs is kept, and a base
     *               copy of the image files is taken every quarter of them. 0 (the default) for none; otherwise
     *               4 to 2^40, and not together with {@link #retentionNs}.
     * @return this.
     */
    public StandbyContext retentionEpochs(final long epochs)
    {
        this.retentionEpochs = epochs;
        return this;
    }

    /**
     * @return the retention window in epochs, 0 for none.
     */
    public long retentionEpochs()
    {
        return retentionEpochs;
    }

    /**
     * @param witness sees every force, rename and delete of the {@link Durability#DURABLE} image (crash-consistency
     *                testing: a power-loss model); {@link StorageWitness#NONE} (the default) for none.
     * @return this.
     */
    public StandbyContext storageWitness(final StorageWitness witness)
    {
        this.storageWitness = java.util.Objects.requireNonNull(witness, "storageWitness");
        return this;
    }

    /**
     * @return what sees the DURABLE image's forces, renames and deletes.
     */
    public StorageWitness storageWitness()
    {
        return storageWitness;
    }

    /**
     * Starts this standby holding a checkpoint of the guest's history instead of an empty replica: the old active's
     * guest after a planned switchover, stopped at the epoch the other host resumed from. The launch copies its
     * memory, component states and disks into the recovery image (locally, nothing over the network), and an active
     * that resumed from the same checkpoint ({@link dev.tandem.core.active.ActiveContext#resumedFrom}) then sends only
     * what it changed since. The checkpoint is never promoted as it is: the active has run past it, and output has
     * left since; it becomes promotable when the first session's resync commits.
     *
     * @param guest       the stopped guest, paused at the checkpoint; read during the launch only, closed by the
     *                    caller afterwards.
     * @param epoch       the checkpoint's epoch ({@link dev.tandem.core.active.ActiveReplicator.Switchover#epoch()}).
     * @param fingerprint its fingerprint ({@link dev.tandem.core.active.ActiveReplicator.Switchover#fingerprint()}).
     * @return this.
     */
    public StandbyContext heldCheckpoint(final VmmAdapter guest, final long epoch, final long fingerprint)
    {
        this.heldGuest = guest;
        this.heldEpoch = epoch;
        this.heldFingerprint = fingerprint;
        return this;
    }

    /**
     * @return the stopped guest this standby starts from, null for an empty replica.
     */
    public VmmAdapter heldGuest()
    {
        return heldGuest;
    }

    /**
     * @return the epoch of that guest's checkpoint.
     */
    public long heldEpoch()
    {
        return heldEpoch;
    }

    /**
     * @return that checkpoint's fingerprint.
     */
    public long heldFingerprint()
    {
        return heldFingerprint;
    }

    /**
     * @param bytes largest frame payload accepted, 64 KiB to 16 MiB, holding one block of every disk plus a 16-byte
     *              header; default 1 MiB + 64.
     * @return this.
     */
    public StandbyContext maxFramePayload(final int bytes)
    {
        this.maxFramePayload = bytes;
        return this;
    }

    /**
     * @return largest frame payload accepted.
     */
    public int maxFramePayload()
    {
        return maxFramePayload;
    }

    /**
     * @param bytes memory of all epoch logs together, 1 MiB to 1 GiB; default 64 MiB. Each of the
     *              {@link #epochLogs(int)} logs holds its share of it in memory and spills the rest of its epoch to a
     *              file, so an epoch of any size (the baseline is all of memory) fits.
     * @return this.
     */
    public StandbyContext epochLogMemoryBytes(final int bytes)
    {
        this.epochLogMemoryBytes = bytes;
        return this;
    }

    /**
     * @return memory of all epoch logs together.
     */
    public int epochLogMemoryBytes()
    {
        return epochLogMemoryBytes;
    }

    /**
     * How many epochs the standby can hold between receiving and applying: the receiver assembles one while the
     * applier applies the others; with none free the receiver stops reading the connection until one is applied.
     * Every log is allocated at launch.
     *
     * @param logs 2 to 8; default {@link #EPOCH_LOGS_DEFAULT}.
     * @return this.
     */
    public StandbyContext epochLogs(final int logs)
    {
        this.epochLogs = logs;
        return this;
    }

    /**
     * @return how many epoch logs the standby allocates.
     */
    public int epochLogs()
    {
        return epochLogs;
    }

    /**
     * @param opener opens the standby's image of each disk; default {@link DiskImageOpener#DEFAULT}.
     * @return this.
     */
    public StandbyContext diskImageOpener(final DiskImageOpener opener)
    {
        this.diskImageOpener = opener;
        return this;
    }

    /**
     * @return what opens the disk images.
     */
    public DiskImageOpener diskImageOpener()
    {
        return diskImageOpener;
    }

    /**
     * @param listener commits and errors.
     * @return this.
     */
    public StandbyContext listener(final StandbyListener listener)
    {
        this.listener = listener;
        return this;
    }

    /**
     * @return the listener.
     */
    public StandbyListener listener()
    {
        return listener;
    }

    /**
     * @param timeoutNs silence of the active after which it counts as failed, 10 ms to 10 min; default 200 ms. The
     *                  handshake refuses an active whose heartbeat interval is more than a third of it.
     * @return this.
     */
    public StandbyContext failureTimeoutNs(final long timeoutNs)
    {
        this.failureTimeoutNs = timeoutNs;
        return this;
    }

    /**
     * @return the failure timeout.
     */
    public long failureTimeoutNs()
    {
        return failureTimeoutNs;
    }

    /**
     * @param autoPromote promote by itself when the active fails (needs a {@link #replicaTarget} and a
     *                    {@link #promotionArbiter}, or {@link #unsafeAutoPromoteWithoutArbiter}); default false.
     * @return this.
     */
    public StandbyContext autoPromote(final boolean autoPromote)
    {
        this.autoPromote = autoPromote;
        return this;
    }

    /**
     * @return whether the standby promotes by itself.
     */
    public boolean autoPromote()
    {
        return autoPromote;
    }

    /**
     * @param unsafe allow auto-promotion without an arbiter: a partition then leaves the guest running twice.
     *               Logged loudly. Default false.
     * @return this.
     */
    public StandbyContext unsafeAutoPromoteWithoutArbiter(final boolean unsafe)
    {
        this.unsafeAutoPromoteWithoutArbiter = unsafe;
        return this;
    }

    /**
     * @return whether auto-promotion without an arbiter is allowed.
     */
    public boolean unsafeAutoPromoteWithoutArbiter()
    {
        return unsafeAutoPromoteWithoutArbiter;
    }

    /**
     * @param arbiter fencing shared with the active.
     * @return this.
     */
    public StandbyContext promotionArbiter(final PromotionArbiter arbiter)
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
     * @param target builds the running guest from the recovery point at promotion.
     * @return this.
     */
    public StandbyContext replicaTarget(final ReplicaTarget target)
    {
        this.replicaTarget = target;
        return this;
    }

    /**
     * @return the replica target, or null.
     */
    public ReplicaTarget replicaTarget()
    {
        return replicaTarget;
    }

    /**
     * @param listener sees each promotion step with its timing.
     * @return this.
     */
    public StandbyContext promotionListener(final PromotionListener listener)
    {
        this.promotionListener = listener;
        return this;
    }

    /**
     * @return the promotion listener.
     */
    public PromotionListener promotionListener()
    {
        return promotionListener;
    }

    /**
     * @param clock time source of the receiver (failure detection, promotion timings); inject a simulated clock
     *              for deterministic tests.
     * @return this.
     */
    public StandbyContext nanoClock(final NanoClock clock)
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
     * @param supplier makes the strategy the receiver waits with when the active does not read its acks; the
     *                 default backs off to 50 us parks. A deterministic simulation supplies one whose {@code idle()}
     *                 runs the other parts on the calling thread.
     * @return this.
     */
    public StandbyContext waitStrategy(final java.util.function.Supplier<IdleStrategy> supplier)
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
     * @param useAgentInvoker true to start no thread: the caller steps the receiver through
     *                        {@link StandbyReplica#receiverInvoker()} and the applier through
     *                        {@link StandbyReplica#applierInvoker()}, and inspections run on the calling thread.
     * @return this.
     */
    public StandbyContext useAgentInvoker(final boolean useAgentInvoker)
    {
        this.useAgentInvoker = useAgentInvoker;
        return this;
    }

    /**
     * @return whether the caller steps the receiver and the applier.
     */
    public boolean useAgentInvoker()
    {
        return useAgentInvoker;
    }

    /**
     * @param directory where this process's counters file ({@code <pid>.counters}) is, shared by every active and
     *                  standby of the process that names the same directory; null (the default) means
     *                  {@link dev.tandem.core.metrics.CountersFile#defaultDirectory()}: the system property
     *                  {@code tandem.counters.dir}, else {@code <java.io.tmpdir>/tandem-<user.name>}. The
     *                  {@code stat} command of the examples jar reads the counters there while the process runs.
     * @return this.
     */
    public StandbyContext countersDirectory(final Path directory)
    {
        this.countersDirectory = directory;
        return this;
    }

    /**
     * @return the directory of the counters file (resolved to the default by {@link #conclude()}).
     */
    public Path countersDirectory()
    {
        return countersDirectory;
    }

    /**
     * Validates every setting once.
     *
     * @return this.
     * @throws ConfigurationException naming the first setting out of range.
     */
    public StandbyContext conclude()
    {
        if (concluded)
        {
            throw new ConfigurationException("StandbyContext already concluded; use a new context per standby");
        }
        ConfigurationException.checkSet("transport", transport);
        ConfigurationException.checkSet("listenEndpoint", listenEndpoint);
        ConfigurationException.checkSet("directory", directory);
        ConfigurationException.checkSet("vmId", vmId);
        ConfigurationException.checkSet("listener", listener);
        ConfigurationException.checkSet("diskImageOpener", diskImageOpener);
        ConfigurationException.checkSet("nanoClock", nanoClock);
        ConfigurationException.checkSet("waitStrategy", waitStrategy);
        ConfigurationException.checkSet("durability", durability);
        ConfigurationException.checkRange("imageCheckpointBytes", imageCheckpointBytes, 1L << 20, 64L << 30);
        ConfigurationException.checkRange("imageCheckpointIntervalNs", imageCheckpointIntervalNs,
            TimeUnit.MILLISECONDS.toNanos(10), TimeUnit.HOURS.toNanos(1));
        if (retentionNs != 0)
        {
            ConfigurationException.checkRange("retentionNs", retentionNs, TimeUnit.SECONDS.toNanos(1),
                TimeUnit.DAYS.toNanos(30));
        }
        if (retentionEpochs != 0)
        {
            ConfigurationException.checkRange("retentionEpochs", retentionEpochs, 4, 1L << 40);
            if (retentionNs != 0)
            {
                throw new ConfigurationException("retentionNs and retentionEpochs are both set: the window is by " +
                    "time or by epochs, set one");
            }
        }
        if ((retentionNs != 0 || retentionEpochs != 0) && durability != Durability.DURABLE)
        {
            throw new ConfigurationException((retentionNs != 0 ? "retentionNs" : "retentionEpochs") + " needs " +
                "durability(DURABLE): a MEMORY standby keeps no history");
        }
        ConfigurationException.checkVmId(vmId);
        transport.checkCarries(vmId);
        if (pageSize < 512 || Integer.bitCount(pageSize) != 1 || pageSize > (1 << 30))
        {
            throw new ConfigurationException("pageSize = " + pageSize + " must be a power of two in [512, 2^30]");
        }
        ConfigurationException.checkRange("pageCount", pageCount, 1, (1L << 46) / pageSize);
        ConfigurationException.checkRange("generation", generation, 1, Long.MAX_VALUE);
        ConfigurationException.checkRange("maxFramePayload", maxFramePayload, 64 << 10, 16 << 20);
        ConfigurationException.checkRange("epochLogMemoryBytes", epochLogMemoryBytes, 1 << 20, 1 << 30);
        ConfigurationException.checkRange("epochLogs", epochLogs, 2, 8);
        ConfigurationException.checkRange("failureTimeoutNs", failureTimeoutNs, TimeUnit.MILLISECONDS.toNanos(10),
            TimeUnit.MINUTES.toNanos(10));
        ConfigurationException.checkSet("promotionListener", promotionListener);
        if (autoPromote && replicaTarget == null)
        {
            throw new ConfigurationException("autoPromote needs a replicaTarget to resume the guest on");
        }
        if (autoPromote && promotionArbiter == null && !unsafeAutoPromoteWithoutArbiter)
        {
            throw new ConfigurationException("autoPromote without a promotionArbiter can run the guest twice after a " +
                "partition; set a PromotionArbiter (e.g. FileArbiter on a shared directory) or, knowingly, " +
                "unsafeAutoPromoteWithoutArbiter(true)");
        }
        if (maxFramePayload < pageSize + FrameCodec.PAGES_HEADER + PageCodec.ENTRY_HEADER)
        {
            throw new ConfigurationException("maxFramePayload " + maxFramePayload + " cannot carry a page of " + pageSize);
        }
        if (disks.size() > Handshake.MAX_DISKS)
        {
            throw new ConfigurationException("at most " + Handshake.MAX_DISKS + " disks");
        }
        for (final Handshake.Disk disk : disks)
        {
            if (disk.id() < 0 || disk.id() > 1023 || disk.blockSize() < 512 || Integer.bitCount(disk.blockSize()) != 1 ||
                disk.sizeBytes() <= 0 || disk.sizeBytes() % disk.blockSize() != 0)
            {
                throw new ConfigurationException("disk " + disk + ": id must be in [0, 1023], block size a power of " +
                    "two >= 512, size a positive multiple of the block size");
            }
            if (disks.stream().filter(d -> d.id() == disk.id()).count() > 1)
            {
                throw new ConfigurationException("two disks share id " + disk.id());
            }
            if (disk.blockSize() > maxFramePayload - FrameCodec.DISK_WRITE_HEADER)
            {
                // the active sends whole blocks: a block no frame can carry would be refused at every write
                throw new ConfigurationException("maxFramePayload = " + maxFramePayload + " cannot carry one " +
                    disk.blockSize() + "-byte block of disk " + disk.id() + " in a DISK_WRITE frame; it must be at " +
                    "least " + (disk.blockSize() + FrameCodec.DISK_WRITE_HEADER));
            }
        }
        if (heldGuest != null)
        {
            checkHeldGuest();
        }
        if (countersDirectory == null)
        {
            countersDirectory = dev.tandem.core.metrics.CountersFile.defaultDirectory();
        }
        concluded = true;
        return this;
    }

    /**
     * A held checkpoint must be this guest's, of this geometry, and stopped: a running guest's memory is no
     * checkpoint of anything.
     */
    private void checkHeldGuest()
    {
        if (!vmId.equals(heldGuest.vmId()))
        {
            throw new ConfigurationException("heldCheckpoint is a guest of VM " + heldGuest.vmId() + " but this " +
                "standby is for VM " + vmId);
        }
        ConfigurationException.checkRange("heldCheckpoint epoch", heldEpoch, 1, Long.MAX_VALUE);
        if (heldGuest.memory().pageSize() != pageSize || heldGuest.memory().pageCount() != pageCount)
        {
            throw new ConfigurationException("heldCheckpoint's guest has " + heldGuest.memory().pageCount() +
                " pages of " + heldGuest.memory().pageSize() + " bytes but this standby is configured for " +
                pageCount + " of " + pageSize);
        }
        final List<Handshake.Disk> held = new ArrayList<>();
        for (final dev.tandem.vmm.VirtualDisk disk : heldGuest.disks())
        {
            held.add(new Handshake.Disk(disk.id(), disk.blockSize(), disk.sizeBytes()));
        }
        if (!held.equals(disks))
        {
            throw new ConfigurationException("heldCheckpoint's guest has disks " + held + " but this standby is " +
                "configured for " + disks);
        }
        if (!heldGuest.vcpus().isPaused())
        {
            throw new ConfigurationException("heldCheckpoint's guest of VM " + vmId + " is running: only a guest " +
                "stopped at its checkpoint (e.g. after a planned switchover) holds that checkpoint");
        }
    }
}
