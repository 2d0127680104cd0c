package dev.tandem.core.failover;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A loopback TCP relay between an active and a standby that can black-hole both directions: after
 * {@link #blackHole()} it stops moving bytes but keeps every socket open (no FIN, no reset), so each side sees only
 * silence while its own socket goes on accepting writes into its buffers, as in a real partition. The in-JVM
 * transport cannot show this: its writes stop being accepted at once.
 */
final class BlackHoleRelay implements AutoCloseable
{
    private final ServerSocket server;
    private final String target;
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    private volatile boolean blackHoled;
    private volatile boolean closed;

    /**
     * @param target the standby's host:port.
     */
    BlackHoleRelay(final String target) throws IOException
    {
        this.target = target;
        this.server = new ServerSocket();
        server.bind(new InetSocketAddress("127.0.0.1", 0));
        final Thread acceptor = new Thread(this::acceptLoop, "relay-accept");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    /**
     * @return host:port the active connects to.
     */
    String endpoint()
    {
        return "127.0.0.1:" + server.getLocalPort();
    }

    /**
     * Stops moving bytes both ways; every socket stays open.
     */
    void blackHole()
    {
        blackHoled = true;
    }

    private void acceptLoop()
    {
        while (!closed)
        {
            try
            {
                final Socket fromActive = server.accept();
                final int colon = target.lastIndexOf(':');
                final Socket toStandby = new Socket(target.substring(0, colon),
                    Integer.parseInt(target.substring(colon + 1)));
                sockets.add(fromActive);
                sockets.add(toStandby);
                pump(fromActive, toStandby, "relay-forward");
                pump(toStandby, fromActive, "relay-back");
            }
            catch (final IOException ex)
            {
                return;
            }
        }
    }

    private void pump(final Socket from, final Socket to, final String name)
    {
        final Thread thread = new Thread(() ->
        {
            final byte[] chunk = new byte[64 * 1024];
            try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream())
            {
                int read;
                while (!blackHoled && (read = in.read(chunk)) >= 0)
                {
                    if (blackHoled)
                    {
                        break;
                    }
                    out.write(chunk, 0, read);
                }
                // black-holed: hold both sockets open and move nothing until closed
                while (!closed)
                {
                    Thread.sleep(10);
                }
            }
            catch (final IOException | InterruptedException ex)
            {
                // the peer or the test closed the socket
            }
        }, name);
        thread.setDaemon(true);
        thread.start();
    }

    @Override
    public void close() throws IOException
    {
        closed = true;
        server.close();
        for (final Socket socket : sockets)
        {
            socket.close();
        }
    }
}
