package dev.tandem.core.transport;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A TCP relay on loopback that can partition the two hosts it joins: the active connects to the relay, the relay
 * connects to the standby, and one selector thread copies bytes both ways.
 * <p>
 * {@link #partition()} black-holes both directions the way a network partition does: from then on the relay reads
 * nothing and writes nothing, bytes it held are dropped, and new connections are left in the listen backlog
 * unserved. It closes nothing: no FIN, no RST, so each side sees only silence, and its own writes go on being
 * accepted by its socket until the buffers fill. That is the case invariant 8 is about: liveness may come only from
 * the peer's replies. The sockets stay open until {@link #close()}.
 * <p>
 * A tool for tests and harnesses of an embedding (the in-JVM transport cannot show this: its writes stop being
 * accepted at once); the failover harness and the ownership tests use it.
 */
public final class LoopbackRelay implements AutoCloseable
{
    private static final int BUFFER_BYTES = 64 * 1024;

    private final InetSocketAddress target;
    private final Selector selector;
    private final ServerSocketChannel server;
    private final Thread thread;
    private final List<SocketChannel> channels = new ArrayList<>();
    private final CountDownLatch stopped = new CountDownLatch(1);
    private volatile boolean partitionRequested;
    private volatile boolean closing;
    private volatile long partitionedAtUs = Long.MIN_VALUE;
    private volatile long bytesRelayed;
    private volatile boolean resetRequested;
    private volatile long resetsDone;
    private volatile long refuseUntilNs = Long.MIN_VALUE;
    private volatile boolean stalled;

    /**
     * Binds a kernel-chosen loopback port and starts relaying to {@code target}.
     *
     * @param target where each accepted connection is relayed to (the standby's replication endpoint).
     * @throws IOException if the relay cannot listen.
     */
    public LoopbackRelay(final InetSocketAddress target) throws IOException
    {
        this.target = target;
        selector = Selector.open();
        server = ServerSocketChannel.open();
        server.bind(new InetSocketAddress("127.0.0.1", 0));
        server.configureBlocking(false);
        server.register(selector, SelectionKey.OP_ACCEPT);
        thread = new Thread(this::run, "loopback-relay");
        thread.setDaemon(true);
        thread.start();
    }

    /**
     * @param endpoint {@code host:port} of the target, as a standby's {@code endpoint()} names it.
     * @return a relay to it.
     * @throws IOException if the relay cannot listen.
     */
    public static LoopbackRelay to(final String endpoint) throws IOException
    {
        final int colon = endpoint.lastIndexOf(':');
        return new LoopbackRelay(new InetSocketAddress(endpoint.substring(0, colon),
            Integer.parseInt(endpoint.substring(colon + 1))));
    }

    /**
     * @return {@code 127.0.0.1:port} to connect to instead of the target.
     */
    public String endpoint()
    {
        return "127.0.0.1:" + server.socket().getLocalPort();
    }

    /**
     * @return bytes copied in both directions so far.
     */
    public long bytesRelayed()
    {
        return bytesRelayed;
    }

    /**
     * Cuts both directions, leaving every socket open, and returns once the relay has stopped moving bytes.
     *
     * @return the instant after which no byte crossed, in wall-clock microseconds since the epoch (the clock that
     *         processes on one host share; each JVM's {@code nanoTime} has its own origin).
     * @throws InterruptedException if interrupted while waiting for the relay thread.
     * @throws IllegalStateException if the relay thread does not stop within five seconds.
     */
    public long partition() throws InterruptedException
    {
        partitionRequested = true;
        selector.wakeup();
        if (!stopped.await(5, TimeUnit.SECONDS))
        {
            throw new IllegalStateException("the relay thread did not stop within 5 s");
        }
        return partitionedAtUs;
    }

    /**
     * Resets every relayed connection (both hosts see a connection reset, as when a middlebox or a link flap drops
     * them) and refuses new connections for {@code refuseFor} (each is accepted and reset at once); then relays again.
     *
     * @param refuseFor how long new connections are refused; zero to accept them again at once.
     * @throws InterruptedException if interrupted while waiting for the relay thread.
     * @throws IllegalStateException if the relay thread does not reset within five seconds.
     */
    public void reset(final java.time.Duration refuseFor) throws InterruptedException
    {
        refuseUntilNs = System.nanoTime() + refuseFor.toNanos();
        final long before = resetsDone;
        resetRequested = true;
        selector.wakeup();
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (resetsDone == before)
        {
            if (System.nanoTime() > deadline)
            {
                throw new IllegalStateException("the relay thread did not reset within 5 s");
            }
            Thread.sleep(1);
        }
    }

    /**
     * Stops moving bytes in both directions, every socket left open (a partition), until {@link #resume()}: unlike
     * {@link #partition()}, this one heals.
     */
    public void stall()
    {
        stalled = true;
        selector.wakeup();
    }

    /**
     * Heals a {@link #stall()}: bytes move again, in order, none lost.
     */
    public void resume()
    {
        stalled = false;
        selector.wakeup();
    }

    private void resetAll()
    {
        for (final SocketChannel channel : channels)
        {
            resetAndClose(channel);
        }
        channels.clear();
        resetRequested = false;
        resetsDone++;
    }

    private static void resetAndClose(final SocketChannel channel)
    {
        try
        {
            // linger 0: the close sends a reset, not an orderly end of stream
            channel.setOption(StandardSocketOptions.SO_LINGER, 0);
        }
        catch (final IOException | RuntimeException ignore)
        {
            // closed already
        }
        try
        {
            channel.close();
        }
        catch (final IOException ignore)
        {
            // closing anyway
        }
    }

    private void run()
    {
        try
        {
            while (!partitionRequested && !closing)
            {
                if (resetRequested)
                {
                    resetAll();
                }
                if (stalled)
                {
                    Thread.sleep(1);
                    continue;
                }
                selector.select(100);
                final Iterator<SelectionKey> keys = selector.selectedKeys().iterator();
                // checked per key, so that nothing moves once partition() was asked, not even the rest of a batch
                while (keys.hasNext() && !partitionRequested && !closing)
                {
                    final SelectionKey key = keys.next();
                    keys.remove();
                    if (!key.isValid())
                    {
                        continue;
                    }
                    if (key.isAcceptable())
                    {
                        accept();
                    }
                    else
                    {
                        service(key);
                    }
                }
            }
        }
        catch (final IOException ex)
        {
            // the selector itself failed: nothing more is relayed, which a partition test would notice as silence
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
        }
        finally
        {
            final java.time.Instant now = java.time.Instant.now();
            partitionedAtUs = now.getEpochSecond() * 1_000_000L + now.getNano() / 1000;
            stopped.countDown();
        }
    }

    private void accept() throws IOException
    {
        final SocketChannel a = server.accept();
        if (a == null)
        {
            return;
        }
        if (System.nanoTime() < refuseUntilNs)
        {
            resetAndClose(a);
            return;
        }
        final SocketChannel b;
        try
        {
            // loopback: a blocking connect is immediate, or refused at once
            b = SocketChannel.open(target);
        }
        catch (final IOException ex)
        {
            a.close();
            return;
        }
        final Side sa = new Side(a);
        final Side sb = new Side(b);
        sa.peer = sb;
        sb.peer = sa;
        for (final Side side : new Side[] {sa, sb})
        {
            side.channel.configureBlocking(false);
            side.channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
            side.key = side.channel.register(selector, SelectionKey.OP_READ, side);
            channels.add(side.channel);
        }
    }

    private void service(final SelectionKey key)
    {
        final Side side = (Side)key.attachment();
        try
        {
            if (key.isReadable())
            {
                final int read = side.channel.read(side.peer.outgoing);
                if (read < 0)
                {
                    // one host closed before any partition: pass the end on by closing both
                    closePair(side);
                    return;
                }
                flush(side.peer);
            }
            if (key.isValid() && key.isWritable())
            {
                flush(side);
            }
            interest(side);
            interest(side.peer);
        }
        catch (final IOException ex)
        {
            closePair(side);
        }
    }

    private void flush(final Side side) throws IOException
    {
        side.outgoing.flip();
        bytesRelayed += side.channel.write(side.outgoing);
        side.outgoing.compact();
    }

    private static void interest(final Side side)
    {
        if (!side.key.isValid())
        {
            return;
        }
        // read only while the peer has room to take it; write only while something waits
        side.key.interestOps((side.peer.outgoing.hasRemaining() ? SelectionKey.OP_READ : 0) |
            (side.outgoing.position() > 0 ? SelectionKey.OP_WRITE : 0));
    }

    private void closePair(final Side side)
    {
        for (final Side s : new Side[] {side, side.peer})
        {
            try
            {
                s.channel.close();
            }
            catch (final IOException ignore)
            {
                // closing anyway
            }
        }
    }

    /**
     * Stops relaying and closes every socket (this is when the hosts finally see the connections end).
     */
    @Override
    public void close()
    {
        closing = true;
        selector.wakeup();
        try
        {
            thread.join(5000);
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
        }
        for (final SocketChannel channel : channels)
        {
            try
            {
                channel.close();
            }
            catch (final IOException ignore)
            {
                // closing anyway
            }
        }
        try
        {
            server.close();
            selector.close();
        }
        catch (final IOException ignore)
        {
            // closing anyway
        }
    }

    /**
     * One end of a relayed connection and the bytes waiting to be written to it.
     */
    private static final class Side
    {
        final SocketChannel channel;
        final ByteBuffer outgoing = ByteBuffer.allocate(BUFFER_BYTES);
        Side peer;
        SelectionKey key;

        Side(final SocketChannel channel)
        {
            this.channel = channel;
        }
    }
}
