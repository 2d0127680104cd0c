package dev.tandem.examples;

import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.active.ActiveListener;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.failover.FileArbiter;
import dev.tandem.core.failover.Promotion;
import dev.tandem.core.failover.ResumedCheckpoint;
import dev.tandem.core.failover.PromotionArbiter;
import dev.tandem.core.failover.PromotionListener;
import dev.tandem.core.metrics.ProtectionState;
import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.core.metrics.ReconnectStatus;
import dev.tandem.core.metrics.StageLatency;
import dev.tandem.core.policy.AdaptivePolicy;
import dev.tandem.core.policy.CheckpointPolicy;
import dev.tandem.core.policy.FixedPolicy;
import dev.tandem.core.standby.Durability;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.core.transport.TlsConfig;
import dev.tandem.core.transport.TlsTransport;
import dev.tandem.core.transport.Transport;
import dev.tandem.examples.bank.BankClient;
import dev.tandem.examples.bank.BankProgram;
import dev.tandem.examples.bank.BankState;
import dev.tandem.examples.bank.ClientPort;
import dev.tandem.vmm.StateDigest;
import dev.tandem.vmm.sim.SimulatedDisk;
import dev.tandem.vmm.sim.SimulatedReplicaTarget;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import dev.tandem.zookeeper.ZooKeeperArbiter;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;

/**
 * One host of a multi-process failover: {@code active} or {@code standby}, each its own JVM, talking TCP on
 * loopback and sharing only an arbiter directory, as two real hosts would. The active appends, per checkpoint, the
 * digest of the paused guest to a file; the standby, when it promotes, appends what it resumed from and the digest
 * of the guest it resumed, so a harness can check the two against each other after killing the active.
 * <p>
 * Each host also keeps its {@link #OWNERSHIP} record on the shared wall clock (see {@link OwnershipTimeline}): when
 * output left its guest, when the active saw its guest stopped, when the standby decided to promote and when the
 * promoted guest ran, from which the harness counts owners and tells a real takeover from a false one.
 * <pre>
 * FailoverNode standby --dir D --listen 127.0.0.1:7400 --arbiter A [--vm-id V --memory 16m --disk 1m --timeout-ms 200
 *                       --durability memory|durable --image-checkpoint-ms 30000
 *                       --retention-s S | --retention-epochs N]
 * FailoverNode active  --dir D --standby 127.0.0.1:7400 --arbiter A [--vm-id V --memory 16m --disk 1m --period-ms 5
 *                       --workload hotset --seed 1]
 * </pre>
 * {@code --zookeeper host:port} in place of {@code --arbiter A} makes both claim generations at ZooKeeper;
 * {@code --ownership-file NAME} names the ownership record in {@code D} (a host's second life keeps its own).
 * <p>
 * The harness talks to a node through its standard input, one command a line:
 * <pre>
 * switchover        (active) hand the guest over to the standby: {@link ActiveReplicator#switchover}
 * standby NAME      (active, after a switchover) become the standby of the guest's new host, holding the stopped
 *                   guest's checkpoint; NAME is the ownership record of this second life
 * protect HOST:PORT (promoted standby) protect the promoted guest onto a standby there, at the promoted generation
 * dump              (promoted standby) write the bank's state to {@link #DUMP}
 * stop              (client) start no new transfer, finish those in flight
 * </pre>
 * Both run until killed (the standby also exits after a promotion when its standard input closes). A DURABLE standby
 * started on a directory that holds a recovery image prints {@code RECOVERED epoch E digest D launch_ms T report R}
 * before its ready line.
 */
public final class FailoverNode
{
    /** File the active appends "epoch digest" lines to. */
    public static final String DIGESTS = "active-digests.txt";
    /** File the active appends "ack epoch" lines to. */
    public static final String ACKS = "active-acks.txt";
    /** File the standby writes its promotion to. */
    public static final String PROMOTION = "promotion.txt";
    /**
     * File the active rewrites every 250 ms with its status ("key value" lines: pause p99, stages, the baseline,
     * reconnects and resyncs, ...).
     */
    public static final String STATUS = "active-status.txt";
    /** File the standby rewrites every 250 ms with its stages ("stage_NAME_p50_ns value" lines) until it promotes. */
    public static final String STANDBY_STATUS = "standby-status.txt";
    /** File the standby writes the promoted bank's state to on "dump". */
    public static final String DUMP = "bank-dump.txt";
    /** File the client logs replies to. */
    public static final String CLIENT_LOG = "client-log.txt";
    /** File each host keeps its ownership record in (see {@link OwnershipTimeline}). */
    public static final String OWNERSHIP = "ownership.txt";
    /** File whose appearance arms the active's kill point. */
    public static final String KILL_TRIGGER = "kill-now";
    /** How long a planned switchover waits for its last checkpoint's ack, and then for the standby's answer. */
    public static final Duration SWITCHOVER_TIMEOUT = Duration.ofSeconds(10);
    /** Znode under which the ZooKeeper arbiter keeps each VM's generation. */
    public static final String ZOOKEEPER_ROOT = "/tandem/generations";
    /** The guest's VM identity unless {@code --vm-id} names another. */
    public static final String VM_ID_DEFAULT = "failover-vm";
    /**
     * In the {@code --tls-dir} directory: the file holding the password of its key and trust stores (the password
     * never goes on a command line).
     */
    public static final String TLS_PASSWORD_FILE = "password";
    /** Balance of every account at boot. */
    public static final long INITIAL_BALANCE = 1000;

