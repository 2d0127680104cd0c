package dev.tandem.examples.simulation;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A closed, wholly forced journal segment whose delete was announced (deleting) but not yet done when another
 * thread's step takes a power loss: the disk holds the segment whole or not at all, never a torn prefix.
 */
class PowerLossModelDeleteTest
{
    @TempDir
    Path dir;

    @Test
    void aSegmentBeingDeletedIsWholeOrGone() throws Exception
    {
        for (long seed = 0; seed < 64; seed++)
        {
            final Path root = Files.createDirectories(dir.resolve("s" + seed + "/standby"));
            final Path crashes = dir.resolve("s" + seed + "/crashes");
            final PowerLossModel model = new PowerLossModel(root, crashes, seed, 1); // every step a power loss
            final byte[] closed = new byte[1 << 20];
            new Random(seed).nextBytes(closed);
            final Path one = root.resolve("journal-0000000000000001.log");
            final Path two = root.resolve("journal-0000000000000002.log");
            Files.write(one, closed);
            model.forcingDirectory(root);
            model.forcing(one);                    // its last epoch's force: all of it durable
            Files.write(two, new byte[] {1, 2, 3});
            model.forcingDirectory(root);          // the roll
            model.deleting(one);                   // the checkpointer announces the delete ...
            model.forcing(two);                    // ... the session's step runs before the unlink
            Files.delete(one);
            final var last = model.crashes().get(model.crashes().size() - 1);
            final Path found = last.directory().resolve(one.getFileName());
            assertTrue(!Files.exists(found) || Arrays.equals(closed, Files.readAllBytes(found)),
                () -> "journal-1 found torn at " + found.toFile().length() + " of " + closed.length + " bytes");
        }
    }
}
