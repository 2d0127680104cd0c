package dev.tandem.core.standby;

import dev.tandem.vmm.FileVirtualDisk;
import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.RecoveryPoint;
import org.agrona.concurrent.UnsafeBuffer;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The standby's recovery image (DESIGN.md "The standby"): the memory replica, one disk image per guest disk and the
 * component store, with the epoch they hold, and the one {@link RecoveryPoint} view of them that listeners,
 * inspections and the {@link dev.tandem.vmm.ReplicaTarget} read. The durability modes are implementations of it:
 * {@link MemoryRecoveryImage} for MEMORY (Remus); the DURABLE mode's image, updated from an on-disk journal and
 * surviving a restart of the standby, is to be the other.
 * <p>
 * Written by one thread at a time: the {@link Applier} (epoch after epoch), or the session while a first baseline
 * goes straight into it; never both, since the session writes in place only while the applier has nothing to apply.
 */
interface RecoveryImage extends AutoCloseable
{
    /**
     * @return the memory replica (the base XOR deltas are decoded against).
     * @throws IllegalStateException once a promoted guest adopted it.
     */
    GuestMemory memory();

    /**
     * @param diskId a disk id from the wire.
     * @return its image, or null if the guest has no such disk.
     */
    FileVirtualDisk disk(int diskId);

    /**
     * Copies {@code count} whole pages into the memory replica.
     *
     * @param firstPage first page index.
     * @param count     pages.
     * @param buffer    holds the pages.
     * @param index     offset of the first page in {@code buffer}.
     */
    void writePages(long firstPage, int count, UnsafeBuffer buffer, int index);

    /**
     * Writes the remaining bytes of {@code data} at {@code offset} of disk {@code diskId}, which the caller checked.
     *
     * @param diskId disk id.
     * @param offset byte offset.
     * @param data   the bytes, position to limit.
     * @throws IOException if the image cannot be written.
     */
    void writeDisk(int diskId, long offset, ByteBuffer data) throws IOException;

    /**
     * Replaces the committed state of component {@code id}.
     *
     * @param id      component id.
     * @param version its state's version.
     * @param src     holds the state.
     * @param index   offset in {@code src}.
     * @param length  bytes.
     */
    void putComponent(int id, int version, UnsafeBuffer src, int index, int length);

    /**
     * @param applied the epoch the image now holds whole.
     */
    void epoch(long applied);

    /**
     * @return the epoch the image holds.
     */
    long epoch();

    /**
     * @return the view of the image handed to listeners, inspections and the ReplicaTarget.
     */
    RecoveryPoint recoveryPoint();

    /**
     * Waits for an image checkpoint under way (a DURABLE image's, which may age journal segments and base images
     * out) to end; later ones start only after the applier applies another epoch. For a reader of the retained window
     * while no epoch arrives (a restore in place).
     */
    default void awaitCheckpoint()
    {
    }

    /**
     * Stops the image's own background work (a DURABLE image's checkpoints, which age out base images and journal
     * segments) and waits for any under way: a promotion from an earlier checkpoint reads the retained window next.
     * Nothing in MEMORY mode.
     */
    default void stopCheckpoints()
    {
    }

    /**
     * Lets the ReplicaTarget adopt the memory while it is called ({@code resume}, or {@code prepare} and the prepared
     * guest's {@code run}), and only then.
     *
     * @param resumingNow true just before the target is called, false once it returned.
     */
    void resuming(boolean resumingNow);

    /**
     * The image stops being a recovery point, for good, because a promoted guest is about to run on its files in
     * place (or, for the standby's own image in a promotion from an earlier checkpoint, because it holds the state
     * the guest was rejected in): a DURABLE image deletes its meta and journal and forces its directory, so a
     * standby started on it later finds no recovery point rather than a running guest's files labelled as an old
     * epoch. Nothing in MEMORY mode, whose image dies with the process anyway. Called after a two-step target built
     * the guest paused ({@code ReplicaTarget.prepare}) and before it runs, so that a standby killed while the target
     * builds keeps its recovery point; before a one-step target's {@code resume}, which builds and runs at once.
     *
     * @throws java.io.UncheckedIOException if the image cannot be given up: the guest must then not run on it.
     */
    default void giveUp()
    {
    }

    /**
     * @param action runs once a promoted guest that adopted the image's memory lets it go.
     * @return false, without keeping {@code action}, if no guest adopted the memory or it was let go already.
     */
    default boolean whenAdoptedMemoryReleased(final Runnable action)
    {
        return false;
    }

    /**
     * Makes a verified epoch durable before its ack (the session's thread, before it hands the log to the applier):
     * nothing in MEMORY mode; in DURABLE mode its records go to the journal, which is forced. A failure is never
     * retried ({@link #brokenReason()}).
     *
     * @param log the verified epoch, its fingerprint set; {@link EpochLog#inPlace} if its pages and disk copy were
     *            written straight into the image.
     * @throws IOException if the epoch cannot be made durable: it must not be acknowledged.
     */
    default void commit(EpochLog log) throws IOException
    {
    }

    /**
     * The applier applied {@code log} whole (the applier's thread): a durable image may force itself and drop the
     * journal up to it.
     *
     * @param log the applied epoch.
     * @throws IOException if the image cannot be forced.
     */
    default void applied(EpochLog log) throws IOException
    {
    }

    /**
     * The image was just filled with a checkpoint from elsewhere (a held checkpoint) and holds {@code epoch} whole:
     * a durable image forces itself and records it, so that a restart finds that epoch; nothing in MEMORY mode.
     *
     * @param epoch       the checkpoint's epoch.
     * @param fingerprint its fingerprint.
     * @throws IOException if the image cannot be forced.
     */
    default void held(final long epoch, final long fingerprint) throws IOException
    {
    }

    /**
     * @return null while the image can make epochs durable; why not once a write or force failed.
     */
    default String brokenReason()
    {
        return null;
    }

    /**
     * @return the epoch the image held whole when it was opened (a restart of a durable standby), 0 if none.
     */
    default long recoveredEpoch()
    {
        return 0;
    }

    /**
     * @return that epoch's fingerprint.
     */
    default long recoveredFingerprint()
    {
        return 0;
    }

    /**
     * @return what opening the image found (its epoch, the journal replayed, damage that ended the replay); null in
     *         MEMORY mode.
     */
    default String recoveryReport()
    {
        return null;
    }

    /**
     * Frees the image's memory (unless a promoted guest adopted it) and closes its disk images.
     */
    @Override
    void close();
}
