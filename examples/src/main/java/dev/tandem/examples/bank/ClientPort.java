package dev.tandem.examples.bank;

import dev.tandem.vmm.PacketSink;
import dev.tandem.vmm.sim.SimulatedVmm;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;

/**
 * The host side of the guest's NIC for the bank: accepts the client's TCP connection, delivers each 32-byte
 * request to the guest's virtual NIC, and writes the guest's released replies back. It is the {@link PacketSink} of
 * the guest, so on the active a reply reaches the client only after its epoch was acknowledged.
 */
public final class ClientPort implements PacketSink, AutoCloseable
{
    private final ServerSocket server;
    private final Thread acceptor;
    private volatile SimulatedVmm guest;
    private volatile Socket client;
    private final byte[] out = new byte[BankProgram.REPLY_BYTES];

    /**
     * @param port loopback port to listen on; 0 lets the kernel choose (see {@link #port()}).
     * @throws IOException if it cannot be bound.
     */
    public ClientPort(final int port) throws IOException
    {
        server = new ServerSocket();
        server.setReuseAddress(true);
        server.bind(new InetSocketAddress("127.0.0.1", port));
        acceptor = new Thread(this::acceptLoop, "bank-client-port");
        acceptor.setDaemon(true);
    }

    /**
     * @return the port actually bound (the one asked for, or the kernel's choice for 0).
     */
    public int port()
    {
        return server.getLocalPort();
    }

    /**
     * Starts serving a guest.
     *
     * @param vmm the guest whose NIC this is.
     */
    public void serve(final SimulatedVmm vmm)
    {
        guest = vmm;
        if (!acceptor.isAlive())
        {
            acceptor.start();
        }
    }

    private void acceptLoop()
    {
        while (!server.isClosed())
        {
            try (Socket socket = server.accept())
            {
                socket.setTcpNoDelay(true);
                client = socket;
                final DataInputStream in = new DataInputStream(socket.getInputStream());
                final byte[] request = new byte[BankProgram.REQUEST_BYTES];
                final UnsafeBuffer view = new UnsafeBuffer(request);
                while (true)
                {
                    in.readFully(request);
                    while (!guest.deliver(view, 0, request.length))
                    {
                        Thread.sleep(1);
                    }
                }
            }
            catch (final IOException ex)
            {
                client = null;
            }
            catch (final InterruptedException ex)
            {
                return;
            }
        }
    }

    @Override
    public void send(final DirectBuffer frame, final int index, final int length)
    {
        final Socket socket = client;
        if (socket == null || length != BankProgram.REPLY_BYTES)
        {
            return; // no client connected: the frame is lost on the wire, and the client will resend
        }
        frame.getBytes(index, out, 0, length);
        try
        {
            final OutputStream stream = socket.getOutputStream();
            stream.write(out, 0, length);
            stream.flush();
        }
        catch (final IOException ex)
        {
            client = null;
        }
    }

    @Override
    public void close() throws IOException
    {
        server.close();
        final Socket socket = client;
        if (socket != null)
        {
            socket.close();
        }
    }
}
