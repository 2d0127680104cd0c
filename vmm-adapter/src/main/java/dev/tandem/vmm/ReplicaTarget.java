package dev.tandem.vmm;

/**
 * On the standby: builds a running guest from a recovery point at promotion.
 * <p>
 * Called once, on the standby's promotion thread, after the library stopped applying checkpoints. The
 * implementation copies (or maps) memory, restores every component, adopts or copies the disk images, resumes
 * the vCPUs and returns the adapter of the running guest. A target that can also keeps the record a quick failback
 * needs ({@link RecoveryPoint#trackFromResume()}), before the vCPUs run.
 * <p>
 * A target should build in two steps ({@link #prepare}): a DURABLE standby's directory stops being a recovery point
 * before the guest runs on its files in place (else a standby restarted on it would label the running guest's files
 * as an old epoch), and with one step the library has to do that before the target even starts building. A standby
 * killed while a one-step target builds (a copy of the disks can take seconds) then restarts with no recovery point,
 * and a checkpoint it acknowledged is gone. With two steps the library gives its image up only once the guest is
 * built, paused, and about to run.
 */
@FunctionalInterface
public interface ReplicaTarget
{
    /**
     * Builds and resumes the guest. Called only if {@link #prepare} returned null.
     *
     * @param point the recovery point; valid only during this call.
     * @return the running guest.
     * @throws VmmAdapterException with phase {@link VmmAdapterException.Phase#RESTORE} if the guest cannot be built.
     */
    VmmAdapter resume(RecoveryPoint point);

    /**
     * Builds the guest from the recovery point and leaves it paused: its memory copied or adopted, every component
     * restored, its disks copied or adopted, the record a quick failback needs started; no vCPU or device of it
     * runs, and nothing is written to the recovery point's memory or disk images. The library then gives its image
     * up and calls {@link PreparedGuest#run()}, or {@link PreparedGuest#discard()} if it could not.
     *
     * @param point the recovery point; valid only during this call.
     * @return the guest, built and paused; or null (the default) for a target that builds and runs in one step, in
     *         {@link #resume}.
     * @throws VmmAdapterException with phase {@link VmmAdapterException.Phase#RESTORE} if the guest cannot be built.
     */
    default PreparedGuest prepare(final RecoveryPoint point)
    {
        return null;
    }

    /**
     * A guest {@link #prepare} built from a recovery point, paused; exactly one of its methods is called, once.
     */
    interface PreparedGuest
    {
        /**
         * Resumes the vCPUs (a target that builds guests for inspection may leave them stopped, as its
         * {@link #resume} would).
         *
         * @return the running guest.
         * @throws VmmAdapterException with phase {@link VmmAdapterException.Phase#RESTORE} if it cannot run; the
         *                             target has then released the guest (and the memory it adopted) itself.
         */
        VmmAdapter run();

        /**
         * The library could not give its recovery image up, so the guest must never run: releases it (and the
         * memory it adopted).
         */
        void discard();
    }
}
