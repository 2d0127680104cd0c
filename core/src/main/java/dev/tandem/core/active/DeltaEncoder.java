package dev.tandem.core.active;

import dev.tandem.core.codec.PageCodec;
import dev.tandem.core.wire.FrameCodec;
import dev.tandem.vmm.NativeMemory;
import org.agrona.CloseHelper;
import org.agrona.ErrorHandler;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.NanoClock;
import org.agrona.concurrent.UnsafeBuffer;

import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

/**
 * Cuts a staged segment into frame-sized jobs and hands the sender each job's payload in epoch order, after the guest
 * resumed: the raw pages without the codec, pages encoded on the sender's own thread with one encoder thread, or
 * pages encoded by a pool of worker threads when one core cannot keep up.
 * <p>
 * With a pool, worker {@code w} owns every region of {@code 2^REGION_SHIFT} pages whose index modulo the pool size is
 * {@code w}; jobs never cross a region boundary, and each worker keeps the XOR bases of its own pages in its own
 * cache shard, so no page's base is ever read or written by two threads. A worker encodes its jobs in epoch order
 * into a ring of {@link #SLOTS} payload buffers; the sender takes jobs in epoch order, each from its owner's ring, so
 * frames leave in the same order as with one thread. This cannot deadlock: when the sender waits for job {@code j},
 * every earlier job has been taken, so {@code j} is the oldest job its owner may hold and the owner's ring has room
 * for it. Nothing is allocated per segment or job.
 */
final class DeltaEncoder implements AutoCloseable
{
    /** Pages per ownership region of the pool (2 MiB of 4 KiB pages). */
    static final int REGION_SHIFT = 9;
    private static final int SLOTS = 2;

    private final int pagesPerJob;
    private final boolean pooled;
    private final Worker inline;
    private final Worker[] pool;
    private final AgentRunner[] runners;
    private final BooleanSupplier running;
    private final NanoClock clock;

    private final long[] jobFirstPage;
    private final int[] jobPageInArea;
    private final int[] jobPageCount;
    private final int[] jobOwner;
    private int jobCount;
    /** Jobs of the current segment the sender has taken (in order). */
    private int takenJobs;
    private StagingArea area;
    private long segment;

    private long lastJobBytes;
    private long lastJobNanos;
    private final long[] kindPages = new long[4];

    /**
     * @param ctx        configuration: codec on or off, encoder threads, cache size, frame payload.
     * @param pageSize   page size.
     * @param maxPages   pages of the largest staging area (the most jobs one segment can have).
     * @param areas      the staging areas (each worker keeps its own view of every area).
     * @param running    false once protection stopped, so the sender stops waiting for a worker.
     * @param errors     where a worker's failure goes (it stops protection).
     */
    DeltaEncoder(final ActiveContext ctx, final int pageSize, final int maxPages, final StagingArea[] areas,
        final BooleanSupplier running, final ErrorHandler errors)
    {
        this.running = running;
        this.clock = ctx.nanoClock();
        this.jobFirstPage = new long[maxPages];
        this.jobPageInArea = new int[maxPages];
        this.jobPageCount = new int[maxPages];
        this.jobOwner = new int[maxPages];
        final int threads = ctx.pageCodec() ? ctx.encoderThreads() : 1;
        this.pooled = threads > 1;
        final int payload = ctx.maxFramePayload() - FrameCodec.PAGES_HEADER;
        if (!ctx.pageCodec())
        {
            pagesPerJob = Math.max(1, payload / pageSize);
            inline = null;
            pool = null;
            runners = null;
            return;
        }
        pagesPerJob = Math.max(1, payload / (PageCodec.ENTRY_HEADER + pageSize));
        if (!pooled)
        {
            inline = new Worker(0, 1, pageSize, ctx.sentPageCacheBytes(), ctx.maxFramePayload(), areas, maxPages);
            pool = null;
            runners = null;
            return;
        }
        inline = null;
        pool = new Worker[threads];
        runners = new AgentRunner[threads];
        try
        {
            for (int w = 0; w < threads; w++)
            {
                pool[w] = new Worker(w, SLOTS, pageSize, ctx.sentPageCacheBytes() / threads, ctx.maxFramePayload(),
                    areas, maxPages);
                runners[w] = new AgentRunner(new BackoffIdleStrategy(100, 10, 1_000, 100_000), errors, null,
                    pool[w]);
            }
        }
        catch (final RuntimeException ex)
        {
            for (final Worker worker : pool)
            {
                if (worker != null)
                {
                    worker.onClose();
                }
            }
            throw ex;
        }
    }

