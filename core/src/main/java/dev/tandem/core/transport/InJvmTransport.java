package dev.tandem.core.transport;

import dev.tandem.vmm.NativeMemory;
import org.agrona.concurrent.UnsafeBuffer;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Connections inside one JVM over off-heap single-producer single-consumer byte pipes: the same stream semantics as
 * TCP (ordered, partial writes under back-pressure, end of stream on close) without a kernel, for tests and
 * simulation. Endpoints are names registered in this transport instance; share the instance between both sides.
 */
public final class InJvmTransport implements Transport
{
    /** Capacity of each direction of a connection. */
    public static final int PIPE_BYTES = 4 * 1024 * 1024;

    private final Map<String, ConcurrentLinkedQueue<Connection>> listeners = new ConcurrentHashMap<>();

    @Override
    public Connection connect(final String endpoint, final long timeoutMillis) throws IOException
    {
        final ConcurrentLinkedQueue<Connection> queue = listeners.get(endpoint);
        if (queue == null)
        {
            throw new IOException("cannot connect to standby at " + endpoint + ": nothing listens there");
        }
        final Pipe toServer = new Pipe(PIPE_BYTES);
        final Pipe toClient = new Pipe(PIPE_BYTES);
        final Pair pair = new Pair(toServer, toClient);
        queue.add(new PipeConnection(toClient, toServer, endpoint + "(active)", pair));
        return new PipeConnection(toServer, toClient, endpoint, pair);
    }

    @Override
    public Listener listen(final String endpoint) throws IOException
    {
        final ConcurrentLinkedQueue<Connection> queue = new ConcurrentLinkedQueue<>();
        if (listeners.putIfAbsent(endpoint, queue) != null)
        {
            throw new IOException("cannot listen on " + endpoint + ": already in use");
        }
        return new QueueListener(endpoint, queue, () -> listeners.remove(endpoint, queue));
    }

    /**
     * A bounded byte ring: one writer thread, one reader thread. Head and tail only grow.
     */
    private static final class Pipe
    {
        private final NativeMemory.Region region;
        private final UnsafeBuffer buffer;
        private final int capacity;
        private final AtomicLong head = new AtomicLong();
        private final AtomicLong tail = new AtomicLong();

        Pipe(final int capacity)
        {
            this.region = NativeMemory.allocateDirect(capacity, 64);
            this.buffer = new UnsafeBuffer(region.byteBuffer());
            this.capacity = capacity;
        }

        long write(final ByteBuffer[] srcs, final int offset, final int length)
        {
            long written = 0;
            long t = tail.get();
            final long free = capacity - (t - head.get());
            for (int i = offset; i < offset + length && written < free; i++)
            {
                final ByteBuffer src = srcs[i];
                while (src.hasRemaining() && written < free)
                {
                    final int at = (int)(t % capacity);
                    final int n = (int)Math.min(Math.min(src.remaining(), capacity - at), free - written);
                    buffer.putBytes(at, src, src.position(), n);
                    src.position(src.position() + n);
                    t += n;
                    written += n;
                }
            }
            tail.lazySet(t);
            return written;
        }

        int read(final ByteBuffer dst)
        {
            long h = head.get();
            final long available = tail.get() - h;
            int read = 0;
            while (dst.hasRemaining() && read < available)
            {
                final int at = (int)(h % capacity);
                final int n = (int)Math.min(Math.min(dst.remaining(), capacity - at), available - read);
                buffer.getBytes(at, dst, dst.position(), n);
                dst.position(dst.position() + n);
                h += n;
                read += n;
            }
            head.lazySet(h);
            return read;
        }

        boolean isEmpty()
        {
            return tail.get() == head.get();
        }

    }

    /**
     * The two pipes of one connection: freed when both ends closed, so neither end can touch freed memory.
     */
    private static final class Pair
    {
        private final Pipe a;
        private final Pipe b;
        private final AtomicBoolean closed = new AtomicBoolean();
        private final AtomicInteger openEnds = new AtomicInteger(2);

        Pair(final Pipe a, final Pipe b)
        {
            this.a = a;
            this.b = b;
        }

        void closeEnd()
        {
            closed.set(true);
            if (openEnds.decrementAndGet() == 0)
            {
                a.region.close();
                b.region.close();
            }
        }
    }

    private static final class PipeConnection implements Connection
    {
        private final Pipe in;
        private final Pipe out;
        private final String peer;
        private final Pair pair;
        private final AtomicBoolean closedHere = new AtomicBoolean();

        PipeConnection(final Pipe in, final Pipe out, final String peer, final Pair pair)
        {
            this.in = in;
            this.out = out;
            this.peer = peer;
            this.pair = pair;
        }

        @Override
        public long write(final ByteBuffer[] srcs, final int offset, final int length) throws IOException
        {
            if (closedHere.get() || pair.closed.get())
            {
                throw new IOException("connection to " + peer + " is closed");
            }
            return out.write(srcs, offset, length);
        }

        @Override
        public int read(final ByteBuffer dst) throws IOException
        {
            if (closedHere.get())
            {
                throw new IOException("connection to " + peer + " is closed");
            }
            final int n = in.read(dst);
            if (n == 0 && pair.closed.get() && in.isEmpty())
            {
                return -1;
            }
            return n;
        }

        @Override
        public boolean isOpen()
        {
            return !pair.closed.get();
        }

        @Override
        public String peer()
        {
            return peer;
        }

        @Override
        public void close()
        {
            if (closedHere.compareAndSet(false, true))
            {
                pair.closeEnd();
            }
        }
    }
}
