package dev.tandem.vmm;

import dev.tandem.vmm.sim.SimulatedDisk;
import dev.tandem.vmm.sim.SimulatedGuestMemory;
import dev.tandem.vmm.sim.SimulatedVmm;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A JVM started without the flags fails fast with the exact list at every entry point, before Agrona can throw its
 * {@code IllegalAccessError} (which names no flag).
 */
class JvmAccessTest
{
    /**
     * Entry point of the child JVM: calls the entry point named by {@code args[0]}.
     *
     * @param args the entry point: check, builder, memory or disk.
     * @throws IOException if the disk's temporary directory cannot be made.
     */
    public static void main(final String[] args) throws IOException
    {
        switch (args[0])
        {
            case "check" -> JvmAccess.check();
            case "builder" -> SimulatedVmm.builder().build().close();
            case "memory" -> new SimulatedGuestMemory(1 << 20, 4096).close();
            case "disk" ->
            {
                final Path dir = Files.createTempDirectory("tandem-jvm-access");
                try
                {
                    new SimulatedDisk(0, dir.resolve("disk.img"), 1 << 20).close();
                }
                finally
                {
                    Files.deleteIfExists(dir.resolve("disk.img"));
                    Files.delete(dir);
                }
            }
            default -> throw new IllegalArgumentException(args[0]);
        }
        System.out.println("access granted");
    }

    @ParameterizedTest
    @ValueSource(strings = {"check", "builder", "memory", "disk"})
    void missingFlagsAreListedExactly(final String entryPoint) throws IOException, InterruptedException
    {
        final String java = ProcessHandle.current().info().command().orElse("java");
        final Process process = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
            JvmAccessTest.class.getName(), entryPoint).redirectErrorStream(true).start();
        assertTrue(process.waitFor(60, TimeUnit.SECONDS), "child JVM did not finish");
        final String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(1, process.exitValue(), output);
        assertTrue(output.contains("IllegalStateException: Tandem needs these JVM flags"), output);
        assertFalse(output.contains("IllegalAccessError"), output);
        for (final String flag : List.of(
            "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
            "--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED",
            "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
            "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
            "--add-opens=java.base/java.lang=ALL-UNNAMED",
            "--add-opens=java.base/java.nio=ALL-UNNAMED"))
        {
            assertTrue(output.contains(flag), "names " + flag + ": " + output);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"check", "builder", "memory", "disk"})
    void withTheBuildsFlagsEveryEntryPointRuns(final String entryPoint) throws IOException
    {
        // the same entry points in this JVM, which surefire starts with the flags: the check lets them through
        main(new String[] {entryPoint});
    }
}
