package dev.tandem.core.transport;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Optional;

/**
 * One ordered, reliable byte stream between active and standby. Non-blocking: calls return at once with what they
 * could do. Used by one thread at a time (the agent that owns it).
 */
public interface Connection extends AutoCloseable
{
    /**
     * Gathering write.
     *
     * @param srcs   buffers; each is written from position to limit and its position advanced.
     * @param offset first buffer.
     * @param length number of buffers.
     * @return bytes written, possibly 0 when the stream is back-pressured.
     * @throws IOException if the connection is broken.
     */
    long write(ByteBuffer[] srcs, int offset, int length) throws IOException;

    /**
     * @param dst buffer filled from position to limit.
     * @return bytes read, 0 if none are available, -1 at the end of the stream.
     * @throws IOException if the connection is broken.
     */
    int read(ByteBuffer dst) throws IOException;

    /**
     * @return true until closed by either side.
     */
    boolean isOpen();

    /**
     * @return the peer, for logs and errors.
     */
    String peer();

    /**
     * The VM identity the peer proved it may replicate: the one its certificate names (see {@link TlsIdentity}), so
     * that the handshake can refuse a peer authenticated for another VM. Known once the link's own handshake is done,
     * which is before the first byte {@link #read} returns.
     *
     * @return the authenticated VM identity, or empty for a link that authenticates nobody (plaintext, in-JVM).
     */
    default Optional<String> peerIdentity()
    {
        return Optional.empty();
    }

    /**
     * Closes the stream; the peer sees end of stream. Idempotent.
     */
    @Override
    void close();
}
