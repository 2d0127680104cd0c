package dev.tandem.core.failover;

import dev.tandem.core.transport.Connection;
import dev.tandem.core.transport.InJvmTransport;
import dev.tandem.core.transport.Transport;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The in-JVM transport with a switch that cuts every connection silently, as a network partition does: writes
 * are accepted by nobody (0 bytes), reads find nothing, and neither side sees the stream end.
 */
final class PartitionableTransport implements Transport
{
    private final InJvmTransport inner = new InJvmTransport();
    private volatile boolean partitioned;

    void partition()
    {
        partitioned = true;
    }

    @Override
    public Connection connect(final String endpoint, final long timeoutMillis) throws IOException
    {
        return wrap(inner.connect(endpoint, timeoutMillis));
    }

    @Override
    public Listener listen(final String endpoint) throws IOException
    {
        final Listener listener = inner.listen(endpoint);
        return new Listener()
        {
            @Override
            public Connection accept() throws IOException
            {
                final Connection accepted = listener.accept();
                return accepted == null ? null : wrap(accepted);
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

    private Connection wrap(final Connection connection)
    {
        return new Connection()
        {
            @Override
            public long write(final ByteBuffer[] srcs, final int offset, final int length) throws IOException
            {
                return partitioned ? 0 : connection.write(srcs, offset, length);
            }

            @Override
            public int read(final ByteBuffer dst) throws IOException
            {
                return partitioned ? 0 : connection.read(dst);
            }

            @Override
            public boolean isOpen()
            {
                return connection.isOpen();
            }

            @Override
            public String peer()
            {
                return connection.peer();
            }

            @Override
            public void close()
            {
                connection.close();
            }
        };
    }
}
