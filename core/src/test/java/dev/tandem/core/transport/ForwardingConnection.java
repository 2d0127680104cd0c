package dev.tandem.core.transport;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Optional;
import java.util.function.UnaryOperator;

/**
 * A connection that forwards every call to another, for tests that change one behaviour (a write that takes less,
 * a read that finds nothing) and keep the rest.
 */
public class ForwardingConnection implements Connection
{
    /** The connection calls go to. */
    protected final Connection delegate;

    /**
     * @param delegate the connection calls go to.
     */
    public ForwardingConnection(final Connection delegate)
    {
        this.delegate = delegate;
    }

    @Override
    public long write(final ByteBuffer[] srcs, final int offset, final int length) throws IOException
    {
        return delegate.write(srcs, offset, length);
    }

    @Override
    public int read(final ByteBuffer dst) throws IOException
    {
        return delegate.read(dst);
    }

    @Override
    public boolean isOpen()
    {
        return delegate.isOpen();
    }

    @Override
    public String peer()
    {
        return delegate.peer();
    }

    @Override
    public Optional<String> peerIdentity()
    {
        return delegate.peerIdentity();
    }

    @Override
    public void close()
    {
        delegate.close();
    }

    /**
     * @param listener a listener.
     * @param wrap     what each accepted connection becomes.
     * @return the listener with its accepted connections wrapped.
     */
    public static Transport.Listener acceptingWrapped(final Transport.Listener listener,
        final UnaryOperator<Connection> wrap)
    {
        return new Transport.Listener()
        {
            @Override
            public Connection accept() throws IOException
            {
                final Connection accepted = listener.accept();
                return accepted == null ? null : wrap.apply(accepted);
            }

            @Override
            public String endpoint()
            {
                return listener.endpoint();
            }

            @Override
            public void close()
            {
                listener.close();
            }
        };
    }

    /**
     * Writes at most {@code budget} bytes of the gathered buffers, through the delegate one buffer at a time.
     *
     * @return bytes written.
     */
    protected final long writeAtMost(final ByteBuffer[] srcs, final int offset, final int length, final long budget)
        throws IOException
    {
        final ByteBuffer[] one = new ByteBuffer[1];
        long written = 0;
        for (int i = offset; i < offset + length && written < budget; i++)
        {
            final ByteBuffer src = srcs[i];
            final int take = (int)Math.min(src.remaining(), budget - written);
            if (take == 0)
            {
                continue;
            }
            final int limit = src.limit();
            src.limit(src.position() + take);
            one[0] = src;
            final long n = delegate.write(one, 0, 1);
            src.limit(limit);
            written += n;
            if (n < take)
            {
                break;
            }
        }
        return written;
    }
}
