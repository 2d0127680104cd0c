package dev.tandem.core.wire;

import dev.tandem.core.transport.Connection;
import dev.tandem.vmm.NativeMemory;
import org.agrona.concurrent.UnsafeBuffer;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Reads frames off a {@link Connection} into one direct receive buffer and hands them out whole and verified, one at a
 * time, in place (no copy): the one frame reader of both sides (the standby's receiver, the active's ack reader and
 * its handshake). Never blocks: {@link #read} takes what the socket has, {@link #next} decodes the next whole frame
 * if one is there. A frame the caller cannot take yet is left unconsumed and decoded again by the next {@link #next}
 * (the standby's waits for its applier rely on that). Allocates nothing after construction; owns its buffer until
 * {@link #close()}.
 */
public final class FrameReader implements AutoCloseable
{
    private final NativeMemory.Region region;
    private final UnsafeBuffer buffer;
    private final ByteBuffer receiveView;
    private final ByteBuffer crcView;
    private final ByteBuffer dataView;
    private final FrameDecoder decoder;
    /** Offset of the first byte not yet consumed. */
    private int position;
    /** Length of the frame {@link #next} found at {@link #position}, or 0. */
    private int frameLength;

    /**
     * @param bufferBytes receive buffer size; at least one largest frame.
     * @param maxPayload  largest payload accepted; a larger one is refused as soon as its header arrives.
     * @throws IllegalArgumentException if the buffer cannot hold a largest frame.
     */
    public FrameReader(final int bufferBytes, final int maxPayload)
    {
        if (bufferBytes < FrameCodec.HEADER_LENGTH + maxPayload)
        {
            throw new IllegalArgumentException("a receive buffer of " + bufferBytes + " bytes cannot hold a frame of " +
                maxPayload + " payload bytes");
        }
        this.region = NativeMemory.allocateDirect(bufferBytes, 4096);
        this.buffer = new UnsafeBuffer(region.byteBuffer());
        this.receiveView = region.byteBuffer().duplicate();
        this.crcView = region.byteBuffer().duplicate();
        this.dataView = region.byteBuffer().duplicate();
        this.decoder = new FrameDecoder(maxPayload);
    }

    /**
     * Reads what the connection has, as far as the buffer has room.
     *
     * @param connection the peer.
     * @return bytes read, 0 if none were waiting or the buffer is full, -1 at the end of the stream.
     * @throws IOException if the read fails.
     */
    public int read(final Connection connection) throws IOException
    {
        return receiveView.hasRemaining() ? connection.read(receiveView) : 0;
    }

    /**
     * @return true when the buffer is full of frames not yet consumed: reading waits for the caller.
     */
    public boolean full()
    {
        return !receiveView.hasRemaining();
    }

    /**
     * Decodes the frame after the last one consumed.
     *
     * @return true if a whole, verified frame is there: {@link #decoder()} describes it and {@link #buffer()} holds
     *         it until {@link #consume()} and {@link #compact()}.
     * @throws ProtocolException naming the fault when the frame is malformed.
     */
    public boolean next()
    {
        frameLength = decoder.decode(buffer, crcView, position, receiveView.position() - position);
        return frameLength > 0;
    }

    /**
     * The frame {@link #next} found is done with.
     */
    public void consume()
    {
        position += frameLength;
        frameLength = 0;
    }

    /**
     * Moves the bytes not yet consumed to the start of the buffer, making room for the next read. Invalidates the
     * offsets of every frame handed out.
     */
    public void compact()
    {
        final int limit = receiveView.position();
        if (position > 0)
        {
            buffer.putBytes(0, buffer, position, limit - position);
            receiveView.position(limit - position);
            position = 0;
        }
        frameLength = 0;
    }

    /**
     * @return bytes received and not consumed (the frame {@link #next} found counts until consumed).
     */
    public int buffered()
    {
        return receiveView.position() - position;
    }

    /**
     * Forgets every byte and accepts any supported version again: a new connection.
     */
    public void reset()
    {
        receiveView.clear();
        position = 0;
        frameLength = 0;
        decoder.reset();
    }

    /**
     * @return the decoder describing the frame {@link #next} found (type, payload index and length, generation,
     *         epoch, CRC); narrow its versions with {@link FrameDecoder#negotiated} after the handshake.
     */
    public FrameDecoder decoder()
    {
        return decoder;
    }

    /**
     * @return the receive buffer: a frame's payload is at {@link FrameDecoder#payloadIndex()}.
     */
    public UnsafeBuffer buffer()
    {
        return buffer;
    }

    /**
     * @return a reusable {@link ByteBuffer} over the receive buffer's memory, for checksums over a part of a frame.
     */
    public ByteBuffer checksumView()
    {
        return crcView;
    }

    /**
     * @param index  offset in the receive buffer.
     * @param length bytes.
     * @return a reusable {@link ByteBuffer} over those bytes (position to limit), valid until the next call.
     */
    public ByteBuffer slice(final int index, final int length)
    {
        dataView.limit(index + length).position(index);
        return dataView;
    }

    /**
     * Frees the receive buffer. Idempotent.
     */
    @Override
    public void close()
    {
        region.close();
    }
}
