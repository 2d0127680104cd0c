package dev.tandem.core.failover;

import dev.tandem.core.transport.Connection;
import dev.tandem.core.transport.ForwardingConnection;
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

    private final java.util.concurrent.atomic.AtomicBoolean corruptNextStandbyRead =
        new java.util.concurrent.atomic.AtomicBoolean();

    void partition()
    {
        partitioned = true;
    }

    /**
     * Flips one bit of the next bytes the standby reads, as a faulty link would: the standby must refuse the frame.
     */
    void corruptNextStandbyRead()
    {
        corruptNextStandbyRead.set(true);
    }

    @Override
    public Connection connect(final String endpoint, final long timeoutMillis) throws IOException
    {
        return wrap(inner.connect(endpoint, timeoutMillis), false);
    }

    @Override
    public Listener listen(final String endpoint) throws IOException
    {
        return ForwardingConnection.acceptingWrapped(inner.listen(endpoint), accepted -> wrap(accepted, true));
    }

    private Connection wrap(final Connection connection, final boolean standbySide)
    {
        return new ForwardingConnection(connection)
        {
            @Override
            public long write(final ByteBuffer[] srcs, final int offset, final int length) throws IOException
            {
                return partitioned ? 0 : delegate.write(srcs, offset, length);
            }

            @Override
            public int read(final ByteBuffer dst) throws IOException
            {
                if (partitioned)
                {
                    return 0;
                }
                final int read = delegate.read(dst);
                if (standbySide && read > 0 && corruptNextStandbyRead.compareAndSet(true, false))
                {
                    final int at = dst.position() - 1;
                    dst.put(at, (byte)(dst.get(at) ^ 0x10));
                }
                return read;
            }
        };
    }
}
