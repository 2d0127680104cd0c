package dev.tandem.core.transport;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;

/**
 * TCP with NIO: non-blocking channels, {@code TCP_NODELAY}, large socket buffers, gathering writes from direct
 * buffers (which NIO writes without copying to a temporary buffer).
 */
public final class TcpTransport implements Transport
{
    /** Socket send and receive buffer size requested. */
    public static final int SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

    @Override
    public Connection connect(final String endpoint, final long timeoutMillis) throws IOException
    {
        final InetSocketAddress address = parse(endpoint);
        final SocketChannel channel = SocketChannel.open();
        try
        {
            configure(channel);
            channel.socket().connect(address, (int)Math.min(Integer.MAX_VALUE, Math.max(1, timeoutMillis)));
            channel.configureBlocking(false);
            return new TcpConnection(channel, endpoint);
        }
        catch (final IOException ex)
        {
            channel.close();
            throw new IOException("cannot connect to standby at " + endpoint + " within " + timeoutMillis + " ms: " +
                ex.getMessage(), ex);
        }
    }

    @Override
    public Listener listen(final String endpoint) throws IOException
    {
        final ServerSocketChannel server = ServerSocketChannel.open();
        try
        {
            server.setOption(StandardSocketOptions.SO_REUSEADDR, true);
            server.setOption(StandardSocketOptions.SO_RCVBUF, SOCKET_BUFFER_BYTES);
            server.bind(parse(endpoint));
            server.configureBlocking(false);
        }
        catch (final IOException ex)
        {
            server.close();
            throw new IOException("cannot listen on " + endpoint + ": " + ex.getMessage(), ex);
        }
        final InetSocketAddress bound = (InetSocketAddress)server.getLocalAddress();
        final String boundEndpoint = bound.getHostString() + ":" + bound.getPort();
        return new Listener()
        {
            @Override
            public Connection accept() throws IOException
            {
                final SocketChannel channel = server.accept();
                if (channel == null)
                {
                    return null;
                }
                configure(channel);
                channel.configureBlocking(false);
                return new TcpConnection(channel, String.valueOf(channel.getRemoteAddress()));
            }

            @Override
            public String endpoint()
            {
                return boundEndpoint;
            }

            @Override
            public void close()
            {
                try
                {
                    server.close();
                }
                catch (final IOException ignore)
                {
                    // closing a listener that failed already leaves nothing to release
                }
            }
        };
    }

    /**
     * @param endpoint {@code host:port}.
     * @return the address.
     * @throws IllegalArgumentException naming the endpoint when it is not {@code host:port}.
     */
    public static InetSocketAddress parse(final String endpoint)
    {
        final int colon = endpoint == null ? -1 : endpoint.lastIndexOf(':');
        if (colon <= 0 || colon == endpoint.length() - 1)
        {
            throw new IllegalArgumentException("endpoint '" + endpoint + "' is not host:port");
        }
        final int port;
        try
        {
            port = Integer.parseInt(endpoint.substring(colon + 1));
        }
        catch (final NumberFormatException ex)
        {
            throw new IllegalArgumentException("endpoint '" + endpoint + "' has no numeric port");
        }
        if (port < 0 || port > 65535)
        {
            throw new IllegalArgumentException("endpoint '" + endpoint + "' port out of range");
        }
        return new InetSocketAddress(endpoint.substring(0, colon), port);
    }

    private static void configure(final SocketChannel channel) throws IOException
    {
        channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
        channel.setOption(StandardSocketOptions.SO_SNDBUF, SOCKET_BUFFER_BYTES);
        channel.setOption(StandardSocketOptions.SO_RCVBUF, SOCKET_BUFFER_BYTES);
    }

    private static final class TcpConnection implements Connection
    {
        private final SocketChannel channel;
        private final String peer;

        TcpConnection(final SocketChannel channel, final String peer)
        {
            this.channel = channel;
            this.peer = peer;
        }

        @Override
        public long write(final ByteBuffer[] srcs, final int offset, final int length) throws IOException
        {
            return channel.write(srcs, offset, length);
        }

        @Override
        public int read(final ByteBuffer dst) throws IOException
        {
            return channel.read(dst);
        }

        @Override
        public boolean isOpen()
        {
            return channel.isOpen();
        }

        @Override
        public String peer()
        {
            return peer;
        }

        @Override
        public void close()
        {
            try
            {
                channel.close();
            }
            catch (final IOException ignore)
            {
                // the peer sees the stream end either way
            }
        }
    }
}
