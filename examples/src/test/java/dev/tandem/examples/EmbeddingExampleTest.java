package dev.tandem.examples;

import dev.tandem.vmm.NativeMemory;
import net.openhft.chronicle.core.io.AbstractReferenceCounted;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The README's embedding is this module's EmbeddingExample, verbatim, and it runs: standby and active over loopback
 * TCP, a few committed epochs, a clean close with no thread and no off-heap memory left.
 */
class EmbeddingExampleTest
{
    private static final Path MODULE = Path.of(System.getProperty("basedir", "."));
    private static final Path SOURCE = MODULE.resolve("src/main/java/dev/tandem/examples/EmbeddingExample.java");

    @TempDir
    Path dir;

    /**
     * @return the first {@code java} code block of the README's "Embedding" section.
     */
    static String readmeEmbedding(final String readme)
    {
        final int section = readme.indexOf("\n## Embedding\n");
        assertTrue(section >= 0, "README.md has no '## Embedding' section");
        final int start = readme.indexOf("```java\n", section);
        final int next = readme.indexOf("\n## ", section + 1);
        assertTrue(start >= 0 && (next < 0 || start < next), "the Embedding section has no ```java block");
        final int end = readme.indexOf("\n```", start + 8);
        return readme.substring(start + 8, end + 1);
    }

    @Test
    void theReadmeQuotesTheExampleVerbatim() throws IOException
    {
        final String readme = Files.readString(MODULE.resolve("../README.md"), StandardCharsets.UTF_8);
        final List<String> quoted = readmeEmbedding(readme).lines().toList();
        final List<String> source = Files.readString(SOURCE, StandardCharsets.UTF_8).lines().toList();
        for (int i = 0; i < Math.max(quoted.size(), source.size()); i++)
        {
            final String q = i < quoted.size() ? quoted.get(i) : "<end of the README's block>";
            final String s = i < source.size() ? source.get(i) : "<end of EmbeddingExample.java>";
            if (!q.equals(s))
            {
                fail("README.md's Embedding block differs from " + SOURCE.getFileName() + " at line " + (i + 1) +
                    ":\n  README: " + q + "\n  source: " + s + "\ncopy the file into the README's block");
            }
        }
    }

    @Test
    void theBlockIsFoundAndComparedWholly()
    {
        // the extraction itself: a drift anywhere in the block, or a block cut short, is seen
        final String readme = "# T\n\n## Embedding\n\ntext\n\n```java\nline 1\nline 2\n```\n\n## Next\n```java\nx\n```\n";
        assertEquals("line 1\nline 2\n", readmeEmbedding(readme));
    }

    @Test
    void theExampleRunsToACleanEnd() throws Exception
    {
        final long bytes = NativeMemory.liveBytes();
        final long allocations = NativeMemory.liveAllocations();
        AbstractReferenceCounted.enableReferenceTracing();
        final ByteArrayOutputStream captured = new ByteArrayOutputStream();
        final PrintStream out = System.out;
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try
        {
            EmbeddingExample.main(new String[] {dir.toString()});
        }
        finally
        {
            System.setOut(out);
        }
        final String output = captured.toString(StandardCharsets.UTF_8);
        out.print(output);
        assertTrue(output.startsWith("PROTECTED"), output);
        final Matcher recovery = Pattern.compile("recovery point is epoch (\\d+)").matcher(output);
        assertTrue(recovery.find(), output);
        // the baseline is epoch 1; the program waits for five more
        assertTrue(Long.parseLong(recovery.group(1)) >= 6, output);

        final long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (!threadsLeft().isEmpty() && System.nanoTime() < deadline)
        {
            Thread.sleep(5);
        }
        assertEquals(List.of(), threadsLeft(), "threads left running");
        assertEquals(bytes, NativeMemory.liveBytes(), "off-heap bytes left allocated");
        assertEquals(allocations, NativeMemory.liveAllocations(), "off-heap allocations left");
        AbstractReferenceCounted.assertReferencesReleased();
    }

    private static List<String> threadsLeft()
    {
        return Thread.getAllStackTraces().keySet().stream().filter(Thread::isAlive).map(Thread::getName)
            .filter(name -> name.startsWith("tandem-") || name.startsWith("vm-1-")).sorted().toList();
    }
}
