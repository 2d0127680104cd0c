package dev.tandem.core.transport;

import java.util.Queue;

/**
 * A {@link Transport.Listener} over a queue of connections a transport has already set up (in-JVM pipes, a
 * simulated network): accepting takes the oldest, closing unregisters the endpoint and closes whatever was never
 * accepted, as a closed TCP listener resets the connections in its backlog.
 */
public final class QueueListener implements Transport.Listener
{
    private final String endpoint;
    private final Queue<? extends Connection> queue;
    private final Runnable unregister;

    /**
     * @param endpoint   the endpoint listened on.
     * @param queue      connections waiting to be accepted, filled by the transport's {@code connect}.
     * @param unregister removes the endpoint from the transport, so nothing new is queued after close.
     */
    public QueueListener(final String endpoint, final Queue<? extends Connection> queue, final Runnable unregister)
    {
        this.endpoint = endpoint;
        this.queue = queue;
        this.unregister = unregister;
    }

    @Override
    public Connection accept()
    {
        return queue.poll();
    }

    @Override
    public String endpoint()
    {
        return endpoint;
    }

    @Override
    public void close()
    {
        unregister.run();
        Connection pending;
        while ((pending = queue.poll()) != null)
        {
            pending.close();
        }
    }
}
