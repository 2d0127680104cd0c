package dev.tandem.core.transport;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLPeerUnverifiedException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * One TLS 1.3 session over a non-blocking {@link SocketChannel}, driven by an {@link SSLEngine} as a resumable state
 * machine: {@link #read} and {@link #write} never block, and while the handshake is under way they advance it and
 * return 0. Steady state allocates nothing here (the engine itself allocates an {@code SSLEngineResult} per call).
 * <p>
 * Buffers, allocated once per connection. The two ciphertext buffers are on the heap on purpose: the JDK's AES-GCM
 * intrinsics work on arrays, and with direct ciphertext buffers JDK 17 copies every record through temporary arrays
 * (measured on loopback: 2.1 ns of CPU per byte carried with direct buffers, 1.6 with heap ones, plaintext TCP 0.7).
 * NIO moves a heap buffer through its own cached per-thread direct buffer, so steady state still allocates nothing.
 * The plaintext side stays direct: the caller's buffers, and {@code appIn}.
 * <ul>
 * <li>{@code netIn} (fill mode): ciphertext read from the socket and not yet unwrapped;</li>
 * <li>{@code netOut} (drain mode): ciphertext wrapped and not yet taken by the socket;</li>
 * <li>{@code appIn} (drain mode): plaintext unwrapped and not yet handed to a caller whose buffer had too little room
 * for a whole record.</li>
 * </ul>
 * {@link #write} returns the plaintext bytes it consumed from the caller's buffers; their ciphertext may still sit in
 * {@code netOut} when the socket is full. It is never wrapped twice nor dropped: no more plaintext is taken until it
 * has gone, and every {@link #read} and {@link #write} call sends what is pending first, so a caller that stops
 * writing and polls for its peer's answer (as both duty cycles do) still pushes it out.
 */
final class TlsConnection implements Connection
{
    /** Ciphertext buffered each way: many records per system call, so the socket sees large writes and reads. */
    static final int NET_BUFFER_BYTES = 256 * 1024;

    private static final ByteBuffer[] NO_DATA = {ByteBuffer.allocate(0)};

    private final SocketChannel channel;
    private final SSLEngine engine;
    private final String peer;
    private final long handshakeDeadlineNs;
    private final long handshakeTimeoutMs;
    private final int packetSize;
    private final ByteBuffer netIn;
    private final ByteBuffer netOut;
    private ByteBuffer appIn;

    private boolean handshakeDone;
    private boolean inboundDone;
    private boolean closed;
    private String peerIdentity;
    private IOException outboundFailure;

    /**
     * @param channel            connected, non-blocking.
     * @param engine             in client or server mode, its protocols and client authentication set.
     * @param peer               the peer, for messages.
     * @param handshakeTimeoutMs how long the handshake may take from now.
     * @throws IOException if the handshake cannot begin.
     */
    TlsConnection(final SocketChannel channel, final SSLEngine engine, final String peer,
        final long handshakeTimeoutMs) throws IOException
    {
        this.channel = channel;
        this.engine = engine;
        this.peer = peer;
        this.handshakeTimeoutMs = handshakeTimeoutMs;
        this.handshakeDeadlineNs = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(handshakeTimeoutMs);
        packetSize = engine.getSession().getPacketBufferSize();
        netIn = ByteBuffer.allocate(Math.max(NET_BUFFER_BYTES, packetSize));
        netOut = ByteBuffer.allocate(Math.max(NET_BUFFER_BYTES, packetSize)).limit(0);
        appIn = ByteBuffer.allocateDirect(engine.getSession().getApplicationBufferSize()).limit(0);
        engine.beginHandshake();
    }

    /**
     * Drives the handshake to its end, waiting (the caller's thread: the active's launch or reconnect thread, never a
     * duty cycle) until the deadline given at construction.
     *
     * @throws IOException naming the peer and the cause when the handshake fails or does not finish in time; the
     *                     connection is closed then.
     */
    void completeHandshake() throws IOException
    {
        while (!advanceHandshake())
        {
            // a handshake is a few round trips of small messages: a short sleep costs little and never spins a core
            LockSupport.parkNanos(50_000);
        }
    }

    /**
     * Advances the handshake without waiting (the accepting side: its listener drives pending handshakes).
     *
     * @return true once it is done.
     * @throws IOException naming the peer and the cause when it failed or ran past its deadline; closed then.
     */
    synchronized boolean advance() throws IOException
    {
        return handshakeDone || advanceHandshake();
    }

    @Override
    public synchronized long write(final ByteBuffer[] srcs, final int offset, final int length) throws IOException
    {
        requireOpen();
        if (outboundFailure != null)
        {
            throw new IOException("TLS session with " + peer + " cannot send: " + outboundFailure.getMessage(),
                outboundFailure);
        }
        if (!handshakeDone && !advanceHandshake())
        {
            return 0;
        }
        if (!flush())
        {
            return 0;
        }
        long consumed = 0;
        netOut.clear();
        boolean filling = true;
        try
        {
            while (netOut.remaining() >= packetSize && hasRemaining(srcs, offset, length))
            {
                final SSLEngineResult result = engine.wrap(srcs, offset, length, netOut);
                consumed += result.bytesConsumed();
                if (result.getStatus() == SSLEngineResult.Status.CLOSED)
                {
                    netOut.flip();
                    filling = false;
                    flush();
                    throw new IOException("TLS session with " + peer + " is closed");
                }
                if (result.getStatus() != SSLEngineResult.Status.OK)
                {
                    break;
                }
                runTasks(result.getHandshakeStatus());
                if (result.bytesConsumed() == 0 && result.bytesProduced() == 0)
                {
                    break;
                }
            }
            netOut.flip();
            filling = false;
        }
        catch (final SSLException ex)
        {
            if (filling)
            {
                netOut.flip();
                filling = false;
            }
            throw failed(ex);
        }
        finally
        {
            if (filling)
            {
                netOut.flip();
            }
        }
        flush();
        return consumed;
    }

    @Override
    public synchronized int read(final ByteBuffer dst) throws IOException
    {
        requireOpen();
        if (!handshakeDone && !advanceHandshake())
        {
            return 0;
        }
        // ciphertext of bytes a write already consumed: sent even if the caller now only reads
        flush();
        int delivered = transfer(appIn, dst);
        if (appIn.hasRemaining() || !dst.hasRemaining())
        {
            return delivered;
        }
        if (inboundDone)
        {
            return delivered > 0 ? delivered : -1;
        }
        final int read = channel.read(netIn);
        delivered += unwrapInto(dst);
        if (delivered > 0)
        {
            return delivered;
        }
        if (inboundDone)
        {
            return -1;
        }
        if (read < 0)
        {
            inboundDone = true;
            if (netIn.position() > 0)
            {
                throw new IOException("TLS session with " + peer + " ended inside a record (" + netIn.position() +
                    " bytes of it arrived): the stream was cut");
            }
            // the peer's process or host died without a close_notify: its stream ends all the same
            return -1;
        }
        return 0;
    }

    /**
     * Unwraps what {@code netIn} holds: straight into the caller's buffer when it has room for a whole record, else
     * into {@code appIn}, whose rest waits for the next read.
     */
    private int unwrapInto(final ByteBuffer dst) throws IOException
    {
        int delivered = 0;
        boolean viaAppIn = false;
        netIn.flip();
        try
        {
            while (netIn.hasRemaining() && dst.hasRemaining() && !inboundDone)
            {
                final boolean direct = !viaAppIn && dst.remaining() >= appIn.capacity();
                final SSLEngineResult result;
                if (direct)
                {
                    final int before = dst.position();
                    result = engine.unwrap(netIn, dst);
                    delivered += dst.position() - before;
                }
                else
                {
                    appIn.clear();
                    try
                    {
                        result = engine.unwrap(netIn, appIn);
                    }
                    finally
                    {
                        appIn.flip();
                    }
                    delivered += transfer(appIn, dst);
                }
                switch (result.getStatus())
                {
                    case BUFFER_UNDERFLOW:
                        // a partial record: wait for the rest (netIn holds at least one whole record's room)
                        return delivered;
                    case BUFFER_OVERFLOW:
                        if (!direct)
                        {
                            // the session's record size grew past the buffer: once, never in steady state
                            appIn = ByteBuffer.allocateDirect(Math.max(appIn.capacity() * 2,
                                engine.getSession().getApplicationBufferSize())).limit(0);
                        }
                        viaAppIn = true;
                        continue;
                    case CLOSED:
                        // close_notify: answer with ours; the caller sees the end of the stream after the data
                        inboundDone = true;
                        closeOutbound();
                        return delivered;
                    default:
                        break;
                }
                // TLS 1.3 post-handshake messages (NewSessionTicket, KeyUpdate) are consumed by unwrap; a KeyUpdate
                // that asks for ours makes the engine want to wrap, which is done here at once
                afterUnwrap(result.getHandshakeStatus());
                if (appIn.hasRemaining())
                {
                    return delivered;
                }
                if (result.bytesConsumed() == 0 && result.bytesProduced() == 0)
                {
                    return delivered;
                }
            }
            return delivered;
        }
        catch (final SSLException ex)
        {
            throw failed(ex);
        }
        finally
        {
            netIn.compact();
        }
    }

    private void afterUnwrap(final SSLEngineResult.HandshakeStatus status) throws IOException
    {
        SSLEngineResult.HandshakeStatus next = status;
        while (true)
        {
            if (next == SSLEngineResult.HandshakeStatus.NEED_TASK)
            {
                runTasks(next);
                next = engine.getHandshakeStatus();
            }
            else if (next == SSLEngineResult.HandshakeStatus.NEED_WRAP)
            {
                next = wrapHandshake();
                flush();
            }
            else
            {
                return;
            }
        }
    }

    /**
     * Advances the handshake as far as the socket allows without waiting.
     *
     * @return true once it is done and application data may flow.
     */
    private boolean advanceHandshake() throws IOException
    {
        try
        {
            while (true)
            {
                switch (engine.getHandshakeStatus())
                {
                    case NOT_HANDSHAKING:
                    case FINISHED:
                        return handshakeFinished();
                    case NEED_TASK:
                        runTasks(SSLEngineResult.HandshakeStatus.NEED_TASK);
                        break;
                    case NEED_WRAP:
                        if (wrapHandshake() == SSLEngineResult.HandshakeStatus.FINISHED)
                        {
                            flush();
                            return handshakeFinished();
                        }
                        if (!flush())
                        {
                            return handshakeWaits();
                        }
                        break;
                    default:
                        // NEED_UNWRAP, NEED_UNWRAP_AGAIN
                        flush();
                        netIn.flip();
                        final SSLEngineResult result;
                        appIn.compact();
                        try
                        {
                            result = engine.unwrap(netIn, appIn);
                        }
                        finally
                        {
                            appIn.flip();
                            netIn.compact();
                        }
                        if (result.getStatus() == SSLEngineResult.Status.CLOSED)
                        {
                            throw new SSLException("the peer closed the TLS session during the handshake");
                        }
                        if (result.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.FINISHED)
                        {
                            return handshakeFinished();
                        }
                        if (result.getStatus() == SSLEngineResult.Status.BUFFER_UNDERFLOW ||
                            result.bytesConsumed() == 0 && result.getHandshakeStatus() ==
                            SSLEngineResult.HandshakeStatus.NEED_UNWRAP)
                        {
                            final int read = channel.read(netIn);
                            if (read < 0)
                            {
                                throw new SSLException("the peer closed the connection during the TLS handshake");
                            }
                            if (read == 0)
                            {
                                return handshakeWaits();
                            }
                        }
                        break;
                }
            }
        }
        catch (final SSLException ex)
        {
            throw failed(ex);
        }
    }

    private boolean handshakeWaits() throws IOException
    {
        if (System.nanoTime() - handshakeDeadlineNs > 0)
        {
            close();
            throw new IOException("TLS handshake with " + peer + " did not finish within " + handshakeTimeoutMs +
                " ms (a peer that does not speak TLS, or a stalled one)");
        }
        return false;
    }

    private boolean handshakeFinished() throws IOException
    {
        if (!handshakeDone)
        {
            try
            {
                final Certificate[] chain = engine.getSession().getPeerCertificates();
                peerIdentity = TlsIdentity.vmIdOf((X509Certificate)chain[0]);
            }
            catch (final SSLPeerUnverifiedException | CertificateException ex)
            {
                close();
                throw new IOException("TLS session with " + peer + " has no usable peer certificate: " +
                    ex.getMessage(), ex);
            }
            handshakeDone = true;
        }
        return true;
    }

    /**
     * Lets the engine write what it has to say without application data (handshake messages, close_notify) after the
     * ciphertext already waiting in {@code netOut}, which stays in its read mode.
     */
    private SSLEngineResult wrapNoData() throws SSLException
    {
        netOut.compact();
        try
        {
            return engine.wrap(NO_DATA, netOut);
        }
        finally
        {
            netOut.flip();
        }
    }

    private SSLEngineResult.HandshakeStatus wrapHandshake() throws IOException
    {
        final SSLEngineResult result = wrapNoData();
        if (result.getStatus() == SSLEngineResult.Status.CLOSED && !inboundDone && !closed && !handshakeDone)
        {
            flush();
            throw new SSLException("the TLS session closed during the handshake");
        }
        runTasks(result.getHandshakeStatus());
        return result.getHandshakeStatus();
    }

    private void runTasks(final SSLEngineResult.HandshakeStatus status)
    {
        if (status == SSLEngineResult.HandshakeStatus.NEED_TASK)
        {
            Runnable task;
            while ((task = engine.getDelegatedTask()) != null)
            {
                task.run();
            }
        }
    }

    /**
     * @return true if nothing is left to send.
     */
    private boolean flush() throws IOException
    {
        if (outboundFailure != null)
        {
            return true;
        }
        try
        {
            while (netOut.hasRemaining())
            {
                if (channel.write(netOut) == 0)
                {
                    return false;
                }
            }
        }
        catch (final IOException ex)
        {
            // the peer is gone for writing; what it sent before may still wait in the socket, so reads go on until
            // they see the end, and the next write reports this
            outboundFailure = ex;
            netOut.position(netOut.limit());
        }
        return true;
    }

    /**
     * A failed handshake or record: the engine has an alert ready for the peer (so it hears why, not a reset); it is
     * sent as far as the socket takes it at once, then the connection is closed.
     */
    private IOException failed(final SSLException ex)
    {
        try
        {
            for (int i = 0; i < 4 && engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP; i++)
            {
                wrapHandshake();
            }
            flush();
        }
        catch (final IOException | RuntimeException ignore)
        {
            // the alert is a courtesy; the failure below is what counts
        }
        closeQuietly();
        return new IOException("TLS " + (handshakeDone ? "session" : "handshake") + " with " + peer + " failed: " +
            ex.getMessage() + hint(ex.getMessage()), ex);
    }

    private static String hint(final String message)
    {
        final String m = String.valueOf(message);
        if (m.contains("Unsupported or unrecognized SSL message") || m.contains("plaintext"))
        {
            return " (the peer does not speak TLS: a plaintext TcpTransport on the other side?)";
        }
        if (m.contains("Received fatal alert"))
        {
            return " (the peer refused this side: its trust store or pinned fingerprint does not accept this side's" +
                " certificate, the certificate expired, or it names no VM)";
        }
        if (m.contains("PKIX path building failed"))
        {
            return " (the peer's certificate is not signed by a CA in this side's trust store)";
        }
        if (m.contains("Empty client certificate chain") || m.contains("presented no certificate"))
        {
            return " (the peer presented no certificate: mutual authentication is required)";
        }
        return "";
    }

    private static boolean hasRemaining(final ByteBuffer[] srcs, final int offset, final int length)
    {
        for (int i = offset; i < offset + length; i++)
        {
            if (srcs[i].hasRemaining())
            {
                return true;
            }
        }
        return false;
    }

    private static int transfer(final ByteBuffer from, final ByteBuffer to)
    {
        final int n = Math.min(from.remaining(), to.remaining());
        if (n == 0)
        {
            return 0;
        }
        final int limit = from.limit();
        from.limit(from.position() + n);
        to.put(from);
        from.limit(limit);
        return n;
    }

    private void requireOpen() throws IOException
    {
        if (closed)
        {
            throw new ClosedChannelException();
        }
    }

    private void closeOutbound()
    {
        engine.closeOutbound();
        try
        {
            while (!engine.isOutboundDone())
            {
                final SSLEngineResult result = wrapNoData();
                if (result.bytesProduced() == 0)
                {
                    break;
                }
            }
            flush();
        }
        catch (final IOException | RuntimeException ignore)
        {
            // the peer sees the stream end either way
        }
    }

    @Override
    public Optional<String> peerIdentity()
    {
        return Optional.ofNullable(peerIdentity);
    }

    @Override
    public boolean isOpen()
    {
        return !closed && channel.isOpen();
    }

    @Override
    public String peer()
    {
        return peer;
    }

    /**
     * Sends close_notify as far as the socket takes it at once (never waits), then closes the channel.
     */
    @Override
    public synchronized void close()
    {
        if (closed)
        {
            return;
        }
        if (handshakeDone && channel.isOpen())
        {
            closeOutbound();
        }
        closeQuietly();
    }

    private void closeQuietly()
    {
        closed = true;
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
