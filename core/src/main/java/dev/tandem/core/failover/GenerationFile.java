package dev.tandem.core.failover;

import dev.tandem.vmm.OwnerOnlyFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The generation a side serves, persisted so that a restarted process never goes back to a lower one: written to a
 * temporary file, forced, and renamed over the old one (atomic on POSIX file systems), the directory forced after.
 */
public final class GenerationFile
{
    private final Path path;

    /**
     * @param path the file.
     */
    public GenerationFile(final Path path)
    {
        this.path = path;
    }

    /**
     * @return the persisted generation, 0 if none.
     * @throws IllegalStateException naming the file if it is not a generation.
     */
    public long read()
    {
        try
        {
            if (!Files.exists(path))
            {
                return 0;
            }
            final String text = Files.readString(path, StandardCharsets.UTF_8).trim();
            final long generation = Long.parseLong(text);
            if (generation < 0)
            {
                throw new NumberFormatException("negative");
            }
            return generation;
        }
        catch (final NumberFormatException ex)
        {
            throw new IllegalStateException("generation file " + path + " does not hold a generation; restore it " +
                "from the arbiter's highest claim or remove it only if this side never served", ex);
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException("cannot read generation file " + path, ex);
        }
    }

    /**
     * Persists a generation durably.
     *
     * @param generation the generation, not lower than the persisted one.
     */
    public void write(final long generation)
    {
        final long current = read();
        if (generation < current)
        {
            throw new IllegalStateException("generation " + generation + " is lower than the persisted " + current);
        }
        final Path temporary = path.resolveSibling(path.getFileName() + ".tmp");
        try
        {
            OwnerOnlyFiles.writeDurably(temporary, (generation + "\n").getBytes(StandardCharsets.UTF_8));
            Files.move(temporary, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            // the rename is durable only once the directory is: without this a power loss could bring back the
            // lower generation (or none), and a restarted side would serve it
            OwnerOnlyFiles.forceDirectory(path.toAbsolutePath().getParent());
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException("cannot persist generation " + generation + " to " + path, ex);
        }
    }
}
