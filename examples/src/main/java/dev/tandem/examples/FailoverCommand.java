package dev.tandem.examples;

import dev.tandem.vmm.sim.Workload;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

/**
 * {@code failover}: the {@link FailoverHarness} from the command line. Its run directory (node directories, logs,
 * the children's temporary files) is made under {@code --work-dir} and removed at the end, unless {@code --keep} or
 * the run failed: then its path is printed for the logs.
 */
@Command(name = "failover", sortOptions = false, usageHelpWidth = 110,
    description = {"Kill (or partition) the active of a protected bank guest and verify the standby took over and "
        + "only one side owned the guest at a time (three JVMs on loopback: standby, active, client). With "
        + "--link-drop the link first drops and heals: the active must reconnect before the kill. With --switchover "
        + "the active hands the guest over (planned), or with --failback it is killed; then its host restarts as "
        + "the new active's standby, and the new active is killed in turn: two failovers, both verified."},
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {TandemExamples.EXIT_OK, TandemExamples.EXIT_FAILED, TandemExamples.EXIT_USAGE})
final class FailoverCommand implements Callable<Integer>
{
    private final PrintStream out;

    @Spec
    CommandSpec spec;

    @Option(names = "--guest-memory", paramLabel = "SIZE", defaultValue = "64m", converter = CommandLine.Size.class,
        description = "guest memory, a multiple of 4k from 16m (default ${DEFAULT-VALUE})")
    long memoryBytes;

    @Option(names = "--workload", paramLabel = "NAME", defaultValue = "hotset",
        description = "background workload beside the bank: uniform, hotset, sequential, idle (default " +
            "${DEFAULT-VALUE})")
    String workload;

    @Option(names = "--period", paramLabel = "TIME", defaultValue = "10ms", converter = CommandLine.Millis.class,
        description = "checkpoint period, 1ms to 10s (default ${DEFAULT-VALUE})")
    long periodMs;

    @Option(names = "--kill-after", paramLabel = "TIME", converter = CommandLine.Millis.class,
        description = "kill the active this long after the client starts, more than 0 (default: 1.5-3.5s by seed; " +
            "with --link-drop, 1.5-3.5s after the drop's end; with --failback, the first of the two kills)")
    Long killAfterMs;

    @Option(names = "--kill-phase", paramLabel = "PHASE",
        description = "mid-epoch (SIGKILL, default) | delta-send | epoch-end (the active halts there)")
    String killPhase;

    @Option(names = "--partition-after", paramLabel = "TIME", converter = CommandLine.Millis.class,
        description = "instead of a kill, cut the network between active and standby this long after the client " +
            "starts (a relay black-holes both ways; both hosts keep running)")
    Long partitionAfterMs;

    @Option(names = "--link-drop", paramLabel = "AT:FOR", converter = CommandLine.LinkDropTimes.class,
        description = {"before the kill, reset every connection between active and standby AT after the client " +
            "starts and refuse new ones for FOR (e.g. 1s:100ms): the active reconnects and resends what changed; " +
            "the run fails unless it reconnected before the kill. FOR must be shorter than --failure-timeout (the " +
            "active retries at once, then 50, 100, 200 ms... apart: leave it room). The kill comes after the " +
            "drop's end (default: 1.5-3.5s after it by seed). Not with --partition-after"})
    FailoverHarness.LinkDrop linkDrop;

    @Option(names = "--switchover", paramLabel = "AT", converter = CommandLine.Millis.class,
        description = {"AT after the client starts, ask the active for a planned switchover: one last " +
            "checkpoint, acknowledged, and the standby resumes the guest from it under the next generation (the " +
            "old copy stays stopped). Then the old active becomes a standby of the new active holding that " +
            "checkpoint (only what changed since is resent), and the new active is killed " +
            FailoverHarness.REPROTECTED_RUN_MS + " ms after it. Not with --partition-after, --link-drop, " +
            "--kill-after or --failback"})
    Long switchoverAtMs;

