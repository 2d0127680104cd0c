package dev.tandem.core.failover;

/**
 * Fencing: an atomic test-and-set that lives outside the two hosts (a shared directory, a lock service, a cloud
 * API), so that of two sides that each believe the other dead, exactly one runs the guest.
 * <p>
 * Generations only grow. A standby that wants to promote asks for {@code generation + 1}; whoever gets a generation
 * first owns it for ever. An active checks {@link #currentGeneration} to learn it was fenced.
 */
public interface PromotionArbiter
{
    /**
     * Claims a generation for a VM, atomically.
     *
     * @param vmId       the guest.
     * @param generation the generation wanted, greater than every generation claimed before.
     * @return true if this caller now owns {@code generation}; false if it, or a higher one, was claimed already.
     * @throws java.io.UncheckedIOException if the arbiter cannot be reached (promotion then does not happen).
     */
    boolean tryClaim(String vmId, long generation);

    /**
     * @param vmId the guest.
     * @return the highest generation claimed for the VM, 0 if none.
     * @throws java.io.UncheckedIOException if the arbiter cannot be reached.
     */
    long currentGeneration(String vmId);
}
