package dev.tandem.bench;

import dev.tandem.core.failover.FileArbiter;
import dev.tandem.core.failover.PromotionArbiter;
import dev.tandem.zookeeper.ZooKeeperArbiter;
import org.HdrHistogram.Histogram;
import org.apache.curator.test.TestingServer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * How long a promotion (and an active that lost its standby) waits for its arbiter: the latency of
 * {@link PromotionArbiter#tryClaim} for the {@link FileArbiter} on a local directory and the
 * {@link ZooKeeperArbiter} against an in-process ZooKeeper server on loopback (standalone, transaction log forced to
 * the local disk), beside the floor each stands on, measured in the same run: a plain create-new-file with
 * {@code SYNC} for the file arbiter.
 * <p>
 * A won claim is what a promotion pays (file: list, create with SYNC, list; ZooKeeper: read with version, then
 * conditional write). A refused claim is what a superseded side pays to learn it. A real ensemble adds a quorum
 * round trip over the network to every won claim; a shared file system adds its own round trips.
 * <pre>
 * java -cp bench/target/benchmarks.jar dev.tandem.bench.ArbiterClaimLatency [claims=2000] [warmup=500]
 * </pre>
 */
public final class ArbiterClaimLatency
{
    private ArbiterClaimLatency()
    {
    }

    /**
     * @param args number of measured claims of each kind (default 2000), warm-up claims (default 500).
     * @throws Exception if the directory or the server cannot be made.
     */
    public static void main(final String[] args) throws Exception
    {
        final int claims = args.length > 0 ? Integer.parseInt(args[0]) : 2_000;
        final int warmup = args.length > 1 ? Integer.parseInt(args[1]) : 500;
        System.out.printf(Locale.ROOT, "arbiter claim latency, %d claims of each kind after %d warm-up, JDK %s, " +
            "%d cores%n", claims, warmup, Runtime.version(), Runtime.getRuntime().availableProcessors());
        System.out.println("| claim | p50 ms | p99 ms | p99.9 ms | max ms |");
        System.out.println("|---|---|---|---|---|");
        final Path dir = Files.createTempDirectory("tandem-arbiter-latency");
        try
        {
            final Histogram floor = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
            for (int i = 0; i < warmup + claims; i++)
            {
                final long start = System.nanoTime();
                Files.write(dir.resolve("floor-" + i), new byte[8], java.nio.file.StandardOpenOption.CREATE_NEW,
                    java.nio.file.StandardOpenOption.WRITE, java.nio.file.StandardOpenOption.SYNC);
                if (i >= warmup)
                {
                    floor.recordValue(System.nanoTime() - start);
                }
            }
            print("floor: create-new file with SYNC", floor);
            measure("FileArbiter", new FileArbiter(dir.resolve("arbiter"), "bench"), claims, warmup);
            try (TestingServer server = new TestingServer(true);
                ZooKeeperArbiter arbiter = new ZooKeeperArbiter(server.getConnectString(), "/tandem/latency",
                    Duration.ofSeconds(10), Duration.ofSeconds(5)))
            {
                measure("ZooKeeperArbiter", arbiter, claims, warmup);
            }
        }
        finally
        {
            ProtectedGuest.delete(dir);
        }
    }

    private static void measure(final String name, final PromotionArbiter arbiter, final int claims,
        final int warmup)
    {
        final Histogram won = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
        final Histogram refused = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
        long generation = 0;
        for (int i = 0; i < warmup + claims; i++)
        {
            long start = System.nanoTime();
            claim(arbiter, ++generation, true);
            final long wonNs = System.nanoTime() - start;
            start = System.nanoTime();
            claim(arbiter, generation, false);
            final long refusedNs = System.nanoTime() - start;
            if (i >= warmup)
            {
                won.recordValue(wonNs);
                refused.recordValue(refusedNs);
            }
        }
        print(name + " won claim", won);
        print(name + " refused claim", refused);
    }

    private static void claim(final PromotionArbiter arbiter, final long generation, final boolean expectWin)
    {
        if (arbiter.tryClaim("vm", generation) != expectWin)
        {
            throw new IllegalStateException("claim of generation " + generation + " should have " +
                (expectWin ? "won" : "been refused"));
        }
    }

    private static void print(final String what, final Histogram histogram)
    {
        System.out.printf(Locale.ROOT, "| %-34s | %8.2f | %8.2f | %8.2f | %8.2f |%n", what,
            histogram.getValueAtPercentile(50) / 1e6, histogram.getValueAtPercentile(99) / 1e6,
            histogram.getValueAtPercentile(99.9) / 1e6, histogram.getMaxValue() / 1e6);
    }
}
