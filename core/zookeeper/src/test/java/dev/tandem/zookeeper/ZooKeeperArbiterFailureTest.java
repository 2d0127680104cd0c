package dev.tandem.zookeeper;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.RetryUntilElapsed;
import org.apache.curator.test.KillSession;
import org.apache.curator.test.TestingServer;
import org.apache.zookeeper.ZooKeeper;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static dev.tandem.zookeeper.ZooKeeperServers.OPERATION_TIMEOUT;
import static dev.tandem.zookeeper.ZooKeeperServers.SESSION_TIMEOUT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An arbiter whose ZooKeeper goes away: every call then reports it unreachable within about the operation timeout,
 * never a win that was not stored, and claims work again once the server is back.
 */
final class ZooKeeperArbiterFailureTest
{
    /**
     * Allowance on top of the operation timeout for a call to give up: the bound is "about" the timeout, and a
     * loaded machine may be slow to run the timed-out thread again. Far below what an unbounded call would take
     * (Curator's default retries, or the ZooKeeper client's own 2/3-session read timeout, repeated).
     */
    private static final Duration GIVE_UP_SLACK = Duration.ofSeconds(5);

    private TestingServer server;
    private ZooKeeperArbiter arbiter;

    @BeforeEach
    void start() throws Exception
    {
        server = ZooKeeperServers.standalone();
        arbiter = new ZooKeeperArbiter(server.getConnectString(), "/tandem/generations", SESSION_TIMEOUT,
            OPERATION_TIMEOUT);
    }

    @AfterEach
    void stop() throws Exception
    {
        arbiter.close();
        server.close();
    }

    @Test
    void serverStoppedBeforeAClaimIsUnreachableThenClaimsWorkAgain() throws Exception
    {
        assertTrue(ZooKeeperServers.whenReachable(() -> arbiter.tryClaim("vm", 1)));
        server.stop();

        final UncheckedIOException claim = assertUnreachableInTime(() -> arbiter.tryClaim("vm", 2));
        assertTrue(claim.getMessage().contains(server.getConnectString()), claim.getMessage());
        assertTrue(claim.getMessage().contains("'vm'"), claim.getMessage());
        assertUnreachableInTime(() -> arbiter.currentGeneration("vm"));

        server.restart();
        assertEquals(1, (long)ZooKeeperServers.whenReachable(() -> arbiter.currentGeneration("vm")),
            "the claim made while the server was down was not stored");
        assertTrue(arbiter.tryClaim("vm", 2));
        assertEquals(2, arbiter.currentGeneration("vm"));
    }

    @Test
    void serverStoppedDuringClaimsNeverLosesOrInventsAWin() throws Exception
    {
        // one claimant asks for 1, 2, 3, ... without pause while the server stops and comes back
        final Map<Long, String> outcomes = new ConcurrentHashMap<>();
        final AtomicInteger wins = new AtomicInteger();
        final AtomicInteger unreachable = new AtomicInteger();
        final AtomicBoolean running = new AtomicBoolean(true);
        ZooKeeperServers.whenReachable(() -> arbiter.currentGeneration("vm"));
        final ExecutorService claimant = Executors.newSingleThreadExecutor();
        try
        {
            final Future<Long> last = claimant.submit(() ->
            {
                long generation = 0;
                while (running.get())
                {
                    generation++;
                    try
                    {
                        final boolean won = arbiter.tryClaim("vm", generation);
                        outcomes.put(generation, won ? "won" : "refused");
                        if (won)
                        {
                            wins.incrementAndGet();
                        }
                    }
                    catch (final UncheckedIOException ex)
                    {
                        outcomes.put(generation, "unreachable");
                        unreachable.incrementAndGet();
                    }
                }
                return generation;
            });

            ZooKeeperServers.await("20 wins before the stop", () -> wins.get() >= 20);
            server.stop();
            final int winsAtStop = wins.get();
            ZooKeeperServers.await("3 unreachable claims", () -> unreachable.get() >= 3);
            server.restart();
            ZooKeeperServers.await("20 wins after the restart", () -> wins.get() >= winsAtStop + 20);
            running.set(false);
            final long attempted = last.get(30, TimeUnit.SECONDS);

            final long stored = ZooKeeperServers.whenReachable(() -> arbiter.currentGeneration("vm"));
            long highestWon = 0;
            for (long generation = 1; generation <= attempted; generation++)
            {
                final String outcome = outcomes.get(generation);
                assertNotEquals("refused", outcome, "generation " + generation + ": one claimant, rising " +
                    "generations, nobody to lose to");
                if ("won".equals(outcome))
                {
                    highestWon = generation;
                }
            }
            assertTrue(stored >= highestWon, "stored " + stored + " below the confirmed win " + highestWon);
            assertTrue(stored == highestWon || "unreachable".equals(outcomes.get(stored)),
                "stored " + stored + " is neither the last win nor an unconfirmed write: " + outcomes.get(stored));
        }
        finally
        {
            running.set(false);
            claimant.shutdownNow();
            assertTrue(claimant.awaitTermination(30, TimeUnit.SECONDS));
        }
    }

