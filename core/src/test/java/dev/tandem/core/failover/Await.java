package dev.tandem.core.failover;

import java.time.Duration;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Waits for a condition with a bound generous enough for a loaded two-core CI host: the failover tests assert what
 * happens, never how fast.
 */
final class Await
{
    private static final long BOUND_NS = Duration.ofSeconds(30).toNanos();

    private Await()
    {
    }

    /**
     * @param condition what to wait for.
     * @param what      named in the failure.
     * @throws InterruptedException if interrupted.
     */
    static void until(final BooleanSupplier condition, final String what) throws InterruptedException
    {
        final long deadline = System.nanoTime() + BOUND_NS;
        while (!condition.getAsBoolean())
        {
            if (System.nanoTime() > deadline)
            {
                fail("timed out waiting for: " + what);
            }
            Thread.sleep(2);
        }
    }
}