    /**
     * Starts the pool's threads, if any.
     */
    void start()
    {
        if (pooled)
        {
            for (final AgentRunner runner : runners)
            {
                AgentRunner.startOnThread(runner);
            }
        }
    }

    /**
     * @return encoder threads: 1 means the sender's own thread.
     */
    int threads()
    {
        return pooled ? pool.length : 1;
    }

    /**
     * @return true if {@link #plan} would not wait: every worker has finished the previous segment.
     */
    boolean readyToPlan()
    {
        if (pooled)
        {
            for (final Worker worker : pool)
            {
                if (worker.doneSegment != segment)
                {
                    checkRunning();
                    return false;
                }
            }
        }
        return true;
    }

    /**
     * @return true if {@link #payload} of this job (the next to take) would not wait for its owner.
     */
    boolean jobReady(final int job)
    {
        if (!pooled)
        {
            return true;
        }
        final Worker worker = pool[jobOwner[job]];
        if (worker.produced.get() == worker.taken)
        {
            checkRunning();
            return false;
        }
        return true;
    }

    /**
     * Plans the jobs of a segment and, with a pool, hands them to the workers.
     *
     * @return jobs (frames of pages) in the segment.
     */
    int plan(final StagingArea area)
    {
        if (pooled)
        {
            // the previous segment's workers have produced everything (the sender took it all), but may not yet
            // have marked it done: they must not see this plan while still reading the last one
            for (final Worker worker : pool)
            {
                while (worker.doneSegment != segment)
                {
                    awaitWorker();
                }
            }
        }
        this.area = area;
        int jobs = 0;
        int pageInArea = 0;
        final int workers = pooled ? pool.length : 1;
        if (pooled)
        {
            for (final Worker worker : pool)
            {
                worker.jobCount = 0;
            }
        }
        for (int run = 0, runs = area.runCount(); run < runs; run++)
        {
            long first = area.runFirstPage(run);
            int remaining = area.runPageCount(run);
            while (remaining > 0)
            {
                int count = Math.min(remaining, pagesPerJob);
                int owner = 0;
                if (pooled)
                {
                    final long region = first >>> REGION_SHIFT;
                    count = (int)Math.min(count, ((region + 1) << REGION_SHIFT) - first);
                    owner = (int)(region % workers);
                    final Worker worker = pool[owner];
                    worker.jobs[worker.jobCount++] = jobs;
                }
                jobFirstPage[jobs] = first;
                jobPageInArea[jobs] = pageInArea;
                jobPageCount[jobs] = count;
                jobOwner[jobs] = owner;
                jobs++;
                first += count;
                pageInArea += count;
                remaining -= count;
            }
        }
        jobCount = jobs;
        takenJobs = 0;
        segment++;
        if (pooled)
        {
            for (final Worker worker : pool)
            {
                worker.plan(area, segment);
            }
        }
        return jobs;
    }

    long jobFirstPage(final int job)
    {
        return jobFirstPage[job];
    }

    int jobPageCount(final int job)
    {
        return jobPageCount[job];
    }

