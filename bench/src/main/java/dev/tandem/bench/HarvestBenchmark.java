package dev.tandem.bench;

import dev.tandem.vmm.DirtyBitmap;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The bitmap work inside the pause: taking a software dirty log (get-and-clear, word by word) and walking the
 * result in runs, for 1, 16 and 64 GiB guests of 4 KiB pages at several densities, beside the baseline of a plain
 * loop over the same {@code long[]} that counts set bits with {@code Long.numberOfTrailingZeros}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx2g", BenchJvm.EXPORT_MISC, BenchJvm.EXPORT_REF, BenchJvm.OPEN_REFLECT,
    BenchJvm.OPEN_NIO_CH, BenchJvm.OPEN_LANG, BenchJvm.OPEN_NIO})
public class HarvestBenchmark
{
    /** Guest size in GiB. */
    @Param({"1", "16", "64"})
    public int guestGiB;

    /** Fraction of pages dirty, in parts per million. */
    @Param({"100", "10000", "500000"})
    public int dirtyPpm;

    private DirtyBitmap log;
    private DirtyBitmap harvested;
    private long[] pattern;
    private long[] plain;
    private long runPages;
    private final DirtyBitmap.RunConsumer runSink = (first, count) -> runPages += count;

    /**
     * Builds a dirty pattern of the given density.
     */
    @Setup(Level.Trial)
    public void setUp()
    {
        final long pages = (long)guestGiB << 18;
        log = new DirtyBitmap(pages);
        harvested = new DirtyBitmap(pages);
        final SplittableRandom random = new SplittableRandom(5);
        pattern = new long[log.wordCount()];
        plain = new long[log.wordCount()];
        for (long page = 0; page < pages; page++)
        {
            if (random.nextInt(1_000_000) < dirtyPpm)
            {
                pattern[(int)(page >>> 6)] |= 1L << page;
            }
        }
    }

    /**
     * Refills the log as if the guest had written the pattern.
     */
    @Setup(Level.Invocation)
    public void dirty()
    {
        for (int i = 0; i < pattern.length; i++)
        {
            if (pattern[i] != 0)
            {
                log.orWord(i, pattern[i]);
            }
        }
        System.arraycopy(pattern, 0, plain, 0, pattern.length);
        harvested.clearAll();
    }

    /**
     * Get-and-clear of the log into the checkpoint's bitmap, then the walk in runs the copy does.
     *
     * @return pages found.
     */
    @Benchmark
    public long harvestAndWalkRuns()
    {
        log.harvestConcurrentInto(harvested);
        runPages = 0;
        harvested.forEachRun(runSink);
        return runPages;
    }

    /**
     * Baseline: one pass over a plain {@code long[]} of the same bits, visiting every set bit and clearing the
     * word.
     *
     * @return pages found.
     */
    @Benchmark
    public long plainLoop()
    {
        final long[] words = plain;
        long found = 0;
        for (int i = 0; i < words.length; i++)
        {
            long word = words[i];
            words[i] = 0;
            while (word != 0)
            {
                found += Long.numberOfTrailingZeros(word) >= 0 ? 1 : 0;
                word &= word - 1;
            }
        }
        return found;
    }
}
