package dev.tandem.bench.report;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The report is built from what is in the results directory: JMH JSON becomes tables with ratios and targets, the
 * sweep's CSV lines become plots, hand-kept notes are carried over, and missing results say how to produce them.
 */
class ReportGeneratorTest
{
    @TempDir
    Path dir;

    private static String sample(final String method, final String params, final double p50, final double p99)
    {
        return "{\"benchmark\":\"dev.tandem.bench.PauseBenchmark." + method + "\",\"mode\":\"sample\",\"params\":{" +
            params + "},\"primaryMetric\":{\"score\":" + p50 + ",\"scoreUnit\":\"us/op\",\"scorePercentiles\":{" +
            "\"50.0\":" + p50 + ",\"99.0\":" + p99 + "}}}";
    }

    @Test
    void tablesPlotsAndNotesComeFromTheResults() throws Exception
    {
        final String params = "\"dirtyPages\":\"256\",\"layout\":\"scattered\",\"guestBytes\":\"1073741824\"";
        final String params2 = "\"dirtyPages\":\"4096\",\"layout\":\"scattered\",\"guestBytes\":\"1073741824\"";
        Files.writeString(dir.resolve("PauseBenchmark.json"), "[" + String.join(",",
            sample("checkpointPause", params, 60, 90), sample("plainMemcpy", params, 50, 80),
            sample("stopAndCopy", params, 300, 500), sample("checkpointPause", params2, 1000, 1400),
            sample("plainMemcpy", params2, 1000, 1300), sample("stopAndCopy", params2, 4000, 6000)) + "]");
        Files.writeString(dir.resolve("period-sweep.md"), String.join("\n",
            "# sweep", "| workload | period ms |", "|---|---|", "| hotset | 10 |", "",
            "csv,workload,period_ms,work_ratio,checkpoints_per_s,pause_p50_ns,pause_p99_ns,wire_mb_s,output_hold_p99_ms",
            "csv,hotset,10,0.95,90,1000,5000,10.0,60.0", "csv,hotset,50,0.98,19,2000,7000,9.0,120.0", ""));
        Files.createDirectories(dir.resolve("notes"));
        Files.writeString(dir.resolve("notes/pause.md"), "A hand-kept remark about the pause.\n");

        ReportGenerator.main(new String[] {dir.toString()});

        final String report = Files.readString(dir.resolve("README.md"));
        assertTrue(report.contains("| 256 | scattered | 60.0 | 90.0 | 50.0 | 80.0 | 1.20 | 1.13 | 300.0 | 500.0 | 5.0 | missed |"),
            report);
        assertTrue(report.contains("| 4096 | scattered | 1000.0 | 1400.0 | 1000.0 | 1300.0 | 1.00 | 1.08 | 4000.0 | 6000.0 | 4.0 | met |"),
            report);
        assertTrue(report.contains("A hand-kept remark about the pause."), report);
        assertTrue(report.contains("No results yet (`CodecBenchmark.json`): run `bench/run.sh CodecBenchmark`."), report);
        assertTrue(!report.contains("csv,"), "CSV lines stay out of the tables");
        for (final String png : List.of("pause-vs-dirty-pages", "period-work", "period-pause-p99",
            "period-output-hold-p99"))
        {
            final Path file = dir.resolve(png + ".png");
            assertTrue(Files.size(file) > 1000, png + " plotted");
            assertEquals((byte)0x89, Files.readAllBytes(file)[0], png + " is a PNG");
            assertTrue(report.contains("(" + png + ".png)"), png + " linked");
        }
    }

    @Test
    void malformedResultsAreNamed() throws Exception
    {
        Files.writeString(dir.resolve("HarvestBenchmark.json"), "[{\"benchmark\": \"x\", ");
        final IllegalArgumentException ex = assertThrows(IllegalArgumentException.class,
            () -> ReportGenerator.main(new String[] {dir.toString()}));
        assertTrue(ex.getMessage().startsWith("malformed JSON at offset"), ex.getMessage());
        assertThrows(IllegalArgumentException.class,
            () -> ReportGenerator.main(new String[] {dir.resolve("absent").toString()}));
    }

    @Test
    void jsonReadsWhatJmhWrites()
    {
        final Map<?, ?> value = (Map<?, ?>)ReportGenerator.readJson(
            "{\"a\": [1, 2.5e3, -0.5], \"b\": \"x\\\"y\\u0041\", \"c\": null, \"d\": true, \"e\": \"NaN\"}", "t");
        assertEquals(List.of(1.0, 2500.0, -0.5),
            ((List<?>)value.get("a")).stream().map(n -> ((Number)n).doubleValue()).toList());
        assertEquals("x\"yA", value.get("b"));
        assertTrue(value.containsKey("c") && value.get("c") == null);
        assertEquals(true, value.get("d"));
        assertEquals("NaN", value.get("e"), "JMH writes NaN as a string");
        final IllegalArgumentException missingColon =
            assertThrows(IllegalArgumentException.class, () -> ReportGenerator.readJson("{\"a\" 1}", "t"));
        assertTrue(missingColon.getMessage().startsWith("malformed JSON at offset 5 in t: "),
            missingColon.getMessage());
        final IllegalArgumentException trailing =
            assertThrows(IllegalArgumentException.class, () -> ReportGenerator.readJson("[1, 2] x", "t"));
        assertTrue(trailing.getMessage().startsWith("malformed JSON at offset "), trailing.getMessage());
    }
}