    /**
     * The payload of one job, jobs taken in order; with a pool it may wait for the job's owner. Call
     * {@link #taken(int)} once the payload is written.
     */
    ByteBuffer payload(final int job)
    {
        if (inline == null && !pooled)
        {
            final int count = jobPageCount[job];
            lastJobBytes = (long)count * area.pageSize();
            lastJobNanos = 0;
            kindPages[PageCodec.RAW] += count;
            return area.pageBytes(jobPageInArea[job], count);
        }
        final Worker worker = pooled ? pool[jobOwner[job]] : inline;
        if (!pooled)
        {
            worker.encode(area, job, 0);
        }
        else
        {
            while (worker.produced.get() == worker.taken)
            {
                awaitWorker();
            }
        }
        final int slot = (int)(worker.taken % worker.slots);
        lastJobBytes = worker.slotLength[slot];
        lastJobNanos = worker.slotNanos[slot];
        for (int kind = 0; kind < 4; kind++)
        {
            kindPages[kind] += worker.slotKinds[slot * 4 + kind];
        }
        return worker.slotView(slot);
    }

    /**
     * Takes the rest of the segment unsent: the link was lost in the middle of it. The workers finish it (each job
     * waits for its owner, as {@link #payload} does), so the next {@link #plan} does not wait for ever; what they
     * encoded went into their caches as the last version sent, and the resync that follows sends those pages again.
     *
     * @return false if a worker failed (the encoder cannot go on).
     */
    boolean abandon()
    {
        if (!pooled || area == null)
        {
            return true;
        }
        // from its own count, not the sender's: a link lost before the next plan leaves the last one all taken
        for (int job = takenJobs; job < jobCount; job++)
        {
            final Worker worker = pool[jobOwner[job]];
            while (worker.produced.get() == worker.taken)
            {
                if (worker.failed)
                {
                    return false;
                }
                Thread.onSpinWait();
            }
            taken(job);
        }
        return true;
    }

    /**
     * Frees the job's payload buffer for its owner.
     */
    void taken(final int job)
    {
        takenJobs = job + 1;
        if (pooled)
        {
            final Worker worker = pool[jobOwner[job]];
            worker.taken++;
            worker.takenPublished.lazySet(worker.taken);
        }
    }

    /**
     * @return bytes of the last payload handed out.
     */
    long lastJobBytes()
    {
        return lastJobBytes;
    }

    /**
     * @return nanoseconds its encoding took (0 without the codec).
     */
    long lastJobNanos()
    {
        return lastJobNanos;
    }

    /**
     * @param kind {@link PageCodec#ZERO} .. {@link PageCodec#XOR_LZ4}.
     * @return pages handed out with that encoding (all {@link PageCodec#RAW} without the codec).
     */
    long pages(final int kind)
    {
        return kindPages[kind];
    }

    private void awaitWorker()
    {
        checkRunning();
        Thread.onSpinWait();
    }

    private void checkRunning()
    {
        if (!running.getAsBoolean())
        {
            throw new IllegalStateException("protection stopped while waiting for a page encoder");
        }
    }

    /**
     * Stops the pool (after the sender stopped) and frees every buffer and cache.
     */
    @Override
    public void close()
    {
        if (pooled)
        {
            CloseHelper.quietCloseAll(runners);
        }
        else if (inline != null)
        {
            inline.onClose();
        }
    }

    /**
     * One encoder: its codec and cache shard, its payload ring and, in a pool, its share of the segment's jobs (read
     * from the plan's job arrays, which the sender fills before publishing a segment).
     */
    final class Worker implements Agent
    {
        private final int id;
        private final int slots;
        private final PageCodec codec;
        private final NativeMemory.Region[] slotRegions;
        private final UnsafeBuffer[] slotBuffers;
        private final ByteBuffer[] slotViews;
        private final int[] slotLength;
        private final long[] slotNanos;
        private final int[] slotKinds;
        private final ByteBuffer[] areaViews;
        final int[] jobs;
        int jobCount;

        /** Jobs produced, written by the worker. */
        final AtomicLong produced = new AtomicLong();
        /** Jobs the sender took, as the worker sees them. */
        final AtomicLong takenPublished = new AtomicLong();
        /** Jobs the sender took (its own count). */
        long taken;
        volatile long doneSegment;

