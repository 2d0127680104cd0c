package dev.tandem.zookeeper;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryOneTime;
import org.apache.curator.test.TestingServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static dev.tandem.zookeeper.ZooKeeperServers.OPERATION_TIMEOUT;
import static dev.tandem.zookeeper.ZooKeeperServers.SESSION_TIMEOUT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The claim semantics against one healthy in-process ZooKeeper server: first claim wins, lower and equal ones are
 * refused, racing claimants win each generation exactly once, any VM id is its own znode, bad arguments are refused.
 */
final class ZooKeeperArbiterTest
{
    private static TestingServer server;

    private String root;
    private ZooKeeperArbiter arbiter;

    @BeforeAll
    static void startServer() throws Exception
    {
        server = ZooKeeperServers.standalone();
    }

    @AfterAll
    static void stopServer() throws Exception
    {
        server.close();
    }

    @BeforeEach
    void openArbiter(final TestInfo test)
    {
        // a root per test: the tests share the server, never each other's znodes
        root = "/tandem/" + test.getTestMethod().orElseThrow().getName();
        arbiter = new ZooKeeperArbiter(server.getConnectString(), root, SESSION_TIMEOUT, OPERATION_TIMEOUT);
    }

    @AfterEach
    void closeArbiter()
    {
        arbiter.close();
    }

    @Test
    void firstClaimWinsAndIsReported()
    {
        assertEquals(0, ZooKeeperServers.whenReachable(() -> arbiter.currentGeneration("vm-1")));
        assertTrue(arbiter.tryClaim("vm-1", 1));
        assertEquals(1, arbiter.currentGeneration("vm-1"));
        assertTrue(arbiter.tryClaim("vm-1", 7), "a generation above the stored one is free");
        assertEquals(7, arbiter.currentGeneration("vm-1"));
        assertEquals(0, arbiter.currentGeneration("vm-2"), "VMs do not share generations");
    }

    @Test
    void lowerOrEqualGenerationIsRefused()
    {
        assertTrue(ZooKeeperServers.whenReachable(() -> arbiter.tryClaim("vm", 5)));
        assertFalse(arbiter.tryClaim("vm", 5), "a generation belongs to its first claimant for ever");
        assertFalse(arbiter.tryClaim("vm", 4));
        assertFalse(arbiter.tryClaim("vm", 1));
        assertEquals(5, arbiter.currentGeneration("vm"), "a refused claim leaves the generation alone");
    }

    @Test
    void znodeHoldsTheGenerationAsEightBigEndianBytes() throws Exception
    {
        assertTrue(ZooKeeperServers.whenReachable(() -> arbiter.tryClaim("vm", 0x0102030405060708L)));
        try (CuratorFramework raw = rawClient())
        {
            final byte[] data = raw.getData().forPath(root + "/vm");
            assertArrayEquals(new byte[]{1, 2, 3, 4, 5, 6, 7, 8}, data);
        }
    }

    @Test
    void generationsOfArbitersOnOneEnsembleAgree()
    {
        try (ZooKeeperArbiter other =
            new ZooKeeperArbiter(server.getConnectString(), root, SESSION_TIMEOUT, OPERATION_TIMEOUT))
        {
            assertTrue(ZooKeeperServers.whenReachable(() -> arbiter.tryClaim("vm", 3)));
            assertFalse(other.tryClaim("vm", 3), "the other host sees the claim");
            assertEquals(3, other.currentGeneration("vm"));
            assertTrue(other.tryClaim("vm", 4));
            assertEquals(4, arbiter.currentGeneration("vm"));
        }
    }

