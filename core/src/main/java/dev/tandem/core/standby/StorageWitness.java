package dev.tandem.core.standby;

import java.nio.file.Path;

/**
 * Sees every step by which a {@link Durability#DURABLE} standby's image makes something durable or changes its
 * directory: just before each force of a file or directory or delete of a file, just after each rename. It is for
 * crash-consistency testing (the simulation's power-loss model, a VMM's own fault injection): from these steps alone
 * a model can say what a machine that lost power at any of them would find on its disk (a file's bytes as of its
 * last force, a directory's entries as of its last force, and any part of what was written since), and a test can
 * stop the standby at any of them. Set with {@link StandbyContext#storageWitness}; {@link #NONE} by default. Called
 * on the standby's own threads, in the middle of its work: it must be quick and must not call the standby back.
 * <p>
 * A call and the step it names are not one atomic act: a delete is told before the file is unlinked and a rename
 * after it is done, and the image's checkpoint thread and its session thread step at once. A model that looks at the
 * directory from one thread's call may find a file another thread is deleting still there, or a name already renamed
 * over; it should know a file by its identity ({@code BasicFileAttributes.fileKey()}), not only by its name (the
 * simulation's power-loss model wrote disks no machine holds until it did).
 */
public interface StorageWitness
{
    /**
     * A file is about to be forced: once the force returns, everything it holds now is durable.
     *
     * @param file the file.
     */
    void forcing(Path file);

    /**
     * A directory is about to be forced: once the force returns, its entries as they are now are durable.
     *
     * @param directory the directory.
     */
    void forcingDirectory(Path directory);

    /**
     * A file or directory was renamed (durable once the directory is forced).
     *
     * @param from its old path.
     * @param to   its new path.
     */
    void moved(Path from, Path to);

    /**
     * A file or an empty directory is about to be deleted (durable once its directory is forced).
     *
     * @param path what is deleted.
     */
    void deleting(Path path);

    /**
     * Sees nothing.
     */
    StorageWitness NONE = new StorageWitness()
    {
        @Override
        public void forcing(final Path file)
        {
        }

        @Override
        public void forcingDirectory(final Path directory)
        {
        }

        @Override
        public void moved(final Path from, final Path to)
        {
        }

        @Override
        public void deleting(final Path path)
        {
        }
    };
}