        private volatile long plannedSegment;
        private StagingArea area;
        private long segment;
        private int cursor;
        private volatile boolean failed;

        Worker(final int id, final int slots, final int pageSize, final long cacheBytes, final int payloadBytes,
            final StagingArea[] areas, final int maxPages)
        {
            this.id = id;
            this.slots = slots;
            this.jobs = new int[maxPages];
            this.slotRegions = new NativeMemory.Region[slots];
            this.slotBuffers = new UnsafeBuffer[slots];
            this.slotViews = new ByteBuffer[slots];
            this.slotLength = new int[slots];
            this.slotNanos = new long[slots];
            this.slotKinds = new int[slots * 4];
            this.areaViews = new ByteBuffer[areas.length];
            for (int i = 0; i < areas.length; i++)
            {
                // a view of its own: a ByteBuffer's position is not shared between threads
                areaViews[i] = areas[i].pageByteBuffer().duplicate();
            }
            PageCodec created = null;
            try
            {
                created = new PageCodec(pageSize, cacheBytes);
                for (int s = 0; s < slots; s++)
                {
                    slotRegions[s] = NativeMemory.allocateDirect(payloadBytes, 64);
                    slotBuffers[s] = new UnsafeBuffer(slotRegions[s].byteBuffer());
                    slotViews[s] = slotRegions[s].byteBuffer().duplicate();
                }
            }
            catch (final RuntimeException ex)
            {
                CloseHelper.quietCloseAll(slotRegions);
                CloseHelper.quietClose(created);
                throw ex;
            }
            this.codec = created;
        }

        @Override
        public String roleName()
        {
            return "tandem-page-encoder-" + id;
        }

        void plan(final StagingArea area, final long segment)
        {
            this.area = area;
            this.segment = segment;
            this.cursor = 0;
            plannedSegment = segment;
        }

        @Override
        public int doWork()
        {
            if (failed || plannedSegment == doneSegment)
            {
                return 0;
            }
            if (cursor == jobCount)
            {
                doneSegment = segment;
                return 1;
            }
            final long next = produced.get();
            if (next - takenPublished.get() >= slots)
            {
                return 0;
            }
            try
            {
                encode(area, jobs[cursor], (int)(next % slots));
            }
            catch (final RuntimeException ex)
            {
                // reported once (it stops protection); the sender stops waiting for this worker
                failed = true;
                throw ex;
            }
            cursor++;
            produced.lazySet(next + 1);
            return 1;
        }

        void encode(final StagingArea area, final int job, final int slot)
        {
            final long start = clock.nanoTime();
            final UnsafeBuffer pages = area.pageBuffer();
            final ByteBuffer pagesView = areaViews[area.index()];
            final UnsafeBuffer out = slotBuffers[slot];
            final long firstPage = jobFirstPage[job];
            final int pageInArea = jobPageInArea[job];
            final int kinds = slot * 4;
            slotKinds[kinds] = 0;
            slotKinds[kinds + 1] = 0;
            slotKinds[kinds + 2] = 0;
            slotKinds[kinds + 3] = 0;
            int length = 0;
            codec.deltas(!area.isBaseline());
            for (int i = 0, count = jobPageCount[job]; i < count; i++)
            {
                final int entry = length;
                length += codec.encode(firstPage + i, pages, pagesView, area.pageOffset(pageInArea + i), out, length);
                slotKinds[kinds + (out.getInt(entry) & 0xFF)]++;
            }
            slotLength[slot] = length;
            slotNanos[slot] = clock.nanoTime() - start;
        }

        ByteBuffer slotView(final int slot)
        {
            final ByteBuffer view = slotViews[slot];
            view.limit(slotLength[slot]).position(0);
            return view;
        }

        @Override
        public void onClose()
        {
            CloseHelper.quietCloseAll(slotRegions);
            codec.close();
        }
    }
}
