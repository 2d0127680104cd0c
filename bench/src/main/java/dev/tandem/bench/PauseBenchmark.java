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

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The pause of one checkpoint on a 1 GiB guest: harvesting the dirty log (get-and-clear) and copying every dirty run
 * from guest memory into staging, exactly as the scheduler does, sampled per checkpoint (percentiles). Beside it, in
 * the same run, two baselines:
 * <ul>
 *     <li>{@code plainMemcpy}: the physical floor, a plain {@code copyMemory} of the same pages from a precomputed
 *     index list, no bitmap and no library code;</li>
 *     <li>{@code stopAndCopy}: what a design that sends before resuming would pause for (QEMU's COLO and Remus in
 *     its synchronous mode): the same harvest and copy, then the staged bytes written to loopback TCP and read by
 *     the receiving thread before the guest could resume.</li>
 * </ul>
 * The guest's vCPUs are not running: every invocation re-dirties the same pages beforehand (not measured). The
 * checkpoint barrier (one record into the disk-write ring) and vCPU stop/start are in {@code PauseMeasurement}, which
 * measures the whole pause of a running guest.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx1g", BenchJvm.EXPORT_MISC, BenchJvm.EXPORT_REF, BenchJvm.OPEN_REFLECT,
    BenchJvm.OPEN_NIO_CH, BenchJvm.OPEN_LANG, BenchJvm.OPEN_NIO})
public class PauseBenchmark
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
    private DirtyBitmap harvested;
    private NativeMemory.Region staging;
    private UnsafeBuffer stagingBuffer;
    private ByteBuffer stagingView;
    private long[] pageIndex;
    private NativeMemory.Region rawGuest;
    private LoopbackLink link;
    private long sent;

    /**
     * Allocates the guest, chooses the dirty pages, lays out the baseline's index list and opens the loopback link.
     *
     * @throws IOException if loopback TCP cannot be set up.
     */
    @Setup(Level.Trial)
    public void setUp() throws IOException
    {
        memory = new SimulatedGuestMemory(guestBytes, PAGE);
        final long pages = guestBytes / PAGE;
        for (long page = 0; page < pages; page++)
        {
            memory.putLong(page * PAGE, page);
        }
        harvested = new DirtyBitmap(pages);
        memory.startTracking();
        final DirtyBitmap chosen = new DirtyBitmap(pages);
        final SplittableRandom random = new SplittableRandom(42);
        final int runLength = "runs".equals(layout) ? 16 : 1;
        while (chosen.cardinality() < dirtyPages)
        {
            final long first = random.nextLong(pages - runLength);
            for (int i = 0; i < runLength && chosen.cardinality() < dirtyPages; i++)
            {
                chosen.set(first + i);
            }
        }
        pageIndex = new long[dirtyPages];
        int n = 0;
        for (long page = chosen.nextSetBit(0); page >= 0; page = chosen.nextSetBit(page + 1))
        {
            pageIndex[n++] = page;
        }
        staging = NativeMemory.allocateDirect(dirtyPages * PAGE, PAGE);
        stagingBuffer = new UnsafeBuffer(staging.byteBuffer());
        stagingView = staging.byteBuffer().duplicate();
        // the baseline's own copy of the same guest bytes, reached by raw address with no library code
        rawGuest = NativeMemory.allocate(guestBytes, PAGE);
        for (long page = 0; page < pages; page++)
        {
            UnsafeApi.putLong(rawGuest.address() + page * PAGE, page);
        }
        link = new LoopbackLink();
    }

    /**
     * The guest writes its dirty pages again before each checkpoint (not measured).
     */
    @Setup(Level.Invocation)
    public void dirty()
    {
        for (final long page : pageIndex)
        {
            memory.putLong(page * PAGE + 8, page);
        }
    }

    /**
     * Frees the guest and staging and closes the link.
     *
     * @throws IOException if closing fails.
     */
    @TearDown(Level.Trial)
    public void tearDown() throws IOException
    {
        link.close();
        staging.close();
        rawGuest.close();
        memory.close();
    }

    /**
     * The library's pause: get-and-clear of the dirty log, then bitmap runs and {@code GuestMemory.copyOut} per run.
     *
     * @return bytes copied (consumed by JMH).
     */
    @Benchmark
    public long checkpointPause()
    {
        return harvestAndCopy();
    }

    private int harvestAndCopy()
    {
        final DirtyBitmap dirty = harvested;
        final SimulatedGuestMemory memory = this.memory;
        final UnsafeBuffer staging = stagingBuffer;
        memory.harvest(dirty);
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
        dirty.clearAll();
        if (offset != dirtyPages * PAGE)
        {
            // a benchmark that copies nothing measures nothing: fail loudly
            throw new IllegalStateException("harvest found " + offset / PAGE + " dirty pages, expected " + dirtyPages);
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

    /**
     * Stop-and-copy: the same harvest and copy, then the delta sent over loopback TCP and received before resume.
     *
     * @return bytes sent (consumed by JMH).
     */
    @Benchmark
    public long stopAndCopy()
    {
        final int bytes = harvestAndCopy();
        final ByteBuffer view = stagingView;
        view.limit(bytes).position(0);
        try
        {
            link.send(view);
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
        sent += bytes;
        while (link.received() < sent)
        {
            Thread.onSpinWait();
        }
        return bytes;
    }
}