    /** The replication link of this host, both ways: TLS with {@code --tls-dir}, else plaintext. */
    private static Transport transport;

    private FailoverNode()
    {
    }

    /**
     * {@code --tls-dir D}: mutual TLS with this host's key store {@code D/<name of --dir>.p12}, the trust store
     * {@code D/trust.p12} and their password in {@code D/}{@value #TLS_PASSWORD_FILE}; without it, plaintext TCP.
     */
    private static Transport transport(final Map<String, String> options, final Path dir, final String vmId)
        throws IOException
    {
        final String tlsDir = options.get("tls-dir");
        if (tlsDir == null)
        {
            return TcpTransport.plaintext();
        }
        final Path tls = Path.of(tlsDir);
        final char[] password = Files.readString(tls.resolve(TLS_PASSWORD_FILE)).strip().toCharArray();
        try
        {
            return new TlsTransport(new TlsConfig()
                .keyStore(tls.resolve(dir.getFileName() + ".p12"), password)
                .trustStore(tls.resolve("trust.p12"), password)
                .vmId(vmId));
        }
        finally
        {
            java.util.Arrays.fill(password, '\0');
        }
    }

    /**
     * @param args role and options, see the class comment.
     * @throws Exception on failure to start.
     */
    public static void main(final String[] args) throws Exception
    {
        if (args.length == 0)
        {
            throw new IllegalArgumentException("usage: FailoverNode active|standby --dir D ...");
        }
        final Map<String, String> options = CommandLine.parse(args, 1, Set.of("dir", "listen", "standby", "arbiter",
            "vm-id", "memory", "disk", "workload", "dirty-rate", "seed", "period-ms", "timeout-ms", "bank-accounts",
            "client-port", "digests", "kill-phase", "targets", "transfers", "accounts", "window", "duration-ms",
            "deadline-s", "policy", "zookeeper", "reply-timeout-ms", "ownership-file", "tls-dir", "durability",
            "image-checkpoint-ms", "retention-s", "retention-epochs"), Set.of());
        final Path dir = Path.of(required(options, "dir"));
        Files.createDirectories(dir);
        if ("client".equals(args[0]))
        {
            runClient(dir, options);
            return;
        }
        final int accounts = Integer.parseInt(options.getOrDefault("bank-accounts", "0"));
        final BankProgram bank = accounts > 0 ? new BankProgram(accounts, INITIAL_BALANCE) : null;
        final ClientPort clientPort = bank == null ? null :
            new ClientPort(Integer.parseInt(required(options, "client-port")));
        // every release of the guest's output is noted on its way to the client port
        final ReleaseRecorder recorder = new ReleaseRecorder(clientPort,
            dir.resolve(options.getOrDefault("ownership-file", OWNERSHIP)));
        final SimulatedVmm.Builder guest = SimulatedVmm.builder()
            .vmId(options.getOrDefault("vm-id", VM_ID_DEFAULT))
            .memoryBytes(CommandLine.size(options.getOrDefault("memory", "16m")))
            .workload(Workload.parse(options.getOrDefault("workload", "hotset")))
            .pagesPerMillisecond(Integer.parseInt(options.getOrDefault("dirty-rate", "50")))
            .seed(Long.parseLong(options.getOrDefault("seed", "1")))
            .disk(dir.resolve("guest-disk.img"), CommandLine.size(options.getOrDefault("disk", "1m")))
            // the bank's ledger owns the disk and its replies the NIC: the synthetic workload only dirties memory
            .diskEveryTicks(bank == null ? 2 : 0)
            .packetEveryTicks(bank == null ? 1 : 0)
            .program(bank)
            .packetSink(clientPort == null ? null : recorder);
        transport = transport(options, dir, guest.vmId());
        final PromotionArbiter arbiter = arbiter(options, args[0]);
        final Protection protection = new Protection(dir, arbiter, Long.parseLong(options.getOrDefault("period-ms",
            "5")), options.getOrDefault("policy", "fixed"), !"false".equals(options.get("digests")),
            options.get("kill-phase"), recorder, clientPort);
        final long timeoutMs = Long.parseLong(options.getOrDefault("timeout-ms", "200"));
        final Durability durability = Durability.valueOf(options.getOrDefault("durability", "memory")
            .toUpperCase(java.util.Locale.ROOT));
        final long imageCheckpointMs = Long.parseLong(options.getOrDefault("image-checkpoint-ms", "30000"));
        // a DURABLE standby's point-in-time window (see the restore command), by time or by epochs
        final Retention retention = new Retention(Long.parseLong(options.getOrDefault("retention-s", "0")),
            Long.parseLong(options.getOrDefault("retention-epochs", "0")));
        final boolean digests = !"false".equals(options.get("digests"));
        switch (args[0])
        {
            case "active" -> runActive(guest, required(options, "standby"), protection, (stopped, ownershipFile) ->
            {
                // the host's second life, in this process: a new NIC on the same port, a new ownership record, and
                // a standby that starts holding the stopped guest's checkpoint
                closeQuietly(clientPort);
                final ClientPort port = clientPort == null ? null : new ClientPort(clientPort.port());
                final ReleaseRecorder second = new ReleaseRecorder(port, dir.resolve(ownershipFile));
                runStandby(guest.copy().packetSink(port == null ? null : second), dir,
                    new StandbySettings("127.0.0.1:0", timeoutMs, Durability.MEMORY, imageCheckpointMs,
                    new Retention(0, 0)), arbiter,
                    port, bank, digests, second, new Protection(dir, arbiter, protection.periodMs,
                    protection.policy, digests, protection.killPhase, second, port), stopped);
            });
            case "standby" -> runStandby(guest, dir, new StandbySettings(required(options, "listen"), timeoutMs,
                durability, imageCheckpointMs, retention), arbiter, clientPort, bank, digests, recorder, protection,
                null);
            default -> throw new IllegalArgumentException("role must be active or standby, not '" + args[0] + "'");
        }
    }

