package dev.tandem.examples.simulation;

import dev.tandem.core.transport.Connection;
import dev.tandem.core.transport.QueueListener;
import dev.tandem.core.transport.Transport;
import dev.tandem.core.wire.FrameCodec;
import org.agrona.concurrent.UnsafeBuffer;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The network between the simulated hosts: ordered, reliable byte streams with latency and a bounded number of bytes
 * in flight (so writers see back-pressure and partial writes, as on TCP), on the simulation's clock, under the run's
 * fault plan. Everything runs on the simulation's one thread.
 * <p>
 * Faults it applies: the first connection reset at byte k of the active's stream, one byte of that stream flipped,
 * a delay (extra latency) window, a stall (zero window: writes accepted nothing) window, and a partition window in
 * which nothing is delivered either way until it heals: either the receive windows fill and writes are refused, or
 * (as real TCP does with kernel buffers that autotune to megabytes) every write is accepted into a window of
 * {@value #ACCEPTING_WINDOW_BYTES} bytes that nobody drains, so that only the peer's silence tells the writer. It watches the frames on the first connection and tells
 * {@link Hooks} where each starts, reaches its middle and ends, which is where the numbered kill points fire.
 */
final class SimNetwork implements Transport
{
    /** Which way bytes go on a connection. */
    enum Direction
    {
        /** from the connecting side (the active) to the listening side (the standby). */
        FORWARD,
        /** from the standby back to the active. */
        BACK
    }

    /**
     * Sees the frames of the first connection as the bytes are accepted; may kill a node (throw) at any of them.
     */
    interface Hooks
    {
        /**
         * Before any byte of the frame is accepted.
         *
         * @param direction which way.
         * @param type      frame type code.
         * @param epoch     the header's epoch.
         */
        void onFrameStart(Direction direction, int type, long epoch);

        /**
         * When half of the frame's payload has been accepted.
         *
         * @param direction which way.
         * @param type      frame type code.
         * @param epoch     the header's epoch.
         */
        void onFrameMiddle(Direction direction, int type, long epoch);

        /**
         * After the frame's last byte was accepted.
         *
         * @param direction which way.
         * @param type      frame type code.
         * @param epoch     the header's epoch.
         */
        void onFrameEnd(Direction direction, int type, long epoch);
    }

    /** What a partition that keeps accepting writes takes before it refuses: more than any run sends. */
    static final int ACCEPTING_WINDOW_BYTES = 64 << 20;

    private final SimClock clock;
    private final FaultPlan plan;
    private final Hooks hooks;
    private final long latencyNs;
    private final int windowBytes;
    private final Map<String, ArrayDeque<End>> listeners = new HashMap<>();
    private final List<Link> links = new ArrayList<>();
    /** The first bytes the active sent on the first connection, replayed by a duplicated connection. */
    private final ByteBuffer recordedPrefix = ByteBuffer.allocate(256 * 1024);

    SimNetwork(final SimClock clock, final FaultPlan plan, final Hooks hooks, final long latencyNs,
        final int windowBytes)
    {
        this.clock = clock;
        this.plan = plan;
        this.hooks = hooks;
        this.latencyNs = latencyNs;
        this.windowBytes = windowBytes;
    }

    @Override
    public Connection connect(final String endpoint, final long timeoutMillis) throws IOException
    {
        final ArrayDeque<End> queue = listeners.get(endpoint);
        if (queue == null)
        {
            throw new IOException("cannot connect to " + endpoint + ": nothing listens there");
        }
        final Link link = new Link(links.isEmpty());
        links.add(link);
        queue.add(link.server);
        return link.client;
    }

    @Override
    public Listener listen(final String endpoint) throws IOException
    {
        if (listeners.containsKey(endpoint))
        {
            throw new IOException("cannot listen on " + endpoint + ": already in use");
        }
        final ArrayDeque<End> queue = new ArrayDeque<>();
        listeners.put(endpoint, queue);
        return new QueueListener(endpoint, queue, () -> listeners.remove(endpoint, queue));
    }

    /**
     * A dead node's listening endpoint is free again (a restarted node listens there); its queue of connections
     * nobody accepted goes with it.
     *
     * @param endpoint the endpoint.
     */
    void forget(final String endpoint)
    {
        listeners.remove(endpoint);
    }

    /**
     * A node died: its ends of every connection go with it.
     *
     * @param client  true for the connecting side's ends (the active, or a duplicated connection's sender), false
     *                for the listening side's (the standby).
     * @param crashed true if its kernel closed its sockets (the peer reads the end of the stream); false if it lost
     *                power (the peer hears nothing more, ever).
     * @param firstOnly only the first connection (the active's), not the duplicated ones.
     */
    void kill(final boolean client, final boolean crashed, final boolean firstOnly)
    {
        for (final Link link : links)
        {
            if (firstOnly && !link.first)
            {
                continue;
            }
            final End end = client ? link.client : link.server;
            if (crashed)
            {
                end.close();
            }
            else
            {
                end.dead = true;
            }
        }
    }

    /**
     * @return when the last byte the standby sent on the first connection (the active's) can be read there: after
     *         the link's latency and any injected delay, or at the heal of a partition that held it; -1 if it sent
     *         none or the connection was reset (its bytes were lost). A standby that lost power is heard until then,
     *         through the replies it sent while it ran.
     */
    long standbyHeardUntilNs()
    {
        final Link link = links.isEmpty() ? null : links.get(0);
        if (link == null || link.reset || link.back.offset == 0)
        {
            return -1;
        }
        final long deliverNs = link.back.lastDeliverNs;
        return deliverNs >= plan.partitionFromNs && deliverNs < plan.partitionUntilNs ? plan.partitionUntilNs :
            deliverNs;
    }

    /**
     * @return the bytes the active sent first on the first connection (its handshake and baseline prefix).
     */
    ByteBuffer recordedPrefix()
    {
        return recordedPrefix.duplicate().flip();
    }

    private boolean partitioned()
    {
        final long now = clock.nanoTime();
        return now >= plan.partitionFromNs && now < plan.partitionUntilNs;
    }

    /**
     * One connection: two pipes.
     */
    private final class Link
    {
        final boolean first;
        final Pipe forward;
        final Pipe back;
        final End client;
        final End server;
        boolean reset;

        Link(final boolean first)
        {
            this.first = first;
            this.forward = new Pipe(this, Direction.FORWARD);
            this.back = new Pipe(this, Direction.BACK);
            this.client = new End(this, back, forward, "standby");
            this.server = new End(this, forward, back, "active");
        }
    }

    /**
     * Bytes on their way, each chunk deliverable from its time on; order is kept (a later chunk never overtakes).
     */
    private final class Pipe
    {
        private final Link link;
        private final Direction direction;
        private final ArrayDeque<Chunk> chunks = new ArrayDeque<>();
        private final FrameWatch watch;
        private long inFlight;
        private long lastDeliverNs;
        private long offset;
        boolean writerClosed;
        boolean readerGone;

        Pipe(final Link link, final Direction direction)
        {
            this.link = link;
            this.direction = direction;
            this.watch = link.first ? new FrameWatch(direction) : null;
        }

        long write(final ByteBuffer[] srcs, final int from, final int count, final String peer) throws IOException
        {
            if (link.reset)
            {
                throw new IOException("connection to " + peer + " reset");
            }
            if (writerClosed || readerGone)
            {
                throw new IOException("broken pipe: " + peer + " closed the connection");
            }
            final long now = clock.nanoTime();
            if (direction == Direction.FORWARD && now >= plan.stallFromNs && now < plan.stallUntilNs)
            {
                return 0;
            }
            // in a partition that accepts writes the bytes pile up unread, and the writer learns nothing from it
            final long window = plan.partitionAccepts && partitioned() ? ACCEPTING_WINDOW_BYTES : windowBytes;
            long written = 0;
            for (int i = from; i < from + count; i++)
            {
                final ByteBuffer src = srcs[i];
                while (src.hasRemaining() && inFlight < window && !link.reset && !writerClosed)
                {
                    int n = (int)Math.min(src.remaining(), window - inFlight);
                    if (watch != null)
                    {
                        // may kill the writing node (a numbered kill point): that unwinds out of here
                        n = watch.limit(src, n);
                    }
                    if (link.first && direction == Direction.FORWARD && plan.dropAtByte >= 0 &&
                        offset < plan.dropAtByte)
                    {
                        n = (int)Math.min(n, plan.dropAtByte - offset);
                    }
                    final byte[] data = new byte[n];
                    src.get(src.position(), data, 0, n);
                    if (link.first && direction == Direction.FORWARD && plan.corruptByte >= offset &&
                        plan.corruptByte < offset + n)
                    {
                        data[(int)(plan.corruptByte - offset)] ^= (byte)plan.corruptMask;
                    }
                    if (link.first && direction == Direction.FORWARD && recordedPrefix.hasRemaining())
                    {
                        recordedPrefix.put(data, 0, Math.min(n, recordedPrefix.remaining()));
                    }
                    final long deliverNs = Math.max(lastDeliverNs, now + latencyNs +
                        (now >= plan.delayFromNs && now < plan.delayUntilNs ? plan.delayNs : 0));
                    lastDeliverNs = deliverNs;
                    chunks.add(new Chunk(deliverNs, data));
                    inFlight += n;
                    src.position(src.position() + n);
                    offset += n;
                    written += n;
                    if (watch != null)
                    {
                        watch.accepted(data, n);
                    }
                    if (link.first && direction == Direction.FORWARD && offset == plan.dropAtByte)
                    {
                        // the connection breaks here: both ends see a reset, bytes in flight are lost
                        link.reset = true;
                        link.forward.chunks.clear();
                        link.back.chunks.clear();
                    }
                }
            }
            if (written == 0 && (link.reset || writerClosed))
            {
                throw new IOException("connection to " + peer + " reset");
            }
            return written;
        }

        int read(final ByteBuffer dst, final String peer) throws IOException
        {
            if (link.reset)
            {
                throw new IOException("connection to " + peer + " reset");
            }
            if (partitioned())
            {
                return 0;
            }
            final long now = clock.nanoTime();
            int read = 0;
            while (dst.hasRemaining() && !chunks.isEmpty() && chunks.peek().deliverNs <= now)
            {
                final Chunk chunk = chunks.peek();
                final int n = Math.min(dst.remaining(), chunk.data.length - chunk.position);
                dst.put(chunk.data, chunk.position, n);
                chunk.position += n;
                read += n;
                inFlight -= n;
                if (chunk.position == chunk.data.length)
                {
                    chunks.poll();
                }
            }
            if (read == 0 && writerClosed && chunks.isEmpty())
            {
                return -1;
            }
            return read;
        }
    }

    private static final class Chunk
    {
        final long deliverNs;
        final byte[] data;
        int position;

        Chunk(final long deliverNs, final byte[] data)
        {
            this.deliverNs = deliverNs;
            this.data = data;
        }
    }

    /**
     * Follows the frame structure of one direction of the first connection and fires the hooks at frame starts
     * (before a byte of the frame is accepted), middles and ends.
     */
    private final class FrameWatch
    {
        private final Direction direction;
        private final byte[] header = new byte[FrameCodec.HEADER_LENGTH];
        private final UnsafeBuffer headerView = new UnsafeBuffer(header);
        private int headerBytes;
        private long payloadLeft;
        private long payloadLength;
        private int type;
        private long epoch;
        private boolean middleFired;

        FrameWatch(final Direction direction)
        {
            this.direction = direction;
        }

        /**
         * @return how many of the next {@code n} bytes may be accepted before the watch must look at them; at a
         *         frame start, after the hook ran.
         */
        int limit(final ByteBuffer src, final int n)
        {
            if (headerBytes == 0 && payloadLeft == 0)
            {
                if (src.remaining() >= FrameCodec.HEADER_LENGTH)
                {
                    // the writers put a whole header in one buffer: look at it before accepting a byte of it
                    final UnsafeBuffer peek = new UnsafeBuffer(src, src.position(), FrameCodec.HEADER_LENGTH);
                    hooks.onFrameStart(direction, peek.getByte(FrameCodec.TYPE_OFFSET) & 0xFF,
                        peek.getLong(FrameCodec.EPOCH_OFFSET));
                }
                return Math.min(n, FrameCodec.HEADER_LENGTH);
            }
            if (headerBytes < FrameCodec.HEADER_LENGTH)
            {
                return Math.min(n, FrameCodec.HEADER_LENGTH - headerBytes);
            }
            final long toMiddle = payloadLeft - (payloadLength - payloadLength / 2);
            if (!middleFired && toMiddle > 0)
            {
                return (int)Math.min(n, toMiddle);
            }
            return (int)Math.min(n, payloadLeft);
        }

        void accepted(final byte[] data, final int n)
        {
            int at = 0;
            if (headerBytes < FrameCodec.HEADER_LENGTH)
            {
                final int take = Math.min(n, FrameCodec.HEADER_LENGTH - headerBytes);
                System.arraycopy(data, 0, header, headerBytes, take);
                headerBytes += take;
                at = take;
                if (headerBytes == FrameCodec.HEADER_LENGTH)
                {
                    type = headerView.getByte(FrameCodec.TYPE_OFFSET) & 0xFF;
                    epoch = headerView.getLong(FrameCodec.EPOCH_OFFSET);
                    payloadLength = headerView.getInt(FrameCodec.LENGTH_OFFSET) & 0xFFFF_FFFFL;
                    payloadLeft = payloadLength;
                    middleFired = payloadLength == 0;
                    if (payloadLeft == 0)
                    {
                        end();
                        return;
                    }
                }
            }
            payloadLeft -= n - at;
            if (!middleFired && payloadLeft <= payloadLength - payloadLength / 2)
            {
                middleFired = true;
                hooks.onFrameMiddle(direction, type, epoch);
            }
            if (payloadLeft == 0 && headerBytes == FrameCodec.HEADER_LENGTH)
            {
                end();
            }
        }

        private void end()
        {
            headerBytes = 0;
            payloadLeft = 0;
            hooks.onFrameEnd(direction, type, epoch);
        }
    }

    /**
     * One side of a connection.
     */
    private final class End implements Connection
    {
        private final Link link;
        private final Pipe in;
        private final Pipe out;
        private final String peer;
        boolean closedHere;
        boolean dead;

        End(final Link link, final Pipe in, final Pipe out, final String peer)
        {
            this.link = link;
            this.in = in;
            this.out = out;
            this.peer = peer;
        }

        @Override
        public long write(final ByteBuffer[] srcs, final int offset, final int length) throws IOException
        {
            if (closedHere || dead)
            {
                throw new IOException("connection to " + peer + " is closed");
            }
            return out.write(srcs, offset, length, peer);
        }

        @Override
        public int read(final ByteBuffer dst) throws IOException
        {
            if (closedHere || dead)
            {
                throw new IOException("connection to " + peer + " is closed");
            }
            return in.read(dst, peer);
        }

        @Override
        public boolean isOpen()
        {
            return !closedHere && !dead && !link.reset;
        }

        @Override
        public String peer()
        {
            return peer;
        }

        @Override
        public void close()
        {
            if (dead)
            {
                // the host lost power: code still unwinding on its stack cannot send a FIN, the peer hears nothing
                return;
            }
            if (!closedHere)
            {
                closedHere = true;
                // FIN: the peer reads what is in flight, then the end of the stream; its writes find a broken pipe
                out.writerClosed = true;
                in.readerGone = true;
                in.chunks.clear();
            }
        }
    }
}
