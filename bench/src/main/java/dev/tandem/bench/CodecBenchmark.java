package dev.tandem.bench;

import dev.tandem.core.codec.PageCodec;
import dev.tandem.vmm.NativeMemory;
import net.jpountz.lz4.LZ4Compressor;
import net.jpountz.lz4.LZ4Factory;
import org.agrona.concurrent.UnsafeBuffer;
import org.openjdk.jmh.annotations.AuxCounters;
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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The page codec on one core against raw LZ4 of the same pages in the same run: 1024 dirty pages of a checkpoint,
 * whose previous versions are in the codec's cache (as they are after the first epoch of a hot set). Workloads:
 * {@code hotset} (the simulator's hot set: 64-byte random records written into pages that were sent before),
 * {@code uniform} (the same writes into pages never sent before, so no XOR base), {@code sequential} (pages
 * rewritten whole with fresh random data), {@code zero} (zeroed pages). Before each invocation the guest's writes
 * of one epoch are applied (not timed); each invocation encodes all 1024 pages, as one checkpoint would; the
 * auxiliary counters report bytes in and out. {@code pageCodecTryingEvery} is the codec without its skips of
 * attempts that cannot win: their gain, on the same machine in the same run.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx1g", BenchJvm.EXPORT_MISC, BenchJvm.EXPORT_REF, BenchJvm.OPEN_REFLECT,
    BenchJvm.OPEN_NIO_CH, BenchJvm.OPEN_LANG, BenchJvm.OPEN_NIO})
public class CodecBenchmark
{
    private static final int PAGE = 4096;
    private static final int PAGES = 1024;

    /** What the dirty pages look like. */
    @Param({"hotset", "uniform", "sequential", "zero"})
    public String workload;

    private NativeMemory.Region pagesRegion;
    private NativeMemory.Region outRegion;
    private UnsafeBuffer pages;
    private ByteBuffer pagesView;
    private UnsafeBuffer out;
    private ByteBuffer outView;
    private PageCodec codec;
    private PageCodec tryingEvery;
    private final LZ4Compressor lz4 = LZ4Factory.fastestInstance().fastCompressor();
    private SplittableRandom random;

    /**
     * Encoded bytes per checkpoint.
     */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class Size
    {
        /** Bytes out, summed over invocations. */
        public long encodedBytes;
        /** Bytes in, summed over invocations. */
        public long rawBytes;
    }

    /**
     * Builds the pages and, for hotset, warms the cache with their previous versions.
     */
    @Setup(Level.Trial)
    public void setUp()
    {
        pagesRegion = NativeMemory.allocateDirect(PAGES * PAGE, PAGE);
        outRegion = NativeMemory.allocateDirect(PAGES * (PAGE + 64), 64);
        pages = new UnsafeBuffer(pagesRegion.byteBuffer());
        pagesView = pagesRegion.byteBuffer().duplicate();
        out = new UnsafeBuffer(outRegion.byteBuffer());
        outView = outRegion.byteBuffer().duplicate();
        // uniform: the pages were never sent before, so there is no XOR base
        codec = new PageCodec(PAGE, "uniform".equals(workload) ? 0 : 64L << 20);
        tryingEvery = new PageCodec(PAGE, "uniform".equals(workload) ? 0 : 64L << 20, false);
        // previous versions: a guest's pages are mostly structured data, here text-like plus some zero runs
        for (int i = 0; i < PAGES * PAGE; i += 8)
        {
            pages.putLong(i, (i / 8) % 7 == 0 ? 0 : 0x2065687420666f20L + (i % 4096) / 64);
        }
        if ("hotset".equals(workload))
        {
            for (int page = 0; page < PAGES; page++)
            {
                codec.encode(page, pages, pagesView, page * PAGE, out, 0);
                tryingEvery.encode(page, pages, pagesView, page * PAGE, out, 0);
            }
        }
        random = new SplittableRandom(13);
        mutate();
    }

    /**
     * The guest's writes of one epoch, before each checkpoint's encode.
     */
    @Setup(Level.Invocation)
    public void mutate()
    {
        for (int page = 0; page < PAGES; page++)
        {
            final int base = page * PAGE;
            switch (workload)
            {
                case "zero" -> pages.setMemory(base, PAGE, (byte)0);
                case "sequential" ->
                {
                    for (int i = 0; i < PAGE; i += 8)
                    {
                        pages.putLong(base + i, random.nextLong());
                    }
                }
                default ->
                {
                    for (int record = 0; record < 4; record++)
                    {
                        final int at = base + random.nextInt(PAGE / 64) * 64;
                        for (int i = 0; i < 64; i += 8)
                        {
                            pages.putLong(at + i, random.nextLong());
                        }
                    }
                }
            }
        }
    }

    /**
     * Frees the pages and the codec.
     */
    @TearDown(Level.Trial)
    public void tearDown()
    {
        codec.close();
        tryingEvery.close();
        outRegion.close();
        pagesRegion.close();
    }

    /**
     * The library: each page the smallest of zero, raw, LZ4 and XOR+LZ4.
     *
     * @param size counts bytes.
     * @return bytes out.
     */
    @Benchmark
    public long pageCodec(final Size size)
    {
        int length = 0;
        for (int page = 0; page < PAGES; page++)
        {
            length += codec.encode(page, pages, pagesView, page * PAGE, out, length);
        }
        size.encodedBytes += length;
        size.rawBytes += PAGES * PAGE;
        return length;
    }

    /**
     * The library's codec trying every attempt for every page, as before it skipped those that cannot win: the
     * skips' gain, measured in the same run.
     *
     * @param size counts bytes.
     * @return bytes out.
     */
    @Benchmark
    public long pageCodecTryingEvery(final Size size)
    {
        int length = 0;
        for (int page = 0; page < PAGES; page++)
        {
            length += tryingEvery.encode(page, pages, pagesView, page * PAGE, out, length);
        }
        size.encodedBytes += length;
        size.rawBytes += PAGES * PAGE;
        return length;
    }

    /**
     * Baseline: LZ4 of each page as it is.
     *
     * @param size counts bytes.
     * @return bytes out.
     */
    @Benchmark
    public long rawLz4(final Size size)
    {
        int length = 0;
        for (int page = 0; page < PAGES; page++)
        {
            length += lz4.compress(pagesView, page * PAGE, PAGE, outView, length, PAGE + 64);
        }
        size.encodedBytes += length;
        size.rawBytes += PAGES * PAGE;
        return length;
    }
}