    /**
     * The arbiter both hosts claim generations at: {@code --arbiter DIR} for the shared-directory file arbiter, or
     * {@code --zookeeper host:port}.
     */
    private static PromotionArbiter arbiter(final Map<String, String> options, final String role)
    {
        if (options.containsKey("zookeeper"))
        {
            // a session outlives a stalled checkpoint on a busy host; one call may retry for two seconds before the
            // node treats the arbiter as unreachable (the standby then retries, never promoting blind)
            return new ZooKeeperArbiter(options.get("zookeeper"), ZOOKEEPER_ROOT, Duration.ofSeconds(10),
                Duration.ofSeconds(2));
        }
        return new FileArbiter(Path.of(required(options, "arbiter")), role + "@" + ProcessHandle.current().pid());
    }

    /**
     * The old active's host becomes a standby of the guest's new host, in this process (see "standby NAME").
     */
    @FunctionalInterface
    private interface SecondLife
    {
        /**
         * Runs the standby until the harness ends the process.
         *
         * @param stopped       the guest stopped at the switchover's checkpoint.
         * @param ownershipFile the second life's ownership record, in the node's directory.
         */
        void standby(HeldCheckpoint stopped, String ownershipFile) throws IOException, InterruptedException;
    }

    /**
     * The stopped guest of a completed switchover and the checkpoint it holds.
     */
    private record HeldCheckpoint(SimulatedVmm guest, ActiveReplicator.Switchover switchover)
    {
    }

    private static void runActive(final SimulatedVmm.Builder guest, final String standby,
        final Protection protection, final SecondLife secondLife) throws IOException, InterruptedException
    {
        final SimulatedVmm vmm = guest.build().start();
        final ActiveSide active = protection.protect(vmm, standby, 0, null);
        System.out.println("ACTIVE READY pid " + ProcessHandle.current().pid() +
            (protection.clientPort == null ? "" : " client-port " + protection.clientPort.port()));
        final java.io.BufferedReader commands = new java.io.BufferedReader(
            new java.io.InputStreamReader(System.in, StandardCharsets.UTF_8));
        String command;
        while ((command = commands.readLine()) != null)
        {
            final String[] words = command.trim().split(" +");
            if ("switchover".equals(words[0]))
            {
                active.switchover();
            }
            else if ("standby".equals(words[0]) && words.length == 2)
            {
                final ActiveReplicator.Switchover done = active.switchedOver;
                if (done == null)
                {
                    System.out.println("STANDBY REFUSED: no switchover completed here; the guest is not stopped at " +
                        "a checkpoint");
                    continue;
                }
                // the replicator lets go of the stopped guest first: the standby reads it, nobody runs it
                active.replicator.close();
                secondLife.standby(new HeldCheckpoint(vmm, done), words[1]);
            }
        }
        // no more commands: run on until killed, as an active does
        new CountDownLatch(1).await();
    }

    /**
     * What it takes to protect a guest from this node: the settings of the command line and the node's ownership
     * record and client port. The first active uses it at start; a promoted standby, asked to, protects the guest
     * it resumed onto a new standby with the same (the failback: the same machinery, in reverse).
     */
    private static final class Protection
    {
        private final Path dir;
        private final PromotionArbiter arbiter;
        private final long periodMs;
        private final String policy;
        private final boolean digestEachEpoch;
        private final String killPhase;
        private final ReleaseRecorder recorder;
        private final ClientPort clientPort;

