package dev.tandem.core.wire;

import dev.tandem.core.transport.Connection;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.core.transport.Transport;
import dev.tandem.vmm.NativeMemory;
import org.agrona.concurrent.SystemNanoClock;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The one frame reader and writer: frames cross a socket whole and exact however the bytes are cut, a frame left
 * unconsumed is handed out again, and both free what they allocate.
 */
class FrameReaderWriterTest
{
    /**
     * A connection that takes at most {@code step} bytes per write and gives them back at most {@code step} per
     * read: the cuts a full socket makes, at every offset.
     */
    private static class Trickle implements Connection
    {
        private final ByteBuffer pipe = ByteBuffer.allocate(1 << 20);
        private final int step;
        private int writes;

        Trickle(final int step)
        {
            this.step = step;
        }

        @Override
        public long write(final ByteBuffer[] srcs, final int offset, final int length)
        {
            // every other write is refused outright, as a full socket does
            if (writes++ % 2 == 1)
            {
                return 0;
            }
            long written = 0;
            for (int i = offset; i < offset + length && written < step; i++)
            {
                while (srcs[i].hasRemaining() && written < step)
                {
                    pipe.put(srcs[i].get());
                    written++;
                }
            }
            return written;
        }

        @Override
        public int read(final ByteBuffer dst)
        {
            pipe.flip();
            int read = 0;
            while (pipe.hasRemaining() && dst.hasRemaining() && read < step)
            {
                dst.put(pipe.get());
                read++;
            }
            pipe.compact();
            return read;
        }

        @Override
        public boolean isOpen()
        {
            return true;
        }

        @Override
        public String peer()
        {
            return "trickle";
        }

        @Override
        public void close()
        {
        }
    }

    @Test
    void framesCutAtEveryOffsetArriveWholeAndExact() throws IOException
    {
        final long regionsBefore = NativeMemory.liveAllocations();
        final ByteBuffer payload = ByteBuffer.allocateDirect(3000);
        for (int i = 0; i < payload.capacity(); i++)
        {
            payload.put(i, (byte)(i * 31));
        }
        for (final int step : new int[] {1, 7, 33, 4096})
        {
            final Trickle connection = new Trickle(step);
            try (FrameWriter writer = new FrameWriter(64); FrameReader reader = new FrameReader(8192, 4096))
            {
                for (int frame = 0; frame < 5; frame++)
                {
                    writer.subHeader().putLong(FrameCodec.HEADER_LENGTH, 1000 + frame);
                    payload.limit(frame * 500).position(frame * 100);
                    final long crc = writer.begin(FrameCodec.MAX_VERSION, FrameType.PAGES, 3, frame, 8, payload);
                    int stalls = 0;
                    while (writer.pending())
                    {
                        if (writer.write(connection) == 0)
                        {
                            stalls++;
                        }
                    }
                    assertTrue(stalls > 0 || step >= writer.frameBytes(), "the trickle refuses every other write");
                    while (!reader.next())
                    {
                        assertTrue(reader.read(connection) >= 0);
                    }
                    assertEquals(FrameType.PAGES, reader.decoder().type());
                    assertEquals(frame, reader.decoder().epoch());
                    assertEquals(3, reader.decoder().generation());
                    assertEquals(crc, reader.decoder().crc() & 0xFFFF_FFFFL);
                    final int index = reader.decoder().payloadIndex();
                    assertEquals(8 + frame * 400, reader.decoder().length());
                    assertEquals(1000 + frame, reader.buffer().getLong(index));
                    for (int i = 0; i < frame * 400; i++)
                    {
                        assertEquals(payload.get(frame * 100 + i), reader.buffer().getByte(index + 8 + i),
                            "byte " + i + " of frame " + frame + " cut every " + step + " bytes");
                    }
                    reader.consume();
                    reader.compact();
                    assertEquals(0, reader.buffered());
                }
            }
        }
        assertEquals(regionsBefore, NativeMemory.liveAllocations(), "reader and writer free their buffers");
    }

