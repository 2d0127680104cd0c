package dev.tandem.zookeeper;

import org.apache.curator.test.InstanceSpec;
import org.apache.curator.test.TestingServer;

import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.function.Supplier;

/**
 * In-process ZooKeeper servers and bounded waiting for the arbiter's tests: nothing here asserts on timing, it only
 * waits up to a generous limit for a condition, so a loaded machine makes the tests slower, not red.
 */
final class ZooKeeperServers
{
    /**
     * Tick of the test servers: ZooKeeper grants session timeouts between 1 and 20 ticks (curator-test sets the
     * minimum to one tick), so 200 ms allows sessions of 0.2 to 4 s and keeps elections short.
     */
    static final int TICK_MS = 200;

    /**
     * Session timeout the tests ask for: the most a 200 ms tick grants.
     */
    static final Duration SESSION_TIMEOUT = Duration.ofMillis(20 * TICK_MS);

    /**
     * Operation timeout of the tests' arbiters.
     */
    static final Duration OPERATION_TIMEOUT = Duration.ofMillis(1_500);

    /**
     * How long a test waits for something that should happen (a restart, an election) before it fails.
     */
    static final Duration PATIENCE = Duration.ofSeconds(30);

    private ZooKeeperServers()
    {
    }

    /**
     * @return a started standalone server on a free port, with its data in a temporary directory deleted on close.
     * @throws Exception if it does not start.
     */
    static TestingServer standalone() throws Exception
    {
        return new TestingServer(spec(), true);
    }

    /**
     * @return a spec of a server with a random port and the test tick.
     */
    static InstanceSpec spec()
    {
        return new InstanceSpec(null, -1, -1, -1, true, -1, TICK_MS, -1);
    }

    /**
     * Retries an arbiter call that reports the arbiter unreachable until it answers.
     *
     * @param call the call.
     * @param <T>  its answer.
     * @return its first answer.
     */
    static <T> T whenReachable(final Supplier<T> call)
    {
        final long deadline = System.nanoTime() + PATIENCE.toNanos();
        UncheckedIOException last = null;
        while (System.nanoTime() < deadline)
        {
            try
            {
                return call.get();
            }
            catch (final UncheckedIOException ex)
            {
                last = ex;
                pause();
            }
        }
        throw new AssertionError("arbiter still unreachable after " + PATIENCE, last);
    }

    /**
     * Waits for a condition.
     *
     * @param what      what is waited for, for the failure message.
     * @param condition the condition.
     */
    static void await(final String what, final Supplier<Boolean> condition)
    {
        final long deadline = System.nanoTime() + PATIENCE.toNanos();
        while (!condition.get())
        {
            if (System.nanoTime() > deadline)
            {
                throw new AssertionError("gave up after " + PATIENCE + " waiting for " + what);
            }
            pause();
        }
    }

    private static void pause()
    {
        try
        {
            Thread.sleep(50);
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", ex);
        }
    }
}
