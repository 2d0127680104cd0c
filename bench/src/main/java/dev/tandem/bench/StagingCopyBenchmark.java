package dev.tandem.bench;

import dev.tandem.vmm.DirtyBitmap;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.sim.SimulatedGuestMemory;
import org.agrona.UnsafeApi;
import org.agrona.concurrent.UnsafeBuffer;
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

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The copy at the heart of the pause: walking the dirty bitmap in runs and copying each run from guest memory into
 * staging, exactly as the scheduler does, beside the physical floor measured in the same run: a plain
 * {@code Unsafe.copyMemory} of the same pages from a precomputed index list, no library code.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx1g", BenchJvm.EXPORT_MISC, BenchJvm.EXPORT_REF, BenchJvm.OPEN_REFLECT,
    BenchJvm.OPEN_NIO_CH, BenchJvm.OPEN_LANG, BenchJvm.OPEN_NIO})
public class StagingCopyBenchmark
{
    private static final int PAGE = 4096;

    /** Guest size. */
    @Param({"1073741824"})
    public long guestBytes;

    /** Dirty pages per checkpoint. */
    @Param({"256", "4096", "65536"})
    public int dirtyPages;

    /** Scattered single pages, or runs of 16 contiguous pages. */
    @Param({"scattered", "runs"})
    public String layout;

    private SimulatedGuestMemory memory;
    private DirtyBitmap dirty;
    private NativeMemory.Region staging;
    private UnsafeBuffer stagingBuffer;
    private long[] pageIndex;
    private NativeMemory.Region rawGuest;

    /**
     * Allocates the guest, dirties the pages, and lays out the index list for the baseline.
     */
    @Setup(Level.Trial)
    public void setUp()
    {
        memory = new SimulatedGuestMemory(guestBytes, PAGE);
        final long pages = guestBytes / PAGE;
        for (long page = 0; page < pages; page++)
        {
            memory.putLong(page * PAGE, page);
        }
        dirty = new DirtyBitmap(pages);
        final SplittableRandom random = new SplittableRandom(42);
        final int runLength = "runs".equals(layout) ? 16 : 1;
        while (dirty.cardinality() < dirtyPages)
        {
            final long first = random.nextLong(pages - runLength);
            for (int i = 0; i < runLength && dirty.cardinality() < dirtyPages; i++)
            {
                dirty.set(first + i);
            }
        }
        pageIndex = new long[dirtyPages];
        int n = 0;
        for (long page = dirty.nextSetBit(0); page >= 0; page = dirty.nextSetBit(page + 1))
        {
            pageIndex[n++] = page;
        }
        staging = NativeMemory.allocateDirect(dirtyPages * PAGE, PAGE);
        stagingBuffer = new UnsafeBuffer(staging.byteBuffer());
        // the baseline's own copy of the same guest bytes, reached by raw address with no library code
        rawGuest = NativeMemory.allocate(guestBytes, PAGE);
        for (long page = 0; page < pages; page++)
        {
            UnsafeApi.putLong(rawGuest.address() + page * PAGE, page);
        }
    }

    /**
     * Frees the guest and staging.
     */
    @TearDown(Level.Trial)
    public void tearDown()
    {
        staging.close();
        rawGuest.close();
        memory.close();
    }

    /**
     * The library's path: bitmap runs, then {@code GuestMemory.copyOut} per run.
     *
     * @return bytes copied (consumed by JMH).
     */
    @Benchmark
    public long stagingCopy()
    {
        final DirtyBitmap dirty = this.dirty;
        final SimulatedGuestMemory memory = this.memory;
        final UnsafeBuffer staging = stagingBuffer;
        int offset = 0;
        long page = dirty.nextSetBit(0);
        while (page >= 0)
        {
            final long end = dirty.nextClearBit(page);
            final int count = (int)(end - page);
            memory.copyOut(page, count, staging, offset);
            offset += count * PAGE;
            page = dirty.nextSetBit(end);
        }
        return offset;
    }

    /**
     * The floor: one {@code copyMemory} per page from a precomputed list, no bitmap, no bounds checks.
     *
     * @return bytes copied (consumed by JMH).
     */
    @Benchmark
    public long plainMemcpy()
    {
        final long[] pages = pageIndex;
        final long src = rawGuest.address();
        final long dst = stagingBuffer.addressOffset();
        for (int i = 0; i < pages.length; i++)
        {
            UnsafeApi.copyMemory(src + pages[i] * PAGE, dst + (long)i * PAGE, PAGE);
        }
        return (long)pages.length * PAGE;
    }
}
