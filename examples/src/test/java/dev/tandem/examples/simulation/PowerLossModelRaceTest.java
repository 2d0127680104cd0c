package dev.tandem.examples.simulation;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The image tells the model of a delete before it unlinks and of a rename after it renames, outside the model's
 * lock: a power loss taken on another thread in between must still write a disk a real machine could hold.
 */
class PowerLossModelRaceTest
{
    @TempDir
    Path dir;

    /**
     * A closed, wholly forced journal segment whose delete was announced but not yet done: whole or gone, never a
     * torn prefix (the PowerLossTest failure of 2026-11-30).
     */
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

    /**
     * {@code image.meta.next} renamed over {@code image.meta} and not yet told: the meta is the old one or the new
     * one, whole, never the old one's bytes mixed with the new one's.
     */
    @Test
    void aMetaRenamedOverBeforeTheModelHearsIsOldOrNewWhole() throws Exception
    {
        for (long seed = 0; seed < 64; seed++)
        {
            final Path root = Files.createDirectories(dir.resolve("m" + seed + "/standby"));
            final PowerLossModel model = new PowerLossModel(root, dir.resolve("m" + seed + "/crashes"), seed, 1);
            final Random random = new Random(seed);
            final byte[] old = new byte[5000];
            final byte[] updated = new byte[9000];
            random.nextBytes(old);
            random.nextBytes(updated);
            final Path meta = root.resolve("image.meta");
            final Path next = root.resolve("image.meta.next");
            final Path journal = root.resolve("journal-0000000000000001.log");
            Files.write(meta, old);
            Files.write(journal, new byte[] {1, 2, 3});
            model.forcing(meta);
            model.forcingDirectory(root);
            Files.write(next, updated);
            model.forcing(next);
            // the checkpointer renames ... a power loss on the session's thread ... then it tells the model
            Files.move(next, meta, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            model.forcing(journal);
            final var last = model.crashes().get(model.crashes().size() - 1);
            model.moved(next, meta);
            final byte[] found = Files.readAllBytes(last.directory().resolve("image.meta"));
            assertTrue(Arrays.equals(old, found) || Arrays.equals(updated, found),
                "seed " + seed + ": image.meta of " + found.length + " bytes, neither the old meta nor the new one");
        }
    }
}
