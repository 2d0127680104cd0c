package dev.tandem.vmm;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class OwnerOnlyFilesTest
{
    @TempDir
    Path dir;

    private static String mode(final Path path) throws IOException
    {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(path));
    }

    @Test
    void createsOwnerOnlyDirectoriesAndFiles() throws IOException
    {
        assumeTrue(OwnerOnlyFiles.isPosix(dir), "the temporary directory's file system has no POSIX permissions");
        final Path nested = dir.resolve("a/b");
        OwnerOnlyFiles.createDirectories(nested);
        assertEquals("rwx------", mode(dir.resolve("a")));
        assertEquals("rwx------", mode(nested));

        final Path file = nested.resolve("generation");
        OwnerOnlyFiles.writeDurably(file, "7\n".getBytes(StandardCharsets.UTF_8));
        assertEquals("rw-------", mode(file));
        assertEquals("7\n", Files.readString(file));
        OwnerOnlyFiles.writeDurably(file, "8\n".getBytes(StandardCharsets.UTF_8));
        assertEquals("8\n", Files.readString(file), "replaced, not appended");

        assertThrows(FileAlreadyExistsException.class, () -> OwnerOnlyFiles.writeDurably(file,
            new byte[1], StandardOpenOption.CREATE_NEW));

        final Path image = nested.resolve("disk-0.img");
        try (var channel = OwnerOnlyFiles.open(image, StandardOpenOption.CREATE, StandardOpenOption.WRITE))
        {
            assertEquals(0, channel.size());
        }
        assertEquals("rw-------", mode(image));
    }

    @Test
    void aDirectoryOthersMayWriteIsRefusedWithItsModeAndTheFix() throws IOException
    {
        assumeTrue(OwnerOnlyFiles.isPosix(dir), "the temporary directory's file system has no POSIX permissions");
        final Path shared = Files.createDirectory(dir.resolve("shared"));
        Files.setPosixFilePermissions(shared, PosixFilePermissions.fromString("rwxrwxrwx"));
        final IllegalStateException refused = assertThrows(IllegalStateException.class,
            () -> OwnerOnlyFiles.requireNotWritableByOthers(shared, "standby directory"));
        assertTrue(refused.getMessage().startsWith("standby directory " + shared), refused.getMessage());
        assertTrue(refused.getMessage().contains("rwxrwxrwx"), refused.getMessage());
        assertTrue(refused.getMessage().contains("chmod go-w"), refused.getMessage());

        Files.setPosixFilePermissions(shared, PosixFilePermissions.fromString("rwxrwx---"));
        assertThrows(IllegalStateException.class,
            () -> OwnerOnlyFiles.requireNotWritableByOthers(shared, "standby directory"), "group-writable too");

        Files.setPosixFilePermissions(shared, PosixFilePermissions.fromString("rwxr-xr-x"));
        assertDoesNotThrow(() -> OwnerOnlyFiles.requireNotWritableByOthers(shared, "standby directory"));
    }
}