        Protection(final Path dir, final PromotionArbiter arbiter, final long periodMs, final String policy,
            final boolean digestEachEpoch, final String killPhase, final ReleaseRecorder recorder,
            final ClientPort clientPort)
        {
            this.dir = dir;
            this.arbiter = arbiter;
            this.periodMs = periodMs;
            this.policy = policy;
            this.digestEachEpoch = digestEachEpoch;
            this.killPhase = killPhase;
            this.recorder = recorder;
            this.clientPort = clientPort;
        }

        /**
         * Launches an active for a running guest and starts writing its {@link #STATUS} every 250 ms.
         *
         * @param vmm        the running guest.
         * @param standby    the standby's replication endpoint.
         * @param generation the generation this side serves: 0 on a first start, the promoted one after a promotion
         *                   (the arbiter holds it; anything lower is fenced at launch).
         * @param resumedFrom the checkpoint a promoted guest resumed from (a standby that holds it gets only what
         *                   changed since), null for the first active.
         * @return the protected guest.
         * @throws IOException if the standby cannot be reached or refuses the handshake.
         */
        ActiveSide protect(final SimulatedVmm vmm, final String standby, final long generation,
            final ResumedCheckpoint resumedFrom) throws IOException
        {
            final long periodNs = Duration.ofMillis(periodMs).toNanos();
            final CheckpointPolicy checkpointPolicy = switch (policy)
            {
                case "fixed" -> new FixedPolicy(periodNs);
                // pause and output-hold targets a bank's clients would notice: 2 ms and 100 ms
                case "adaptive" -> new AdaptivePolicy(Duration.ofMillis(2).toNanos(),
                    Duration.ofMillis(100).toNanos(), periodNs, Duration.ofMillis(2).toNanos(),
                    Duration.ofMillis(100).toNanos());
                default -> throw new IllegalArgumentException("--policy must be fixed or adaptive, not '" + policy +
                    "'");
            };
            final KillPoint killPoint = new KillPoint(killPhase, dir.resolve(KILL_TRIGGER), recorder);
            final PrintStream digests = new PrintStream(Files.newOutputStream(dir.resolve(DIGESTS),
                StandardOpenOption.CREATE, StandardOpenOption.APPEND), true, StandardCharsets.UTF_8);
            final PrintStream acks = new PrintStream(Files.newOutputStream(dir.resolve(ACKS),
                StandardOpenOption.CREATE, StandardOpenOption.APPEND), true, StandardCharsets.UTF_8);
            final BaselineBytes baselineBytes = new BaselineBytes();
            final ActiveReplicator active = ActiveReplicator.launch(new ActiveContext()
                .adapter(vmm)
                .transport(transport)
                .standbyEndpoint(standby)
                .checkpointPeriodNs(periodNs)
                .checkpointPolicy(checkpointPolicy)
                .promotionArbiter(arbiter)
                .generation(generation)
                .resumedFrom(resumedFrom)
                // verification only: the digest of the paused guest lengthens every pause
                .checkpointObserver(digestEachEpoch ?
                    (epoch, adapter) -> digests.println(epoch + " " + StateDigest.of(adapter)) : null)
                .listener(new ActiveListener()
                {
                    @Override
                    public void onAck(final long epoch, final long commitLatencyNs)
                    {
                        acks.println("ack " + epoch);
                    }

                    @Override
                    public void onDeltaSending(final long epoch)
                    {
                        killPoint.reached(KillPoint.DELTA_SEND);
                    }

                    @Override
                    public void onDeltaSent(final long epoch)
                    {
                        baselineBytes.epochSent();
                        killPoint.reached(KillPoint.EPOCH_END);
                    }
                }));
            baselineBytes.replicator = active;
            if (clientPort != null)
            {
                clientPort.serve(vmm);
            }
            watchForStop(active, recorder, clientPort);
            final ActiveSide side = new ActiveSide(active, baselineBytes, dir.resolve(STATUS));
            final Thread writer = new Thread(side::writeStatusLoop, "active-status-writer");
            writer.setDaemon(true);
            writer.start();
            return side;
        }
    }

    /**
     * A guest this node protects: its replicator, the {@link #STATUS} file it rewrites, and a planned
     * switchover's outcome, which that file carries from then on.
     */
    private static final class ActiveSide
    {
        private final ActiveReplicator replicator;
        private final BaselineBytes baselineBytes;
        private final Path statusFile;
        private volatile String switchoverLines = "";
        /** The completed switchover, null until then. */
        private volatile ActiveReplicator.Switchover switchedOver;

