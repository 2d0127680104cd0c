package dev.tandem.examples;

import dev.tandem.core.transport.LoopbackRelay;

import dev.tandem.examples.bank.BankProgram;
import dev.tandem.examples.bank.BankState;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.apache.curator.test.TestingServer;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The failover story on loopback, with real processes: a standby JVM, an active JVM running the bank guest, and a
 * client JVM sending transfers through the guest's virtual NIC. The fault is either a kill of the active (SIGKILL,
 * or a halt at a chosen point of its cycle) or, with {@link Options#partitionAfterMs()}, a network partition: the
 * active reaches the standby through a {@link LoopbackRelay} that black-holes both directions at that moment while
 * both processes live on. The standby promotes; the client moves to the promoted guest and finishes. Then everything
 * is checked: the total of balances is unchanged, every transfer the client saw answered is in the promoted guest's
 * balances and ledger with the outcome the client saw, the promoted guest equals the active at the recovery
 * checkpoint, that checkpoint is at or after the last one the active saw acknowledged, the standby promoted only
 * after the fault (else it is a false takeover), and at most one side owned the guest at any instant
 * ({@code owners_max}, from the nodes' {@link OwnershipTimeline} records). After a partition the old active must
 * also have stopped its guest (fenced) within {@value #OLD_ACTIVE_STOP_BOUND_MS} ms of the promotion.
 * <p>
 * A kill run may first drop the link ({@link Options#linkDrop()}): the relay resets every connection and refuses new
 * ones for a while shorter than the standby's failure timeout, so the active reconnects and resyncs instead of the
 * standby promoting; the kill comes after that. Such a run also fails if the active's last status before the kill
 * counts no reconnect.
 * <p>
 * Two handovers: with {@link Options#switchoverAtMs()} the harness asks the active for a planned switchover (through
 * its standard input) instead of killing it; with {@link Options#failback()} it kills it as usual. Either way the
 * old active's host then restarts as a fresh standby on its own directory (and on its client port, where the
 * client looks for the guest again), the promoted node protects its guest onto it at the promoted generation (the
 * same machinery in reverse, a full baseline), and {@value #REPROTECTED_RUN_MS} ms after that baseline's ack the
 * promoted node is killed. Each handover is checked as a failover is (after the right fault, from a checkpoint at or
 * after the last ack, digest-equal); a switchover also must be the planned promotion, from the very checkpoint the
 * active paused at, with the old copy stopped. The bank is checked once, in the last owner, for the whole run, and
 * {@code owners_max} over all three lives.
 * <p>
 * Every instant is wall-clock microseconds ({@link OwnershipTimeline#wallMicros()}): the nodes run on one machine,
 * so their records and the harness's own fault instant share one clock, and the four times add up exactly.
 */
public final class FailoverHarness
{
    /** How long after the standby's decision to promote the old active may take to stop its guest. */
    public static final long OLD_ACTIVE_STOP_BOUND_MS = 10_000;
    /**
     * Silence after which the client gives up on the first address in the partition scenario: a partitioned
     * active neither answers nor closes. Long beside any output hold (a period plus an ack), short beside a run.
     */
    static final int CLIENT_REPLY_TIMEOUT_MS = 1000;
    /**
     * How long the new active runs protected by the old host's restarted standby before it is killed (switchover and
     * failback runs): a hundred checkpoints at a 10 ms period, and transfers answered under protection again.
     */
    public static final long REPROTECTED_RUN_MS = 1000;
    /** The ownership record of the restarted standby on the old active's host: its first life's record stays. */
    static final String RESTARTED_OWNERSHIP = "ownership-restarted.txt";
    /** The restarted standby's role in the run directory: its output goes to {@code active-restarted.out}. */
    private static final String RESTARTED_ROLE = "active-restarted";

    /**
     * Harness settings.
     *
     * @param memoryBytes      guest memory.
     * @param workload         background workload of the guest.
     * @param periodMs         checkpoint period.
     * @param killAfterMs      when to kill the active after the client started; negative picks one from the seed
     *                         (1.5 to 3.5 s after the client started, or after the link drop's end). Unused in the
     *                         partition scenario.
     * @param seed             seed of the workload, the transfers and the kill moment.
     * @param transfers        the most transfers the client makes, at most what the guest's ledger holds (see
     *                         {@link #ledgerDiskBytes}); it stops starting new ones two seconds after the last
     *                         fault.
     * @param accounts         accounts of the bank.
     * @param digests          record the active's digest at every checkpoint (adds a full read of the guest to each
     *                         pause) and compare the promoted guest with it.
     * @param killPhase        where in the cycle the active dies: {@code mid-epoch} (SIGKILL at a moment),
     *                         {@code delta-send} (right after barrier N went out, pages of N in flight) or
     *                         {@code epoch-end} (right after the end of N went out, before its ack: the standby
     *                         commits and applies N with the active already gone). Must be {@code mid-epoch} in the
     *                         partition scenario.
     * @param policy           the active's checkpoint policy: {@code fixed} or {@code adaptive}.
     * @param partitionAfterMs when to partition the active from the standby after the client started, instead of
     *                         killing it; negative for the kill scenario.
     * @param arbiter          {@code file} (a shared directory) or {@code zookeeper}.
     * @param failureTimeoutMs the standby's failure timeout: the silence of the active after which it promotes.
     * @param linkDrop         a link drop before the kill, or null for none. Not with a partition.
     * @param switchoverAtMs   when to ask the active for a planned switchover after the client started, negative for
     *                         none. The old active's host then restarts as the new active's standby, and the new
     *                         active is killed {@value #REPROTECTED_RUN_MS} ms after that standby's baseline was
     *                         acknowledged. Not with a partition, a link drop, a {@code killAfterMs} or a failback.
     * @param failback         after the kill, restart the killed host as a fresh standby, have the promoted side
     *                         protect the guest onto it, and kill the promoted side {@value #REPROTECTED_RUN_MS} ms
     *                         after that standby's baseline was acknowledged: two failovers. Not with a partition.
     * @param plaintext        replicate over plaintext TCP instead of TLS (for comparison): by default the run makes
     *                         a throwaway CA and a certificate for each host in its directory and replicates over
     *                         mutual TLS 1.3.
     * @param durable          the standby keeps a DURABLE recovery image in files (each ack waits for its epoch's
     *                         journal fsync), instead of MEMORY.
     * @param killStandbyAfterMs when to SIGKILL the standby process after the client started, negative for never:
     *                         it restarts on its directory and ports, the active reconnects, and the run goes on to
     *                         the active's kill. Only in a kill run without a link drop, before the kill.
     */
    public record Options(long memoryBytes, Workload workload, long periodMs, long killAfterMs, long seed,
        int transfers, int accounts, boolean digests, String killPhase, String policy, long partitionAfterMs,
        String arbiter, long failureTimeoutMs, LinkDrop linkDrop, long switchoverAtMs, boolean failback,
        boolean plaintext, boolean durable, long killStandbyAfterMs)
    {
        /** {@link #transport()} of a run over TLS. */
        public static final String TLS = "tls";
        /** {@link #transport()} of a run over plaintext TCP. */
        public static final String PLAINTEXT = "plaintext";

        /**
         * Settings of a run over TLS (the default link).
         *
         * @param memoryBytes      guest memory.
         * @param workload         background workload of the guest.
         * @param periodMs         checkpoint period.
         * @param killAfterMs      when to kill the active after the client started; negative picks one from the
         *                         seed.
         * @param seed             seed of the workload, the transfers and the kill moment.
         * @param transfers        the most transfers the client makes.
         * @param accounts         accounts of the bank.
         * @param digests          digest the guest at every checkpoint and compare the promoted guest with it.
         * @param killPhase        where in the cycle the active dies.
         * @param policy           the active's checkpoint policy.
         * @param partitionAfterMs when to partition instead of killing; negative for the kill scenario.
         * @param arbiter          {@code file} or {@code zookeeper}.
         * @param failureTimeoutMs the standby's failure timeout.
         * @param linkDrop         a link drop before the kill, or null for none.
         * @param switchoverAtMs   when to ask for a planned switchover, negative for none.
         * @param failback         restart the killed host as a standby and fail over a second time.
         */
        public Options(final long memoryBytes, final Workload workload, final long periodMs, final long killAfterMs,
            final long seed, final int transfers, final int accounts, final boolean digests, final String killPhase,
            final String policy, final long partitionAfterMs, final String arbiter, final long failureTimeoutMs,
            final LinkDrop linkDrop, final long switchoverAtMs, final boolean failback)
        {
            this(memoryBytes, workload, periodMs, killAfterMs, seed, transfers, accounts, digests, killPhase, policy,
                partitionAfterMs, arbiter, failureTimeoutMs, linkDrop, switchoverAtMs, failback, false);
        }

        /**
         * Settings of a run whose standby keeps its image in memory and is never killed.
         *
         * @param memoryBytes      guest memory.
         * @param workload         background workload of the guest.
         * @param periodMs         checkpoint period.
         * @param killAfterMs      when to kill the active after the client started; negative picks one from the
         *                         seed.
         * @param seed             seed of the workload, the transfers and the kill moment.
         * @param transfers        the most transfers the client makes.
         * @param accounts         accounts of the bank.
         * @param digests          digest the guest at every checkpoint and compare the promoted guest with it.
         * @param killPhase        where in the cycle the active dies.
         * @param policy           the active's checkpoint policy.
         * @param partitionAfterMs when to partition instead of killing; negative for the kill scenario.
         * @param arbiter          {@code file} or {@code zookeeper}.
         * @param failureTimeoutMs the standby's failure timeout.
         * @param linkDrop         a link drop before the kill, or null for none.
         * @param switchoverAtMs   when to ask for a planned switchover, negative for none.
         * @param failback         restart the killed host as a standby and fail over a second time.
         * @param plaintext        replicate over plaintext TCP instead of TLS.
         */
        public Options(final long memoryBytes, final Workload workload, final long periodMs, final long killAfterMs,
            final long seed, final int transfers, final int accounts, final boolean digests, final String killPhase,
            final String policy, final long partitionAfterMs, final String arbiter, final long failureTimeoutMs,
            final LinkDrop linkDrop, final long switchoverAtMs, final boolean failback, final boolean plaintext)
        {
            this(memoryBytes, workload, periodMs, killAfterMs, seed, transfers, accounts, digests, killPhase, policy,
                partitionAfterMs, arbiter, failureTimeoutMs, linkDrop, switchoverAtMs, failback, plaintext, false, -1);
        }

        /**
         * @return {@code "durable"} or {@code "memory"}: where the standby keeps its recovery image.
         */
        public String durability()
        {
            return durable ? "durable" : "memory";
        }

        /**
         * @return true if the run kills and restarts the standby process before the active's kill.
         */
        public boolean killsStandby()
        {
            return killStandbyAfterMs >= 0;
        }

        /**
         * @return {@value #TLS} or {@value #PLAINTEXT}: what the replication link runs over.
         */
        public String transport()
        {
            return plaintext ? PLAINTEXT : TLS;
        }

        /** Kill by SIGKILL at a moment in the middle of an epoch. */
        public static final String MID_EPOCH = "mid-epoch";
        /** The shared-directory arbiter. */
        public static final String FILE_ARBITER = "file";
        /** The ZooKeeper arbiter. */
        public static final String ZOOKEEPER_ARBITER = "zookeeper";
        /** The standby's failure timeout unless asked otherwise: the library's default, 200 ms. */
        public static final long FAILURE_TIMEOUT_MS_DEFAULT = 200;
        /**
         * The shortest failure timeout the standby accepts from an active with the default 20 ms heartbeat: three
         * heartbeats.
         */
        public static final long FAILURE_TIMEOUT_MS_MIN = 60;
        /** The longest failure timeout the standby accepts: 10 minutes. */
        public static final long FAILURE_TIMEOUT_MS_MAX = 600_000;

        /**
         * Settings of a kill or partition run, with or without a link drop, and no second handover.
         *
         * @param memoryBytes      guest memory.
         * @param workload         background workload of the guest.
         * @param periodMs         checkpoint period.
         * @param killAfterMs      when to kill the active after the client started; negative picks one from the
         *                         seed.
         * @param seed             seed of the workload, the transfers and the kill moment.
         * @param transfers        the most transfers the client makes.
         * @param accounts         accounts of the bank.
         * @param digests          digest the guest at every checkpoint and compare the promoted guest with it.
         * @param killPhase        where in the cycle the active dies.
         * @param policy           the active's checkpoint policy.
         * @param partitionAfterMs when to partition instead of killing; negative for the kill scenario.
         * @param arbiter          {@code file} or {@code zookeeper}.
         * @param failureTimeoutMs the standby's failure timeout.
         * @param linkDrop         a link drop before the kill, or null for none.
         */
        public Options(final long memoryBytes, final Workload workload, final long periodMs, final long killAfterMs,
            final long seed, final int transfers, final int accounts, final boolean digests, final String killPhase,
            final String policy, final long partitionAfterMs, final String arbiter, final long failureTimeoutMs,
            final LinkDrop linkDrop)
        {
            this(memoryBytes, workload, periodMs, killAfterMs, seed, transfers, accounts, digests, killPhase, policy,
                partitionAfterMs, arbiter, failureTimeoutMs, linkDrop, -1, false);
        }

        /**
         * Settings of a kill or partition run with the standby's default failure timeout and no link drop.
         *
         * @param memoryBytes      guest memory.
         * @param workload         background workload of the guest.
         * @param periodMs         checkpoint period.
         * @param killAfterMs      when to kill the active after the client started; negative picks one from the
         *                         seed.
         * @param seed             seed of the workload, the transfers and the kill moment.
         * @param transfers        the most transfers the client makes.
         * @param accounts         accounts of the bank.
         * @param digests          digest the guest at every checkpoint and compare the promoted guest with it.
         * @param killPhase        where in the cycle the active dies.
         * @param policy           the active's checkpoint policy.
         * @param partitionAfterMs when to partition instead of killing; negative for the kill scenario.
         * @param arbiter          {@code file} or {@code zookeeper}.
         */
        public Options(final long memoryBytes, final Workload workload, final long periodMs, final long killAfterMs,
            final long seed, final int transfers, final int accounts, final boolean digests, final String killPhase,
            final String policy, final long partitionAfterMs, final String arbiter)
        {
            this(memoryBytes, workload, periodMs, killAfterMs, seed, transfers, accounts, digests, killPhase, policy,
                partitionAfterMs, arbiter, FAILURE_TIMEOUT_MS_DEFAULT, null);
        }

        /**
         * Settings of a kill run with the file arbiter.
         *
         * @param memoryBytes guest memory.
         * @param workload    background workload of the guest.
         * @param periodMs    checkpoint period.
         * @param killAfterMs when to kill the active after the client started; negative picks one from the seed.
         * @param seed        seed of the workload, the transfers and the kill moment.
         * @param transfers   the most transfers the client makes.
         * @param accounts    accounts of the bank.
         * @param digests     digest the guest at every checkpoint and compare the promoted guest with it.
         * @param killPhase   where in the cycle the active dies.
         * @param policy      the active's checkpoint policy.
         */
        public Options(final long memoryBytes, final Workload workload, final long periodMs, final long killAfterMs,
            final long seed, final int transfers, final int accounts, final boolean digests, final String killPhase,
            final String policy)
        {
            this(memoryBytes, workload, periodMs, killAfterMs, seed, transfers, accounts, digests, killPhase, policy,
                -1, FILE_ARBITER);
        }

        /**
         * @return true for the partition scenario.
         */
        public boolean partition()
        {
            return partitionAfterMs >= 0;
        }

        /**
         * @return true if the run starts with a planned switchover.
         */
        public boolean switchover()
        {
            return switchoverAtMs >= 0;
        }

        /**
         * @return how many times the guest moves to the other host: 2 with a switchover or a failback, else 1.
         */
        public int handovers()
        {
            return switchover() || failback ? 2 : 1;
        }

        /**
         * @return {@code "partition"}, {@code "switchover"}, {@code "failback"} or {@code "kill"}.
         */
        public String scenario()
        {
            return partition() ? "partition" : switchover() ? "switchover" : failback ? "failback" : "kill";
        }

        /**
         * The checks of the standby's failure timeout and of a link drop against the rest, in the words of the
         * harness's command line ({@code failover}), which reads them as refusals.
         *
         * @throws IllegalArgumentException naming the options that do not go together.
         */
        public void check()
        {
            if (failureTimeoutMs < FAILURE_TIMEOUT_MS_MIN || failureTimeoutMs > FAILURE_TIMEOUT_MS_MAX)
            {
                throw new IllegalArgumentException("--failure-timeout must be from " + FAILURE_TIMEOUT_MS_MIN +
                    "ms (three of the active's 20 ms heartbeats) to " + FAILURE_TIMEOUT_MS_MAX / 1000 + "s, not " +
                    failureTimeoutMs + "ms");
            }
            if (switchover())
            {
                checkSwitchover();
            }
            if (killsStandby())
            {
                if (partition() || switchover() || failback || linkDrop != null)
                {
                    throw new IllegalArgumentException("--kill-standby-after goes only with a kill of the active " +
                        "(not --partition-after, --switchover, --failback or --link-drop): the standby restarts, the " +
                        "active reconnects, then the active is killed");
                }
                if (killAfterMs >= 0 && killAfterMs <= killStandbyAfterMs + 2000)
                {
                    throw new IllegalArgumentException("--kill-after " + killAfterMs + "ms must come at least 2 s " +
                        "after --kill-standby-after " + killStandbyAfterMs + "ms: the restarted standby must be " +
                        "protecting again first");
                }
            }
            if (failback && partition())
            {
                throw new IllegalArgumentException("--failback does not go with --partition-after: a failback " +
                    "restarts the host of a killed active, a partitioned one lives on");
            }
            if (linkDrop == null)
            {
                return;
            }
            if (partition())
            {
                throw new IllegalArgumentException("--link-drop does not go with --partition-after: a partition " +
                    "never heals and ends in a failover, a link drop heals before the kill");
            }
            if (linkDrop.atMs() <= 0 || linkDrop.forMs() <= 0)
            {
                throw new IllegalArgumentException("--link-drop " + linkDrop + ": both times must be more than 0");
            }
            if (linkDrop.forMs() >= failureTimeoutMs)
            {
                throw new IllegalArgumentException("--link-drop " + linkDrop + " keeps the link down " +
                    linkDrop.forMs() + "ms, not shorter than the standby's --failure-timeout of " + failureTimeoutMs +
                    "ms: the standby would promote (a failover, not a link that heals); shorten the drop or raise " +
                    "--failure-timeout");
            }
            if (killAfterMs >= 0 && killAfterMs <= linkDrop.endsAfterMs())
            {
                throw new IllegalArgumentException("--kill-after " + killAfterMs + "ms comes before the link drop " +
                    "heals (--link-drop " + linkDrop + " ends " + linkDrop.endsAfterMs() + "ms after the client " +
                    "starts): the kill must come after it");
            }
        }

        private void checkSwitchover()
        {
            if (partition() || linkDrop != null)
            {
                throw new IllegalArgumentException("--switchover does not go with --" + (partition() ?
                    "partition-after" : "link-drop") + ": a planned switchover needs a protected active, and the " +
                    "relay between the hosts would stand in its way");
            }
            if (failback)
            {
                throw new IllegalArgumentException("--switchover does not go with --failback: after a switchover " +
                    "the old active's host protects the new active anyway, before its kill");
            }
            if (killAfterMs >= 0)
            {
                throw new IllegalArgumentException("--kill-after does not go with --switchover: the new active is " +
                    "killed " + REPROTECTED_RUN_MS + " ms after the old host's standby acknowledged its baseline");
            }
        }
    }

    /**
     * A link drop: at {@code atMs} after the client started, the relay between the hosts resets every connection
     * (both see a connection reset) and refuses new ones for {@code forMs}, then relays again. The active reconnects
     * with back-off (50 ms, doubling) and resyncs what changed since the standby's recovery point; the standby,
     * silent for the drop plus the reconnect, must not reach its failure timeout meanwhile.
     *
     * @param atMs  when the connections are reset, after the client started.
     * @param forMs how long new connections are refused.
     */
    public record LinkDrop(long atMs, long forMs)
    {
        /**
         * @return when new connections are relayed again, after the client started.
         */
        public long endsAfterMs()
        {
            return atMs + forMs;
        }

        /**
         * @return {@code AT:FOR} in milliseconds, as the command line takes it.
         */
        @Override
        public String toString()
        {
            return atMs + "ms:" + forMs + "ms";
        }
    }

    /**
     * What the run found. Times in milliseconds, all on the shared wall clock, {@code NaN} (null in JSON) where not
     * measured. With F the fault (the harness's SIGKILL, the active's own halt at a kill point, the instant the
     * relay stopped moving bytes, or the harness's request for a planned switchover), D the standby's decision to
     * promote, R the promoted guest running and C the client's first reply after the fault: recovery = C - F =
     * detection (D - F) + promotion (R - D) + reconnect (C - R). None is given for a false takeover. In a run with
     * two handovers the figures "before the fault" are from before the first, the recovery figures the last's.
     *
     * @param scenario           {@code kill}, {@code partition}, {@code switchover} or {@code failback}.
     * @param arbiter            {@code file} or {@code zookeeper}.
     * @param verified           every check passed.
     * @param falseTakeover      a standby promoted before its fault, while the active was alive.
     * @param failures           the checks that failed.
     * @param recoveryEpoch      the epoch the standby resumed from.
     * @param lastAckedEpoch     the last epoch the active saw acknowledged.
     * @param ackedTransfers     transfers the client saw answered.
     * @param lostTransfers      answered transfers missing from the promoted guest.
     * @param recoveryMs         the fault to the client's first reply from the promoted guest.
     * @param detectionMs        the fault to the standby's decision to promote.
     * @param promotionMs        the decision to the promoted guest running (claim, apply, resume; and, with
     *                           digests, the verification read of the guest).
     * @param reconnectMs        the promoted guest running to the client's first reply from it.
     * @param ownersMax          the most sides that ran the guest with output leaving at one instant; must be 1.
     * @param oldActiveStoppedMs partition: the decision to promote to the old active's guest stopped; NaN if it
     *                           never stopped within the bound, and in the kill scenario.
     * @param pauseP99Us         the active's checkpoint pause p99 before the fault.
     * @param faultAfterMs       when the (first) fault came after the client started.
     * @param activeStatus       the active's last status before the fault: raw_bytes, wire_bytes, policy, period_ns,
     *                           output_hold_p99_ns.
     * @param transfersBefore    answered transfers the client saw before its first reply after the fault.
     * @param transfersAfter     answered transfers from its first reply after the fault on: the promoted guest's.
     * @param checkpointsPerSecond the active's checkpoint rate from the client's start to the fault, NaN if unknown.
     * @param warnings           what went wrong without failing a check: checkpoints far behind the period, pauses
     *                           longer than it (the run says little about the pause targets then).
     * @param steady             the replication's latencies before the fault: the baseline, then the steady state.
     * @param link               the link between the hosts before the fault: the drop asked for, the active's
     *                           reconnects and what they resent.
     * @param failovers          how many times the standby took the guest over (a planned switchover counts): 1, or
     *                           2 in a switchover or failback run that got that far; 0 if it never promoted.
     * @param switchoverPauseMs  the planned switchover's stop of the guest, from its pause on the old active to the
     *                           standby's answer that it owns it ({@code Switchover.stopNs}); NaN without one.
     * @param handovers          each handover of the guest in order, with its own figures; the fields above from
     *                           {@code recoveryEpoch} to {@code reconnectMs} are the last one's.
     */
    public record Report(String scenario, String arbiter, boolean verified, boolean falseTakeover,
        List<String> failures, long recoveryEpoch, long lastAckedEpoch, long ackedTransfers, long lostTransfers,
        double recoveryMs, double detectionMs, double promotionMs, double reconnectMs, int ownersMax,
        double oldActiveStoppedMs, long pauseP99Us, long faultAfterMs, Map<String, String> activeStatus,
        long transfersBefore, long transfersAfter, double checkpointsPerSecond, List<String> warnings,
        SteadyState steady, LinkFigures link, int failovers, double switchoverPauseMs,
        List<HandoverFigures> handovers, String transport)
    {
        /**
         * @return the report as a JSON object.
         */
        public String toJson()
        {
            final boolean partition = "partition".equals(scenario);
            final boolean switchover = "switchover".equals(scenario);
            return String.format(Locale.ROOT, "{\n  \"scenario\": \"%s\",\n  \"arbiter\": \"%s\",\n" +
                "  \"transport\": \"%s\",\n" +
                "  \"verified\": %s,\n  \"false_takeover\": %s,\n  \"recovery_epoch\": %d,\n" +
                "  \"last_acked_epoch\": %d,\n  \"acked_transfers\": %d,\n  \"lost_transfers\": %d,\n" +
                "  \"recovery_ms\": %s,\n  \"detection_ms\": %s,\n  \"promotion_ms\": %s,\n  \"reconnect_ms\": %s,\n" +
                "  \"owners_max\": %d,\n  \"old_active_stopped_ms\": %s,\n  \"pause_p99_us\": %d,\n" +
                "  \"switchover_pause_ms\": %s,\n  \"failovers\": %d,\n" +
                "  \"kill_after_ms\": %s,\n  \"partition_after_ms\": %s,\n  \"switchover_at_ms\": %s,\n" +
                "  \"raw_bytes\": %s,\n" +
                "  \"wire_bytes\": %s,\n  \"policy\": \"%s\",\n  \"period_ms_final\": %.2f,\n" +
                "  \"output_hold_p50_us\": %s,\n  \"output_hold_p99_us\": %s,\n  \"commit_p50_us\": %s,\n" +
                "  \"commit_p99_us\": %s,\n  \"output_hold_p99_since_baseline_us\": %s,\n" +
                "  \"commit_p99_since_baseline_us\": %s,\n  \"baseline_ms\": %s,\n  \"baseline_max_pause_us\": %s,\n" +
                "  \"stages\": %s,\n  \"transfers_before_fault\": %d,\n" +
                "  \"transfers_after_fault\": %d,\n  \"checkpoints_per_s\": %s,\n%s  \"handovers\": %s,\n" +
                "  \"warnings\": %s,\n  \"failures\": %s\n}\n", scenario, arbiter, transport, verified, falseTakeover,
                recoveryEpoch, lastAckedEpoch, ackedTransfers, lostTransfers, json(recoveryMs), json(detectionMs),
                json(promotionMs), json(reconnectMs), ownersMax, json(oldActiveStoppedMs), pauseP99Us,
                json(switchoverPauseMs), failovers, partition || switchover ? "null" : Long.toString(faultAfterMs),
                partition ? Long.toString(faultAfterMs) : "null", switchover ? Long.toString(faultAfterMs) : "null",
                activeStatus.getOrDefault("raw_bytes", "0"), activeStatus.getOrDefault("wire_bytes", "0"),
                activeStatus.getOrDefault("policy", "?"),
                Long.parseLong(activeStatus.getOrDefault("period_ns", "0")) / 1e6,
                jsonMicros(steady.outputHoldP50Us()), jsonMicros(steady.outputHoldP99Us()),
                jsonMicros(steady.commitP50Us()), jsonMicros(steady.commitP99Us()),
                jsonMicros(steady.outputHoldP99SinceBaselineUs()), jsonMicros(steady.commitP99SinceBaselineUs()),
                json(steady.baselineMs()),
                jsonMicros(steady.baselineMaxPauseUs()), steady.stagesJson(), transfersBefore, transfersAfter, Double.isNaN(checkpointsPerSecond) ? "null" :
                String.format(Locale.ROOT, "%.1f", checkpointsPerSecond), link.jsonFields(),
                HandoverFigures.json(handovers), jsonArray(warnings), jsonArray(failures));
        }

        private static String jsonArray(final List<String> texts)
        {
            final StringBuilder json = new StringBuilder("[");
            for (int i = 0; i < texts.size(); i++)
            {
                json.append(i == 0 ? "" : ", ").append('"')
                    .append(texts.get(i).replace("\\", "\\\\").replace("\"", "\\\"")).append('"');
            }
            return json.append(']').toString();
        }

        private static String json(final double ms)
        {
            return Double.isNaN(ms) ? "null" : String.format(Locale.ROOT, "%.3f", ms);
        }
    }

    /**
     * The standby process killed (SIGKILL) and started again on its directory and ports before the fault.
     *
     * @param afterMs         when it was killed, after the client started.
     * @param ackedBeforeKill the newest epoch the active had seen acknowledged just before the kill.
     * @param recoveredEpoch  the epoch the restarted standby recovered from its directory, 0 if none (MEMORY).
     * @param launchMs        the restarted standby's launch: opening the image and replaying the journal.
     * @param report          what the restarted standby said it recovered.
     * @param failures        what was wrong with the recovery: an acknowledged epoch lost, a recovered image that
     *                        is not the active's checkpoint of its epoch, protection that did not resume.
     */
    public record StandbyRestart(long afterMs, long ackedBeforeKill, long recoveredEpoch, long launchMs, String report,
        List<String> failures)
    {
        String json()
        {
            return String.format(Locale.ROOT, "{\"after_ms\": %d, \"acked_before_kill\": %d, " +
                "\"recovered_epoch\": %d, \"launch_ms\": %d}", afterMs, ackedBeforeKill, recoveredEpoch, launchMs);
        }
    }

    /**
     * One handover of the guest to the other host, as the run saw it. Times as in {@link Report}, from this
     * handover's fault: for a switchover, the harness's request to the active.
     *
     * @param kind           {@code kill}, {@code partition} or {@code switchover}.
     * @param faultAfterMs   when the fault came after the client started.
     * @param recoveryEpoch  the epoch the standby resumed from, -1 if it did not promote.
     * @param lastAckedEpoch the last epoch the old active saw acknowledged.
     * @param generation     the generation the standby won, -1 if it did not promote.
     * @param recoveryMs     the fault to the client's first reply from the promoted guest.
     * @param detectionMs    the fault to the standby's decision to promote.
     * @param promotionMs    the decision to the promoted guest running.
     * @param reconnectMs    the promoted guest running to the client's first reply from it.
     * @param falseTakeover  the standby promoted before this fault, while the old owner was alive.
     * @param firstSessionBytes bytes on the wire of the first epoch of the protection that ended in this handover
     *                       (its baseline, or the quick resync of a reverse protection onto a standby that held the
     *                       guest's checkpoint), -1 if unreported.
     * @param firstSession   {@code "whole"} or {@code "quick"}: what that first epoch sent.
     */
    public record HandoverFigures(String kind, long faultAfterMs, long recoveryEpoch, long lastAckedEpoch,
        long generation, double recoveryMs, double detectionMs, double promotionMs, double reconnectMs,
        boolean falseTakeover, long firstSessionBytes, String firstSession)
    {
        /**
         * @param status the old owner's last status.
         * @return what its protection's first epoch sent: {@code "quick"} if that was a quick resync.
         */
        static String firstSession(final Map<String, String> status)
        {
            final String resync = status.getOrDefault("last_resync", "");
            return "0".equals(status.getOrDefault("reconnects", "0")) && resync.startsWith("quick") ? "quick" :
                "whole";
        }

        static String json(final List<HandoverFigures> handovers)
        {
            final StringBuilder json = new StringBuilder("[");
            for (final HandoverFigures handover : handovers)
            {
                json.append(json.length() == 1 ? "" : ", ").append(String.format(Locale.ROOT, "{\"kind\": \"%s\", " +
                    "\"fault_after_ms\": %d, \"recovery_epoch\": %d, \"last_acked_epoch\": %d, \"generation\": %d, " +
                    "\"recovery_ms\": %s, \"detection_ms\": %s, \"promotion_ms\": %s, \"reconnect_ms\": %s, " +
                    "\"false_takeover\": %s, \"first_session\": \"%s\", \"first_session_bytes\": %s}",
                    handover.kind, handover.faultAfterMs, handover.recoveryEpoch,
                    handover.lastAckedEpoch, handover.generation, Report.json(handover.recoveryMs),
                    Report.json(handover.detectionMs), Report.json(handover.promotionMs),
                    Report.json(handover.reconnectMs), handover.falseTakeover, handover.firstSession,
                    handover.firstSessionBytes < 0 ? "null" : Long.toString(handover.firstSessionBytes)));
            }
            return json.append(']').toString();
        }
    }

    /**
     * The replication's latencies before the fault, from the nodes' last status files: the baseline (the first,
     * full copy) on its own, then the steady state: the library's sliding window of the last seconds before the fault
     * ({@code LatencyDistribution.WINDOW_SECONDS}), which a run protected for longer than that keeps clear of the
     * warm-up that follows the baseline; beside it, the percentiles since the baseline (warm-up included).
     * Microseconds; {@link #UNMEASURED} (null in JSON) where a node reported nothing.
     *
     * @param outputHoldP50Us    median hold of a frame of the guest's output, offer to release (window).
     * @param outputHoldP99Us    99th percentile of it (window).
     * @param commitP50Us        median time from a checkpoint to its ack on the active (window).
     * @param commitP99Us        99th percentile of it (window).
     * @param baselineMs         from the launch to the baseline's ack: the whole first copy (live rounds, disks, the
     *                           final pause, the standby's commit).
     * @param baselineMaxPauseUs the longest the guest stopped for the baseline (the launch's or the final pause).
     * @param stages             p50 and p99 per stage (window), the active's (pause, encode, send, ack) then the
     *                           standby's (receive, apply, commit), in that order.
     * @param outputHoldP99SinceBaselineUs 99th percentile hold since the baseline, warm-up included.
     * @param commitP99SinceBaselineUs     99th percentile commit since the baseline, warm-up included.
     */
    public record SteadyState(long outputHoldP50Us, long outputHoldP99Us, long commitP50Us, long commitP99Us,
        double baselineMs, long baselineMaxPauseUs, Map<String, StageFigures> stages,
        long outputHoldP99SinceBaselineUs, long commitP99SinceBaselineUs)
    {
        /** A figure no node reported. */
        public static final long UNMEASURED = -1;
        /** The stages in the report's order: the active's, then the standby's. */
        public static final List<String> STAGES = List.of("pause", "encode", "send", "ack", "receive", "apply",
            "commit");

        /**
         * @param active  the active's last status before the fault.
         * @param standby the standby's last stages ({@link FailoverNode#STANDBY_STATUS}).
         * @return the figures the two hold; a stage neither holds is left out.
         */
        static SteadyState of(final Map<String, String> active, final Map<String, String> standby)
        {
            final Map<String, StageFigures> stages = new java.util.LinkedHashMap<>();
            for (final String stage : STAGES)
            {
                final Map<String, String> side = active.containsKey("stage_" + stage + "_p50_ns") ? active : standby;
                final long p50Us = windowOrTotal(side, "stage_" + stage + "_window_p50_ns", "stage_" + stage +
                    "_p50_ns");
                final long p99Us = windowOrTotal(side, "stage_" + stage + "_window_p99_ns", "stage_" + stage +
                    "_p99_ns");
                if (p50Us != UNMEASURED && p99Us != UNMEASURED)
                {
                    stages.put(stage, new StageFigures(p50Us, p99Us));
                }
            }
            final long baselineCommitUs = micros(active, "baseline_elapsed_ns");
            return new SteadyState(windowOrTotal(active, "output_hold_window_p50_ns", "output_hold_p50_ns"),
                windowOrTotal(active, "output_hold_window_p99_ns", "output_hold_p99_ns"),
                windowOrTotal(active, "stage_ack_window_p50_ns", "commit_p50_ns"),
                windowOrTotal(active, "stage_ack_window_p99_ns", "commit_p99_ns"),
                baselineCommitUs <= 0 ? Double.NaN : baselineCommitUs / 1e3, micros(active, "baseline_pause_ns"),
                java.util.Collections.unmodifiableMap(stages), micros(active, "output_hold_p99_ns"),
                micros(active, "commit_p99_ns"));
        }

        /**
         * @return the window's figure; the total where the window is empty (0) or not reported.
         */
        private static long windowOrTotal(final Map<String, String> status, final String window, final String total)
        {
            final long windowUs = micros(status, window);
            return windowUs > 0 ? windowUs : micros(status, total);
        }

        private static long micros(final Map<String, String> status, final String key)
        {
            final String value = status.get(key);
            return value == null ? UNMEASURED : Long.parseLong(value) / 1000;
        }

        /**
         * @return {@code { "pause": {"p50_us": 12, "p99_us": 40}, ... }}.
         */
        String stagesJson()
        {
            final StringBuilder json = new StringBuilder("{");
            for (final Map.Entry<String, StageFigures> stage : stages.entrySet())
            {
                json.append(json.length() == 1 ? " " : ", ").append('"').append(stage.getKey()).append("\": ")
                    .append(String.format(Locale.ROOT, "{\"p50_us\": %d, \"p99_us\": %d}", stage.getValue().p50Us(),
                    stage.getValue().p99Us()));
            }
            return json.append(stages.isEmpty() ? "}" : " }").toString();
        }

        /**
         * @return e.g. {@code pause 0.12/0.40, encode 0.80/2.10, ... ms (p50/p99)}, or {@code not reported}.
         */
        String describeStages()
        {
            if (stages.isEmpty())
            {
                return "not reported";
            }
            final StringBuilder line = new StringBuilder();
            for (final Map.Entry<String, StageFigures> stage : stages.entrySet())
            {
                line.append(line.length() == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%s %.2f/%.2f",
                    stage.getKey(), stage.getValue().p50Us() / 1e3, stage.getValue().p99Us() / 1e3));
            }
            return line.append(" ms (p50/p99)").toString();
        }
    }

    /**
     * One stage's steady-state percentiles.
     *
     * @param p50Us median, microseconds.
     * @param p99Us 99th percentile, microseconds.
     */
    public record StageFigures(long p50Us, long p99Us)
    {
    }

    /**
     * The link between the hosts before the fault: the drop the run asked for, the standby's failure timeout it had
     * to stay under, and the active's {@link dev.tandem.core.metrics.ReconnectStatus} from its last status file.
     * {@link #UNMEASURED} (null in JSON) where the active reported nothing.
     *
     * @param failureTimeoutMs the standby's failure timeout.
     * @param drop             the link drop asked for, null if none.
     * @param reconnects       sessions the active resumed after a lost link.
     * @param quickResyncs     of those, how many resent only what changed since the standby's recovery point.
     * @param resyncBytes      bytes on the wire of every reconnect's first epoch (the resync).
     * @param baselineBytes    bytes on the wire from the launch to the end of the baseline epoch (the whole first
     *                         copy), counted as a resync is, so the two compare.
     * @param unprotectedMs    time the guest ran without an acknowledged copy after the baseline; NaN if unreported.
     * @param durability       {@code memory} or {@code durable}: where the standby kept its recovery image.
     * @param standbyRestart   the standby's kill and restart before the fault, null without one.
     */
    public record LinkFigures(long failureTimeoutMs, LinkDrop drop, long reconnects, long quickResyncs,
        long resyncBytes, long baselineBytes, double unprotectedMs, String durability, StandbyRestart standbyRestart)
    {
        /**
         * Figures of a run whose standby kept its image in memory and was never restarted.
         *
         * @param failureTimeoutMs the standby's failure timeout.
         * @param drop             the link drop asked for, null if none.
         * @param reconnects       sessions the active resumed after a lost link.
         * @param quickResyncs     of those, how many resent only what changed since the standby's recovery point.
         * @param resyncBytes      bytes on the wire of every reconnect's first epoch.
         * @param baselineBytes    bytes on the wire of the baseline.
         * @param unprotectedMs    time the guest ran without an acknowledged copy after the baseline.
         */
        public LinkFigures(final long failureTimeoutMs, final LinkDrop drop, final long reconnects,
            final long quickResyncs, final long resyncBytes, final long baselineBytes, final double unprotectedMs)
        {
            this(failureTimeoutMs, drop, reconnects, quickResyncs, resyncBytes, baselineBytes, unprotectedMs,
                "memory", null);
        }

        /** A figure the active did not report. */
        public static final long UNMEASURED = -1;

        /**
         * @param options the run's settings.
         * @param active  the active's last status before the fault.
         * @return the drop asked for and the figures the status holds.
         */
        static LinkFigures of(final Options options, final Map<String, String> active)
        {
            return of(options, active, null);
        }

        /**
         * @param options the run's settings.
         * @param active  the active's last status before the fault.
         * @param restart the standby's kill and restart, null without one.
         * @return the drop asked for and the figures the status holds.
         */
        static LinkFigures of(final Options options, final Map<String, String> active, final StandbyRestart restart)
        {
            final long unprotectedNs = figure(active, "unprotected_ns");
            return new LinkFigures(options.failureTimeoutMs(), options.linkDrop(), figure(active, "reconnects"),
                figure(active, "quick_resyncs"), figure(active, "resync_bytes"), figure(active, "baseline_bytes"),
                unprotectedNs == UNMEASURED ? Double.NaN : unprotectedNs / 1e6, options.durability(), restart);
        }

        private static long figure(final Map<String, String> status, final String key)
        {
            final String value = status.get(key);
            return value == null ? UNMEASURED : Long.parseLong(value);
        }

        /**
         * @return the report's lines for the link, each ending in a comma and a line break.
         */
        String jsonFields()
        {
            return String.format(Locale.ROOT, "  \"failure_timeout_ms\": %d,\n  \"link_drop_at_ms\": %s,\n" +
                "  \"link_drop_for_ms\": %s,\n  \"reconnects\": %s,\n  \"quick_resyncs\": %s,\n" +
                "  \"resync_bytes\": %s,\n  \"baseline_bytes\": %s,\n  \"unprotected_ms\": %s,\n" +
                "  \"durability\": \"%s\",\n  \"standby_restart\": %s,\n",
                failureTimeoutMs, drop == null ? "null" : Long.toString(drop.atMs()),
                drop == null ? "null" : Long.toString(drop.forMs()), jsonFigure(reconnects), jsonFigure(quickResyncs),
                jsonFigure(resyncBytes), jsonFigure(baselineBytes), Report.json(unprotectedMs), durability,
                standbyRestart == null ? "null" : standbyRestart.json());
        }

        private static String jsonFigure(final long figure)
        {
            return figure == UNMEASURED ? "null" : Long.toString(figure);
        }

        /**
         * @return e.g. {@code 1 reconnect (1 quick): resync 1.2 MiB beside a 18.3 MiB baseline, 180.2 ms
         *         unprotected}.
         */
        String describe()
        {
            if (reconnects == UNMEASURED)
            {
                return "not reported";
            }
            return String.format(Locale.ROOT, "%d reconnect%s (%d quick): resync %.2f MiB beside a %s baseline, " +
                "%.1f ms unprotected", reconnects, reconnects == 1 ? "" : "s", quickResyncs, resyncBytes / 1048576.0,
                baselineBytes == UNMEASURED ? "not measured" :
                String.format(Locale.ROOT, "%.2f MiB", baselineBytes / 1048576.0), unprotectedMs);
        }
    }

    private static String jsonMicros(final long us)
    {
        return us == SteadyState.UNMEASURED ? "null" : Long.toString(us);
    }

    /**
     * Where the fault came from, as the harness knows it.
     *
     * @param micros            the fault instant on the shared clock.
     * @param promotedBefore    the standby's promotion record already existed when the fault was injected.
     * @param what              "kill" or "partition", for messages.
     */
    private record Fault(long micros, boolean promotedBefore, String what)
    {
    }

    /**
     * One handover of the guest, as the harness collected it for {@link #verify}.
     *
     * @param fault       what moved the guest, and when.
     * @param clientStart when the client started, wall-clock milliseconds.
     * @param from        the directory of the node that owned the guest before: its acks, digests and status.
     * @param fromRecord  its ownership record's file name there.
     * @param to          the directory of the node that took over: its promotion record.
     * @param toRecord    its ownership record's file name there.
     * @param promotion   the promotion record ({@link FailoverNode#PROMOTION}).
     * @param lastAck     the last epoch the old owner saw acknowledged.
     * @param fromStatus  the old owner's last status, read after the promotion (a switchover's outcome is in it).
     */
    private record Handover(Fault fault, long clientStart, Path from, String fromRecord, Path to, String toRecord,
        Map<String, String> promotion, long lastAck, Map<String, String> fromStatus)
    {
        OwnershipTimeline.Records fromRecords() throws IOException
        {
            return ownership(from, fromRecord);
        }

        OwnershipTimeline.Records toRecords() throws IOException
        {
            return ownership(to, toRecord);
        }

        boolean promoted()
        {
            return promotion.containsKey("epoch");
        }
    }

    /**
     * How well the active held its checkpoint period between two of its status snapshots.
     *
     * @param checkpointsPerSecond checkpoints per second between the snapshots, NaN if they are too close to tell.
     * @param periodMs             the period the active was asked to hold at the later snapshot (the adaptive
     *                             policy moves it).
     * @param pauseP99Ms           the active's pause p99 at the later snapshot.
     */
    record Pace(double checkpointsPerSecond, double periodMs, double pauseP99Ms)
    {
        /**
         * @param first    the earlier status snapshot.
         * @param last     the later one.
         * @param periodMs the configured period, used if the snapshot has none.
         * @return the pace between them.
         */
        static Pace between(final Map<String, String> first, final Map<String, String> last, final long periodMs)
        {
            final long spanUs = Long.parseLong(last.getOrDefault("written_us", "0")) -
                Long.parseLong(first.getOrDefault("written_us", "0"));
            final long checkpoints = Long.parseLong(last.getOrDefault("checkpoints", "0")) -
                Long.parseLong(first.getOrDefault("checkpoints", "0"));
            final long periodNs = Long.parseLong(last.getOrDefault("period_ns", "0"));
            // under half a second of snapshots the count is a handful of checkpoints: too few to call a rate
            return new Pace(spanUs < 500_000 ? Double.NaN : checkpoints * 1e6 / spanUs,
                periodNs > 0 ? periodNs / 1e6 : periodMs, Long.parseLong(last.getOrDefault("pause_p99_us", "0")) / 1e3);
        }

        /**
         * @return one line per way the period was not held: fewer than half the checkpoints it asks for, or a pause
         *         p99 longer than the period. Empty if held.
         */
        List<String> warnings()
        {
            final List<String> warnings = new ArrayList<>();
            final double wanted = 1000.0 / periodMs;
            if (checkpointsPerSecond < wanted / 2)
            {
                warnings.add(String.format(Locale.ROOT, "checkpoints fell far behind the period: %.0f/s where a " +
                    "%.1f ms period asks for %.0f/s (a busy machine, or more dirty pages than a period carries)",
                    checkpointsPerSecond, periodMs, wanted));
            }
            if (pauseP99Ms > periodMs)
            {
                warnings.add(String.format(Locale.ROOT, "pause p99 %.1f ms is longer than the %.1f ms period: the " +
                    "guest spends more time paused than running", pauseP99Ms, periodMs));
            }
            return warnings;
        }
    }

    private FailoverHarness()
    {
    }

    /**
     * Runs the story.
     *
     * @param options settings.
     * @param dir     a fresh working directory (node directories, logs, the arbiter).
     * @param out     where progress and the summary go.
     * @return what it found.
     * @throws IOException if a process cannot be started or a file read, a planned switchover fails (with the
     *                     active's reason), or the promoted node cannot protect its guest onto the restarted standby.
     * @throws InterruptedException if interrupted.
     * @throws IllegalArgumentException if the options cannot be run (a kill phase with a partition, an unknown
     *                                  arbiter, a link drop the standby would not outlast, a switchover with a
     *                                  partition, see {@link Options#check()}).
     */
    public static Report run(final Options options, final Path dir, final PrintStream out)
        throws IOException, InterruptedException
    {
        if (options.partition() && !Options.MID_EPOCH.equals(options.killPhase()))
        {
            throw new IllegalArgumentException("a partition run has no kill phase, not '" + options.killPhase() + "'");
        }
        final boolean zookeeper = Options.ZOOKEEPER_ARBITER.equals(options.arbiter());
        if (!zookeeper && !Options.FILE_ARBITER.equals(options.arbiter()))
        {
            throw new IllegalArgumentException("arbiter must be file or zookeeper, not '" + options.arbiter() + "'");
        }
        options.check();
        final LinkDrop linkDrop = options.linkDrop();
        // a seeded kill after a link drop counts from the drop's end: the reconnect and its resync come first
        final long faultAfterMs = options.partition() ? options.partitionAfterMs() : options.switchover() ?
            options.switchoverAtMs() : options.killAfterMs() >= 0 ? options.killAfterMs() :
            (linkDrop == null ? 0 : linkDrop.endsAfterMs()) + 1500 + new SplittableRandom(options.seed()).nextLong(2000);
        // the arbiter lives outside both hosts: a real ZooKeeper server in this process on loopback, which the
        // relay of a partition does not stand between; or a directory both share
        final TestingServer zooKeeper = zookeeper ? startZooKeeper(dir) : null;
        final long diskBytes = ledgerDiskBytes(options);
        // the period and policy reach the standby too: after a handover it may protect the guest in its turn
        final List<String> guestOptions = List.of("--memory", Long.toString(options.memoryBytes()), "--workload",
            options.workload().name(), "--seed", Long.toString(options.seed()), "--bank-accounts",
            Integer.toString(options.accounts()), "--disk", Long.toString(diskBytes), zookeeper ? "--zookeeper" :
            "--arbiter",
            zookeeper ? zooKeeper.getConnectString() : dir.resolve("arbiter").toString(),
            "--digests", Boolean.toString(options.digests()), "--period-ms", Long.toString(options.periodMs()),
            "--policy", options.policy());
        // each host gets its own certificate for the guest's VM, signed by a CA made for this run only
        final List<String> link = options.plaintext() ? List.of() : List.of("--tls-dir",
            throwawayPki(dir.resolve("tls")).toString());
        final List<String> guest = join(guestOptions, link);
        final Path standbyDir = dir.resolve("standby");
        final Path activeDir = dir.resolve("active");
        final Path clientDir = dir.resolve("client");
        final List<String> killPhase = Options.MID_EPOCH.equals(options.killPhase()) ? List.of() :
            List.of("--kill-phase", options.killPhase());
        Process standby;
        try
        {
            standby = start(dir, "standby", "1g", join(List.of("standby", "--dir", standbyDir.toString(),
                "--listen", "127.0.0.1:0", "--client-port", "0", "--timeout-ms",
                Long.toString(options.failureTimeoutMs()), "--durability", options.durability()),
                join(killPhase, guest)));
        }
        catch (final IOException ex)
        {
            close(zooKeeper);
            throw ex;
        }
        Process active = null;
        Process client = null;
        // the old active's host, back as a standby of the promoted guest (switchover and failback runs)
        final Process[] restarted = new Process[1];
        LoopbackRelay relay = null;
        try
        {
            // every port is the kernel's choice, read back from the node: a port probed free and bound later can
            // be taken in between (an ephemeral source port of another connection), and the node would not start
            awaitText(dir.resolve("standby.out"), "STANDBY READY", standby);
            final String[] standbyReady = readyLine(dir.resolve("standby.out"), "STANDBY READY");
            final String replicationEndpoint = standbyReady[3];
            final String standbyClientPort = standbyReady[5];
            if (options.partition() || linkDrop != null)
            {
                relay = LoopbackRelay.to(replicationEndpoint);
            }
            final List<String> activeArgs = new ArrayList<>(List.of("active", "--dir", activeDir.toString(),
                "--standby", relay == null ? replicationEndpoint : relay.endpoint(), "--client-port", "0",
                // the failure timeout of the standby it becomes after a switchover
                "--timeout-ms", Long.toString(options.failureTimeoutMs())));
            activeArgs.addAll(killPhase);
            active = start(dir, "active", "1g", join(activeArgs, guest));
            awaitText(dir.resolve("active.out"), "ACTIVE READY", active);
            final String activeClientPort = readyLine(dir.resolve("active.out"), "ACTIVE READY")[5];
            final Path acks = activeDir.resolve(FailoverNode.ACKS);
            final Path statusFile = activeDir.resolve(FailoverNode.STATUS);
            awaitBaseline(acks, statusFile, active, out);
            await(() -> readKeyValues(statusFile).containsKey("written_us"), "the active's first status", active);
            // the pace is measured from here: the baseline's long pause is not a period the active failed to hold
            final Map<String, String> paceStart = readKeyValues(statusFile);
            out.printf(Locale.ROOT, "Tandem failover harness: %d MiB guest (%s + bank of %d accounts), checkpoint " +
                "every %d ms, %s arbiter, %s link; %s %d ms after the client starts%s%n", options.memoryBytes() >> 20,
                options.workload().name().toLowerCase(Locale.ROOT), options.accounts(), options.periodMs(),
                options.arbiter(), options.transport(), options.partition() ?
                "partitioning the active from the standby" :
                options.switchover() ? "a planned switchover" :
                (linkDrop == null ? "" : String.format(Locale.ROOT, "dropping the link %d ms after the client " +
                "starts for %d ms (standby failure timeout %d ms), then ", linkDrop.atMs(), linkDrop.forMs(),
                options.failureTimeoutMs())) + "killing the active", faultAfterMs, options.handovers() == 1 ? "" :
                "; then the old active's host protects the new active, which is killed " + REPROTECTED_RUN_MS +
                " ms after that standby's baseline");
            final List<String> clientArgs = new ArrayList<>(List.of("client", "--dir", clientDir.toString(),
                "--targets", "127.0.0.1:" + activeClientPort + ",127.0.0.1:" + standbyClientPort, "--transfers",
                Long.toString(Math.min(options.transfers(), diskBytes / BankProgram.LEDGER_RECORD)), "--accounts", Integer.toString(options.accounts()), "--seed",
                Long.toString(options.seed())));
            if (options.handovers() == 1)
            {
                clientArgs.addAll(List.of("--duration-ms", Long.toString(faultAfterMs + 2000)));
            }
            else
            {
                // the last fault's moment is known only as the run goes: the harness says "stop" 2 s after it
                clientArgs.addAll(List.of("--deadline-s", "600"));
            }
            if (options.partition())
            {
                clientArgs.addAll(List.of("--reply-timeout-ms", Integer.toString(CLIENT_REPLY_TIMEOUT_MS)));
            }
            client = start(dir, "client", "256m", clientArgs);
            final long clientStart = System.currentTimeMillis();
            boolean warned = false;
            boolean dropped = linkDrop == null;
            long linkDroppedUs = OwnershipTimeline.NONE;
            StandbyRestart standbyRestart = null;
            while (System.currentTimeMillis() - clientStart < faultAfterMs)
            {
                final long elapsedMs = System.currentTimeMillis() - clientStart;
                if (!dropped && elapsedMs >= linkDrop.atMs())
                {
                    linkDroppedUs = dropLink(relay, linkDrop, out);
                    dropped = true;
                }
                if (options.killsStandby() && standbyRestart == null && elapsedMs >= options.killStandbyAfterMs())
                {
                    final Process[] restartedStandby = {standby};
                    standbyRestart = restartStandby(options, dir, standbyDir, activeDir, replicationEndpoint,
                        standbyClientPort, join(killPhase, guest), elapsedMs, restartedStandby, active, out);
                    standby = restartedStandby[0];
                }
                final long nextMs = dropped ? (options.killsStandby() && standbyRestart == null ?
                    options.killStandbyAfterMs() : faultAfterMs) : linkDrop.atMs();
                Thread.sleep(Math.min(500, Math.max(1, nextMs - elapsedMs)));
                out.println(lastLine(dir.resolve("active.out")) + " | transfers answered " +
                    countReplies(clientDir.resolve(FailoverNode.CLIENT_LOG)));
                final List<String> warnings =
                    Pace.between(paceStart, readKeyValues(statusFile), options.periodMs()).warnings();
                if (!warned && !warnings.isEmpty())
                {
                    // said as it happens, once: the figures after it are read in its light
                    warnings.forEach(warning -> out.println("WARNING: " + warning));
                    warned = true;
                }
            }
            final Map<String, String> activeStatus = readKeyValues(statusFile);
            final Pace pace = Pace.between(paceStart, activeStatus, options.periodMs());
            final long pauseP99Us = Long.parseLong(activeStatus.getOrDefault("pause_p99_us", "-1"));
            final Path promotionFile = standbyDir.resolve(FailoverNode.PROMOTION);
            final Fault fault = options.partition() ? partition(relay, promotionFile, out) : options.switchover() ?
                switchover(active, statusFile, promotionFile, out) :
                kill(options, active, activeDir, FailoverNode.OWNERSHIP, promotionFile, dir.resolve("active.out"),
                    out);
            await(() -> Files.exists(promotionFile), "the standby to promote", standby);
            final Map<String, String> promotion = readKeyValues(promotionFile);
            out.println("standby promoted: " + promotion.getOrDefault("reason", promotion.toString()));
            // read after the promotion: an ack in flight at the fault has landed or never will
            final List<Handover> handovers = new ArrayList<>(List.of(new Handover(fault, clientStart, activeDir,
                FailoverNode.OWNERSHIP, standbyDir, FailoverNode.OWNERSHIP, promotion, lastAck(acks),
                readKeyValues(statusFile))));
            if ((options.partition() || options.switchover()) && promotion.containsKey("decided_us"))
            {
                awaitOldActiveStop(activeDir.resolve(FailoverNode.OWNERSHIP),
                    Long.parseLong(promotion.get("decided_us")), out);
            }
            if (options.handovers() == 2 && promotion.containsKey("epoch"))
            {
                final Handover second = failback(options, dir, guest, killPhase, active, standby,
                    activeClientPort, clientStart, restarted, out);
                handovers.add(second);
                final long stopAtMs = second.fault().micros() / 1000 + 2000;
                Thread.sleep(Math.max(0, stopAtMs - System.currentTimeMillis()));
            }
            if (options.handovers() == 2)
            {
                command(client, "stop");
            }
            if (!client.waitFor(120, TimeUnit.SECONDS))
            {
                client.destroyForcibly();
            }
            // the last owner's bank is the one the whole run's transfers must add up in
            final Handover last = handovers.get(handovers.size() - 1);
            final Process owner = last.to().equals(standbyDir) ? standby : restarted[0];
            command(owner, "dump");
            awaitText(dir.resolve(last.to().equals(standbyDir) ? "standby.out" :
                options.switchover() ? "active.out" : RESTARTED_ROLE + ".out"), "DUMPED", owner);
            // after the promotion: the standby's stages stopped moving at the fault
            final SteadyState steady = SteadyState.of(activeStatus,
                readKeyValues(standbyDir.resolve(FailoverNode.STANDBY_STATUS)));
            return verify(options, dir, handovers, pauseP99Us, faultAfterMs, activeStatus, pace, steady,
                LinkFigures.of(options, activeStatus, standbyRestart), linkDroppedUs, out);
        }
        finally
        {
            for (final Process process : new Process[] {client, active})
            {
                if (process != null)
                {
                    process.destroyForcibly();
                }
            }
            if (relay != null)
            {
                relay.close();
            }
            for (final Process process : new Process[] {standby, restarted[0]})
            {
                if (process != null)
                {
                    // a promoted node exits when its input closes
                    process.getOutputStream().close();
                    if (!process.waitFor(10, TimeUnit.SECONDS))
                    {
                        process.destroyForcibly();
                    }
                }
            }
            close(zooKeeper);
        }
    }

    /**
     * The guest's disk, which holds the bank's ledger: a ring of {@link BankProgram#LEDGER_RECORD}-byte records, one
     * per transfer. The client makes no more transfers than it holds, else the oldest answered ones would be
     * overwritten and could not be checked. One handover: 16 MiB (32768 transfers, more than a run makes). Two: 64
     * MiB (131072), because between the handovers the promoted guest runs unprotected until its new standby has a
     * baseline, and its replies, held by no checkpoint, come as fast as the client asks (4 to 5 thousand a second
     * on the build machine).
     */
    static long ledgerDiskBytes(final Options options)
    {
        return options.handovers() == 1 ? 16L << 20 : 64L << 20;
    }

    /**
     * The second handover of a switchover or failback run: the old active's host comes back as a standby of the
     * promoted guest, listening for the client on the old active's port, as a host's service would. After a
     * switchover the old active itself becomes that standby, holding its stopped guest, which is the checkpoint the
     * other host resumed from, so the reverse protection resends only what changed since (a quick failback); after
     * a kill its host restarts a fresh standby (the memory died with the process), so a full baseline follows. The
     * promoted node protects its guest onto it at the promoted generation, and {@value #REPROTECTED_RUN_MS} ms after
     * that first epoch's ack the promoted node is killed, so that the old host's standby takes the guest back.
     *
     * @param oldActive the first active's process: after a switchover it becomes the standby; else killed here if it
     *                  still runs.
     * @param promoted  the promoted standby's process.
     * @param restarted where the restarted standby's process is left, for the caller to end.
     * @return the handover from the promoted node to the restarted standby.
     */
    private static Handover failback(final Options options, final Path dir, final List<String> guest,
        final List<String> killPhase, final Process oldActive, final Process promoted, final String clientPort,
        final long clientStart, final Process[] restarted, final PrintStream out)
        throws IOException, InterruptedException
    {
        final Path activeDir = dir.resolve("active");
        final Path standbyDir = dir.resolve("standby");
        final String endpoint;
        if (options.switchover())
        {
            // its guest stopped at the checkpoint the other host resumed from: the old active becomes the standby
            // of the new one holding it, and the reverse protection resends only what changed since
            command(oldActive, "standby " + RESTARTED_OWNERSHIP);
            awaitText(dir.resolve("active.out"), "STANDBY READY", oldActive);
            restarted[0] = oldActive;
            endpoint = readyLine(dir.resolve("active.out"), "STANDBY READY")[3];
            out.println("old active became a standby on " + endpoint + ", holding the switchover's checkpoint; the " +
                "promoted guest protects onto it (only what changed since the switchover)");
        }
        else
        {
            if (oldActive.isAlive())
            {
                oldActive.destroyForcibly();
                out.printf(Locale.ROOT, "old active (pid %d) ended: its host restarts%n", oldActive.pid());
            }
            if (!oldActive.waitFor(10, TimeUnit.SECONDS))
            {
                throw new IOException("the old active (pid " + oldActive.pid() + ") did not end");
            }
            restarted[0] = start(dir, RESTARTED_ROLE, "1g",
                join(List.of("standby", "--dir", activeDir.toString(), "--listen", "127.0.0.1:0", "--client-port",
                clientPort, "--timeout-ms", Long.toString(options.failureTimeoutMs()), "--ownership-file",
                RESTARTED_OWNERSHIP), join(killPhase, guest)));
            awaitText(dir.resolve(RESTARTED_ROLE + ".out"), "STANDBY READY", restarted[0]);
            endpoint = readyLine(dir.resolve(RESTARTED_ROLE + ".out"), "STANDBY READY")[3];
            out.println("old active's host restarted as a standby on " + endpoint + "; the promoted guest " +
                "protects onto it (a full baseline: its memory died with the process)");
        }
        command(promoted, "protect " + endpoint);
        final Path promotedOut = dir.resolve("standby.out");
        await(() -> Files.readString(promotedOut).contains("PROTECTING towards ") ||
            Files.readString(promotedOut).contains("PROTECT FAILED"), "the promoted node to protect its guest", promoted);
        if (Files.readString(promotedOut).contains("PROTECT FAILED"))
        {
            throw new IOException("the promoted node could not protect its guest: " + Files.readAllLines(promotedOut)
                .stream().filter(line -> line.startsWith("PROTECT FAILED")).findFirst().orElse(""));
        }
        final Path acks = standbyDir.resolve(FailoverNode.ACKS);
        final Path statusFile = standbyDir.resolve(FailoverNode.STATUS);
        awaitBaseline(acks, statusFile, promoted, out);
        final long killAtMs = System.currentTimeMillis() + REPROTECTED_RUN_MS;
        while (System.currentTimeMillis() < killAtMs)
        {
            Thread.sleep(Math.min(500, Math.max(1, killAtMs - System.currentTimeMillis())));
            out.println(lastLine(dir.resolve("standby.out")) + " | transfers answered " +
                countReplies(dir.resolve("client").resolve(FailoverNode.CLIENT_LOG)));
        }
        final Path promotionFile = activeDir.resolve(FailoverNode.PROMOTION);
        final Fault fault = kill(options, promoted, standbyDir, FailoverNode.OWNERSHIP, promotionFile, promotedOut,
            out);
        await(() -> Files.exists(promotionFile), "the restarted standby to promote", restarted[0]);
        final Map<String, String> promotion = readKeyValues(promotionFile);
        out.println("restarted standby promoted: " + promotion.getOrDefault("reason", promotion.toString()));
        return new Handover(fault, clientStart, standbyDir, FailoverNode.OWNERSHIP, activeDir, RESTARTED_OWNERSHIP,
            promotion, lastAck(acks), readKeyValues(statusFile));
    }

    /**
     * Kills the standby process (SIGKILL) and starts it again on its directory, replication endpoint and client
     * port, as a host's service manager would; then checks what it recovered against the active (an acknowledged
     * epoch must survive a DURABLE standby's death, and its image must be the active's checkpoint of that epoch) and
     * waits for the active to protect onto it again.
     *
     * @param standby in: the standby's process; out: the restarted one.
     * @return what the restart found, with its failures.
     */
    private static StandbyRestart restartStandby(final Options options, final Path dir, final Path standbyDir,
        final Path activeDir, final String replicationEndpoint, final String clientPort, final List<String> nodeArgs,
        final long elapsedMs, final Process[] standby, final Process active, final PrintStream out)
        throws IOException, InterruptedException
    {
        final Path acks = activeDir.resolve(FailoverNode.ACKS);
        final Path statusFile = activeDir.resolve(FailoverNode.STATUS);
        final long reconnectsBefore = Long.parseLong(readKeyValues(statusFile).getOrDefault("reconnects", "0"));
        final long ackedBefore = lastAck(acks);
        standby[0].destroyForcibly();
        if (!standby[0].waitFor(10, TimeUnit.SECONDS))
        {
            throw new IOException("the killed standby (pid " + standby[0].pid() + ") did not end");
        }
        final long ackedAtKill = Math.max(ackedBefore, lastAck(acks));
        out.printf(Locale.ROOT, "standby (pid %d) killed with SIGKILL %d ms after the client started, the active " +
            "having seen epoch %d acknowledged; restarting it on its directory (%s)%n", standby[0].pid(), elapsedMs,
            ackedBefore, options.durability());
        Files.move(dir.resolve("standby.out"), dir.resolve("standby-killed.out"),
            java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        standby[0] = start(dir, "standby", "1g", join(List.of("standby", "--dir", standbyDir.toString(), "--listen",
            replicationEndpoint, "--client-port", clientPort, "--timeout-ms", Long.toString(options.failureTimeoutMs()),
            "--durability", options.durability()), nodeArgs));
        awaitText(dir.resolve("standby.out"), "STANDBY READY", standby[0]);
        final List<String> failures = new ArrayList<>();
        long recoveredEpoch = 0;
        long launchMs = -1;
        String report = "nothing recovered";
        for (final String line : Files.readAllLines(dir.resolve("standby.out")))
        {
            if (line.startsWith("RECOVERED epoch "))
            {
                final String[] words = line.split(" ", 8);
                recoveredEpoch = Long.parseLong(words[2]);
                launchMs = Long.parseLong(words[6]);
                report = words.length > 7 ? words[7].substring("report ".length()) : "";
                if (options.digests())
                {
                    final String want = activeDigest(activeDir, recoveredEpoch);
                    if (!words[4].equals(want))
                    {
                        failures.add("the restarted standby recovered epoch " + recoveredEpoch + " with digest " +
                            words[4] + ", but the active's checkpoint of that epoch has digest " + want);
                    }
                }
            }
        }
        if (options.durable() && recoveredEpoch < ackedAtKill)
        {
            failures.add("the DURABLE standby lost acknowledged epochs: the active saw epoch " + ackedAtKill +
                " acknowledged before the kill, the restarted standby recovered epoch " + recoveredEpoch + " (" +
                report + ")");
        }
        out.println("standby restarted: recovered epoch " + recoveredEpoch + " in " + launchMs + " ms (" + report +
            ")");
        await(() -> Long.parseLong(readKeyValues(statusFile).getOrDefault("reconnects", "0")) > reconnectsBefore &&
            "PROTECTED".equals(readKeyValues(statusFile).get("state")), "the active to protect onto the restarted " +
            "standby again", active);
        out.println("the active protects onto the restarted standby again: " +
            readKeyValues(statusFile).getOrDefault("last_resync", "?"));
        return new StandbyRestart(elapsedMs, ackedAtKill, recoveredEpoch, launchMs, report, List.copyOf(failures));
    }

    /**
     * @return the active's digest of {@code epoch} from its {@link FailoverNode#DIGESTS} file, "none" if absent.
     */
    private static String activeDigest(final Path activeDir, final long epoch) throws IOException
    {
        final String prefix = epoch + " ";
        for (final String line : Files.readAllLines(activeDir.resolve(FailoverNode.DIGESTS)))
        {
            if (line.startsWith(prefix))
            {
                return line.substring(prefix.length()).trim();
            }
        }
        return "none";
    }

    /**
     * Writes one command line to a node's standard input (see {@link FailoverNode}).
     */
    private static void command(final Process node, final String command) throws IOException
    {
        final OutputStream commands = node.getOutputStream();
        commands.write((command + "\n").getBytes(StandardCharsets.UTF_8));
        commands.flush();
    }

    /**
     * Makes the run's CA, a trust store and one key store per host ({@code standby.p12}, {@code active.p12}: the
     * names of the hosts' directories), all naming the harness's VM, with a random password in an owner-only file
     * the nodes read (never their command line, which any user of the host can list).
     *
     * @param tls the directory to make them in.
     * @return the directory.
     * @throws IOException if keytool fails.
     */
    static Path throwawayPki(final Path tls) throws IOException
    {
        Files.createDirectories(tls);
        final Path passwordFile = tls.resolve(FailoverNode.TLS_PASSWORD_FILE);
        final byte[] random = new byte[18];
        new java.security.SecureRandom().nextBytes(random);
        final char[] password = java.util.Base64.getEncoder().encodeToString(random).toCharArray();
        Files.writeString(passwordFile, new String(password));
        try
        {
            Files.setPosixFilePermissions(passwordFile, java.nio.file.attribute.PosixFilePermissions.fromString(
                "rw-------"));
        }
        catch (final UnsupportedOperationException ex)
        {
            // a file system without POSIX permissions (not Linux): the run directory is private to the run anyway
        }
        final dev.tandem.core.transport.ThrowawayPki pki = dev.tandem.core.transport.ThrowawayPki.create(tls,
            password);
        pki.issue("standby", FailoverNode.VM_ID_DEFAULT);
        pki.issue("active", FailoverNode.VM_ID_DEFAULT);
        java.util.Arrays.fill(password, '\0');
        return tls;
    }

    private static TestingServer startZooKeeper(final Path dir) throws IOException
    {
        // the server's own INFO lines would bury the harness's progress; set before its loggers exist
        System.setProperty("org.slf4j.simpleLogger.log.org.apache.zookeeper", "warn");
        System.setProperty("org.slf4j.simpleLogger.log.org.apache.curator", "warn");
        try
        {
            // port -1: a free port of the kernel's choosing, bound by the server itself
            return new TestingServer(-1, Files.createDirectories(dir.resolve("zookeeper")).toFile(), true);
        }
        catch (final Exception ex)
        {
            throw new IOException("cannot start the in-process ZooKeeper server: " + ex, ex);
        }
    }

    private static void close(final TestingServer zooKeeper) throws IOException
    {
        if (zooKeeper != null)
        {
            zooKeeper.close();
        }
    }

    private static Fault kill(final Options options, final Process active, final Path activeDir,
        final String record, final Path promotionFile, final Path activeOutput, final PrintStream out)
        throws IOException, InterruptedException
    {
        final boolean promotedBefore = Files.exists(promotionFile);
        long faultUs = OwnershipTimeline.wallMicros();
        if (Options.MID_EPOCH.equals(options.killPhase()))
        {
            active.destroyForcibly();
        }
        else
        {
            // the active dies by itself at the next such point of its cycle, within one period
            Files.createFile(activeDir.resolve(FailoverNode.KILL_TRIGGER));
        }
        if (!active.waitFor(10, TimeUnit.SECONDS))
        {
            active.destroyForcibly();
            // the run directory goes with a failed test: what the active was doing goes in the message
            throw new IOException("the active did not reach its kill point " + options.killPhase() + " within 10 s; " +
                "the end of its output:\n" + tail(activeOutput, 30));
        }
        if (!Options.MID_EPOCH.equals(options.killPhase()))
        {
            // only the active knows when it reached its kill point: it noted the instant before halting
            final long killed = ownership(activeDir, record).killedUs();
            if (killed == OwnershipTimeline.NONE)
            {
                throw new IOException("the active halted without noting its kill point in " + FailoverNode.OWNERSHIP);
            }
            faultUs = killed;
        }
        out.printf(Locale.ROOT, "active (pid %d) killed at %s%n", active.pid(), options.killPhase());
        return new Fault(faultUs, promotedBefore, "kill");
    }

    /**
     * Asks the active for a planned switchover and waits for its outcome in the active's status file.
     *
     * @return the switchover as a fault: the instant of the request, on the shared clock.
     * @throws IOException if the active reports the switchover failed (its reason), or never reports.
     */
    private static Fault switchover(final Process active, final Path statusFile, final Path promotionFile,
        final PrintStream out) throws IOException, InterruptedException
    {
        final boolean promotedBefore = Files.exists(promotionFile);
        final long requestUs = OwnershipTimeline.wallMicros();
        command(active, "switchover");
        await(() -> readKeyValues(statusFile).containsKey("switchover_generation") ||
            readKeyValues(statusFile).containsKey("switchover_failed"), "the active's switchover", active);
        final Map<String, String> status = readKeyValues(statusFile);
        if (status.containsKey("switchover_failed"))
        {
            throw new IOException("the planned switchover failed: " + status.get("switchover_failed"));
        }
        out.printf(Locale.ROOT, "switched over: the active paused the guest at epoch %s, the standby won generation " +
            "%s, the guest stopped %.1f ms%n", status.get("switchover_epoch"), status.get("switchover_generation"),
            Long.parseLong(status.get("switchover_stop_ns")) / 1e6);
        return new Fault(requestUs, promotedBefore, "switchover");
    }

    /**
     * @return the instant the relay was asked to reset, on the shared clock.
     */
    private static long dropLink(final LoopbackRelay relay, final LinkDrop drop, final PrintStream out)
        throws InterruptedException
    {
        final double relayedMiB = relay.bytesRelayed() / 1048576.0;
        final long droppedUs = OwnershipTimeline.wallMicros();
        relay.reset(java.time.Duration.ofMillis(drop.forMs()));
        out.printf(Locale.ROOT, "link dropped: the relay reset every connection after %.1f MiB relayed and refuses " +
            "new ones for %d ms; the active reconnects, the standby waits%n", relayedMiB, drop.forMs());
        return droppedUs;
    }

    private static Fault partition(final LoopbackRelay relay, final Path promotionFile, final PrintStream out)
        throws InterruptedException
    {
        final boolean promotedBefore = Files.exists(promotionFile);
        final long faultUs = relay.partition();
        out.printf(Locale.ROOT, "partitioned: the relay black-holes both directions after %.1f MiB relayed; both " +
            "hosts keep running%n", relay.bytesRelayed() / 1048576.0);
        return new Fault(faultUs, promotedBefore, "partition");
    }

    private static void awaitOldActiveStop(final Path activeRecord, final long decidedUs, final PrintStream out)
        throws IOException, InterruptedException
    {
        final long boundUs = decidedUs + OLD_ACTIVE_STOP_BOUND_MS * 1000;
        while (OwnershipTimeline.wallMicros() < boundUs)
        {
            if (Files.exists(activeRecord) &&
                OwnershipTimeline.Records.parse(Files.readAllLines(activeRecord)).stoppedUs() != OwnershipTimeline.NONE)
            {
                out.println("old active stopped its guest");
                return;
            }
            Thread.sleep(20);
        }
        out.printf(Locale.ROOT, "old active still runs its guest %d ms after the promotion%n", OLD_ACTIVE_STOP_BOUND_MS);
    }

    private static OwnershipTimeline.Records ownership(final Path nodeDir, final String record) throws IOException
    {
        final Path file = nodeDir.resolve(record);
        return Files.exists(file) ? OwnershipTimeline.Records.parse(Files.readAllLines(file)) :
            OwnershipTimeline.Records.EMPTY;
    }

    private static Report verify(final Options options, final Path dir, final List<Handover> handovers,
        final long pauseP99Us, final long faultAfterMs, final Map<String, String> activeStatus, final Pace pace,
        final SteadyState steady, final LinkFigures link, final long linkDroppedUs, final PrintStream out)
        throws IOException
    {
        final List<String> failures = new ArrayList<>();
        if (link.standbyRestart() != null)
        {
            failures.addAll(link.standbyRestart().failures());
        }
        // the holders of the guest in order: the first active, then whoever each handover promoted
        final List<OwnershipTimeline.Life> lives = new ArrayList<>(List.of(new OwnershipTimeline.Life(
            "the old active", handovers.get(0).fromRecords())));
        for (int i = 0; i < handovers.size(); i++)
        {
            lives.add(new OwnershipTimeline.Life(i == 0 ? "the promoted guest" : "the restarted standby's guest",
                handovers.get(i).toRecords()));
        }
        final OwnershipTimeline.Ownership ownership = OwnershipTimeline.ownersMax(lives);
        final Handover first = handovers.get(0);
        final double switchoverPauseMs = first.fromStatus().containsKey("switchover_stop_ns") ?
            Long.parseLong(first.fromStatus().get("switchover_stop_ns")) / 1e6 : Double.NaN;
        if (!first.promoted())
        {
            failures.add("the standby refused to promote: " + first.promotion());
            return new Report(options.scenario(), options.arbiter(), false, false, failures, -1, first.lastAck(), 0, 0,
                Double.NaN, Double.NaN, Double.NaN, Double.NaN, ownership.owners(), Double.NaN, pauseP99Us,
                faultAfterMs, activeStatus, 0, 0, pace.checkpointsPerSecond(), pace.warnings(), steady, link, 0,
                switchoverPauseMs, List.of(), options.transport());
        }
        if (ownership.owners() != 1)
        {
            failures.add("owners_max " + ownership.owners() + ": " + ownership.overlap());
        }
        boolean falseTakeover = false;
        int failovers = 0;
        for (int i = 0; i < handovers.size(); i++)
        {
            final Handover handover = handovers.get(i);
            // the handover's place in the messages, where there is more than one
            final String which = handovers.size() == 1 ? "" : " (" + handover.fault().what() + " " + (i + 1) + ")";
            if (!handover.promoted())
            {
                failures.add("the restarted standby refused to promote" + which + ": " + handover.promotion());
                continue;
            }
            failovers++;
            final String takeover = classifyTakeover(handover.fault().micros(), handover.fault().what(),
                handover.fault().promotedBefore(), handover.toRecords());
            if (takeover != null)
            {
                falseTakeover = true;
                // blamed on the drop only if the standby decided after it: a busy host's silence can come first
                final long decidedUs = handover.toRecords().decidedUs();
                final boolean afterDrop = i == 0 && linkDroppedUs != OwnershipTimeline.NONE &&
                    decidedUs != OwnershipTimeline.NONE && decidedUs >= linkDroppedUs;
                failures.add(takeover + which + (afterDrop ? " (the link drop of " + options.linkDrop().forMs() +
                    " ms and the active's reconnect outlasted the standby's failure timeout of " +
                    options.failureTimeoutMs() + " ms)" : ""));
            }
            final OwnershipTimeline.Records from = handover.fromRecords();
            if (from.stoppedUs() != OwnershipTimeline.NONE && from.lastReleaseUs() > from.stoppedUs())
            {
                failures.add(String.format(Locale.ROOT, "the old active let output leave %.3f ms after its guest " +
                    "stopped%s", (from.lastReleaseUs() - from.stoppedUs()) / 1000.0, which));
            }
            final long recoveryEpoch = Long.parseLong(handover.promotion().get("epoch"));
            if (recoveryEpoch < handover.lastAck())
            {
                failures.add("recovered epoch " + recoveryEpoch + " is before the last ack " + handover.lastAck() +
                    which);
            }
            if ("switchover".equals(handover.fault().what()))
            {
                failures.addAll(checkSwitchover(handover, recoveryEpoch));
            }
            if (options.digests())
            {
                final Map<String, String> digests = new HashMap<>();
                for (final String line : Files.readAllLines(handover.from().resolve(FailoverNode.DIGESTS)))
                {
                    final String[] parts = line.split(" ");
                    if (parts.length == 2)
                    {
                        digests.put(parts[0], parts[1]);
                    }
                }
                if (!handover.promotion().get("digest").equals(digests.get(Long.toString(recoveryEpoch))))
                {
                    failures.add("promoted guest digest " + handover.promotion().get("digest") + " differs from " +
                        "the active's " + digests.get(Long.toString(recoveryEpoch)) + " at epoch " + recoveryEpoch +
                        which);
                }
            }
        }
        double oldActiveStoppedMs = Double.NaN;
        if (options.partition())
        {
            final OwnershipTimeline.Records activeRecords = first.fromRecords();
            if (activeRecords.stoppedUs() == OwnershipTimeline.NONE)
            {
                failures.add("the old active's guest was still running " + OLD_ACTIVE_STOP_BOUND_MS / 1000 +
                    " s after the standby promoted: it was not fenced");
            }
            else
            {
                oldActiveStoppedMs = (activeRecords.stoppedUs() - first.toRecords().decidedUs()) / 1000.0;
            }
        }
        // the last owner's bank holds every transfer of the run, through every handover
        final Handover last = handovers.get(handovers.size() - 1);
        final BankState state = BankState.parse(Files.readString(last.to().resolve(FailoverNode.DUMP)),
            options.accounts());
        long total = 0;
        for (final long balance : state.balances())
        {
            total += balance;
        }
        if (total != options.accounts() * FailoverNode.INITIAL_BALANCE)
        {
            failures.add("total of balances is " + total + ", expected " + options.accounts() *
                FailoverNode.INITIAL_BALANCE);
        }
        final long[] replayed = new long[options.accounts()];
        java.util.Arrays.fill(replayed, FailoverNode.INITIAL_BALANCE);
        final Map<Long, long[]> ledger = new HashMap<>();
        for (final long[] record : state.ledger())
        {
            ledger.put(record[0], record);
            if (record[4] == BankProgram.APPLIED)
            {
                replayed[(int)record[1]] -= record[3];
                replayed[(int)record[2]] += record[3];
            }
        }
        if (!java.util.Arrays.equals(replayed, state.balances()))
        {
            failures.add("balances in memory differ from the ledger on disk replayed from the start");
        }
        long acked = 0;
        long ackedBefore = 0;
        long lost = 0;
        // per handover, the client's first reply at or after its fault
        final long[] firstReplyUs = new long[handovers.size()];
        java.util.Arrays.fill(firstReplyUs, OwnershipTimeline.NONE);
        final List<String> clientLog = Files.readAllLines(dir.resolve("client").resolve(FailoverNode.CLIENT_LOG));
        for (final String line : clientLog)
        {
            final String[] parts = line.split(" ");
            if ("first-reply".equals(parts[0]))
            {
                for (int i = 0; i < handovers.size(); i++)
                {
                    if (firstReplyUs[i] == OwnershipTimeline.NONE &&
                        Long.parseLong(parts[1]) >= handovers.get(i).fault().micros())
                    {
                        firstReplyUs[i] = Long.parseLong(parts[1]);
                    }
                }
            }
            if (!"reply".equals(parts[0]))
            {
                continue;
            }
            acked++;
            // the log is in the client's order: every reply before its first one after the fault came from the
            // active (its "first-reply" line precedes that reply's own line)
            ackedBefore += firstReplyUs[0] == OwnershipTimeline.NONE ? 1 : 0;
            final long seq = Long.parseLong(parts[1]);
            final long[] record = ledger.get(seq);
            if (record == null)
            {
                lost++;
                continue;
            }
            if (record[4] != Long.parseLong(parts[2]) || record[5] != Long.parseLong(parts[3]) ||
                record[6] != Long.parseLong(parts[4]))
            {
                failures.add("the client was told '" + line + "' but the ledger holds status " + record[4] +
                    " balances " + record[5] + "/" + record[6]);
            }
        }
        if (lost > 0)
        {
            failures.add(lost + " transfers the client saw answered are missing from the " +
                (handovers.size() == 1 ? "promoted guest" : "last promoted guest"));
        }
        final String clientEnd = clientLog.stream()
            .filter(line -> line.startsWith("done") || line.startsWith("incomplete")).findFirst().orElse("no end");
        if (!clientEnd.startsWith("done"))
        {
            failures.add("the client did not finish: " + clientEnd);
        }
        final List<HandoverFigures> figures = new ArrayList<>();
        for (int i = 0; i < handovers.size(); i++)
        {
            final Handover handover = handovers.get(i);
            final Fault fault = handover.fault();
            if (firstReplyUs[i] == OwnershipTimeline.NONE)
            {
                failures.add("the client never got a reply after the " + fault.what() + " (it finished before it?)");
            }
            // one clock, four instants: the parts add up to the whole by construction; none for a false takeover,
            // where "detection" would be negative and the recovery time a fiction
            final OwnershipTimeline.Records promoted = handover.toRecords();
            final long decidedUs = promoted.decidedUs();
            final long resumedUs = promoted.resumedUs();
            final boolean early = handover.promoted() &&
                classifyTakeover(fault.micros(), fault.what(), fault.promotedBefore(), promoted) != null;
            final boolean timed = handover.promoted() && !early && firstReplyUs[i] != OwnershipTimeline.NONE &&
                decidedUs != OwnershipTimeline.NONE && resumedUs != OwnershipTimeline.NONE;
            final double reconnectMs = timed ? (firstReplyUs[i] - resumedUs) / 1000.0 : Double.NaN;
            if (timed && reconnectMs < 0)
            {
                failures.add(String.format(Locale.ROOT, "the client's first reply after the %s came %.3f ms before " +
                    "the promoted guest ran: it was not the promoted guest's", fault.what(), -reconnectMs));
            }
            figures.add(new HandoverFigures(fault.what(), fault.micros() / 1000 - handover.clientStart(),
                handover.promoted() ? Long.parseLong(handover.promotion().get("epoch")) : -1, handover.lastAck(),
                handover.promoted() ? Long.parseLong(handover.promotion().getOrDefault("generation", "-1")) : -1,
                timed ? (firstReplyUs[i] - fault.micros()) / 1000.0 : Double.NaN,
                timed ? (decidedUs - fault.micros()) / 1000.0 : Double.NaN,
                timed ? (resumedUs - decidedUs) / 1000.0 : Double.NaN, reconnectMs, early,
                Long.parseLong(handover.fromStatus().getOrDefault("baseline_bytes", "-1")),
                HandoverFigures.firstSession(handover.fromStatus())));
        }
        final HandoverFigures lastFigures = figures.get(figures.size() - 1);
        final Report report = new Report(options.scenario(), options.arbiter(), failures.isEmpty(), falseTakeover,
            List.copyOf(failures), lastFigures.recoveryEpoch(), lastFigures.lastAckedEpoch(), acked, lost,
            lastFigures.recoveryMs(), lastFigures.detectionMs(), lastFigures.promotionMs(), lastFigures.reconnectMs(),
            ownership.owners(), oldActiveStoppedMs, pauseP99Us, faultAfterMs, activeStatus, ackedBefore,
            acked - ackedBefore, pace.checkpointsPerSecond(), pace.warnings(), steady, link, failovers,
            switchoverPauseMs, List.copyOf(figures), options.transport());
        printSummary(options, report, handovers, total, out);
        return report;
    }

    /**
     * A planned switchover's own checks: the standby promoted because the active handed the guest over (not
     * because it fell silent), resumed from the checkpoint the active paused at and won the generation the active
     * reported, and the old copy stopped.
     *
     * @return the failures, empty if none.
     */
    private static List<String> checkSwitchover(final Handover handover, final long recoveryEpoch) throws IOException
    {
        final List<String> failures = new ArrayList<>();
        final Map<String, String> status = handover.fromStatus();
        final String reason = handover.promotion().getOrDefault("reason", "");
        if (!reason.startsWith("planned switchover"))
        {
            failures.add("the standby promoted for another reason than the switchover: " + reason);
        }
        if (!Long.toString(recoveryEpoch).equals(status.get("switchover_epoch")) ||
            !handover.promotion().getOrDefault("generation", "").equals(status.get("switchover_generation")))
        {
            failures.add("the standby resumed epoch " + recoveryEpoch + " at generation " +
                handover.promotion().get("generation") + " but the active handed over epoch " +
                status.get("switchover_epoch") + " to generation " + status.get("switchover_generation"));
        }
        if (handover.fromRecords().stoppedUs() == OwnershipTimeline.NONE)
        {
            failures.add("the old active's guest was not stopped after the switchover");
        }
        return failures;
    }

    /**
     * Tells a real takeover from a false one: the standby must decide to promote after the fault.
     *
     * @param faultUs        the fault instant on the shared clock.
     * @param fault          "kill" or "partition".
     * @param promotedBefore the promotion record already existed when the harness injected the fault.
     * @param standby        the standby's ownership records.
     * @return null for a real takeover, else the reason, starting "false takeover: ".
     */
    static String classifyTakeover(final long faultUs, final String fault, final boolean promotedBefore,
        final OwnershipTimeline.Records standby)
    {
        final String byTime = OwnershipTimeline.falseTakeover(faultUs, fault, standby);
        if (byTime != null)
        {
            return byTime;
        }
        // the records say otherwise only if they are missing: the file's existence alone is proof enough
        return promotedBefore ? "false takeover: the standby had promoted before the " + fault + ", while the " +
            "active was alive" : null;
    }

    private static void printSummary(final Options options, final Report report, final List<Handover> handovers,
        final long total, final PrintStream out)
    {
        final Fault fault = handovers.get(0).fault();
        out.printf(Locale.ROOT, "%nSummary%n");
        out.printf(Locale.ROOT, "  scenario           %s, %s arbiter%s%n", options.scenario(), options.arbiter(),
            handovers.size() == 1 ? "" : String.format(Locale.ROOT, "; %d failovers (%s)", report.failovers(),
            String.join(", then ", handovers.stream().map(handover -> handover.fault().what()).toList())));
        for (int i = 0; i < report.handovers().size(); i++)
        {
            final HandoverFigures figures = report.handovers().get(i);
            // with two handovers, each line says which; one keeps the lines as they always were
            final String label = handovers.size() == 1 ? "" : figures.kind() + " " + (i + 1) + ": ";
            out.printf(Locale.ROOT, "  recovery point     %sepoch %d (last ack the %s saw: %d), generation %d%n", label,
                figures.recoveryEpoch(), i == 0 ? "active" : "promoted active", figures.lastAckedEpoch(),
                figures.generation());
            if (figures.falseTakeover())
            {
                out.printf(Locale.ROOT, "  recovery time      %snone: the standby promoted before the %s%n", label,
                    figures.kind());
            }
            else if (Double.isNaN(figures.recoveryMs()))
            {
                out.printf(Locale.ROOT, "  recovery time      %snot measured (see the failures)%n", label);
            }
            else
            {
                out.printf(Locale.ROOT, "  recovery time      %s%.1f ms from the %s to the first reply of the " +
                    "promoted guest = detection %.1f ms + promotion %.1f ms + reconnect %.1f ms%n", label,
                    figures.recoveryMs(), figures.kind(), figures.detectionMs(), figures.promotionMs(),
                    figures.reconnectMs());
            }
        }
        if (!Double.isNaN(report.switchoverPauseMs()))
        {
            out.printf(Locale.ROOT, "  switchover         guest stopped %.1f ms from its pause for the last " +
                "checkpoint to the standby's answer that it owns it%n", report.switchoverPauseMs());
        }
        out.printf(Locale.ROOT, "  owners_max         %d (sides running the guest with output leaving at one " +
            "instant)%n", report.ownersMax());
        if (options.partition())
        {
            out.printf(Locale.ROOT, "  old active         %s%n", Double.isNaN(report.oldActiveStoppedMs()) ?
                "guest NOT stopped within " + OLD_ACTIVE_STOP_BOUND_MS / 1000 + " s of the promotion" :
                String.format(Locale.ROOT, "guest stopped %.1f ms after the standby decided to promote",
                    report.oldActiveStoppedMs()));
        }
        out.printf(Locale.ROOT, "  transfers          %d answered (%d before the %s, %d after it by the promoted " +
            "guest%s), %d lost; total of balances %d%n", report.ackedTransfers(), report.transfersBefore(),
            fault.what(), report.transfersAfter(), handovers.size() == 1 ? "" : "s", report.lostTransfers(), total);
        final Map<String, String> activeStatus = report.activeStatus();
        final double periodMs = Long.parseLong(activeStatus.getOrDefault("period_ns", "0")) / 1e6;
        out.printf(Locale.ROOT, "  checkpoints        %s before the %s, period %.1f ms (%.0f/s asked); pause p99 " +
            "%.2f ms%s%n", Double.isNaN(report.checkpointsPerSecond()) ? "rate not measured" :
            String.format(Locale.ROOT, "%.0f/s", report.checkpointsPerSecond()), fault.what(), periodMs,
            periodMs > 0 ? 1000 / periodMs : Double.NaN, report.pauseP99Us() / 1e3,
            options.digests() ? " (includes the verification digest of every checkpoint)" : "");
        final long rawBytes = Long.parseLong(activeStatus.getOrDefault("raw_bytes", "0"));
        final long wireBytes = Long.parseLong(activeStatus.getOrDefault("wire_bytes", "0"));
        out.printf(Locale.ROOT, "  replication        %s policy; %.1f MiB of pages sent as %.1f MiB on the wire%n",
            activeStatus.getOrDefault("policy", "?"), rawBytes / 1048576.0, wireBytes / 1048576.0);
        final SteadyState steady = report.steady();
        out.printf(Locale.ROOT, "  baseline           %s to its ack, longest pause %.1f ms (not in the figures " +
            "below)%n", Double.isNaN(steady.baselineMs()) ? "not acknowledged" :
            String.format(Locale.ROOT, "%.1f ms", steady.baselineMs()), steady.baselineMaxPauseUs() / 1e3);
        out.printf(Locale.ROOT, "  output             held p50 %.1f ms p99 %.1f ms before its release; commit p50 " +
            "%.1f ms p99 %.1f ms (the last %d s before the fault; p99 since the baseline, warm-up included: held " +
            "%.1f ms, commit %.1f ms)%n", steady.outputHoldP50Us() / 1e3, steady.outputHoldP99Us() / 1e3,
            steady.commitP50Us() / 1e3, steady.commitP99Us() / 1e3,
            dev.tandem.core.metrics.LatencyDistribution.WINDOW_SECONDS, steady.outputHoldP99SinceBaselineUs() / 1e3,
            steady.commitP99SinceBaselineUs() / 1e3);
        out.printf(Locale.ROOT, "  stages             %s%n", steady.describeStages());
        final LinkFigures link = report.link();
        if (link.drop() != null || link.reconnects() > 0)
        {
            out.printf(Locale.ROOT, "  link               %s%s%n", link.drop() == null ? "" : "dropped at " +
                link.drop().atMs() + " ms for " + link.drop().forMs() + " ms; ", link.describe());
        }
        for (final String warning : report.warnings())
        {
            out.printf(Locale.ROOT, "  WARNING            %s%n", warning);
        }
        out.printf(Locale.ROOT, "  verification       %s%n", report.verified() ? "PASSED: balances, ledger, " +
            "replies" + (options.digests() ? ", the guest digest at the recovery epoch" : "") + " and ownership " +
            "all agree" : "FAILED: " + String.join("; ", report.failures()));
    }

    private static Process start(final Path dir, final String role, final String heap, final List<String> args)
        throws IOException
    {
        // each child's temporary files (lz4-java's extracted native library) stay in the run directory
        final Path tmp = Files.createDirectories(dir.resolve("tmp"));
        return new ProcessBuilder(ChildJvm.command(heap, tmp, FailoverNode.class, args)).redirectErrorStream(true)
            .redirectOutput(dir.resolve(role + ".out").toFile()).start();
    }

    private static List<String> join(final List<String> first, final List<String> second)
    {
        final List<String> all = new ArrayList<>(first);
        all.addAll(second);
        return all;
    }

    /**
     * @return the words of the node's ready line ("STANDBY READY on host:port client-port N", "ACTIVE READY pid P
     *         client-port N").
     */
    private static String[] readyLine(final Path file, final String text) throws IOException
    {
        for (final String line : Files.readAllLines(file))
        {
            if (line.startsWith(text))
            {
                final String[] words = line.trim().split(" ");
                if (words.length >= 6 && "client-port".equals(words[4]))
                {
                    return words;
                }
                throw new IOException("unexpected ready line in " + file + ": " + line);
            }
        }
        throw new IOException("no line starting '" + text + "' in " + file);
    }

    /**
     * A condition to wait for.
     */
    @FunctionalInterface
    private interface Condition
    {
        boolean holds() throws IOException;
    }

    /**
     * Waits for the baseline's ack, saying once a second how far the copy is, with an ETA from the rate so far (of
     * the current round: a live baseline's later rounds copy only what the guest dirtied meanwhile). Gives up only
     * after 60 s without progress, not after 60 s in all: a large guest's baseline may take longer.
     */
    private static void awaitBaseline(final Path acks, final Path statusFile, final Process active,
        final PrintStream out) throws IOException, InterruptedException
    {
        final long startNs = System.nanoTime();
        long lastReportNs = startNs;
        long lastProgressNs = startNs;
        long lastCopied = -1;
        while (lastAck(acks) < 1)
        {
            if (!active.isAlive())
            {
                throw new IOException("process " + active.pid() + " exited (" + active.exitValue() +
                    ") while waiting for the baseline to be acknowledged");
            }
            Thread.sleep(5);
            final long now = System.nanoTime();
            if (now - lastReportNs < TimeUnit.SECONDS.toNanos(1))
            {
                continue;
            }
            lastReportNs = now;
            final Map<String, String> status = readKeyValues(statusFile);
            final long copied = Long.parseLong(status.getOrDefault("baseline_pages_copied", "0")) *
                SimulatedVmm.PAGE_SIZE + Long.parseLong(status.getOrDefault("baseline_disk_sent", "0"));
            final long left = Long.parseLong(status.getOrDefault("baseline_pages_left", "0")) * SimulatedVmm.PAGE_SIZE +
                Long.parseLong(status.getOrDefault("baseline_disk_bytes", "0")) -
                Long.parseLong(status.getOrDefault("baseline_disk_sent", "0"));
            if (copied != lastCopied)
            {
                lastCopied = copied;
                lastProgressNs = now;
            }
            else if (now - lastProgressNs > TimeUnit.SECONDS.toNanos(60))
            {
                throw new IOException("the baseline made no progress for 60 s: " + status);
            }
            final double elapsedS = (now - startNs) / 1e9;
            final double rate = copied / Math.max(1e-3, elapsedS);
            out.printf(Locale.ROOT, "baseline round %s: %.0f MiB copied, %.0f MiB left, ETA %s%n",
                status.getOrDefault("baseline_round", "?"), copied / 1048576.0, left / 1048576.0,
                rate <= 0 ? "unknown" : String.format(Locale.ROOT, "%.0f s", left / rate));
        }
    }

    private static void await(final Condition condition, final String what, final Process process)
        throws IOException, InterruptedException
    {
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!condition.holds())
        {
            if (System.nanoTime() > deadline)
            {
                throw new IOException("timed out waiting for " + what);
            }
            if (!process.isAlive() && !condition.holds())
            {
                throw new IOException("process " + process.pid() + " exited (" + process.exitValue() +
                    ") while waiting for " + what);
            }
            Thread.sleep(5);
        }
    }

    private static void awaitText(final Path file, final String text, final Process process)
        throws IOException, InterruptedException
    {
        try
        {
            await(() -> Files.exists(file) && Files.readString(file).contains(text), "'" + text + "' in " + file,
                process);
        }
        catch (final IOException ex)
        {
            // the node's own words say why it stopped; its directory is gone by the time anyone looks
            final List<String> lines = Files.exists(file) ? Files.readAllLines(file) : List.of();
            throw new IOException(ex.getMessage() + "; its output ends:\n  " +
                String.join("\n  ", lines.subList(Math.max(0, lines.size() - 15), lines.size())), ex);
        }
    }

    static long lastAck(final Path acks) throws IOException
    {
        if (!Files.exists(acks))
        {
            return 0;
        }
        long last = 0;
        for (final String line : Files.readAllLines(acks, StandardCharsets.UTF_8))
        {
            if (line.startsWith("ack "))
            {
                last = Math.max(last, Long.parseLong(line.substring(4).trim()));
            }
        }
        return last;
    }

    private static long countReplies(final Path log) throws IOException
    {
        if (!Files.exists(log))
        {
            return 0;
        }
        try (var lines = Files.lines(log))
        {
            return lines.filter(line -> line.startsWith("reply ")).count();
        }
    }

    private static String tail(final Path file, final int lines) throws IOException
    {
        if (!Files.exists(file))
        {
            return "(no " + file.getFileName() + ")";
        }
        final List<String> all = Files.readAllLines(file);
        return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    }

    private static String lastLine(final Path file) throws IOException
    {
        if (!Files.exists(file))
        {
            return "";
        }
        final List<String> lines = Files.readAllLines(file);
        for (int i = lines.size() - 1; i >= 0; i--)
        {
            if (lines.get(i).contains("ckpt/s"))
            {
                return lines.get(i);
            }
        }
        return "";
    }

    private static Map<String, String> readKeyValues(final Path file) throws IOException
    {
        final Map<String, String> values = new HashMap<>();
        if (!Files.exists(file))
        {
            return values;
        }
        for (final String line : Files.readAllLines(file))
        {
            final int space = line.indexOf(' ');
            if (space > 0)
            {
                values.put(line.substring(0, space), line.substring(space + 1));
            }
        }
        return values;
    }
}