    @Test
    void aFrameLeftUnconsumedIsHandedOutAgain() throws IOException
    {
        final Trickle connection = new Trickle(1 << 16);
        try (FrameWriter writer = new FrameWriter(64); FrameReader reader = new FrameReader(8192, 4096))
        {
            for (int epoch = 1; epoch <= 2; epoch++)
            {
                writer.begin(FrameCodec.MAX_VERSION, FrameType.HEARTBEAT, 1, epoch, 0, null);
                writer.writeAll(connection, blockedNs -> { }, SystemNanoClock.INSTANCE);
            }
            reader.read(connection);
            assertTrue(reader.next());
            assertEquals(1, reader.decoder().epoch());
            // not consumed: a receiver waiting for its applier decodes the same frame again later
            reader.compact();
            assertTrue(reader.next());
            assertEquals(1, reader.decoder().epoch());
            reader.consume();
            assertTrue(reader.next());
            assertEquals(2, reader.decoder().epoch());
            reader.consume();
            assertFalse(reader.next());
            reader.compact();
            assertEquals(0, reader.buffered());
        }
    }

    @Test
    void aStalledWriteGivesUpWhereItsPolicySays() throws IOException
    {
        final Connection full = new Trickle(1)
        {
            @Override
            public long write(final ByteBuffer[] srcs, final int offset, final int length)
            {
                return 0;
            }
        };
        try (FrameWriter writer = new FrameWriter(64))
        {
            writer.begin(FrameCodec.MAX_VERSION, FrameType.ACK, 1, 1, 0, null);
            final IOException ex = assertThrows(IOException.class, () -> writer.writeAll(full, blockedNs ->
            {
                throw new IOException("peer has not read");
            }, SystemNanoClock.INSTANCE));
            assertEquals("peer has not read", ex.getMessage());
            assertTrue(writer.pending());
            assertFalse(writer.midFrame(), "nothing of the frame went out");
            assertThrows(IllegalStateException.class, writer::subHeader, "a pending frame's bytes are not reused");
            writer.abandon();
            writer.subHeader();
        }
    }

    @Test
    void framesCrossRealLoopbackTcp() throws Exception
    {
        final Transport tcp = new TcpTransport();
        try (Transport.Listener listener = tcp.listen("127.0.0.1:0");
            Connection client = tcp.connect(listener.endpoint(), 5_000);
            FrameWriter writer = new FrameWriter(64);
            FrameReader reader = new FrameReader(1 << 16, 1 << 15))
        {
            Connection accepted = null;
            final long deadline = System.nanoTime() + 5_000_000_000L;
            while (accepted == null && System.nanoTime() < deadline)
            {
                accepted = listener.accept();
            }
            assertTrue(accepted != null, "accepted within 5 s");
            try (Connection server = accepted)
            {
                final ByteBuffer payload = ByteBuffer.allocateDirect(30_000).order(java.nio.ByteOrder.nativeOrder());
                final long[] received = {0};
                for (int epoch = 1; epoch <= 200; epoch++)
                {
                    payload.clear();
                    payload.putLong(0, epoch);
                    writer.begin(FrameCodec.MAX_VERSION, FrameType.DISK_WRITE, 9, epoch, 0, payload);
                    // the reader drains the other end while the socket is full, as the standby's receiver would
                    writer.writeAll(client, blockedNs -> receive(reader, server, received), SystemNanoClock.INSTANCE);
                }
                while (received[0] < 200)
                {
                    receive(reader, server, received);
                    assertTrue(System.nanoTime() < deadline + 5_000_000_000L, "frames arrive within 10 s");
                }
            }
        }
    }

    private static void receive(final FrameReader reader, final Connection server, final long[] received)
        throws IOException
    {
        assertTrue(reader.read(server) >= 0);
        while (reader.next())
        {
            received[0]++;
            assertEquals(received[0], reader.decoder().epoch(), "frames in order");
            assertEquals(received[0], reader.buffer().getLong(reader.decoder().payloadIndex()));
            assertEquals(30_000, reader.decoder().length());
            reader.consume();
        }
        reader.compact();
    }
}
