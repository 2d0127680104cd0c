package dev.tandem.core.standby;

import dev.tandem.core.transport.Connection;
import dev.tandem.core.transport.Transport;
import dev.tandem.core.wire.FrameCodec;
import dev.tandem.core.wire.FrameType;
import dev.tandem.core.wire.Handshake;
import org.agrona.concurrent.UnsafeBuffer;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * A hand-driven active for protocol tests: writes exactly the bytes a test wants, valid or not.
 */
final class RawActive implements AutoCloseable
{
    final Connection connection;
    long generation;
    long crcSum;
    int frames;
    int diskWrites;
    long pages;
    int components;

    /** The protocol version of the data frames this active sends (the one its HELLO lets the standby choose). */
    int version = FrameCodec.MAX_VERSION;

    RawActive(final Transport transport, final String endpoint) throws IOException
    {
        connection = transport.connect(endpoint, 5000);
    }

    static byte[] frame(final FrameType type, final long generation, final long epoch, final byte[] payload)
    {
        return frame(FrameCodec.MAX_VERSION, type, generation, epoch, payload);
    }

    static byte[] frame(final int version, final FrameType type, final long generation, final long epoch,
        final byte[] payload)
    {
        final UnsafeBuffer buffer = new UnsafeBuffer(ByteBuffer.allocateDirect(FrameCodec.HEADER_LENGTH + payload.length));
        FrameCodec.writeHeader(buffer, 0, version, type, payload.length, generation, epoch);
        buffer.putBytes(FrameCodec.HEADER_LENGTH, payload);
        FrameCodec.sealCrc(new CRC32C(), buffer, buffer.byteBuffer().duplicate(), 0,
            FrameCodec.HEADER_LENGTH + payload.length, null);
        final byte[] bytes = new byte[FrameCodec.HEADER_LENGTH + payload.length];
        buffer.getBytes(0, bytes);
        return bytes;
    }

    static long crcOf(final byte[] frame)
    {
        return new UnsafeBuffer(frame).getInt(FrameCodec.CRC_OFFSET) & 0xFFFF_FFFFL;
    }

    void hello(final String vmId, final int pageSize, final long pageCount, final List<Handshake.Disk> disks)
        throws IOException
    {
        hello(FrameCodec.MIN_VERSION, FrameCodec.MAX_VERSION, vmId, pageSize, pageCount, disks);
    }

    void hello(final int minVersion, final int maxVersion, final String vmId, final int pageSize,
        final long pageCount, final List<Handshake.Disk> disks) throws IOException
    {
        final UnsafeBuffer payload = new UnsafeBuffer(new byte[2048]);
        final int length = new Handshake.Hello(minVersion, maxVersion, vmId, pageSize, pageCount, disks, 20_000_000L, 0,
            dev.tandem.core.wire.FrameCodec.MAX_PAYLOAD_DEFAULT)
            .encode(payload, 0);
        final byte[] bytes = new byte[length];
        payload.getBytes(0, bytes);
        send(frame(FrameType.HELLO, 0, 0, bytes));
    }

    /**
     * @return the frame type code of the standby's reply and its payload start, as read.
     */
    /** What the standby sent and this side has not yet returned, across calls. */
    private final ByteBuffer inbox = ByteBuffer.allocateDirect(1 << 16);

    /**
     * @return the standby's next frame other than a HEARTBEAT (which it sends while idle), alone in its buffer.
     */
    UnsafeBuffer awaitFrame() throws IOException
    {
        final long deadline = System.nanoTime() + 10_000_000_000L;
        while (true)
        {
            final UnsafeBuffer view = new UnsafeBuffer(inbox, 0, inbox.capacity());
            if (inbox.position() >= FrameCodec.HEADER_LENGTH)
            {
                final int length = FrameCodec.HEADER_LENGTH + view.getInt(FrameCodec.LENGTH_OFFSET);
                if (inbox.position() >= length)
                {
                    final byte[] frame = new byte[length];
                    view.getBytes(0, frame);
                    view.putBytes(0, view, length, inbox.position() - length);
                    inbox.position(inbox.position() - length);
                    if (frame[FrameCodec.TYPE_OFFSET] != FrameType.HEARTBEAT.code())
                    {
                        final ByteBuffer copy = ByteBuffer.allocateDirect(length);
                        copy.put(frame).flip();
                        return new UnsafeBuffer(copy);
                    }
                    continue;
                }
            }
            final int n = connection.read(inbox);
            if (n < 0)
            {
                throw new IOException("standby closed the connection");
            }
            if (System.nanoTime() > deadline)
            {
                throw new IOException("no reply from standby");
            }
            if (n == 0)
            {
                Thread.onSpinWait();
            }
        }
    }

