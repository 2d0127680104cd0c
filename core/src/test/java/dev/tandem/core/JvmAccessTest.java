package dev.tandem.core;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A JVM started without the flags fails fast with the exact list, before touching Agrona or Chronicle.
 */
class JvmAccessTest
{
    /**
     * Entry point of the child JVM.
     *
     * @param args unused.
     */
    public static void main(final String[] args)
    {
        JvmAccess.check();
        System.out.println("access granted");
    }

    @Test
    void missingFlagsAreListedExactly() throws IOException, InterruptedException
    {
        final String java = ProcessHandle.current().info().command().orElse("java");
        final Process process = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
            JvmAccessTest.class.getName()).redirectErrorStream(true).start();
        assertTrue(process.waitFor(60, TimeUnit.SECONDS), "child JVM did not finish");
        final String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(1, process.exitValue(), output);
        for (final String flag : List.of(
            "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
            "--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED",
            "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
            "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED"))
        {
            assertTrue(output.contains(flag), "names " + flag + ": " + output);
        }
    }
}
