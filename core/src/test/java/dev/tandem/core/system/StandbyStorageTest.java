package dev.tandem.core.system;

import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.failover.FileArbiter;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.OwnerOnlyFiles;
import dev.tandem.vmm.sim.SimulatedVmm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The standby's files hold the whole guest: they are created owner-only, and a directory others may write (where
 * anyone could swap in a forged image for the next promotion) is refused before anything is opened in it.
 */
@LeakCheck
class StandbyStorageTest
{
    @TempDir
    Path dir;

    private StandbyContext standbyContext(final SimulatedVmm guest, final Path directory)
    {
        return new StandbyContext()
            .transport(new TcpTransport())
            .listenEndpoint("127.0.0.1:0")
            .directory(directory)
            .vmId(guest.vmId())
            .memory(SimulatedVmm.PAGE_SIZE, guest.memory().pageCount())
            .disk(0, guest.disk().blockSize(), guest.disk().sizeBytes())
            .promotionArbiter(new FileArbiter(dir.resolve("arbiter"), "standby"));
    }

    private SimulatedVmm guest()
    {
        return SimulatedVmm.builder().vmId("storage").memoryBytes(4L << 20)
            .disk(dir.resolve("guest-disk.img"), 1L << 20).build();
    }

    @Test
    void aStandbyDirectoryOthersMayWriteIsRefusedAndNothingIsCreatedInIt() throws Exception
    {
        assumeTrue(OwnerOnlyFiles.isPosix(dir), "the temporary directory's file system has no POSIX permissions");
        final Path shared = Files.createDirectory(dir.resolve("shared"));
        Files.setPosixFilePermissions(shared, PosixFilePermissions.fromString("rwxrwxrwx"));
        try (SimulatedVmm guest = guest())
        {
            final IllegalStateException refused = assertThrows(IllegalStateException.class,
                () -> StandbyReplica.launch(standbyContext(guest, shared)));
            assertTrue(refused.getMessage().contains("standby directory " + shared), refused.getMessage());
            assertTrue(refused.getMessage().contains("rwxrwxrwx"), refused.getMessage());
        }
        try (Stream<Path> files = Files.list(shared))
        {
            assertEquals(List.of(), files.toList(), "nothing was created in the refused directory");
        }
    }

    @Test
    void everyFileOfAProtectedSessionIsOwnerOnly() throws Exception
    {
        assumeTrue(OwnerOnlyFiles.isPosix(dir), "the temporary directory's file system has no POSIX permissions");
        final Path standbyDir = dir.resolve("standby/vm");
        try (SimulatedVmm guest = guest().start();
            StandbyReplica standby = StandbyReplica.launch(standbyContext(guest, standbyDir));
            ActiveReplicator active = ActiveReplicator.launch(new ActiveContext()
                .adapter(guest)
                .transport(new TcpTransport())
                .standbyEndpoint(standby.endpoint())
                .promotionArbiter(new FileArbiter(dir.resolve("arbiter"), "active"))
                .generationFile(dir.resolve("active-generation"))
                .checkpointPeriodNs(Duration.ofMillis(5).toNanos())))
        {
            assertTrue(active.awaitCommitted(active.currentEpoch(), Duration.ofSeconds(30)), active.status().toString());
        }
        assertEquals("rwx------", mode(standbyDir), "the standby directory");
        assertEquals("rwx------", mode(dir.resolve("standby")), "its parent, created with it");
        try (Stream<Path> files = Stream.concat(Files.list(standbyDir), Files.list(dir.resolve("arbiter"))))
        {
            final List<Path> all = files.toList();
            assertTrue(all.stream().anyMatch(path -> path.getFileName().toString().startsWith("disk-")), all.toString());
            assertTrue(all.contains(standbyDir.resolve("generation")), all.toString());
            for (final Path file : all)
            {
                assertEquals("rw-------", mode(file), file.toString());
            }
        }
        assertEquals("rw-------", mode(dir.resolve("active-generation")));
        assertEquals("rwx------", mode(dir.resolve("arbiter")));
    }

    @Test
    void aSecondStandbyOnTheSameDirectoryIsRefusedAndTheFirstServesOn() throws Exception
    {
        final Path standbyDir = dir.resolve("standby");
        try (SimulatedVmm guest = guest().start())
        {
            try (StandbyReplica first = StandbyReplica.launch(standbyContext(guest, standbyDir)))
            {
                final IllegalStateException refused = assertThrows(IllegalStateException.class,
                    () -> StandbyReplica.launch(standbyContext(guest, standbyDir)));
                assertTrue(refused.getMessage().contains("standby directory " + standbyDir + " is in use (pid " +
                    ProcessHandle.current().pid() + ")"), refused.getMessage());
                assertStillLockedForOtherProcesses(standbyDir.resolve("lock"));
                try (ActiveReplicator active = ActiveReplicator.launch(new ActiveContext()
                    .adapter(guest)
                    .transport(new TcpTransport())
                    .standbyEndpoint(first.endpoint())
                    .promotionArbiter(new FileArbiter(dir.resolve("arbiter"), "active"))
                    .checkpointPeriodNs(Duration.ofMillis(5).toNanos())))
                {
                    assertTrue(active.awaitCommitted(active.currentEpoch(), Duration.ofSeconds(30)),
                        active.status().toString());
                }
            }
            // a closed standby lets the directory go: the next one takes it (the lock file stays, unlocked)
            try (StandbyReplica next = StandbyReplica.launch(standbyContext(guest, standbyDir)))
            {
                assertTrue(Files.exists(standbyDir.resolve("lock")), next.endpoint());
            }
        }
    }

    private static String mode(final Path path) throws IOException
    {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(path));
    }

    /**
     * The refused launch must not have released the first standby's OS lock: on Linux the JDK's file locks are
     * POSIX locks, which the close of any channel of this process to the file drops. Read from {@code /proc/locks}
     * (where there is none, as off Linux, nothing is checked).
     */
    private static void assertStillLockedForOtherProcesses(final Path lockFile) throws java.io.IOException
    {
        final Path locks = Path.of("/proc/locks");
        if (!Files.isReadable(locks))
        {
            return;
        }
        final long inode = ((Number)Files.getAttribute(lockFile, "unix:ino")).longValue();
        final String pid = String.valueOf(ProcessHandle.current().pid());
        final boolean held = Files.readAllLines(locks).stream()
            .map(line -> line.trim().split("\\s+"))
            .anyMatch(f -> f.length > 5 && "POSIX".equals(f[1]) && pid.equals(f[4]) && f[5].endsWith(":" + inode));
        assertTrue(held, "this process no longer holds the OS lock on " + lockFile + " (inode " + inode + ")");
    }
}
