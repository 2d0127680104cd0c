package dev.tandem.vmm;

/**
 * On the standby: builds a running guest from a recovery point at promotion.
 * <p>
 * Called once, on the standby's promotion thread, after the library stopped applying checkpoints. The
 * implementation copies (or maps) memory, restores every component, adopts or copies the disk images, resumes
 * the vCPUs and returns the adapter of the running guest. A target that can also keeps the record a quick failback
 * needs ({@link RecoveryPoint#trackFromResume()}), before the vCPUs run.
 */
@FunctionalInterface
public interface ReplicaTarget
{
    /**
     * Builds and resumes the guest.
     *
     * @param point the recovery point; valid only during this call.
     * @return the running guest.
     * @throws VmmAdapterException with phase {@link VmmAdapterException.Phase#RESTORE} if the guest cannot be built.
     */
    VmmAdapter resume(RecoveryPoint point);
}
