package dev.tandem.examples;

import dev.tandem.examples.bank.BankProgram;
import dev.tandem.examples.bank.BankState;
import dev.tandem.vmm.sim.Workload;

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
 * client JVM sending transfers through the guest's virtual NIC. The active is killed with SIGKILL; the standby
 * promotes; the client reconnects to the promoted guest and finishes. Then everything is checked: the total of
 * balances is unchanged, every transfer the client saw answered is in the promoted guest's balances and ledger
 * with the outcome the client saw, the promoted guest equals the active at the recovery checkpoint, and that
 * checkpoint is at or after the last one the active saw acknowledged.
 */
public final class FailoverHarness
{
    /**
     * Harness settings.
     *
     * @param memoryBytes guest memory.
     * @param workload    background workload of the guest.
     * @param periodMs    checkpoint period.
     * @param killAfterMs when to kill the active after the client started; negative picks one from the seed.
     * @param seed        seed of the workload, the transfers and the kill moment.
     * @param transfers   the most transfers the client makes; it stops starting new ones two seconds after the
     *                    kill.
     * @param accounts    accounts of the bank.
     * @param digests     record the active's digest at every checkpoint (adds a full read of the guest to each
     *                    pause) and compare the promoted guest with it.
     * @param policy      the active's checkpoint policy: {@code fixed} or {@code adaptive}.
     * @param killPhase   where in the cycle the active dies: {@code mid-epoch} (SIGKILL at a moment),
     *                    {@code delta-send} (right after barrier N went out, pages of N in flight) or
     *                    {@code epoch-end} (right after the end of N went out, before its ack: the standby commits
     *                    and applies N with the active already gone).
     */
    public record Options(long memoryBytes, Workload workload, long periodMs, long killAfterMs, long seed,
        int transfers, int accounts, boolean digests, String killPhase, String policy)
    {
        /** Kill by SIGKILL at a moment in the middle of an epoch. */
        public static final String MID_EPOCH = "mid-epoch";
    }