    @Test
    void racingArbitersWinEachGenerationExactlyOnce() throws Exception
    {
        final int generations = 40;
        final int threadsPerArbiter = 4;
        final int threads = 2 * threadsPerArbiter;
        final AtomicIntegerArray winners = new AtomicIntegerArray(generations + 1);
        // all threads ask for the same generation at once, then move on together: every generation has a race
        final CyclicBarrier barrier = new CyclicBarrier(threads);
        final ExecutorService pool = Executors.newFixedThreadPool(threads);
        try (ZooKeeperArbiter other =
            new ZooKeeperArbiter(server.getConnectString(), root, SESSION_TIMEOUT, Duration.ofSeconds(10));
            ZooKeeperArbiter first =
                new ZooKeeperArbiter(server.getConnectString(), root, SESSION_TIMEOUT, Duration.ofSeconds(10)))
        {
            ZooKeeperServers.whenReachable(() -> first.currentGeneration("raced"));
            ZooKeeperServers.whenReachable(() -> other.currentGeneration("raced"));
            final List<Future<?>> results = new ArrayList<>();
            for (int t = 0; t < threads; t++)
            {
                final ZooKeeperArbiter mine = t % 2 == 0 ? first : other;
                results.add(pool.submit(() ->
                {
                    for (int generation = 1; generation <= generations; generation++)
                    {
                        barrier.await(30, TimeUnit.SECONDS);
                        if (mine.tryClaim("raced", generation))
                        {
                            winners.incrementAndGet(generation);
                        }
                    }
                    return null;
                }));
            }
            for (final Future<?> result : results)
            {
                result.get(60, TimeUnit.SECONDS);
            }
            for (int generation = 1; generation <= generations; generation++)
            {
                assertEquals(1, winners.get(generation), "winners of generation " + generation);
            }
            assertEquals(generations, first.currentGeneration("raced"));
        }
        finally
        {
            pool.shutdownNow();
        }
    }

    @Test
    void anyVmIdIsItsOwnZnode() throws Exception
    {
        final String[] ids = {
            "a/b", "a%2Fb", "a_2Fb", "/", "//", "../etc", ".", "..", "...", "zookeeper", "ünïcødé", "虚拟机-1",
            "emoji-\uD83D\uDE00", "tab\there", "space here", "%", "a?b", "vm.1"
        };
        ZooKeeperServers.whenReachable(() -> arbiter.currentGeneration("warm-up"));
        final Set<String> paths = new HashSet<>();
        for (int i = 0; i < ids.length; i++)
        {
            final String path = arbiter.vmPath(ids[i]);
            assertTrue(path.startsWith(root + "/"), path);
            assertFalse(path.substring(root.length() + 1).contains("/"), "one znode below the root: " + path);
            assertTrue(paths.add(path), "two ids share " + path);
            assertTrue(arbiter.tryClaim(ids[i], i + 1), ids[i]);
        }
        for (int i = 0; i < ids.length; i++)
        {
            assertEquals(i + 1, arbiter.currentGeneration(ids[i]), ids[i]);
        }
        try (CuratorFramework raw = rawClient())
        {
            assertEquals(ids.length, raw.getChildren().forPath(root).size());
            // "a/b" claimed generation 1, the id "a%2Fb" generation 2
            assertEquals(1, ByteBuffer.wrap(raw.getData().forPath(root + "/a%2Fb")).getLong());
            assertEquals(2, ByteBuffer.wrap(raw.getData().forPath(root + "/a%252Fb")).getLong());
        }
    }

    @Test
    void znodeNamesEscapeEverythingButPlainCharacters()
    {
        assertEquals("vm-1.prod_eu", ZooKeeperArbiter.znodeName("vm-1.prod_eu"));
        assertEquals("a%2Fb", ZooKeeperArbiter.znodeName("a/b"));
        assertEquals("a%252Fb", ZooKeeperArbiter.znodeName("a%2Fb"));
        assertEquals("%C3%BC", ZooKeeperArbiter.znodeName("ü"));
        assertEquals("%2E", ZooKeeperArbiter.znodeName("."));
        assertEquals("%2E%2E", ZooKeeperArbiter.znodeName(".."));
        assertEquals("...", ZooKeeperArbiter.znodeName("..."));
    }

    @Test
    void aZnodeThatIsNotAGenerationIsNeverOverwritten() throws Exception
    {
        ZooKeeperServers.whenReachable(() -> arbiter.currentGeneration("warm-up"));
        try (CuratorFramework raw = rawClient())
        {
            raw.create().creatingParentsIfNeeded().forPath(root + "/foreign", new byte[]{1, 2, 3});
            final UncheckedIOException claim =
                assertThrows(UncheckedIOException.class, () -> arbiter.tryClaim("foreign", 1));
            assertTrue(claim.getMessage().contains("3 bytes"), claim.getMessage());
            assertThrows(UncheckedIOException.class, () -> arbiter.currentGeneration("foreign"));
            assertArrayEquals(new byte[]{1, 2, 3}, raw.getData().forPath(root + "/foreign"));
        }
    }