        ActiveSide(final ActiveReplicator replicator, final BaselineBytes baselineBytes, final Path statusFile)
        {
            this.replicator = replicator;
            this.baselineBytes = baselineBytes;
            this.statusFile = statusFile;
        }

        /**
         * Hands the guest over to the standby and notes the outcome in the status file at once: {@code
         * switchover_epoch}, {@code switchover_generation} and {@code switchover_stop_ns}, or {@code
         * switchover_failed} and why.
         */
        void switchover() throws InterruptedException
        {
            try
            {
                final ActiveReplicator.Switchover done = replicator.switchover(SWITCHOVER_TIMEOUT);
                switchedOver = done;
                switchoverLines = "switchover_epoch " + done.epoch() + "\nswitchover_generation " +
                    done.generation() + "\nswitchover_stop_ns " + done.stopNs() + "\n";
                System.out.printf(java.util.Locale.ROOT, "SWITCHED OVER at epoch %d to generation %d: guest " +
                    "stopped %.1f ms until the standby owned it%n", done.epoch(), done.generation(),
                    done.stopNs() / 1e6);
            }
            catch (final IllegalStateException ex)
            {
                // one line: the status file is "key value" lines, and the reason is prose
                switchoverLines = "switchover_failed " + ex.getMessage().replace('\n', ' ') + "\n";
                System.out.println("SWITCHOVER FAILED: " + ex.getMessage());
            }
            writeStatus();
        }

        private void writeStatusLoop()
        {
            while (true)
            {
                java.util.concurrent.locks.LockSupport.parkNanos(250_000_000L);
                writeStatus();
                System.out.println(replicator.status().progressLine());
            }
        }

        private synchronized void writeStatus()
        {
            final ProtectionStatus status = replicator.status();
            write(statusFile, "pause_p99_us " + status.pauseP99Ns() / 1000 + "\ncheckpoints " +
                status.checkpoints() + "\nraw_bytes " + status.pageBytesRaw() + "\nwire_bytes " + status.bytesSent() +
                "\npolicy " + status.policy() + "\nperiod_ns " + status.periodNs() + "\noutput_hold_p99_ns " +
                status.outputHoldP99Ns() + "\noutput_hold_p50_ns " + status.outputHoldP50Ns() +
                "\noutput_hold_window_p50_ns " + status.outputHoldWindowP50Ns() + "\noutput_hold_window_p99_ns " +
                status.outputHoldWindowP99Ns() + "\ncommit_p50_ns " +
                status.commitP50Ns() + "\ncommit_p99_ns " + status.commitP99Ns() + "\nbaseline_commit_ns " +
                status.baselineCommitNs() + "\nbaseline_pause_ns " + status.baseline().longestPauseNs() +
                "\nbaseline_elapsed_ns " + status.baseline().elapsedNs() + "\nbaseline_round " +
                status.baseline().round() + "\nbaseline_pages_copied " + status.baseline().pagesCopied() +
                "\nbaseline_pages_left " + status.baseline().pagesLeft() + "\nbaseline_disk_sent " +
                status.baseline().diskBytesSent() + "\nbaseline_disk_bytes " + status.baseline().diskBytes() + "\n" +
                "state " + status.state() + "\n" + baselineBytes.line() + reconnectLines(status.reconnect()) +
                stageLines(status.stages()) + switchoverLines + "written_us " + OwnershipTimeline.wallMicros() + "\n");
        }
    }

    /**
     * Notes the instant the active's guest is stopped because another side owns it, and then takes the guest's NIC
     * off this host (closes the client port): the guest runs elsewhere now, and a client still connected here must
     * see its connection end, as when a host dies, not wait for replies that will never come (after a planned
     * switchover nothing else would end it). Polled every 2 ms: cheap ({@code isGuestStopped()} is a volatile read)
     * and fine enough beside the harness's millisecond figures; the synchronized {@code status()} is asked only
     * every 50 ms, not to contend with the checkpoint path.
     */
    private static void watchForStop(final ActiveReplicator active, final ReleaseRecorder recorder,
        final ClientPort clientPort)
    {
        final Thread watcher = new Thread(() ->
        {
            for (long round = 0; ; round++)
            {
                final boolean stopped = active.isGuestStopped();
                if (stopped || round % 25 == 0 && active.status().state() == ProtectionState.FENCED)
                {
                    recorder.mark("stopped", OwnershipTimeline.wallMicros(), stopped ? "guest-stopped" : "fenced");
                    closeQuietly(clientPort);
                    return;
                }
                java.util.concurrent.locks.LockSupport.parkNanos(2_000_000);
            }
        }, "fence-watcher");
        watcher.setDaemon(true);
        watcher.start();
    }

