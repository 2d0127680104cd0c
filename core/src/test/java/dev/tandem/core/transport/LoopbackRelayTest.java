package dev.tandem.core.transport;

import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The relay's partition is silence, not a closed connection: after it, writes are still accepted by the writer's
 * own socket, nothing arrives at the other end, and neither end sees an end of stream.
 */
class LoopbackRelayTest
{
    @Test
    void partitionBlackHolesBothWaysWithoutClosing() throws Exception
    {
        try (ServerSocket target = new ServerSocket())
        {
            target.bind(new InetSocketAddress("127.0.0.1", 0));
            try (LoopbackRelay relay = new LoopbackRelay((InetSocketAddress)target.getLocalSocketAddress()))
            {
                final String endpoint = relay.endpoint();
                final int port = Integer.parseInt(endpoint.substring(endpoint.lastIndexOf(':') + 1));
                try (Socket client = new Socket("127.0.0.1", port); Socket server = target.accept())
                {
                    client.setSoTimeout(2000);
                    server.setSoTimeout(2000);
                    final OutputStream toServer = client.getOutputStream();
                    final InputStream atServer = server.getInputStream();
                    final OutputStream toClient = server.getOutputStream();
                    final InputStream atClient = client.getInputStream();
                    // relayed both ways before the partition
                    toServer.write(new byte[] {1, 2, 3});
                    toServer.flush();
                    assertArrayEquals(new byte[] {1, 2, 3}, atServer.readNBytes(3));
                    toClient.write(new byte[] {4, 5});
                    toClient.flush();
                    assertArrayEquals(new byte[] {4, 5}, atClient.readNBytes(2));

                    final long before = wallMicros();
                    final long partitionedAt = relay.partition();
                    assertTrue(partitionedAt >= before && partitionedAt <= wallMicros());

                    // each side's own socket accepts its writes: there is no RST to make them fail
                    toServer.write(new byte[4096]);
                    toServer.flush();
                    toClient.write(new byte[4096]);
                    toClient.flush();
                    client.setSoTimeout(500);
                    server.setSoTimeout(500);
                    // nothing arrives, and no end of stream either (read would return -1): the read times out
                    assertThrows(SocketTimeoutException.class, atServer::read);
                    assertThrows(SocketTimeoutException.class, atClient::read);
                    // still open on both ends, still silent a while later
                    toServer.write(7);
                    toServer.flush();
                    assertThrows(SocketTimeoutException.class, atServer::read);
                    assertTrue(!client.isClosed() && !server.isClosed());
                }
            }
        }
    }

    @Test
    void connectionsAfterThePartitionAreNeverRelayed() throws Exception
    {
        try (ServerSocket target = new ServerSocket())
        {
            target.bind(new InetSocketAddress("127.0.0.1", 0));
            target.setSoTimeout(500);
            try (LoopbackRelay relay = new LoopbackRelay((InetSocketAddress)target.getLocalSocketAddress()))
            {
                relay.partition();
                final String endpoint = relay.endpoint();
                try (Socket late = new Socket())
                {
                    // the kernel completes the handshake from the listen backlog; the relay never serves it
                    late.connect(new InetSocketAddress("127.0.0.1",
                        Integer.parseInt(endpoint.substring(endpoint.lastIndexOf(':') + 1))), 1000);
                    late.setSoTimeout(500);
                    late.getOutputStream().write(1);
                    assertThrows(SocketTimeoutException.class, () -> late.getInputStream().read());
                    assertThrows(SocketTimeoutException.class, target::accept);
                }
            }
        }
    }

    private static long wallMicros()
    {
        final java.time.Instant now = java.time.Instant.now();
        return now.getEpochSecond() * 1_000_000L + now.getNano() / 1000;
    }
}