    @Option(names = "--durability", paramLabel = "MODE", defaultValue = "memory",
        description = {"memory (default): the standby's recovery image lives in its process; durable: in files of " +
            "its directory, each epoch journaled and forced before its ack, so a restarted standby recovers it"})
    String durability;

    @Option(names = "--kill-standby-after", paramLabel = "TIME", converter = CommandLine.Millis.class,
        description = {"TIME after the client starts, SIGKILL the standby process and restart it on its directory " +
            "and ports; the active reconnects (durable: a quick resync from the recovered epoch, which is checked " +
            "against the active's digest; memory: a whole baseline), then the run goes on to the kill. Only with " +
            "a kill of the active, at least 2 s before it"})
    Long killStandbyAfterMs;

    @Option(names = "--failback",
        description = {"after the kill, restart the killed host as a fresh standby (a full baseline) that the " +
            "promoted guest protects itself onto at its generation, then kill the promoted side " +
            FailoverHarness.REPROTECTED_RUN_MS + " ms after that baseline: two failovers. Not with " +
            "--partition-after"})
    boolean failback;

    @Option(names = "--failure-timeout", paramLabel = "TIME", converter = CommandLine.Millis.class,
        defaultValue = "" + FailoverHarness.Options.FAILURE_TIMEOUT_MS_DEFAULT + "ms",
        description = "silence of the active after which the standby promotes, 60ms to 600s (default " +
            "${DEFAULT-VALUE})")
    long failureTimeoutMs;