    /**
     * What the run found. Times in milliseconds unless named otherwise.
     *
     * @param verified        every check passed.
     * @param failures        the checks that failed.
     * @param recoveryEpoch   the epoch the standby resumed from.
     * @param lastAckedEpoch  the last epoch the active saw acknowledged.
     * @param ackedTransfers  transfers the client saw answered.
     * @param lostTransfers   answered transfers missing from the promoted guest.
     * @param rtoMs           kill to the first reply from the promoted guest.
     * @param detectionMs     last frame of the active to the decision to promote.
     * @param promotionMs     decision to the promoted guest running.
     * @param pauseP99Us      the active's checkpoint pause p99 before the kill.
     * @param killAfterMs     when the active was killed after the client started.
     * @param activeStatus    the active's last status before the kill: raw_bytes, wire_bytes, policy, period_ns,
     *                        output_hold_p99_ns.
     */
    public record Report(boolean verified, List<String> failures, long recoveryEpoch, long lastAckedEpoch,
        long ackedTransfers, long lostTransfers, double rtoMs, double detectionMs, double promotionMs,
        long pauseP99Us, long killAfterMs, Map<String, String> activeStatus)
    {
        /**
         * @return the report as a JSON object.
         */
        public String toJson()
        {
            final StringBuilder failuresJson = new StringBuilder("[");
            for (int i = 0; i < failures.size(); i++)
            {
                failuresJson.append(i == 0 ? "" : ", ").append('"')
                    .append(failures.get(i).replace("\\", "\\\\").replace("\"", "\\\"")).append('"');
            }
            failuresJson.append(']');
            return String.format(Locale.ROOT, "{\n  \"verified\": %s,\n  \"recovery_epoch\": %d,\n" +
                "  \"last_acked_epoch\": %d,\n  \"acked_transfers\": %d,\n  \"lost_transfers\": %d,\n" +
                "  \"rto_ms\": %.1f,\n  \"detection_ms\": %.1f,\n  \"promotion_ms\": %.1f,\n  \"pause_p99_us\": %d,\n" +
                "  \"kill_after_ms\": %d,\n  \"raw_bytes\": %s,\n  \"wire_bytes\": %s,\n  \"policy\": \"%s\",\n" +
                "  \"period_ms_final\": %.2f,\n  \"output_hold_p99_us\": %d,\n  \"failures\": %s\n}\n", verified,
                recoveryEpoch, lastAckedEpoch, ackedTransfers, lostTransfers, rtoMs, detectionMs, promotionMs, pauseP99Us,
                killAfterMs, activeStatus.getOrDefault("raw_bytes", "0"), activeStatus.getOrDefault("wire_bytes", "0"),
                activeStatus.getOrDefault("policy", "?"),
                Long.parseLong(activeStatus.getOrDefault("period_ns", "0")) / 1e6,
                Long.parseLong(activeStatus.getOrDefault("output_hold_p99_ns", "0")) / 1000, failuresJson);
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
     * @throws IOException if a process cannot be started or a file read.
     * @throws InterruptedException if interrupted.
     */
    public static Report run(final Options options, final Path dir, final PrintStream out)
        throws IOException, InterruptedException
    {
        final long killAfterMs = options.killAfterMs() >= 0 ? options.killAfterMs() :
            1500 + new SplittableRandom(options.seed()).nextLong(2000);
        final List<String> guest = List.of("--memory", Long.toString(options.memoryBytes()), "--workload",
            options.workload().name(), "--seed", Long.toString(options.seed()), "--bank-accounts",
            Integer.toString(options.accounts()), "--disk", "16m", "--arbiter", dir.resolve("arbiter").toString(),
            "--digests", Boolean.toString(options.digests()));
        final Path standbyDir = dir.resolve("standby");
        final Path activeDir = dir.resolve("active");
        final Path clientDir = dir.resolve("client");
        final Process standby = start(dir, "standby", "1g", join(List.of("standby", "--dir", standbyDir.toString(),
            "--listen", "127.0.0.1:0", "--client-port", "0"), guest));
        Process active = null;
        Process client = null;
        try
        {
            // every port is the kernel's choice, read back from the node: a port probed free and bound later can
            // be taken in between (an ephemeral source port of another connection), and the node would not start
            awaitText(dir.resolve("standby.out"), "STANDBY READY", standby);
            final String[] standbyReady = readyLine(dir.resolve("standby.out"), "STANDBY READY");
            final String replicationEndpoint = standbyReady[3];
            final String standbyClientPort = standbyReady[5];
            final List<String> activeArgs = new ArrayList<>(List.of("active", "--dir", activeDir.toString(),
                "--standby", replicationEndpoint, "--client-port", "0",
                "--period-ms", Long.toString(options.periodMs()), "--policy", options.policy()));
            if (!Options.MID_EPOCH.equals(options.killPhase()))
            {
                activeArgs.addAll(List.of("--kill-phase", options.killPhase()));
            }
            active = start(dir, "active", "1g", join(activeArgs, guest));
            awaitText(dir.resolve("active.out"), "ACTIVE READY", active);
            final String activeClientPort = readyLine(dir.resolve("active.out"), "ACTIVE READY")[5];
            final Path acks = activeDir.resolve(FailoverNode.ACKS);
            await(() -> lastAck(acks) >= 1, "the baseline to be acknowledged", active);
            out.printf(Locale.ROOT, "Tandem failover harness: %d MiB guest (%s + bank of %d accounts), checkpoint " +
                "every %d ms; killing the active %d ms after the client starts%n", options.memoryBytes() >> 20,
                options.workload().name().toLowerCase(Locale.ROOT), options.accounts(), options.periodMs(), killAfterMs);
            client = start(dir, "client", "256m", List.of("client", "--dir", clientDir.toString(), "--targets",
                "127.0.0.1:" + activeClientPort + ",127.0.0.1:" + standbyClientPort, "--transfers",
                Integer.toString(options.transfers()), "--accounts", Integer.toString(options.accounts()), "--seed",
                Long.toString(options.seed()), "--duration-ms", Long.toString(killAfterMs + 2000)));
            final long clientStart = System.currentTimeMillis();
            while (System.currentTimeMillis() - clientStart < killAfterMs)
            {
                Thread.sleep(Math.min(500, Math.max(1, killAfterMs - (System.currentTimeMillis() - clientStart))));
                out.println(lastLine(dir.resolve("active.out")) + " | transfers answered " +
                    countReplies(clientDir.resolve(FailoverNode.CLIENT_LOG)));
            }
            final Map<String, String> activeStatus = readKeyValues(activeDir.resolve(FailoverNode.STATUS));
            final long pauseP99Us = Long.parseLong(activeStatus.getOrDefault("pause_p99_us", "-1"));
            final long killMillis = System.currentTimeMillis();
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
                throw new IOException("the active did not reach its kill point " + options.killPhase());
            }
            final long lastAck = lastAck(acks);
            out.printf(Locale.ROOT, "active (pid %d) killed at %s; last ack it saw: epoch %d%n", active.pid(),
                options.killPhase(), lastAck);
            final Path promotionFile = standbyDir.resolve(FailoverNode.PROMOTION);
            await(() -> Files.exists(promotionFile), "the standby to promote", standby);
            final Map<String, String> promotion = readKeyValues(promotionFile);
            out.println("standby promoted: " + promotion.getOrDefault("reason", promotion.toString()));
            if (!client.waitFor(120, TimeUnit.SECONDS))
            {
                client.destroyForcibly();
            }
            final OutputStream commands = standby.getOutputStream();
            commands.write("dump\n".getBytes(StandardCharsets.UTF_8));
            commands.flush();
            awaitText(dir.resolve("standby.out"), "DUMPED", standby);
            return verify(options, dir, promotion, lastAck, killMillis, pauseP99Us, killAfterMs, activeStatus, out);
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
            standby.getOutputStream().close();
            if (!standby.waitFor(10, TimeUnit.SECONDS))
            {
                standby.destroyForcibly();
            }
        }
    }

    private static Report verify(final Options options, final Path dir, final Map<String, String> promotion,
        final long lastAck, final long killMillis, final long pauseP99Us, final long killAfterMs,
        final Map<String, String> activeStatus, final PrintStream out) throws IOException
    {
        final List<String> failures = new ArrayList<>();
        if (!promotion.containsKey("epoch"))
        {
            failures.add("the standby refused to promote: " + promotion);
            return new Report(false, failures, -1, lastAck, 0, 0, -1, -1, -1, pauseP99Us, killAfterMs, activeStatus);
        }
        final long recoveryEpoch = Long.parseLong(promotion.get("epoch"));
        if (recoveryEpoch < lastAck)
        {
            failures.add("recovered epoch " + recoveryEpoch + " is before the last ack " + lastAck);
        }
        if (options.digests())
        {
            final Map<String, String> digests = new HashMap<>();
            for (final String line : Files.readAllLines(dir.resolve("active").resolve(FailoverNode.DIGESTS)))
            {
                final String[] parts = line.split(" ");
                if (parts.length == 2)
                {
                    digests.put(parts[0], parts[1]);
                }
            }
            if (!promotion.get("digest").equals(digests.get(Long.toString(recoveryEpoch))))
            {
                failures.add("promoted guest digest " + promotion.get("digest") + " differs from the active's " +
                    digests.get(Long.toString(recoveryEpoch)) + " at epoch " + recoveryEpoch);
            }
        }
        final BankState state = BankState.parse(
            Files.readString(dir.resolve("standby").resolve(FailoverNode.DUMP)), options.accounts());
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
        long lost = 0;
        long firstReplyMillis = -1;
        for (final String line : Files.readAllLines(dir.resolve("client").resolve(FailoverNode.CLIENT_LOG)))
        {
            final String[] parts = line.split(" ");
            if ("first-reply".equals(parts[0]) && firstReplyMillis < 0)
            {
                firstReplyMillis = Long.parseLong(parts[1]);
            }
            if (!"reply".equals(parts[0]))
            {
                continue;
            }
            acked++;
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
            failures.add(lost + " transfers the client saw answered are missing from the promoted guest");
        }
        final String clientEnd = Files.readAllLines(dir.resolve("client").resolve(FailoverNode.CLIENT_LOG)).stream()
            .filter(line -> line.startsWith("done") || line.startsWith("incomplete")).findFirst().orElse("no end");
        if (!clientEnd.startsWith("done"))
        {
            failures.add("the client did not finish: " + clientEnd);
        }
        if (firstReplyMillis < 0)
        {
            failures.add("the client never got a reply after the kill (it finished before it?)");
        }
        final double rtoMs = firstReplyMillis < 0 ? -1 : firstReplyMillis - killMillis;
        final Report report = new Report(failures.isEmpty(), failures, recoveryEpoch, lastAck, acked, lost, rtoMs,
            Long.parseLong(promotion.get("detection_ns")) / 1e6, Long.parseLong(promotion.get("promotion_ns")) / 1e6,
            pauseP99Us, killAfterMs, activeStatus);
        out.printf(Locale.ROOT, "%nSummary%n");
        out.printf(Locale.ROOT, "  recovery point     epoch %d (last ack the active saw: %d), generation %s%n",
            recoveryEpoch, lastAck, promotion.get("generation"));
        out.printf(Locale.ROOT, "  recovery time      %.1f ms from SIGKILL to the first reply of the promoted guest " +
            "(detection %.1f ms, promotion %.1f ms)%n", rtoMs, report.detectionMs(), report.promotionMs());
        out.printf(Locale.ROOT, "  transfers          %d answered, %d lost; total of balances %d%n", acked, lost,
            total);
        out.printf(Locale.ROOT, "  checkpoint pause   p99 %d us before the kill%s%n", pauseP99Us,
            options.digests() ? " (includes the verification digest of every checkpoint)" : "");
        final long rawBytes = Long.parseLong(activeStatus.getOrDefault("raw_bytes", "0"));
        final long wireBytes = Long.parseLong(activeStatus.getOrDefault("wire_bytes", "0"));
        out.printf(Locale.ROOT, "  replication        %s policy, period %.1f ms at the kill; %.1f MiB of pages sent " +
            "as %.1f MiB on the wire; output held p99 %.1f ms%n", activeStatus.getOrDefault("policy", "?"),
            Long.parseLong(activeStatus.getOrDefault("period_ns", "0")) / 1e6, rawBytes / 1048576.0,
            wireBytes / 1048576.0, Long.parseLong(activeStatus.getOrDefault("output_hold_p99_ns", "0")) / 1e6);
        out.printf(Locale.ROOT, "  verification       %s%n", failures.isEmpty() ? "PASSED: balances, ledger, " +
            "replies" + (options.digests() ? " and the guest digest at the recovery epoch" : "") + " all agree" :
            "FAILED: " + String.join("; ", failures));
        return report;
    }

    private static Process start(final Path dir, final String role, final String heap, final List<String> args)
        throws IOException
    {
        return new ProcessBuilder(ChildJvm.command(heap, FailoverNode.class, args)).redirectErrorStream(true)
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
