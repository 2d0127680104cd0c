package dev.tandem.core.transport;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.atomic.AtomicBoolean;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * TCP with NIO, in plaintext: non-blocking channels, {@code TCP_NODELAY}, large socket buffers, gathering writes from
 * direct buffers (which NIO writes without copying to a temporary buffer).
 * <p>
 * Plaintext is an opt-in for loopback tests and benchmarks: guest memory and disk travel unencrypted and the peer is
 * not authenticated. Each instance says so once, at WARN, when it first connects or listens. Across hosts use
 * {@link TlsTransport}, which sets its channels up with this class's code and adds TLS 1.3 above them.
 */
public final class TcpTransport implements Transport
{
    /** Socket send and receive buffer size requested. */
    public static final int SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
    /** The address a listen endpoint without one binds to ({@code "7400"} or {@code ":7400"}): loopback only. */
    public static final String DEFAULT_LISTEN_HOST = "127.0.0.1";

    private static final Logger LOG = LoggerFactory.getLogger(TcpTransport.class);

    private final AtomicBoolean plaintextAnnounced = new AtomicBoolean();

    /**
     * A plaintext transport, as {@link #plaintext()} makes; kept for the code that constructs one directly.
     */
    public TcpTransport()
    {
    }

    /**
     * The explicit opt-in for an unencrypted, unauthenticated link (loopback tests, benchmarks, comparisons).
     *
     * @return a plaintext TCP transport.
     */
    public static TcpTransport plaintext()
    {
        return new TcpTransport();
    }

    @Override
    public Connection connect(final String endpoint, final long timeoutMillis) throws IOException
    {
        announcePlaintext("to " + endpoint);
        return new TcpConnection(connectChannel(endpoint, timeoutMillis), endpoint);
    }

    @Override
    public Listener listen(final String endpoint) throws IOException
    {
        final ServerSocketChannel server = bind(endpoint);
        final String boundEndpoint = boundEndpoint(server);
        announcePlaintext("on " + boundEndpoint);
        return new Listener()
        {
            @Override
            public Connection accept() throws IOException
            {
                final SocketChannel channel = acceptChannel(server);
                if (channel == null)
                {
                    return null;
                }
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

    private void announcePlaintext(final String where)
    {
        if (plaintextAnnounced.compareAndSet(false, true))
        {
            LOG.warn("replication link {} is PLAINTEXT: guest memory and disk travel unencrypted and the peer is " +
                "not authenticated (an explicit opt-in for loopback tests and benchmarks; use TlsTransport across " +
                "hosts)", where);
        }
    }

    /**
     * Opens, configures and connects a channel (blocking up to the timeout), then makes it non-blocking.
     *
     * @param endpoint      {@code host:port}.
     * @param timeoutMillis how long to wait for the connection.
     * @return the connected, non-blocking channel.
     * @throws IOException naming the endpoint and the timeout.
     */
    static SocketChannel connectChannel(final String endpoint, final long timeoutMillis) throws IOException
    {
        final InetSocketAddress address = parse(endpoint);
        final SocketChannel channel = SocketChannel.open();
        try
        {
            configure(channel);
            channel.socket().connect(address, (int)Math.min(Integer.MAX_VALUE, Math.max(1, timeoutMillis)));
            channel.configureBlocking(false);
            return channel;
        }
        catch (final IOException ex)
        {
            channel.close();
            throw new IOException("cannot connect to standby at " + endpoint + " within " + timeoutMillis + " ms: " +
                ex.getMessage(), ex);
        }
    }

    /**
     * @param endpoint where to listen; without an address, loopback.
     * @return a bound, non-blocking server channel.
     * @throws IOException naming the endpoint.
     */
    static ServerSocketChannel bind(final String endpoint) throws IOException
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
        return server;
    }

    /**
     * @param server a bound server channel.
     * @return {@code host:port} it is bound to, with the port the system chose.
     * @throws IOException if the channel is closed.
     */
    static String boundEndpoint(final ServerSocketChannel server) throws IOException
    {
        final InetSocketAddress bound = (InetSocketAddress)server.getLocalAddress();
        return bound.getHostString() + ":" + bound.getPort();
    }

    /**
     * @param server a non-blocking server channel.
     * @return an accepted, configured, non-blocking channel, or null if none is waiting.
     * @throws IOException if the listener failed.
     */
    static SocketChannel acceptChannel(final ServerSocketChannel server) throws IOException
    {
        final SocketChannel channel = server.accept();
        if (channel == null)
        {
            return null;
        }
        try
        {
            configure(channel);
            channel.configureBlocking(false);
        }
        catch (final IOException ex)
        {
            channel.close();
            throw ex;
        }
        return channel;
    }

    /**
     * Parses an endpoint. An endpoint without an address ({@code "7400"} or {@code ":7400"}) is on loopback
     * ({@link #DEFAULT_LISTEN_HOST}): a standby listens on other interfaces only when an address is configured.
     *
     * @param endpoint {@code host:port}, {@code :port} or {@code port}.
     * @return the address.
     * @throws IllegalArgumentException naming the endpoint when it is none of those.
     */
    public static InetSocketAddress parse(final String endpoint)
    {
        if (endpoint != null && !endpoint.isEmpty() && endpoint.chars().allMatch(Character::isDigit))
        {
            return parse(DEFAULT_LISTEN_HOST + ":" + endpoint);
        }
        if (endpoint != null && endpoint.length() > 1 && endpoint.charAt(0) == ':')
        {
            return parse(DEFAULT_LISTEN_HOST + endpoint);
        }
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

    static void configure(final SocketChannel channel) throws IOException
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