    @Test
    void aSuppliedClientIsUsedAndLeftOpen() throws Exception
    {
        try (CuratorFramework client = rawClient())
        {
            final ZooKeeperArbiter shared = new ZooKeeperArbiter(client, root, OPERATION_TIMEOUT);
            assertTrue(ZooKeeperServers.whenReachable(() -> shared.tryClaim("vm", 2)));
            assertEquals(2, arbiter.currentGeneration("vm"));
            shared.close();
            assertThrows(IllegalStateException.class, () -> shared.tryClaim("vm", 3));
            assertEquals(2, ByteBuffer.wrap(client.getData().forPath(root + "/vm")).getLong(),
                "the client still works after the arbiter closed");
        }
    }

    @Test
    void badArgumentsAreRefusedWithClearMessages()
    {
        final String connect = server.getConnectString();
        final Duration ok = Duration.ofSeconds(1);
        assertRefused("connectString", () -> new ZooKeeperArbiter(null, "/t", ok, ok));
        assertRefused("connectString", () -> new ZooKeeperArbiter("", "/t", ok, ok));
        assertRefused("connectString", () -> new ZooKeeperArbiter("  ", "/t", ok, ok));
        assertRefused("rootPath", () -> new ZooKeeperArbiter(connect, null, ok, ok));
        assertRefused("rootPath", () -> new ZooKeeperArbiter(connect, "tandem", ok, ok));
        assertRefused("rootPath", () -> new ZooKeeperArbiter(connect, "/", ok, ok));
        assertRefused("rootPath", () -> new ZooKeeperArbiter(connect, "/tandem/", ok, ok));
        assertRefused("rootPath", () -> new ZooKeeperArbiter(connect, "/tandem//x", ok, ok));
        assertRefused("sessionTimeout", () -> new ZooKeeperArbiter(connect, "/t", null, ok));
        assertRefused("sessionTimeout", () -> new ZooKeeperArbiter(connect, "/t", Duration.ZERO, ok));
        assertRefused("operationTimeout", () -> new ZooKeeperArbiter(connect, "/t", ok, Duration.ofMillis(-1)));
        assertRefused("operationTimeout", () -> new ZooKeeperArbiter(connect, "/t", ok, Duration.ofNanos(10)));
        assertRefused("operationTimeout", () -> new ZooKeeperArbiter(connect, "/t", ok, Duration.ofDays(365)));
        assertRefused("client", () -> new ZooKeeperArbiter(null, "/t", ok));
        try (CuratorFramework unstarted = CuratorFrameworkFactory.newClient(connect, new RetryOneTime(10)))
        {
            assertRefused("started", () -> new ZooKeeperArbiter(unstarted, "/t", ok));
        }

        assertRefused("generation", () -> arbiter.tryClaim("vm", 0));
        assertRefused("generation", () -> arbiter.tryClaim("vm", -1));
        assertRefused("vmId", () -> arbiter.tryClaim(null, 1));
        assertRefused("vmId", () -> arbiter.tryClaim("", 1));
        assertRefused("vmId", () -> arbiter.currentGeneration(""));
        assertRefused("surrogate", () -> arbiter.tryClaim("half-\uD83D", 1));
    }

    @Test
    void aClosedArbiterRefusesCalls()
    {
        arbiter.close();
        arbiter.close();
        assertThrows(IllegalStateException.class, () -> arbiter.tryClaim("vm", 1));
        assertThrows(IllegalStateException.class, () -> arbiter.currentGeneration("vm"));
    }

    private static void assertRefused(final String named, final Runnable call)
    {
        final IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, call::run);
        assertTrue(ex.getMessage().contains(named), "message should name " + named + ": " + ex.getMessage());
    }

    private static CuratorFramework rawClient()
    {
        final CuratorFramework client = CuratorFrameworkFactory.newClient(server.getConnectString(),
            (int)SESSION_TIMEOUT.toMillis(), (int)OPERATION_TIMEOUT.toMillis(), new RetryOneTime(100));
        client.start();
        return client;
    }
}