    void welcome(final String vmId, final int pageSize, final long pageCount, final List<Handshake.Disk> disks)
        throws IOException
    {
        hello(vmId, pageSize, pageCount, disks);
        final UnsafeBuffer reply = awaitFrame();
        if (reply.getByte(FrameCodec.TYPE_OFFSET) != FrameType.WELCOME.code())
        {
            throw new IOException("expected WELCOME, got type " + reply.getByte(FrameCodec.TYPE_OFFSET));
        }
        generation = reply.getLong(FrameCodec.HEADER_LENGTH + 16);
    }

    void send(final byte[] bytes) throws IOException
    {
        final ByteBuffer[] gather = {ByteBuffer.wrap(bytes)};
        while (gather[0].hasRemaining())
        {
            connection.write(gather, 0, 1);
        }
    }

    /** Sends a data frame and counts it toward the epoch end. */
    void data(final FrameType type, final long epoch, final byte[] payload) throws IOException
    {
        final byte[] frame = frame(version, type, generation, epoch, payload);
        crcSum += crcOf(frame);
        frames++;
        send(frame);
    }

    void diskWrite(final long epoch, final int diskId, final long offset, final byte[] data) throws IOException
    {
        final UnsafeBuffer payload = new UnsafeBuffer(new byte[FrameCodec.DISK_WRITE_HEADER + data.length]);
        payload.putInt(0, diskId);
        payload.putInt(4, data.length);
        payload.putLong(8, offset);
        payload.putBytes(FrameCodec.DISK_WRITE_HEADER, data);
        data(FrameType.DISK_WRITE, epoch, payload.byteArray());
        diskWrites++;
    }

    void barrier(final long epoch) throws IOException
    {
        send(frame(version, FrameType.BARRIER, generation, epoch, new byte[0]));
    }

    void pages(final long epoch, final long firstPage, final int count, final int pageSize, final byte fill)
        throws IOException
    {
        final UnsafeBuffer payload = new UnsafeBuffer(new byte[FrameCodec.PAGES_HEADER + count * pageSize]);
        payload.putLong(0, firstPage);
        payload.putInt(8, count);
        payload.setMemory(FrameCodec.PAGES_HEADER, count * pageSize, fill);
        data(FrameType.PAGES, epoch, payload.byteArray());
        pages += count;
    }

    /** Sends one page as a PAGES_ENCODED frame with the given codec entry. */
    void encodedPage(final long epoch, final long page, final int kind, final byte[] data) throws IOException
    {
        final UnsafeBuffer payload = new UnsafeBuffer(new byte[FrameCodec.PAGES_HEADER + 4 + data.length]);
        payload.putLong(0, page);
        payload.putInt(8, 1);
        payload.putInt(FrameCodec.PAGES_HEADER, kind | (data.length << 8));
        payload.putBytes(FrameCodec.PAGES_HEADER + 4, data);
        data(FrameType.PAGES_ENCODED, epoch, payload.byteArray());
        pages++;
    }

    void component(final long epoch, final int id, final byte[] state) throws IOException
    {
        final UnsafeBuffer payload = new UnsafeBuffer(new byte[FrameCodec.COMPONENT_HEADER + state.length]);
        payload.putInt(0, id);
        payload.putInt(4, 1);
        payload.putBytes(FrameCodec.COMPONENT_HEADER, state);
        data(FrameType.COMPONENT, epoch, payload.byteArray());
        components++;
    }

    byte[] epochEndPayload()
    {
        final UnsafeBuffer payload = new UnsafeBuffer(new byte[FrameCodec.EPOCH_END_LENGTH]);
        payload.putLong(0, pages);
        payload.putInt(8, frames);
        payload.putInt(12, diskWrites);
        payload.putInt(16, components);
        payload.putLong(24, crcSum);
        return payload.byteArray();
    }

    void end(final long epoch) throws IOException
    {
        send(frame(version, FrameType.EPOCH_END, generation, epoch, epochEndPayload()));
        crcSum = 0;
        frames = 0;
        diskWrites = 0;
        pages = 0;
        components = 0;
    }

    long awaitAck() throws IOException
    {
        final UnsafeBuffer reply = awaitFrame();
        if (reply.getByte(FrameCodec.TYPE_OFFSET) != FrameType.ACK.code())
        {
            throw new IOException("expected ACK, got type " + reply.getByte(FrameCodec.TYPE_OFFSET));
        }
        return reply.getLong(FrameCodec.EPOCH_OFFSET);
    }

    @Override
    public void close()
    {
        connection.close();
    }
}
