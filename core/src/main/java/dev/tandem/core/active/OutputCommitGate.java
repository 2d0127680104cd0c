package dev.tandem.core.active;

import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.OutputGate;
import dev.tandem.vmm.PacketSink;
import org.HdrHistogram.SingleWriterRecorder;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.ControlledMessageHandler;
import org.agrona.concurrent.NanoClock;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.ringbuffer.ManyToOneRingBuffer;
import org.agrona.concurrent.ringbuffer.RingBufferDescriptor;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Output commit: every frame the guest sends is held in an off-heap queue, tagged with the epoch it was sent in,
 * and handed to the {@link PacketSink} in order only once that epoch is acknowledged. The epoch tag is the
 * scheduler's current epoch, which only changes while the guest is paused, when no frame can be offered.
 */
final class OutputCommitGate implements OutputGate, AutoCloseable
{
    private static final int FRAME = 1;
    /** Record: epoch:int64 offeredNs:int64 frame. */
    private static final int RECORD_HEADER = 16;

    private final NativeMemory.Region region;
    private final ManyToOneRingBuffer queue;
    private final UnsafeBuffer queueBuffer;
    private final PacketSink sink;
    private final ControlledMessageHandler releaseHandler = this::releaseOne;
    private final AtomicLong released = new AtomicLong();
    private final AtomicLong dropped = new AtomicLong();
    private final SingleWriterRecorder holdRecorder;
    private long baselineEpoch = Long.MIN_VALUE;
    private volatile long baselineHoldMaxNs;
    private final long highestRecordableNs;
    private final NanoClock clock;

    private volatile long currentEpoch;
    private long releaseUpTo;

    OutputCommitGate(final int capacity, final PacketSink sink, final SingleWriterRecorder holdRecorder,
        final long highestRecordableNs, final NanoClock clock)
    {
        this.clock = clock;
        this.holdRecorder = holdRecorder;
        this.highestRecordableNs = highestRecordableNs;
        this.region = NativeMemory.allocateDirect(capacity + RingBufferDescriptor.TRAILER_LENGTH, 64);
        this.queueBuffer = new UnsafeBuffer(region.byteBuffer());
        this.queue = new ManyToOneRingBuffer(queueBuffer);
        this.sink = sink;
    }

    /**
     * Called by the scheduler while the guest is paused: frames from now on belong to {@code epoch}.
     */
    void epoch(final long epoch)
    {
        currentEpoch = epoch;
    }

    @Override
    public boolean offer(final DirectBuffer frame, final int index, final int length)
    {
        if (length < 0 || length > queue.maxMsgLength() - RECORD_HEADER)
        {
            throw new IllegalArgumentException("frame of " + length + " bytes; the output gate holds frames of up to " +
                (queue.maxMsgLength() - RECORD_HEADER));
        }
        final int at = queue.tryClaim(FRAME, length + RECORD_HEADER);
        if (at < 0)
        {
            dropped.incrementAndGet();
            return false;
        }
        queueBuffer.putLong(at, currentEpoch);
        queueBuffer.putLong(at + 8, clock.nanoTime());
        queueBuffer.putBytes(at + RECORD_HEADER, frame, index, length);
        queue.commit(at);
        return true;
    }

    /**
     * Releases, in order, every held frame of an epoch up to {@code ackedEpoch}. Called by the sender thread.
     *
     * @return frames released.
     */
    int release(final long ackedEpoch)
    {
        releaseUpTo = ackedEpoch;
        return queue.controlledRead(releaseHandler);
    }

    private ControlledMessageHandler.Action releaseOne(
        final int msgTypeId, final MutableDirectBuffer buffer, final int index, final int length)
    {
        if (buffer.getLong(index) > releaseUpTo)
        {
            return ControlledMessageHandler.Action.ABORT;
        }
        sink.send(buffer, index + RECORD_HEADER, length - RECORD_HEADER);
        final long heldNs = clock.nanoTime() - buffer.getLong(index + 8);
        if (buffer.getLong(index) > baselineEpoch)
        {
            holdRecorder.recordValue(Math.min(highestRecordableNs, Math.max(0, heldNs)));
        }
        else if (heldNs > baselineHoldMaxNs)
        {
            // output offered during the baseline waited for the whole first copy: reported apart, not as steady state
            baselineHoldMaxNs = heldNs;
        }
        released.incrementAndGet();
        return ControlledMessageHandler.Action.CONTINUE;
    }

    /**
     * @param epoch the baseline's epoch: frames of it and before are held for the whole first copy, and their hold
     *              is reported apart from the steady state.
     */
    void baselineEpoch(final long epoch)
    {
        baselineEpoch = epoch;
    }

    /**
     * @return the longest hold of a frame offered during the baseline.
     */
    long baselineHoldMaxNs()
    {
        return baselineHoldMaxNs;
    }

    int heldBytes()
    {
        return queue.size();
    }

    long releasedFrames()
    {
        return released.get();
    }

    long droppedFrames()
    {
        return dropped.get();
    }

    @Override
    public void close()
    {
        region.close();
    }
}
