package dev.tandem.vmm;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * Files and directories that hold a guest's memory, disks or ownership records: created readable and writable by
 * their owner only (0600 files, 0700 directories), because they hold everything the guest holds (keys, passwords,
 * customer data) and because whoever can write them can feed a forged guest to a promotion.
 * <p>
 * On a file system without POSIX permissions (Windows) the permissions are the platform's defaults and the checks
 * pass: there, protect the directory with the platform's ACLs.
 */
public final class OwnerOnlyFiles
{
    /** Permissions of a file this library creates: {@code rw-------}. */
    public static final Set<PosixFilePermission> FILE = PosixFilePermissions.fromString("rw-------");

    /** Permissions of a directory this library creates: {@code rwx------}. */
    public static final Set<PosixFilePermission> DIRECTORY = PosixFilePermissions.fromString("rwx------");

    private OwnerOnlyFiles()
    {
    }

    /**
     * @param path a path on the file system to ask.
     * @return true if that file system has POSIX permissions.
     */
    public static boolean isPosix(final Path path)
    {
        return path.getFileSystem().supportedFileAttributeViews().contains("posix");
    }

    /**
     * Creates a directory and its missing parents as {@code rwx------}; an existing one is left as it is.
     *
     * @param directory the directory.
     * @throws IOException if it cannot be created.
     */
    public static void createDirectories(final Path directory) throws IOException
    {
        if (isPosix(directory))
        {
            Files.createDirectories(directory, PosixFilePermissions.asFileAttribute(DIRECTORY));
        }
        else
        {
            Files.createDirectories(directory);
        }
    }

    /**
     * Refuses a directory that users other than its owner may write: anyone who can write there can replace an
     * image or a generation file.
     *
     * @param directory an existing directory.
     * @param role      what the directory is, for the message (e.g. "standby directory").
     * @throws IOException           if its permissions cannot be read.
     * @throws IllegalStateException naming the directory, its permissions and the fix, if group or others may write.
     */
    public static void requireNotWritableByOthers(final Path directory, final String role) throws IOException
    {
        if (!isPosix(directory))
        {
            return;
        }
        final Set<PosixFilePermission> permissions =
            Files.getFileAttributeView(directory, PosixFileAttributeView.class).readAttributes().permissions();
        if (permissions.contains(PosixFilePermission.GROUP_WRITE) ||
            permissions.contains(PosixFilePermission.OTHERS_WRITE))
        {
            throw new IllegalStateException(role + " " + directory + " is writable by users other than its owner (" +
                PosixFilePermissions.toString(permissions) + "): whoever can write there can replace the replica " +
                "a promotion would run; use a directory of its own (chmod go-w " + directory + ")");
        }
    }

    /**
     * Opens a file, creating it as {@code rw-------} if {@code options} ask for creation and it does not exist.
     *
     * @param file    the file.
     * @param options as for {@link FileChannel#open(Path, OpenOption...)}.
     * @return the open channel.
     * @throws IOException if it cannot be opened.
     */
    public static FileChannel open(final Path file, final OpenOption... options) throws IOException
    {
        return FileChannel.open(file, Set.of(options), fileAttributes(file));
    }

    /**
     * Forces a directory to the device: the files created, renamed or deleted in it stay so after a power loss (a
     * file's own force does not make its name durable).
     *
     * @param directory the directory.
     * @throws IOException if it cannot be forced.
     */
    public static void forceDirectory(final Path directory) throws IOException
    {
        try (FileChannel channel = FileChannel.open(directory, java.nio.file.StandardOpenOption.READ))
        {
            channel.force(true);
        }
    }

    /**
     * Writes a whole small file (created as {@code rw-------}), replacing its content, and forces it and its
     * directory to the device (a file just created is found after a power loss only once its directory is forced).
     *
     * @param file    the file.
     * @param content the bytes.
     * @param options more options, e.g. {@link java.nio.file.StandardOpenOption#CREATE_NEW}; without them the file
     *                is created or truncated.
     * @throws IOException if it cannot be written.
     */
    public static void writeDurably(final Path file, final byte[] content, final OpenOption... options)
        throws IOException
    {
        final OpenOption[] all = options.length > 0 ? options : new OpenOption[] {
            java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.TRUNCATE_EXISTING};
        final OpenOption[] withWrite = java.util.Arrays.copyOf(all, all.length + 1);
        withWrite[all.length] = java.nio.file.StandardOpenOption.WRITE;
        try (FileChannel channel = open(file, withWrite))
        {
            final ByteBuffer bytes = ByteBuffer.wrap(content);
            while (bytes.hasRemaining())
            {
                channel.write(bytes);
            }
            channel.force(true);
        }
        final Path parent = file.toAbsolutePath().getParent();
        if (parent != null)
        {
            forceDirectory(parent);
        }
    }

    private static FileAttribute<?>[] fileAttributes(final Path file)
    {
        return isPosix(file) ? new FileAttribute<?>[] {PosixFilePermissions.asFileAttribute(FILE)} :
            new FileAttribute<?>[0];
    }
}
