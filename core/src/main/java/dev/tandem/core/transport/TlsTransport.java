package dev.tandem.core.transport;

import dev.tandem.core.ConfigurationException;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;

/**
 * TCP with TLS 1.3 and mutual authentication, with nothing but the JDK's JSSE: an {@link SSLEngine} over the same
 * non-blocking channels {@link TcpTransport} sets up (same socket options, same endpoint syntax: an endpoint without
 * an address listens on loopback only).
 * <p>
 * Only TLS 1.3 is enabled, so there is nothing to downgrade to and no renegotiation; both sides must present a
 * certificate that the other's {@link TlsConfig} accepts and that names the VM ({@link TlsIdentity}). The replication
 * handshake then compares that name with the VM the HELLO names ({@link Connection#peerIdentity()}).
 * <p>
 * Where the TLS handshake runs, and why there:
 * <ul>
 * <li>{@link #connect} (the active) completes it before returning, bounded by the connect timeout: the active
 * connects from its launch or reconnect thread, never from a duty cycle, and it must know the standby's identity
 * before it sends a HELLO naming its guest.</li>
 * <li>{@link Listener#accept} (the standby) never blocks: each call accepts what waits in the backlog and advances
 * every pending handshake as far as the sockets allow, as a state machine, and returns a connection only once its
 * handshake has finished, or has failed (then its first read or write throws the failure, so the standby reports it
 * as any broken connection). The standby accepts inside its receiver duty cycle, which must never block (it answers
 * heartbeats and runs promotion), and a peer that is still handshaking, silent or slow, never takes its one session
 * slot nor stalls its refusal of a second active. A peer that has not finished within
 * {@link TlsConfig#handshakeTimeoutMs(long)} is dropped; at most {@value #MAX_PENDING_HANDSHAKES} handshakes are
 * pending at once (the oldest is dropped for a newer one).</li>
 * </ul>
 * Sessions are never resumed: every connection is a full handshake with both certificates checked (engines are made
 * without the peer's host and port, which is what JSSE keys its client session cache on).
 */
public final class TlsTransport implements Transport
{
    /** Most handshakes an accepting listener drives at once. */
    public static final int MAX_PENDING_HANDSHAKES = 16;

    private static final String[] PROTOCOLS = {"TLSv1.3"};
    /**
     * TLS 1.3's suites, AES-128-GCM first (the JDK puts AES-256 first): 10 AES rounds instead of 14 for a 128-bit
     * security level, and the replication stream is bulk data where the cipher is most of the link's CPU.
     */
    private static final String[] CIPHER_SUITES = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256"};

    private final SSLContext context;
    private final String vmId;
    private final String ownFingerprint;
    private final long handshakeTimeoutMs;

    /**
     * Validates the configuration and builds the TLS context.
     *
     * @param config the key store and how to authenticate the peer; its passwords are wiped once read.
     * @throws ConfigurationException naming the file or setting and what is wrong (never a password).
     */
    public TlsTransport(final TlsConfig config)
    {
        ConfigurationException.checkSet("tlsConfig", config);
        final TlsConfig.Material material = config.conclude();
        context = material.context();
        vmId = material.vmId();
        ownFingerprint = material.ownFingerprint();
        handshakeTimeoutMs = config.handshakeTimeoutMs();
    }

    /**
     * @return the VM identity this side's certificate names.
     */
    public String vmId()
    {
        return vmId;
    }

    /**
     * @return the SHA-256 fingerprint of this side's certificate: what a peer that pins it configures.
     */
    public String ownFingerprint()
    {
        return ownFingerprint;
    }

    @Override
    public void checkCarries(final String vmId)
    {
        if (!this.vmId.equals(vmId))
        {
            throw new ConfigurationException("the TLS certificate names VM '" + this.vmId + "' but this side " +
                "replicates VM '" + vmId + "': a certificate carries only the VM it names");
        }
    }

    @Override
    public Connection connect(final String endpoint, final long timeoutMillis) throws IOException
    {
        final long start = System.nanoTime();
        final SocketChannel channel = TcpTransport.connectChannel(endpoint, timeoutMillis);
        final long left = Math.max(1, timeoutMillis - (System.nanoTime() - start) / 1_000_000);
        final TlsConnection connection;
        try
        {
            connection = new TlsConnection(channel, engine(true), endpoint, left);
        }
        catch (final IOException | RuntimeException ex)
        {
            channel.close();
            throw ex;
        }
        try
        {
            connection.completeHandshake();
        }
        catch (final IOException ex)
        {
            connection.close();
            throw new IOException("cannot connect to standby at " + endpoint + ": " + ex.getMessage(), ex);
        }
        return connection;
    }

    @Override
    public Listener listen(final String endpoint) throws IOException
    {
        final ServerSocketChannel server = TcpTransport.bind(endpoint);
        final String boundEndpoint = TcpTransport.boundEndpoint(server);
        final java.util.ArrayDeque<TlsConnection> pending = new java.util.ArrayDeque<>();
        return new Listener()
        {
            @Override
            public Connection accept() throws IOException
            {
                SocketChannel channel;
                while ((channel = TcpTransport.acceptChannel(server)) != null)
                {
                    if (pending.size() == MAX_PENDING_HANDSHAKES)
                    {
                        pending.pollFirst().close();
                    }
                    try
                    {
                        pending.addLast(new TlsConnection(channel, engine(false),
                            String.valueOf(channel.getRemoteAddress()), handshakeTimeoutMs));
                    }
                    catch (final IOException | RuntimeException ex)
                    {
                        channel.close();
                        throw ex;
                    }
                }
                for (final java.util.Iterator<TlsConnection> it = pending.iterator(); it.hasNext(); )
                {
                    final TlsConnection connection = it.next();
                    try
                    {
                        if (connection.advance())
                        {
                            it.remove();
                            return connection;
                        }
                    }
                    catch (final IOException ex)
                    {
                        it.remove();
                        return new FailedConnection(connection.peer(), ex);
                    }
                }
                return null;
            }

            @Override
            public String endpoint()
            {
                return boundEndpoint;
            }

            @Override
            public void close()
            {
                pending.forEach(TlsConnection::close);
                pending.clear();
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

    private SSLEngine engine(final boolean client)
    {
        final SSLEngine engine = context.createSSLEngine();
        engine.setUseClientMode(client);
        final SSLParameters parameters = engine.getSSLParameters();
        parameters.setProtocols(PROTOCOLS);
        parameters.setCipherSuites(CIPHER_SUITES);
        parameters.setUseCipherSuitesOrder(true);
        parameters.setNeedClientAuth(!client);
        engine.setSSLParameters(parameters);
        engine.setEnabledProtocols(PROTOCOLS);
        if (!client)
        {
            engine.setNeedClientAuth(true);
        }
        return engine;
    }

    /**
     * A peer whose handshake failed, handed to the accepting side so that it reports the failure where it reports
     * any broken connection: every read and write throws it.
     */
    private record FailedConnection(String peer, IOException failure) implements Connection
    {
        @Override
        public long write(final ByteBuffer[] srcs, final int offset, final int length) throws IOException
        {
            throw new IOException(failure.getMessage(), failure);
        }

        @Override
        public int read(final ByteBuffer dst) throws IOException
        {
            throw new IOException(failure.getMessage(), failure);
        }

        @Override
        public boolean isOpen()
        {
            return false;
        }

        @Override
        public void close()
        {
            // closed when its handshake failed
        }
    }
}
