package dev.tandem.bench;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Plain NIO over loopback TCP, the baseline link of the benchmarks: a blocking sender with TCP_NODELAY and a thread
 * that drains the other end into a direct buffer, counting bytes. No framing, no CRC, nothing applied.
 */
final class LoopbackLink implements AutoCloseable
{
    private final ServerSocketChannel server;
    private final SocketChannel sender;
    private final Thread reader;
    private final AtomicLong received = new AtomicLong();

    LoopbackLink() throws IOException
    {
        server = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
        sender = SocketChannel.open(server.getLocalAddress());
        sender.setOption(StandardSocketOptions.TCP_NODELAY, true);
        final SocketChannel accepted = server.accept();
        reader = new Thread(() -> drain(accepted), "loopback-reader");
        reader.setDaemon(true);
        reader.start();
    }

    private void drain(final SocketChannel channel)
    {
        final ByteBuffer buffer = ByteBuffer.allocateDirect(1 << 20);
        try (channel)
        {
            int read;
            while ((read = channel.read(buffer.clear())) >= 0)
            {
                received.addAndGet(read);
            }
        }
        catch (final IOException ex)
        {
            // the link was closed
        }
    }

    /**
     * Writes every remaining byte of {@code data}.
     */
    void send(final ByteBuffer data) throws IOException
    {
        while (data.hasRemaining())
        {
            sender.write(data);
        }
    }

    /**
     * @return bytes the reader has taken off the other end.
     */
    long received()
    {
        return received.get();
    }

    @Override
    public void close() throws IOException
    {
        sender.close();
        server.close();
        try
        {
            reader.join(5000);
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
        }
    }
}
