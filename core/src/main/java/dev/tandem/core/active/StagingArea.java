package dev.tandem.core.active;

import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.StatefulComponent;
import dev.tandem.vmm.VmmAdapterException;
import org.agrona.concurrent.UnsafeBuffer;

import java.nio.ByteBuffer;
import java.util.List;

/**
 * A page-aligned off-heap area the scheduler copies one checkpoint's dirty pages and component state into while the
 * guest is paused, and the sender encodes from after resume. The scheduler owns a FREE area; publishing hands it to
 * the sender, which returns it FREE once sent. The volatile {@code state} is the only synchronisation.
 * <p>
 * A delta larger than the area is split into segments (each its own area), so the pause grows while the sender
 * drains the earlier segment; the last segment carries the component state.
 */
final class StagingArea implements AutoCloseable
{
    static final int FREE = 0;
    static final int PUBLISHED = 1;

    private final int index;
    private final int pageSize;
    private final int pageShift;
    private final NativeMemory.Region pages;
    private final NativeMemory.Region components;
    private final UnsafeBuffer pageBuffer;
    private final UnsafeBuffer componentBuffer;
    private final ByteBuffer pageView;
    private final ByteBuffer componentView;
    private final int maxPages;
    private final long[] runFirstPage;
    private final int[] runPageCount;
    private final int[] componentId;
    private final int[] componentVersion;
    private final int[] componentOffset;
    private final int[] componentLength;

    private volatile int state = FREE;
    private int runCount;
    private int pageCount;
    private int componentCount;
    private long epoch;
    private boolean lastSegment;
    private boolean firstSegment;
    private boolean baseline;
    private boolean opensBaseline;

    StagingArea(final int index, final int bytes, final int pageSize, final int componentBytes, final int maxComponents)
    {
        this.index = index;
        this.pageSize = pageSize;
        this.pageShift = Integer.numberOfTrailingZeros(pageSize);
        this.pages = NativeMemory.allocateDirect(bytes, pageSize);
        this.components = NativeMemory.allocateDirect(componentBytes, 64);
        this.pageBuffer = new UnsafeBuffer(pages.byteBuffer());
        this.componentBuffer = new UnsafeBuffer(components.byteBuffer());
        this.pageView = pages.byteBuffer().duplicate();
        this.componentView = components.byteBuffer().duplicate();
        this.maxPages = bytes / pageSize;
        this.runFirstPage = new long[maxPages];
        this.runPageCount = new int[maxPages];
        this.componentId = new int[maxComponents];
        this.componentVersion = new int[maxComponents];
        this.componentOffset = new int[maxComponents];
        this.componentLength = new int[maxComponents];
    }

    int index()
    {
        return index;
    }

    boolean isFree()
    {
        return state == FREE;
    }

    void begin(final long epoch, final boolean firstSegment, final boolean baseline)
    {
        this.epoch = epoch;
        this.firstSegment = firstSegment;
        this.baseline = baseline;
        this.opensBaseline = false;
        this.lastSegment = false;
        this.runCount = 0;
        this.pageCount = 0;
        this.componentCount = 0;
    }

    /**
     * @return pages that still fit.
     */
    int roomInPages()
    {
        return maxPages - pageCount;
    }

    /**
     * Copies a run of guest pages in; the caller checked {@link #roomInPages()}.
     */
    void copyRun(final GuestMemory memory, final long firstPage, final int count)
    {
        memory.copyOut(firstPage, count, pageBuffer, pageCount << pageShift);
        if (runCount > 0 && runFirstPage[runCount - 1] + runPageCount[runCount - 1] == firstPage)
        {
            runPageCount[runCount - 1] += count;
        }
        else
        {
            runFirstPage[runCount] = firstPage;
            runPageCount[runCount] = count;
            runCount++;
        }
        pageCount += count;
    }

    /**
     * Saves every component; the area becomes the epoch's last segment.
     *
     * @return 0, or the room needed when the component area is too small (nothing usable was saved).
     */
    int saveComponents(final List<StatefulComponent> list)
    {
        int offset = 0;
        for (int i = 0, n = list.size(); i < n; i++)
        {
            final StatefulComponent component = list.get(i);
            final int room = componentBuffer.capacity() - offset;
            final int length = component.save(componentBuffer, offset, room);
            if (length < 0)
            {
                return offset + (-length) + 1;
            }
            if (length > room)
            {
                throw new VmmAdapterException(VmmAdapterException.Phase.SNAPSHOT,
                    component.name() + " saved " + length + " bytes into " + room + " bytes of room");
            }
            componentId[i] = component.id();
            componentVersion[i] = component.version();
            componentOffset[i] = offset;
            componentLength[i] = length;
            offset += length;
        }
        componentCount = list.size();
        lastSegment = true;
        return 0;
    }

    void publish()
    {
        state = PUBLISHED;
    }

    void release()
    {
        state = FREE;
    }

    long epoch()
    {
        return epoch;
    }

    boolean isFirstSegment()
    {
        return firstSegment;
    }

    boolean isBaseline()
    {
        return baseline;
    }

    /**
     * This segment opens the baseline epoch: the sender copies every disk when it reaches it, before anything
     * that follows it in the ordered stream.
     */
    void markOpensBaseline()
    {
        opensBaseline = true;
    }

    boolean opensBaseline()
    {
        return opensBaseline;
    }

    boolean isLastSegment()
    {
        return lastSegment;
    }

    int runCount()
    {
        return runCount;
    }

    long runFirstPage(final int run)
    {
        return runFirstPage[run];
    }

    int runPageCount(final int run)
    {
        return runPageCount[run];
    }

    int pageCount()
    {
        return pageCount;
    }

    int pageSize()
    {
        return pageSize;
    }

    /**
     * @return a view of the pages of one stretch, reusing one {@link ByteBuffer}.
     */
    ByteBuffer pageBytes(final int pageIndexInArea, final int count)
    {
        pageView.limit((pageIndexInArea + count) << pageShift).position(pageIndexInArea << pageShift);
        return pageView;
    }

    /**
     * @return the page area, for encoders that read pages in place.
     */
    UnsafeBuffer pageBuffer()
    {
        return pageBuffer;
    }

    /**
     * @return a {@link ByteBuffer} over the page area; callers pass absolute offsets.
     */
    ByteBuffer pageByteBuffer()
    {
        return pageView;
    }

    /**
     * @return the offset in the page area of the {@code pageIndexInArea}-th page copied.
     */
    int pageOffset(final int pageIndexInArea)
    {
        return pageIndexInArea << pageShift;
    }

    int componentCount()
    {
        return componentCount;
    }

    int componentId(final int i)
    {
        return componentId[i];
    }

    int componentVersion(final int i)
    {
        return componentVersion[i];
    }

    ByteBuffer componentBytes(final int i)
    {
        componentView.limit(componentOffset[i] + componentLength[i]).position(componentOffset[i]);
        return componentView;
    }

    int componentLength(final int i)
    {
        return componentLength[i];
    }

    @Override
    public void close()
    {
        pages.close();
        components.close();
    }
}
