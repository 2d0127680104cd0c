package dev.tandem.core.wire;

import dev.tandem.core.transport.Connection;
import dev.tandem.vmm.NativeMemory;
import org.agrona.concurrent.NanoClock;
import org.agrona.concurrent.UnsafeBuffer;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * Writes one frame at a time onto a {@link Connection}: the one frame writer of both sides. The header and the
 * frame's sub-header (or a small payload) live in this writer's direct buffer, the bulk of the payload stays in the
 * caller's buffer and is gathered from there without a copy; the CRC is sealed over both. {@link #write} makes one
 * non-blocking attempt and says how far it got, so a caller that must not block keeps the frame pending across duty
 * cycles, and {@link #writeAll} is the blocking form with the caller's policy for a full socket. Allocates nothing
 * after construction; owns its buffer until {@link #close()}.
 */
public final class FrameWriter implements AutoCloseable
{
    /**
     * What a blocking write does while the socket takes nothing: check a deadline, read the peer, back off. Throwing
     * abandons the frame.
     */
    @FunctionalInterface
    public interface Stall
    {
        /**
         * @param blockedNs how long the socket has taken nothing.
         * @throws IOException to give up on the frame (and the connection).
         */
        void stalled(long blockedNs) throws IOException;
    }

    private final NativeMemory.Region region;
    private final UnsafeBuffer header;
    private final ByteBuffer headerView;
    private final ByteBuffer headerSend;
    private final ByteBuffer[] gather = new ByteBuffer[2];
    private final CRC32C crc = new CRC32C();
    private int buffers;
    private long remaining;
    private long frameBytes;

    /**
     * @param maxSubHeader the largest sub-header (or small payload) a frame carries in this writer's buffer.
     */
    public FrameWriter(final int maxSubHeader)
    {
        this.region = NativeMemory.allocateDirect(FrameCodec.HEADER_LENGTH + maxSubHeader, 64);
        this.header = new UnsafeBuffer(region.byteBuffer());
        this.headerView = region.byteBuffer().duplicate();
        this.headerSend = region.byteBuffer().duplicate();
    }

    /**
     * @return the buffer the next frame's sub-header is put in, at {@link FrameCodec#HEADER_LENGTH} onwards.
     * @throws IllegalStateException while a frame is still being written (its bytes would change under the socket).
     */
    public UnsafeBuffer subHeader()
    {
        if (remaining > 0)
        {
            throw new IllegalStateException("a frame is still being written");
        }
        return header;
    }

    /**
     * Starts a frame: header written, CRC sealed over the header, the sub-header in {@link #subHeader()} and the
     * payload; nothing sent yet.
     *
     * @param version    protocol version.
     * @param type       frame type.
     * @param generation fencing generation.
     * @param epoch      epoch the frame belongs to.
     * @param subHeader  bytes of the frame already put in {@link #subHeader()} after the header.
     * @param payload    the rest of the payload (position to limit; its position advances as it is written, and
     *                   its bytes must not change until the frame is), or null.
     * @return the frame's CRC32C, unsigned.
     * @throws IllegalStateException while the previous frame is still being written.
     */
    public long begin(final int version, final FrameType type, final long generation, final long epoch,
        final int subHeader, final ByteBuffer payload)
    {
        if (remaining > 0)
        {
            throw new IllegalStateException("a frame is still being written");
        }
        final int payloadBytes = payload == null ? 0 : payload.remaining();
        FrameCodec.writeHeader(header, 0, version, type, subHeader + payloadBytes, generation, epoch);
        final int frameCrc = FrameCodec.sealCrc(crc, header, headerView, 0, FrameCodec.HEADER_LENGTH + subHeader,
            payload);
        headerSend.limit(FrameCodec.HEADER_LENGTH + subHeader).position(0);
        gather[0] = headerSend;
        gather[1] = payload;
        buffers = payload == null ? 1 : 2;
        frameBytes = FrameCodec.HEADER_LENGTH + subHeader + payloadBytes;
        remaining = frameBytes;
        return frameCrc & 0xFFFF_FFFFL;
    }

    /**
     * One non-blocking attempt to write the rest of the frame.
     *
     * @param connection the peer.
     * @return bytes written now (0 when the socket is full).
     * @throws IOException if the write fails.
     */
    public long write(final Connection connection) throws IOException
    {
        if (remaining == 0)
        {
            return 0;
        }
        final long written = connection.write(gather, 0, buffers);
        remaining -= written;
        if (remaining == 0)
        {
            // the caller's payload buffer is not kept beyond its frame
            gather[1] = null;
        }
        return written;
    }

    /**
     * Writes the rest of the frame, calling {@code stall} each time the socket takes nothing.
     *
     * @param connection the peer.
     * @param stall      the caller's policy for a full socket; it may throw to give up.
     * @param clock      the caller's clock.
     * @throws IOException if the write fails or {@code stall} gives up.
     */
    public void writeAll(final Connection connection, final Stall stall, final NanoClock clock) throws IOException
    {
        long blockedSinceNs = 0;
        while (remaining > 0)
        {
            if (write(connection) > 0)
            {
                blockedSinceNs = 0;
            }
            else
            {
                final long now = clock.nanoTime();
                blockedSinceNs = blockedSinceNs == 0 ? now : blockedSinceNs;
                stall.stalled(now - blockedSinceNs);
            }
        }
    }

    /**
     * @return true while the frame begun has bytes not yet written.
     */
    public boolean pending()
    {
        return remaining > 0;
    }

    /**
     * @return true when part of the frame is written and part is not: nothing else may go on the connection.
     */
    public boolean midFrame()
    {
        return remaining > 0 && remaining < frameBytes;
    }

    /**
     * @return size of the frame last begun, header included.
     */
    public long frameBytes()
    {
        return frameBytes;
    }

    /**
     * Forgets the frame being written (the connection is being dropped): the next {@link #begin} starts afresh.
     */
    public void abandon()
    {
        remaining = 0;
        gather[1] = null;
    }

    /**
     * Frees the buffer. Idempotent.
     */
    @Override
    public void close()
    {
        region.close();
    }
}
