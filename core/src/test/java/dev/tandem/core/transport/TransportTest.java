package dev.tandem.core.transport;

import dev.tandem.core.system.LeakCheck;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Both transports carry an ordered byte stream with partial writes under back-pressure and end of stream on close.
 */
@LeakCheck
class TransportTest
{
    @ParameterizedTest
    @ValueSource(strings = {"tcp", "in-jvm"})
    @SuppressWarnings("try")
    void carriesTwentyMegabytesInOrderThroughGatheringWrites(final String kind) throws IOException
    {
        final Transport transport = "tcp".equals(kind) ? new TcpTransport() : new InJvmTransport();
        try (Transport.Listener listener = transport.listen("tcp".equals(kind) ? "127.0.0.1:0" : "pipe"))
        {
            assertNull(listener.accept());
            final byte[] data = new byte[20 << 20];
            new SplittableRandom(1).nextBytes(data);
            try (Connection client = transport.connect(listener.endpoint(), 5000))
            {
                Connection server = null;
                while (server == null)
                {
                    server = listener.accept();
                }
                try (Connection accepted = server)
                {
                    final ByteBuffer head = ByteBuffer.allocateDirect(1000).put(data, 0, 1000).flip();
                    final ByteBuffer tail = ByteBuffer.wrap(data, 1000, data.length - 1000);
                    final ByteBuffer[] gather = {head, tail};
                    final ByteBuffer received = ByteBuffer.allocateDirect(data.length);
                    while (tail.hasRemaining() || head.hasRemaining())
                    {
                        client.write(gather, 0, 2);
                        accepted.read(received);
                    }
                    while (received.hasRemaining())
                    {
                        accepted.read(received);
                    }
                    final byte[] copy = new byte[data.length];
                    received.flip().get(copy);
                    assertArrayEquals(data, copy);
                    client.close();
                    int n;
                    final long deadline = System.nanoTime() + 5_000_000_000L;
                    while ((n = accepted.read(ByteBuffer.allocate(16))) == 0 && System.nanoTime() < deadline)
                    {
                        Thread.onSpinWait();
                    }
                    assertEquals(-1, n, "end of stream after the peer closed");
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"tcp", "in-jvm"})
    void unreachableEndpointIsNamed(final String kind)
    {
        final Transport transport = "tcp".equals(kind) ? new TcpTransport() : new InJvmTransport();
        final String endpoint = "tcp".equals(kind) ? "127.0.0.1:1" : "nobody";
        final IOException ex = assertThrows(IOException.class, () -> transport.connect(endpoint, 500));
        assertEquals(true, ex.getMessage().contains(endpoint), ex.getMessage());
        assertThrows(IllegalArgumentException.class, () -> TcpTransport.parse("no-port"));
    }
}
