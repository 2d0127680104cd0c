package dev.tandem.zookeeper;

import org.HdrHistogram.Histogram;
import org.apache.curator.test.TestingServer;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * How long a promotion waits for the ZooKeeper arbiter: the latency of {@link ZooKeeperArbiter#tryClaim} against
 * an in-process {@link TestingServer} (standalone, transaction log forced to the local disk as in production),
 * recorded in HdrHistogram and printed as percentiles.
 * <p>
 * Two kinds of claim are timed: a won claim (read with version, then conditional write: two round trips and one
 * log fsync) and a refused one (one read). The numbers are a floor for a real ensemble, where a write also waits
 * for a quorum over the network. Kept with the tests so that the library does not depend on HdrHistogram or
 * curator-test.
 * <p>
 * Run from the root of the tree (the tree's own core classes first, ahead of any tandem jar the class path file
 * names):
 * <pre>
 * mvn -o -q verify -pl core/zookeeper -am -DskipTests
 * mvn -o -q dependency:build-classpath -pl core/zookeeper -Dmdep.includeScope=test -Dmdep.outputFile=$PWD/cp.txt
 * java -cp core/zookeeper/target/test-classes:core/zookeeper/target/classes:core/target/classes:\
 *     vmm-adapter/target/classes:$(cat cp.txt) dev.tandem.zookeeper.ClaimLatency [claims=10000] [warmup=2000]
 * </pre>
 */
public final class ClaimLatency
{
    private ClaimLatency()
    {
    }

    /**
     * @param args number of measured claims (default 10000), number of warm-up claims (default 2000).
     * @throws Exception if the server does not start.
     */
    public static void main(final String[] args) throws Exception
    {
        final int claims = args.length > 0 ? Integer.parseInt(args[0]) : 10_000;
        final int warmup = args.length > 1 ? Integer.parseInt(args[1]) : 2_000;
        final Histogram won = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
        final Histogram refused = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);

        try (TestingServer server = new TestingServer(true);
            ZooKeeperArbiter arbiter = new ZooKeeperArbiter(server.getConnectString(), "/tandem/latency",
                Duration.ofSeconds(10), Duration.ofSeconds(5)))
        {
            long generation = 0;
            for (int i = 0; i < warmup; i++)
            {
                claim(arbiter, ++generation, true);
                claim(arbiter, generation, false);
            }
            for (int i = 0; i < claims; i++)
            {
                long start = System.nanoTime();
                claim(arbiter, ++generation, true);
                won.recordValue(System.nanoTime() - start);

                start = System.nanoTime();
                claim(arbiter, generation, false);
                refused.recordValue(System.nanoTime() - start);
            }
        }

        System.out.printf("tryClaim latency, %d claims after %d warm-up, in-process TestingServer, JDK %s%n",
            claims, warmup, Runtime.version());
        print("won (read + conditional write)", won);
        print("refused (read only)", refused);
    }

    private static void claim(final ZooKeeperArbiter arbiter, final long generation, final boolean expectWin)
    {
        if (arbiter.tryClaim("vm", generation) != expectWin)
        {
            throw new IllegalStateException("claim of generation " + generation + " should have " +
                (expectWin ? "won" : "been refused"));
        }
    }

    private static void print(final String what, final Histogram histogram)
    {
        System.out.printf("  %-32s p50 %8.1f us  p90 %8.1f us  p99 %8.1f us  p99.9 %8.1f us  max %8.1f us%n",
            what,
            histogram.getValueAtPercentile(50) / 1000.0,
            histogram.getValueAtPercentile(90) / 1000.0,
            histogram.getValueAtPercentile(99) / 1000.0,
            histogram.getValueAtPercentile(99.9) / 1000.0,
            histogram.getMaxValue() / 1000.0);
    }
}