    /**
     * Rewrites the standby's stages every 250 ms, for the harness's report: the standby lives on after the active's
     * fault, but its stages only move while an active sends, so the file holds the steady state up to the fault.
     */
    private static void watchStandbyStages(final StandbyReplica standby, final Path file)
    {
        final Thread watcher = new Thread(() ->
        {
            while (true)
            {
                write(file, stageLines(standby.status().stages()) + "written_us " + OwnershipTimeline.wallMicros() +
                    "\n");
                java.util.concurrent.locks.LockSupport.parkNanos(250_000_000L);
            }
        }, "standby-status-writer");
        watcher.setDaemon(true);
        watcher.start();
    }

    /**
     * A standby's own settings from the command line.
     *
     * @param listen            its replication endpoint.
     * @param timeoutMs         its failure timeout.
     * @param durability        where its recovery image lives.
     * @param imageCheckpointMs in DURABLE mode, the longest time between image checkpoints.
     * @param retention         in DURABLE mode, the point-in-time window.
     */
    private record StandbySettings(String listen, long timeoutMs, Durability durability, long imageCheckpointMs,
        Retention retention)
    {
    }

    /**
     * A DURABLE standby's point-in-time window: by time or by epochs, 0 for none.
     *
     * @param seconds how long back.
     * @param epochs  how many epochs back.
     */
    private record Retention(long seconds, long epochs)
    {
    }

    private static void runStandby(final SimulatedVmm.Builder guest, final Path dir, final StandbySettings settings,
        final PromotionArbiter arbiter, final ClientPort clientPort, final BankProgram bank,
        final boolean digest, final ReleaseRecorder recorder, final Protection protection, final HeldCheckpoint held)
        throws IOException, InterruptedException
    {
        final SimulatedVmm[] running = new SimulatedVmm[1];
        final long[] promotedGeneration = new long[1];
        final ResumedCheckpoint[] resumedFrom = new ResumedCheckpoint[1];
        final SimulatedVmm.Builder template = guest.copy().diskPath(dir.resolve("promoted-disk.img"));
        final CountDownLatch promotedLatch = new CountDownLatch(1);
        final long launchStartNs = System.nanoTime();
        final StandbyReplica standby = StandbyReplica.launch(new StandbyContext()
            .transport(transport)
            .listenEndpoint(settings.listen())
            .directory(dir.resolve("replica"))
            .durability(settings.durability())
            .imageCheckpointIntervalNs(Duration.ofMillis(settings.imageCheckpointMs()).toNanos())
            .retentionNs(Duration.ofSeconds(settings.retention().seconds()).toNanos())
            .retentionEpochs(settings.retention().epochs())
            .vmId(guest.vmId())
            .memory(SimulatedVmm.PAGE_SIZE, guest.memoryBytes() / SimulatedVmm.PAGE_SIZE)
            .disk(0, SimulatedDisk.BLOCK_SIZE, guest.diskBytes())
            .failureTimeoutNs(Duration.ofMillis(settings.timeoutMs()).toNanos())
            .autoPromote(true)
            .promotionArbiter(arbiter)
            .replicaTarget(new SimulatedReplicaTarget(template, false))
            // after a switchover, the old active's stopped guest is the checkpoint the new active resumed from
            .heldCheckpoint(held == null ? null : held.guest(), held == null ? 0 : held.switchover().epoch(),
                held == null ? 0 : held.switchover().fingerprint())
            .promotionListener(new PromotionListener()
            {
                @Override
                public void onPromoted(final Promotion promotion)
                {
                    // the library times its promotion on its monotonic clock, ending just before this call: moved
                    // onto the shared wall clock, its start is the instant the standby decided to promote
                    final long decidedUs = OwnershipTimeline.wallMicros() - promotion.promotionNs() / 1000;
                    final SimulatedVmm resumed = (SimulatedVmm)promotion.guest();
                    // verification only: reading the whole guest delays its first reply
                    final long digestValue = digest ? StateDigest.of(resumed) : 0;
                    resumed.start();
                    final long resumedUs = OwnershipTimeline.wallMicros();
                    recorder.mark("decided", decidedUs, "");
                    recorder.mark("resumed", resumedUs, "");
                    running[0] = resumed;
                    promotedGeneration[0] = promotion.generation();
                    resumedFrom[0] = promotion.resumedFrom();
                    if (clientPort != null)
                    {
                        clientPort.serve(resumed);
                    }
                    write(dir.resolve(PROMOTION), "epoch " + promotion.recoveryEpoch() + "\ngeneration " +
                        promotion.generation() + "\ndigest " + digestValue + "\ndetection_ns " +
                        promotion.detectionNs() + "\npromotion_ns " + promotion.promotionNs() + "\ndecided_us " +
                        decidedUs + "\nresumed_us " + resumedUs + "\nreason " + promotion.reason() + "\n");
                    System.out.println("PROMOTED from epoch " + promotion.recoveryEpoch());
                    promotedLatch.countDown();
                }

                @Override
                public void onPromotionRefused(final String reason)
                {
                    write(dir.resolve(PROMOTION), "refused " + reason + "\n");
                    promotedLatch.countDown();
                }
            }));
        if (held != null)
        {
            // the standby holds a copy: the stopped guest is not needed any more
            held.guest().close();
        }
        if (standby.lastCommittedEpoch() > 0)
        {
            // a DURABLE standby restarted on its directory: what it recovered, for the harness to check against the
            // active's digest of that epoch
            final long[] point = standby.inspect(recovered -> new long[] {recovered.epoch(),
                StateDigest.of(recovered)});
            System.out.println("RECOVERED epoch " + point[0] + " digest " + point[1] + " launch_ms " +
                (System.nanoTime() - launchStartNs) / 1_000_000 + " report " + standby.recoveryReport());
        }
        watchStandbyStages(standby, dir.resolve(STANDBY_STATUS));
        System.out.println("STANDBY READY on " + standby.endpoint() +
            (clientPort == null ? "" : " client-port " + clientPort.port()));
        promotedLatch.await();
        // run the promoted guest until the harness closes our input; "dump" writes the bank's state, "protect"
        // makes this side the active of a new standby
        final java.io.BufferedReader commands = new java.io.BufferedReader(
            new java.io.InputStreamReader(System.in, StandardCharsets.UTF_8));
        String command;
        ActiveSide active = null;
        while ((command = commands.readLine()) != null)
        {
            final String[] words = command.trim().split(" +");
            if ("dump".equals(words[0]) && running[0] != null && bank != null)
            {
                if (active != null)
                {
                    // its replicator's scheduler pauses and resumes a protected guest: a pause behind its back
                    // would race it; the harness dumps only the last owner, which protects nothing
                    System.out.println("DUMP REFUSED: the guest is protected from here");
                    continue;
                }
                running[0].pause();
                write(dir.resolve(DUMP), BankState.read(running[0], bank).toText());
                running[0].resume();
                System.out.println("DUMPED");
            }
            else if ("protect".equals(words[0]) && words.length == 2 && running[0] != null && active == null)
            {
                try
                {
                    // a standby that holds the checkpoint the guest resumed from (the old active after a
                    // switchover) gets only what changed since; any other, a whole baseline
                    active = protection.protect(running[0], words[1], promotedGeneration[0], resumedFrom[0]);
                    System.out.println("PROTECTING towards " + words[1] + " at generation " + promotedGeneration[0]);
                }
                catch (final IOException | RuntimeException ex)
                {
                    System.out.println("PROTECT FAILED: " + ex);
                }
            }
        }
        System.exit(0);
    }

