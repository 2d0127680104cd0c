package dev.tandem.core.failover;

import dev.tandem.vmm.OwnerOnlyFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A {@link PromotionArbiter} on a directory both hosts share (NFS, SMB, a cluster file system): generation N of VM
 * V is claimed by creating {@code V.generation-N} with {@code CREATE_NEW}, which the file system makes atomic, and
 * only if no higher generation exists. The file holds who claimed it, for the operator.
 * <p>
 * The directory is only as good as the file system's atomic create: use one that guarantees it (NFSv3+ does
 * for exclusive create).
 */
public final class FileArbiter implements PromotionArbiter
{
    private static final String SUFFIX = ".generation-";

    private final Path directory;
    private final String owner;

    /**
     * @param directory the shared directory (created if missing).
     * @param owner     who claims through this arbiter, written into claimed files (e.g. host name).
     */
    public FileArbiter(final Path directory, final String owner)
    {
        this.directory = directory;
        this.owner = owner;
        try
        {
            OwnerOnlyFiles.createDirectories(directory);
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException("cannot create arbiter directory " + directory, ex);
        }
    }

    @Override
    public synchronized boolean tryClaim(final String vmId, final long generation)
    {
        if (generation <= currentGeneration(vmId))
        {
            return false;
        }
        final Path claim = directory.resolve(fileName(vmId, generation));
        try
        {
            OwnerOnlyFiles.writeDurably(claim, (owner + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8),
                StandardOpenOption.CREATE_NEW);
        }
        catch (final FileAlreadyExistsException ex)
        {
            return false;
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException("cannot claim generation " + generation + " of VM " + vmId + " in " +
                directory, ex);
        }
        // a racing claimant may have created a higher generation between the check and the create
        return currentGeneration(vmId) == generation;
    }

    @Override
    public long currentGeneration(final String vmId)
    {
        long highest = 0;
        final String prefix = sanitise(vmId) + SUFFIX;
        try (DirectoryStream<Path> files = Files.newDirectoryStream(directory, prefix + "*"))
        {
            for (final Path file : files)
            {
                final String name = file.getFileName().toString();
                try
                {
                    highest = Math.max(highest, Long.parseLong(name.substring(prefix.length())));
                }
                catch (final NumberFormatException ignore)
                {
                    // not a claim file: someone else's file that happens to share the prefix
                }
            }
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException("cannot read arbiter directory " + directory, ex);
        }
        return highest;
    }

    /**
     * @param vmId       the guest.
     * @param generation a generation.
     * @return who claimed it, or null if unclaimed.
     */
    public String owner(final String vmId, final long generation)
    {
        final Path claim = directory.resolve(fileName(vmId, generation));
        try
        {
            return Files.exists(claim) ? Files.readString(claim).trim() : null;
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
    }

    private static String fileName(final String vmId, final long generation)
    {
        return sanitise(vmId) + SUFFIX + generation;
    }

    private static String sanitise(final String vmId)
    {
        return vmId.replaceAll("[^A-Za-z0-9._-]", "_");
    }
}
