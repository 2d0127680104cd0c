package dev.tandem.core;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * The one wait for an epoch to commit, behind {@code ActiveReplicator.awaitCommitted} and
 * {@code StandbyReplica.awaitCommitted}: polls the side's committed epoch at most every 0.2 ms until it reaches the
 * epoch, the timeout passes, or the side says no further epoch can commit.
 */
public final class CommitWait
{
    /** How often the committed epoch is looked at: well under a commit's latency. */
    public static final long POLL_NS = TimeUnit.MICROSECONDS.toNanos(200);

    private CommitWait()
    {
    }

    /**
     * @param epoch     the epoch to wait for.
     * @param timeout   how long to wait at most (wall clock).
     * @param committed the side's newest committed epoch.
     * @param ended     why no further epoch can commit on this side, or null while one still can.
     * @return true once {@code epoch} is committed, false if the timeout passed first.
     * @throws IllegalStateException with {@code ended}'s reason if the side ended before {@code epoch} committed.
     * @throws InterruptedException  if the waiting thread is interrupted.
     */
    public static boolean until(final long epoch, final Duration timeout, final LongSupplier committed,
        final Supplier<String> ended) throws InterruptedException
    {
        final long deadline = System.nanoTime() + timeout.toNanos();
        while (committed.getAsLong() < epoch)
        {
            final String why = ended.get();
            // an epoch can still have committed just before the side ended
            if (why != null && committed.getAsLong() < epoch)
            {
                throw new IllegalStateException(why);
            }
            final long remaining = deadline - System.nanoTime();
            if (remaining <= 0)
            {
                return false;
            }
            LockSupport.parkNanos(Math.min(remaining, POLL_NS));
            if (Thread.interrupted())
            {
                throw new InterruptedException("interrupted while waiting for epoch " + epoch + " to commit");
            }
        }
        return true;
    }
}