    private static void runClient(final Path dir, final Map<String, String> options)
        throws IOException, InterruptedException
    {
        try (PrintStream log = new PrintStream(Files.newOutputStream(dir.resolve(CLIENT_LOG),
            StandardOpenOption.CREATE, StandardOpenOption.APPEND), true, StandardCharsets.UTF_8))
        {
            final BankClient client = new BankClient(required(options, "targets").split(","),
                Integer.parseInt(required(options, "transfers")), Integer.parseInt(required(options, "accounts")),
                Integer.parseInt(options.getOrDefault("window", "8")), Long.parseLong(options.getOrDefault("seed", "1")),
                log, Integer.parseInt(options.getOrDefault("reply-timeout-ms", "0")));
            // "stop" on standard input ends the transfers early: the harness knows only as it goes when its last
            // fault comes
            final Thread stopper = new Thread(() ->
            {
                final java.io.BufferedReader commands = new java.io.BufferedReader(
                    new java.io.InputStreamReader(System.in, StandardCharsets.UTF_8));
                try
                {
                    String command;
                    while ((command = commands.readLine()) != null)
                    {
                        if ("stop".equals(command.trim()))
                        {
                            client.stopIssuing();
                        }
                    }
                }
                catch (final IOException ex)
                {
                    // no more commands
                }
            }, "client-commands");
            stopper.setDaemon(true);
            stopper.start();
            final long now = System.currentTimeMillis();
            final long answered = client.run(now + Long.parseLong(options.getOrDefault("duration-ms", "3600000")),
                now + 1000L * Long.parseLong(options.getOrDefault("deadline-s", "120")));
            System.out.println("CLIENT answered " + answered);
        }
    }

    /**
     * @return the active's link to its standby as status lines ({@code reconnects}, {@code quick_resyncs},
     *         {@code resync_bytes}, {@code last_resync_bytes}, {@code last_resync_pages}, {@code unprotected_ns},
     *         {@code reconnecting}, {@code reconnect_attempts}, {@code reconnect_window_left_ns}, and
     *         {@code last_resync} once a reconnect happened); none if the library reported nothing.
     */
    static String reconnectLines(final ReconnectStatus reconnect)
    {
        if (reconnect == null)
        {
            return "";
        }
        return "reconnects " + reconnect.reconnects() + "\nquick_resyncs " + reconnect.quickResyncs() +
            "\nresync_bytes " + reconnect.resyncBytes() + "\nlast_resync_bytes " + reconnect.lastResyncBytes() +
            "\nlast_resync_pages " + reconnect.lastResyncPages() + "\nunprotected_ns " + reconnect.unprotectedNs() +
            "\nreconnecting " + reconnect.reconnecting() + "\nreconnect_attempts " + reconnect.attempts() +
            "\nreconnect_window_left_ns " + reconnect.windowLeftNs() + "\n" +
            // one line: the status file is "key value" lines, and the reason is prose
            (reconnect.lastResync() == null ? "" : "last_resync " + reconnect.lastResync().replace('\n', ' ') + "\n");
    }

