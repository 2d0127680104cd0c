package dev.tandem.core.failover;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.TimeUnit;

/**
 * Every arbiter and generation decision of one side (active or standby), in one place.
 * <p>
 * The rule it serves: output leaves a guest only under an acknowledged epoch or under a generation its side has won
 * at the arbiter. Generations only move up: the side serves the highest of its own persisted file, what its peer
 * said in the handshake ({@link #adopt}) and what it won at the arbiter ({@link #claimNext}). A side whose
 * generation the arbiter has passed is {@link Verdict#SUPERSEDED}: it must stop its guest and release nothing.
 * An arbiter that cannot be reached is never read as a win: the caller retries after {@link #retryDelayNs()},
 * which backs off from {@value #FIRST_RETRY_MS} ms to {@value #MAX_RETRY_MS} ms.
 * <p>
 * Without an arbiter (a single host, or the documented unsafe mode) every claim is {@link Verdict#OWNER}: nothing
 * outside the two hosts can say otherwise. Thread-safe; not for a hot path (an arbiter call may take milliseconds).
 */
public final class Ownership
{
    private static final Logger LOG = LoggerFactory.getLogger(Ownership.class);
    /** First retry delay after an unreachable arbiter. */
    public static final long FIRST_RETRY_MS = 10;
    /** Longest retry delay after an unreachable arbiter. */
    public static final long MAX_RETRY_MS = 1000;

    /**
     * What the arbiter said.
     */
    public enum Verdict
    {
        /** this side owns its generation (it won the claim, or it is still the newest). */
        OWNER,
        /** a newer generation exists: another side owns the guest; stop the guest, release nothing. */
        SUPERSEDED,
        /** the arbiter could not be reached: nothing is known; retry, never act as owner. */
        UNREACHABLE
    }

    private final String vmId;
    private final PromotionArbiter arbiter;
    private final GenerationFile file;
    private long generation;
    private long supersededBy;
    private int failedAttempts;
    private String lastError;
    private long attempts;

    /**
     * @param vmId       the guest.
     * @param arbiter    the arbiter, or null for none.
     * @param file       where the generation persists, or null to keep it in memory only.
     * @param configured the generation the embedding says this side served (0 if none); the higher of it and the
     *                   file is used.
     */
    public Ownership(final String vmId, final PromotionArbiter arbiter, final GenerationFile file,
        final long configured)
    {
        this.vmId = vmId;
        this.arbiter = arbiter;
        this.file = file;
        final long persisted = file == null ? 0 : file.read();
        this.generation = Math.max(configured, persisted);
        if (file != null && generation > persisted)
        {
            file.write(generation);
        }
    }

    /**
     * @return the generation this side serves now.
     */
    public synchronized long generation()
    {
        return generation;
    }

    /**
     * @return true if an arbiter decides ownership.
     */
    public boolean hasArbiter()
    {
        return arbiter != null;
    }

    /**
     * Moves up to a generation seen elsewhere (the peer's handshake), persisting it; never moves down.
     *
     * @param seen a generation the peer serves.
     * @return the generation served now.
     */
    public synchronized long adopt(final long seen)
    {
        if (seen > generation)
        {
            if (file != null)
            {
                file.write(seen);
            }
            generation = seen;
        }
        return generation;
    }

    /**
     * Reads the arbiter's newest generation.
     *
     * @return the arbiter's generation, 0 without an arbiter.
     * @throws java.io.UncheckedIOException (or another runtime exception of the arbiter) if it cannot be reached.
     */
    public long arbiterGeneration()
    {
        return arbiter == null ? 0 : arbiter.currentGeneration(vmId);
    }

    /**
     * Asks the arbiter whether this side still owns its generation, without claiming anything.
     *
     * @return {@link Verdict#OWNER} while no newer generation exists.
     */
    public synchronized Verdict check()
    {
        if (arbiter == null)
        {
            return Verdict.OWNER;
        }
        attempts++;
        try
        {
            final long current = arbiter.currentGeneration(vmId);
            return reached(current > generation ? current : 0);
        }
        catch (final RuntimeException ex)
        {
            return unreachable(ex);
        }
    }

    /**
     * Claims generation + 1 at the arbiter; on a win the new generation is persisted before this returns, so a
     * restarted process never serves a lower one.
     *
     * @return {@link Verdict#OWNER} if this side now serves the next generation; {@link Verdict#SUPERSEDED} if
     *         another side has it (or a newer one); {@link Verdict#UNREACHABLE} if the arbiter did not answer.
     */
    public synchronized Verdict claimNext()
    {
        final long next = generation + 1;
        if (arbiter == null)
        {
            persist(next);
            return Verdict.OWNER;
        }
        attempts++;
        final boolean won;
        try
        {
            won = arbiter.tryClaim(vmId, next);
        }
        catch (final RuntimeException ex)
        {
            return unreachable(ex);
        }
        if (won)
        {
            persist(next);
            return reached(0);
        }
        long current;
        try
        {
            current = arbiter.currentGeneration(vmId);
        }
        catch (final RuntimeException ex)
        {
            // the claim was answered: someone holds next or later, whatever the re-read says
            current = next;
        }
        return reached(Math.max(current, next));
    }

    /**
     * @return the newer generation that superseded this side, 0 if none is known.
     */
    public synchronized long supersededBy()
    {
        return supersededBy;
    }

    /**
     * @return how long to wait before asking an unreachable arbiter again (backs off; 0 after an answer).
     */
    public synchronized long retryDelayNs()
    {
        if (failedAttempts == 0)
        {
            return 0;
        }
        final long ms = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS << Math.min(20, failedAttempts - 1));
        return TimeUnit.MILLISECONDS.toNanos(ms);
    }

    /**
     * @return consecutive attempts the arbiter did not answer, 0 once it answered.
     */
    public synchronized int unansweredAttempts()
    {
        return failedAttempts;
    }

    /**
     * @return every question asked of the arbiter so far.
     */
    public synchronized long attempts()
    {
        return attempts;
    }

    /**
     * @return why the arbiter last could not be reached, or null once it answered.
     */
    public synchronized String lastError()
    {
        return lastError;
    }

    private void persist(final long next)
    {
        if (file != null)
        {
            file.write(next);
        }
        generation = next;
    }

    private Verdict reached(final long newer)
    {
        failedAttempts = 0;
        lastError = null;
        if (newer > generation)
        {
            supersededBy = newer;
            return Verdict.SUPERSEDED;
        }
        return Verdict.OWNER;
    }

    private Verdict unreachable(final RuntimeException ex)
    {
        failedAttempts++;
        lastError = String.valueOf(ex.getMessage() == null ? ex.toString() : ex.getMessage());
        if (failedAttempts == 1 || Integer.bitCount(failedAttempts) == 1)
        {
            LOG.warn("arbiter for VM {} unreachable (attempt {}): {}; retrying, never acting as owner meanwhile",
                vmId, failedAttempts, lastError);
        }
        return Verdict.UNREACHABLE;
    }
}
