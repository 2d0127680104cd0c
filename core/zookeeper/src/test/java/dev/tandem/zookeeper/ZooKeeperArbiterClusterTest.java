package dev.tandem.zookeeper;

import org.apache.curator.test.InstanceSpec;
import org.apache.curator.test.TestingCluster;
import org.apache.zookeeper.client.FourLetterWordMain;
import org.junit.jupiter.api.Test;

import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import static dev.tandem.zookeeper.ZooKeeperServers.SESSION_TIMEOUT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A three-server ensemble loses its leader: claims stall while the other two elect a new one, then succeed again,
 * and no reader ever sees the generation go down.
 */
final class ZooKeeperArbiterClusterTest
{
    private static final Duration OPERATION_TIMEOUT = Duration.ofSeconds(2);

    @Test
    void claimsSurviveTheLossOfTheLeader() throws Exception
    {
        final List<InstanceSpec> specs = new ArrayList<>();
        for (int i = 0; i < 3; i++)
        {
            specs.add(ZooKeeperServers.spec());
        }
        try (TestingCluster cluster = startedCluster(specs);
            ZooKeeperArbiter claimant = arbiter(cluster);
            ZooKeeperArbiter observer = arbiter(cluster))
        {
            long generation = 0;
            for (int i = 0; i < 10; i++)
            {
                final long wanted = ++generation;
                assertTrue(ZooKeeperServers.whenReachable(() -> claimant.tryClaim("vm", wanted)));
            }

            // a second host reads all along: what it sees must only rise
            final AtomicBoolean watching = new AtomicBoolean(true);
            final AtomicLong highestSeen = new AtomicLong();
            final ExecutorService reader = Executors.newSingleThreadExecutor();
            final Future<?> monotonic = reader.submit(() ->
            {
                while (watching.get())
                {
                    try
                    {
                        final long seen = observer.currentGeneration("vm");
                        final long before = highestSeen.getAndAccumulate(seen, Math::max);
                        if (seen < before)
                        {
                            throw new AssertionError("generation went down from " + before + " to " + seen);
                        }
                    }
                    catch (final UncheckedIOException ex)
                    {
                        Thread.sleep(20);
                    }
                }
                return null;
            });
            try
            {
                final InstanceSpec leader = leaderOf(cluster);
                assertTrue(cluster.killServer(leader), "killed the leader " + leader);

                // the next claims answer "unreachable" until the two survivors have a leader, then win
                for (int i = 0; i < 10; i++)
                {
                    final long wanted = ++generation;
                    final boolean won = ZooKeeperServers.whenReachable(() -> claimant.tryClaim("vm", wanted));
                    final long stored = claimant.currentGeneration("vm");
                    if (won)
                    {
                        assertEquals(wanted, stored, "a confirmed claim is stored");
                    }
                    else
                    {
                        // only an unconfirmed write of our own, applied after all, can refuse us: it is stored
                        assertTrue(stored >= wanted, "refused " + wanted + " with only " + stored + " stored");
                        generation = stored;
                    }
                }
                assertNotEquals(leader, leaderOf(cluster), "the survivors elected a new leader");
            }
            finally
            {
                watching.set(false);
                monotonic.get(30, TimeUnit.SECONDS);
                reader.shutdownNow();
            }
            final long last = observer.currentGeneration("vm");
            assertTrue(last >= 20 && last == generation, "final generation " + last + ", claimed up to " +
                generation);
            assertTrue(highestSeen.get() <= last);
        }
    }

    private static TestingCluster startedCluster(final List<InstanceSpec> specs) throws Exception
    {
        final TestingCluster cluster = new TestingCluster(specs);
        try
        {
            cluster.start();
        }
        catch (final Exception ex)
        {
            cluster.close();
            throw ex;
        }
        return cluster;
    }

    private static ZooKeeperArbiter arbiter(final TestingCluster cluster)
    {
        return new ZooKeeperArbiter(cluster.getConnectString(), "/tandem/generations", SESSION_TIMEOUT,
            OPERATION_TIMEOUT);
    }

    /**
     * The server that says "Mode: leader" to {@code srvr}, the one four-letter word ZooKeeper answers by default;
     * waits for an election to finish.
     */
    private static InstanceSpec leaderOf(final TestingCluster cluster)
    {
        final InstanceSpec[] leader = new InstanceSpec[1];
        ZooKeeperServers.await("a leader", () ->
        {
            for (final InstanceSpec spec : cluster.getInstances())
            {
                try
                {
                    final String status = FourLetterWordMain.send4LetterWord(spec.getHostname(), spec.getPort(),
                        "srvr", false, 1_000);
                    if (status.contains("Mode: leader"))
                    {
                        leader[0] = spec;
                        return true;
                    }
                }
                catch (final Exception notServing)
                {
                    // killed, or still electing: ask the next one
                }
            }
            return false;
        });
        return leader[0];
    }
}