    /**
     * @return per stage, {@code stage_NAME_p50_ns} and {@code stage_NAME_p99_ns} since the baseline (the library
     *         keeps each session's baseline out of the stages), then {@code stage_NAME_window_p50_ns} and
     *         {@code _window_p99_ns} of the library's sliding window (0 when it is empty).
     */
    static String stageLines(final List<StageLatency> stages)
    {
        final StringBuilder lines = new StringBuilder();
        for (final StageLatency stage : stages)
        {
            lines.append("stage_").append(stage.stage()).append("_p50_ns ").append(stage.p50Ns()).append('\n')
                .append("stage_").append(stage.stage()).append("_p99_ns ").append(stage.p99Ns()).append('\n')
                .append("stage_").append(stage.stage()).append("_window_p50_ns ").append(stage.windowP50Ns())
                .append('\n')
                .append("stage_").append(stage.stage()).append("_window_p99_ns ").append(stage.windowP99Ns())
                .append('\n');
        }
        return lines.toString();
    }

    private static void write(final Path file, final String text)
    {
        try
        {
            final Path temporary = file.resolveSibling(file.getFileName() + ".tmp");
            Files.writeString(temporary, text, StandardCharsets.UTF_8);
            Files.move(temporary, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
    }

    private static void closeQuietly(final ClientPort port)
    {
        if (port == null)
        {
            return;
        }
        try
        {
            port.close();
        }
        catch (final IOException ex)
        {
            // the port is going away either way
        }
    }

    private static String required(final Map<String, String> options, final String name)
    {
        final String value = options.get(name);
        if (value == null)
        {
            throw new IllegalArgumentException("--" + name + " is required");
        }
        return value;
    }

    /**
     * The bytes on the wire of the whole first copy: from the launch to the end of the baseline epoch, counted the
     * way the library counts a reconnect's resync (from its session's start to the end of its first epoch), so the
     * two compare. Taken once, on the sender's thread as the baseline's end goes out; later epochs are not in it.
     */
    static final class BaselineBytes
    {
        /** Set once the launch returned; an epoch end before that (none in practice) leaves the figure unknown. */
        volatile ActiveReplicator replicator;
        private volatile boolean taken;
        private volatile long bytes = -1;

        void epochSent()
        {
            if (taken)
            {
                return;
            }
            taken = true;
            final ActiveReplicator active = replicator;
            if (active != null)
            {
                bytes = active.status().bytesSent();
            }
        }

        /**
         * @return {@code baseline_bytes N}, or nothing while unknown.
         */
        String line()
        {
            final long value = bytes;
            return value < 0 ? "" : "baseline_bytes " + value + "\n";
        }
    }

    /**
     * Dies on purpose at a chosen point of the checkpoint cycle once armed (by the harness creating a file):
     * {@code Runtime.halt}, which like SIGKILL runs no shutdown hook and leaves the kernel to close the sockets.
     */
    static final class KillPoint
    {
        static final String DELTA_SEND = "delta-send";
        static final String EPOCH_END = "epoch-end";

        private final String phase;
        private final ReleaseRecorder recorder;
        private volatile boolean armed;

        KillPoint(final String phase, final Path trigger, final ReleaseRecorder recorder)
        {
            this.phase = phase;
            this.recorder = recorder;
            if (phase != null)
            {
                if (!DELTA_SEND.equals(phase) && !EPOCH_END.equals(phase))
                {
                    throw new IllegalArgumentException("--kill-phase must be " + DELTA_SEND + " or " + EPOCH_END +
                        ", not '" + phase + "'");
                }
                final Thread watcher = new Thread(() ->
                {
                    while (!Files.exists(trigger))
                    {
                        java.util.concurrent.locks.LockSupport.parkNanos(200_000);
                    }
                    armed = true;
                }, "kill-point-watcher");
                watcher.setDaemon(true);
                watcher.start();
            }
        }

        void reached(final String where)
        {
            if (armed && where.equals(phase))
            {
                // the harness measures detection from this instant: only the active knows when it reached the point
                recorder.mark("killed", OwnershipTimeline.wallMicros(), where);
                System.out.println("KILL POINT " + where);
                System.out.flush();
                Runtime.getRuntime().halt(137);
            }
        }
    }
}