    @Option(names = "--arbiter", paramLabel = "NAME", defaultValue = FailoverHarness.Options.FILE_ARBITER,
        description = "file (a shared directory, default) | zookeeper (a real server the harness starts on loopback)")
    String arbiter;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "1",
        description = "seed of workload, transfers and kill moment (default ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--transfers", paramLabel = "N", defaultValue = "100000",
        description = "most transfers the client makes, at least 1 (default ${DEFAULT-VALUE}; it stops 2 s after " +
            "the last fault; at most what the guest's ledger holds: 32768, or 131072 with two handovers)")
    int transfers;

    @Option(names = "--no-digests",
        description = "do not digest the guest at every checkpoint (shorter pauses, no digest check)")
    boolean noDigests;

    @Option(names = "--policy", paramLabel = "NAME", defaultValue = "fixed",
        description = "fixed (default) | adaptive checkpoint period (2-100 ms, pause 2 ms, output 100 ms)")
    String policy;

    @Option(names = "--report", paramLabel = "FILE",
        description = "write the report as JSON (its directory must exist)")
    Path report;

    @Option(names = "--work-dir", paramLabel = "DIR",
        description = "where the run directory is made (default: the system's temporary directory)")
    Path workDir;

    @Option(names = "--keep",
        description = "keep the run directory (logs, node directories); a failed run keeps it anyway")
    boolean keep;

    @Option(names = "--plaintext",
        description = "replicate over plaintext TCP, to compare; by default the run makes a throwaway CA and host " +
            "certificates in its directory and replicates over mutual TLS 1.3")
    boolean plaintext;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "show this help")
    boolean help;

    FailoverCommand(final PrintStream out)
    {
        this.out = out;
    }

    @Override
    public Integer call() throws IOException, InterruptedException
    {
        final FailoverHarness.Options options = options();
        final Path base = workDir != null ? Files.createDirectories(workDir) : Path.of(System.getProperty(
            "java.io.tmpdir"));
        final Path dir = Files.createTempDirectory(base, "tandem-failover-");
        boolean passed = false;
        try
        {
            final FailoverHarness.Report result = FailoverHarness.run(options, dir, out);
            if (report != null)
            {
                Files.writeString(report, result.toJson());
                out.println("  report             " + report);
            }
            passed = result.verified();
            return passed ? TandemExamples.OK : TandemExamples.FAILED;
        }
        finally
        {
            if (keep || !passed)
            {
                // a failed run's logs are what its reader needs next
                out.println("  logs               " + dir + (keep ? "" : " (kept: the run did not pass)"));
            }
            else
            {
                deleteRecursively(dir);
            }
        }
    }

    /**
     * Every check of the command line, before anything starts: a mistake found after a minute-long run (a report
     * path in a missing directory) wastes the run.
     */
    FailoverHarness.Options options()
    {
        try
        {
            CommandLine.checkGuest(memoryBytes, periodMs);
        }
        catch (final IllegalArgumentException ex)
        {
            throw refuse(ex.getMessage());
        }
        positive("--kill-after", killAfterMs);
        positive("--partition-after", partitionAfterMs);
        positive("--switchover", switchoverAtMs);
        positive("--kill-standby-after", killStandbyAfterMs);
        if (!List.of("memory", "durable").contains(durability))
        {
            throw refuse("--durability must be memory or durable, not '" + durability + "'");
        }
        if (partitionAfterMs != null && (killAfterMs != null || killPhase != null))
        {
            throw refuse("--partition-after replaces the kill: drop --" + (killAfterMs != null ? "kill-after" :
                "kill-phase"));
        }
        final String phase = killPhase == null ? FailoverHarness.Options.MID_EPOCH : killPhase;
        if (!List.of("mid-epoch", "delta-send", "epoch-end").contains(phase))
        {
            throw refuse("--kill-phase must be mid-epoch, delta-send or epoch-end, not '" + phase + "'");
        }
        if (!List.of(FailoverHarness.Options.FILE_ARBITER, FailoverHarness.Options.ZOOKEEPER_ARBITER)
            .contains(arbiter))
        {
            throw refuse("--arbiter must be file or zookeeper, not '" + arbiter + "'");
        }
        if (!List.of("fixed", "adaptive").contains(policy))
        {
            throw refuse("--policy must be fixed or adaptive, not '" + policy + "'");
        }
        if (transfers < 1)
        {
            throw refuse("--transfers must be at least 1, not " + transfers);
        }
        if (report != null)
        {
            final Path parent = report.toAbsolutePath().getParent();
            if (parent == null || !Files.isDirectory(parent))
            {
                throw refuse("--report " + report + ": directory " + parent + " does not exist");
            }
            if (Files.isDirectory(report) || Files.exists(report) && !Files.isWritable(report) ||
                !Files.isWritable(parent))
            {
                throw refuse("--report " + report + ": cannot write there");
            }
        }
        if (workDir != null && Files.exists(workDir) && !Files.isDirectory(workDir))
        {
            throw refuse("--work-dir " + workDir + " is a file, not a directory");
        }
        final FailoverHarness.Options options = new FailoverHarness.Options(memoryBytes,
            workload("--workload", workload), periodMs, killAfterMs == null ? -1 : killAfterMs, seed, transfers, 256,
            !noDigests, phase, policy, partitionAfterMs == null ? -1 : partitionAfterMs, arbiter, failureTimeoutMs,
            linkDrop, switchoverAtMs == null ? -1 : switchoverAtMs, failback, plaintext, "durable".equals(durability),
            killStandbyAfterMs == null ? -1 : killStandbyAfterMs);
        try
        {
            options.check();
        }
        catch (final IllegalArgumentException ex)
        {
            throw refuse(ex.getMessage());
        }
        return options;
    }

    private void positive(final String option, final Long millis)
    {
        if (millis != null && millis <= 0)
        {
            throw refuse(option + " must be more than 0, not " + millis + "ms");
        }
    }

    private Workload workload(final String option, final String name)
    {
        try
        {
            return Workload.parse(name);
        }
        catch (final IllegalArgumentException ex)
        {
            throw refuse(option + ": " + ex.getMessage());
        }
    }

    private ParameterException refuse(final String message)
    {
        return new ParameterException(spec.commandLine(), message);
    }

    /**
     * @param dir a directory to remove with everything in it.
     * @throws IOException if a file cannot be deleted.
     */
    static void deleteRecursively(final Path dir) throws IOException
    {
        if (!Files.exists(dir))
        {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir))
        {
            for (final Path path : paths.sorted(Comparator.reverseOrder()).toList())
            {
                Files.deleteIfExists(path);
            }
        }
    }
}
