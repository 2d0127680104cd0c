package dev.tandem.examples;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ReplicationDemoTest
{
    @Test
    void demoRunsAndVerifies() throws Exception
    {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        final int status = TandemExamples.run(new String[] {"demo", "--guest-memory", "32m", "--duration", "2s",
            "--period", "5ms"}, new PrintStream(bytes, true, StandardCharsets.UTF_8), System.err);
        final String output = bytes.toString(StandardCharsets.UTF_8);
        assertEquals(0, status, output);
        assertTrue(output.contains("standby == active at epoch"), output);
        assertTrue(output.contains("ckpt/s"), "progress line printed: " + output);
    }

    @Test
    void badOptionsAreNamed() throws Exception
    {
        final ByteArrayOutputStream err = new ByteArrayOutputStream();
        final PrintStream errStream = new PrintStream(err, true, StandardCharsets.UTF_8);
        assertEquals(2, TandemExamples.run(new String[] {"demo", "--workload", "chaos"}, System.out, errStream));
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("unknown workload 'chaos'"));
        assertEquals(2, TandemExamples.run(new String[] {"--guest-memory", "lots"}, System.out, errStream));
        assertEquals(2, TandemExamples.run(new String[] {"demo", "--period"}, System.out, errStream));
    }
}
