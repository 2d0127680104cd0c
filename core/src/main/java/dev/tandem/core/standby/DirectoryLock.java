package dev.tandem.core.standby;

import dev.tandem.vmm.OwnerOnlyFiles;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Holds a standby directory against every other standby, in this process or another: an OS file lock on
 * {@code <directory>/lock}, held while the standby runs. The lock, not the file, is the mark: a standby that died
 * leaves the file behind but the OS released its lock, so the next one starts without manual cleanup. The file
 * names the holder's pid for the message a second standby gets.
 */
final class DirectoryLock implements AutoCloseable
{
    static final String FILE_NAME = "lock";

    /**
     * The directories this process holds, by real path. Checked before the lock file is opened at all: on Linux the
     * JDK's locks are POSIX locks, which the close of any channel of the process to the file releases, so a second
     * standby of this process that opened the file, found it locked and closed it again would have let the first
     * one's lock go (another process could then take the directory).
     */
    private static final java.util.Map<Path, DirectoryLock> HELD = new java.util.HashMap<>();

    private final Path key;
    private final FileChannel channel;
    private final FileLock lock;
    private String holder;
    private boolean closed;

    private DirectoryLock(final Path key, final FileChannel channel, final FileLock lock, final String holder)
    {
        this.key = key;
        this.channel = channel;
        this.lock = lock;
        this.holder = holder;
    }

    /**
     * @param directory the standby directory, existing.
     * @return the held lock; close it to let the directory go.
     * @throws IllegalStateException naming the directory and the holder's pid if another standby holds it.
     * @throws IOException           if the lock file cannot be opened or written.
     */
    static DirectoryLock acquire(final Path directory) throws IOException
    {
        final Path key = directory.toRealPath();
        synchronized (HELD)
        {
            final DirectoryLock held = HELD.get(key);
            if (held != null)
            {
                throw inUse(directory, "(pid " + held.holder() + ")");
            }
            final DirectoryLock acquired = acquireFile(directory, key);
            HELD.put(key, acquired);
            return acquired;
        }
    }

    private static IllegalStateException inUse(final Path directory, final String holder)
    {
        return new IllegalStateException("standby directory " + directory + " is in use " + holder +
            ": a standby there, or a promoted guest running on its files, would have them overwritten by this one; " +
            "stop that one or give this one a directory of its own");
    }

    private static DirectoryLock acquireFile(final Path directory, final Path key) throws IOException
    {
        final Path file = directory.resolve(FILE_NAME);
        final FileChannel channel = OwnerOnlyFiles.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
            StandardOpenOption.WRITE);
        try
        {
            FileLock lock;
            try
            {
                lock = channel.tryLock();
            }
            catch (final OverlappingFileLockException ex)
            {
                // the same file under another path (a hard link): held by this process all the same
                lock = null;
            }
            if (lock == null)
            {
                throw inUse(directory, holder(channel));
            }
            final String pid = String.valueOf(ProcessHandle.current().pid());
            channel.truncate(0);
            channel.write(ByteBuffer.wrap((pid + "\n").getBytes(StandardCharsets.US_ASCII)), 0);
            return new DirectoryLock(key, channel, lock, pid);
        }
        catch (final IOException | RuntimeException ex)
        {
            channel.close();
            throw ex;
        }
    }

    /**
     * Says in the lock file, for the message a second standby gets, what holds the directory now.
     *
     * @param what who holds it, beside the pid.
     */
    synchronized void note(final String what)
    {
        if (closed)
        {
            return;
        }
        holder = ProcessHandle.current().pid() + ": " + what;
        try
        {
            final byte[] content = (holder + "\n").getBytes(StandardCharsets.UTF_8);
            channel.truncate(0);
            channel.write(ByteBuffer.wrap(content), 0);
        }
        catch (final IOException ex)
        {
            // the lock still holds; only the message a second standby gets is less precise
        }
    }

    /**
     * Lets the directory go, unless a promoted guest adopted {@code image}'s memory and so runs on the directory's
     * files in place (the memory image, the disk images): then the lock is held, and says so to a second standby,
     * until the guest lets that memory go. Call once the image is closed.
     *
     * @param image the image the directory held.
     * @param vmId  the guest's VM id, for the message.
     * @return true if a promoted guest holds the directory now.
     */
    boolean releaseUnlessAGuestRunsOn(final RecoveryImage image, final String vmId)
    {
        if (image.whenAdoptedMemoryReleased(this::close))
        {
            note("a promoted guest of VM " + vmId + " runs on this directory's files");
            return true;
        }
        close();
        return false;
    }

    private synchronized String holder()
    {
        return holder;
    }

    private static String holder(final FileChannel channel)
    {
        try
        {
            final ByteBuffer content = ByteBuffer.allocate(512);
            channel.read(content, 0);
            final String pid = new String(content.array(), 0, content.position(), StandardCharsets.UTF_8).trim();
            return pid.isEmpty() ? "(pid unknown)" : "(pid " + pid + ")";
        }
        catch (final IOException ex)
        {
            return "(pid unreadable: " + ex.getMessage() + ")";
        }
    }

    /**
     * Releases the lock; the file stays (its pid is stale from now on, which the lock's absence says). Idempotent:
     * the thread that closes a promoted guest's memory may release it after its standby closed.
     */
    @Override
    public void close()
    {
        synchronized (this)
        {
            if (closed)
            {
                return;
            }
            closed = true;
        }
        try
        {
            lock.release();
        }
        catch (final IOException ignored)
        {
            // closing the channel releases it too
        }
        try
        {
            channel.close();
        }
        catch (final IOException ignored)
        {
            // nothing is left to release
        }
        // last, and not under this lock's monitor (acquire() takes HELD's, then a holder's): until here a standby
        // of this process is refused by name, not by a file lock it would release again
        synchronized (HELD)
        {
            HELD.remove(key, this);
        }
    }
}