    @Test
    void expiredSessionIsUnreachableThenANewSessionClaims() throws Exception
    {
        final CuratorFramework client = CuratorFrameworkFactory.builder()
            .connectString(server.getConnectString())
            .sessionTimeoutMs((int)SESSION_TIMEOUT.toMillis())
            .connectionTimeoutMs((int)OPERATION_TIMEOUT.toMillis())
            .retryPolicy(new RetryUntilElapsed((int)OPERATION_TIMEOUT.toMillis(), 100))
            .build();
        final AtomicBoolean lost = new AtomicBoolean();
        client.getConnectionStateListenable().addListener((c, state) ->
        {
            if (state == ConnectionState.LOST)
            {
                lost.set(true);
            }
        });
        client.start();
        try (ZooKeeperArbiter shared = new ZooKeeperArbiter(client, "/tandem/generations", OPERATION_TIMEOUT))
        {
            assertTrue(ZooKeeperServers.whenReachable(() -> shared.tryClaim("vm", 1)));
            final ZooKeeper session = client.getZookeeperClient().getZooKeeper();

            // the server is down, so the session cannot be replaced by a new one before the claim
            server.stop();
            KillSession.kill(session);
            ZooKeeperServers.await("Curator to report the session lost", lost::get);
            assertUnreachableInTime(() -> shared.tryClaim("vm", 2));

            server.restart();
            assertEquals(1, (long)ZooKeeperServers.whenReachable(() -> shared.currentGeneration("vm")));
            assertNotEquals(session.getSessionId(), client.getZookeeperClient().getZooKeeper().getSessionId(),
                "Curator opened a new session");
            assertTrue(shared.tryClaim("vm", 2));
            assertEquals(2, shared.currentGeneration("vm"));
        }
        finally
        {
            client.close();
        }
    }

    @Test
    void interruptedCallerIsUnreachableAndKeepsItsInterrupt()
    {
        ZooKeeperServers.whenReachable(() -> arbiter.currentGeneration("vm"));
        Thread.currentThread().interrupt();
        try
        {
            final UncheckedIOException ex =
                assertThrows(UncheckedIOException.class, () -> arbiter.tryClaim("vm", 1));
            assertInstanceOf(InterruptedIOException.class, ex.getCause());
            assertTrue(Thread.currentThread().isInterrupted(), "the interrupt is left for the caller");
        }
        finally
        {
            Thread.interrupted();
        }
        // the caller gave up, but the claim may still land in the background (its answer is simply lost): the
        // generation is 0 or 1, never more, and the next claim above it wins
        final long after = arbiter.currentGeneration("vm");
        assertTrue(after == 0 || after == 1, "generation " + after + " after one interrupted claim of 1");
        assertTrue(arbiter.tryClaim("vm", after + 1));
    }

    @Test
    void aBoundedCallEvenWhenTheServerNeverExisted()
    {
        try (ZooKeeperArbiter nowhere = new ZooKeeperArbiter("127.0.0.1:1", "/tandem/generations",
            SESSION_TIMEOUT, OPERATION_TIMEOUT))
        {
            final UncheckedIOException ex = assertUnreachableInTime(() -> nowhere.tryClaim("vm", 1));
            assertTrue(ex.getMessage().contains("127.0.0.1:1"), ex.getMessage());
            assertFalse(Thread.currentThread().isInterrupted());
        }
    }

    private static UncheckedIOException assertUnreachableInTime(final Runnable call)
    {
        final long start = System.nanoTime();
        final UncheckedIOException ex = assertThrows(UncheckedIOException.class, call::run);
        final Duration took = Duration.ofNanos(System.nanoTime() - start);
        assertTrue(took.compareTo(OPERATION_TIMEOUT.plus(GIVE_UP_SLACK)) < 0,
            "gave up after " + took + ", operation timeout " + OPERATION_TIMEOUT);
        return ex;
    }
}
