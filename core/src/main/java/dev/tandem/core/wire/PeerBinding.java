package dev.tandem.core.wire;

import dev.tandem.core.transport.Connection;
import org.agrona.concurrent.SystemNanoClock;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Binds the replication handshake to the authenticated link: the VM a HELLO names must be the VM the peer's
 * certificate names ({@link Connection#peerIdentity()}), so a peer holding a valid certificate for one VM can neither
 * feed another VM's standby nor receive another VM's stream. On a link that authenticates nobody (plaintext, in-JVM)
 * there is nothing to bind and both checks pass.
 * <p>
 * Each side refuses with a REFUSE frame carrying the reason, as every handshake refusal travels, so both sides log
 * the same sentence; nothing of the refused peer is applied.
 */
public final class PeerBinding
{
    /** How long the active waits, after its REFUSE, for the standby to hang up (a reset could overtake the REFUSE). */
    static final long REFUSE_LINGER_MS = 1000;

    private PeerBinding()
    {
    }

    /**
     * The standby's check, on a HELLO: the active's certificate must name the VM the HELLO names.
     *
     * @param connection the link the HELLO came on.
     * @param helloVmId  the VM the HELLO names.
     * @throws ProtocolException {@link ProtocolException.Fault#VM_MISMATCH} naming both identities.
     */
    public static void checkActive(final Connection connection, final String helloVmId)
    {
        final Optional<String> certified = connection.peerIdentity();
        if (certified.isPresent() && !certified.get().equals(helloVmId))
        {
            throw new ProtocolException(ProtocolException.Fault.VM_MISMATCH, "active " + connection.peer() +
                " is certified for VM '" + certified.get() + "' but its HELLO names VM '" + helloVmId +
                "': a certificate lets its holder replicate only the VM it names");
        }
    }

    /**
     * The active's check, before its HELLO: the standby's certificate must name the VM this active protects. On a
     * mismatch the standby is sent a REFUSE with the reason (and given up to {@value #REFUSE_LINGER_MS} ms to hang
     * up) before this throws; the HELLO, which describes the guest, is never sent.
     *
     * @param connection the link to the standby, its own handshake done.
     * @param vmId       the VM this active protects.
     * @throws ProtocolException {@link ProtocolException.Fault#VM_MISMATCH} naming both identities.
     */
    public static void checkStandby(final Connection connection, final String vmId)
    {
        final Optional<String> certified = connection.peerIdentity();
        if (certified.isEmpty() || certified.get().equals(vmId))
        {
            return;
        }
        final String reason = "standby " + connection.peer() + " is certified for VM '" + certified.get() +
            "' but this active protects VM '" + vmId + "': a certificate lets its holder replicate only the VM it " +
            "names";
        sendRefusal(connection, reason);
        throw new ProtocolException(ProtocolException.Fault.VM_MISMATCH, reason);
    }

    private static void sendRefusal(final Connection connection, final String reason)
    {
        final long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(REFUSE_LINGER_MS);
        final ByteBuffer drain = ByteBuffer.allocateDirect(4096);
        try (FrameWriter writer = new FrameWriter(Handshake.MAX_REASON_PAYLOAD))
        {
            final int length = Handshake.encodeReason(writer.subHeader(), FrameCodec.HEADER_LENGTH, reason);
            writer.begin(FrameCodec.MAX_VERSION, FrameType.REFUSE, 0, 0, length, null);
            writer.writeAll(connection, blockedNs ->
            {
                if (System.nanoTime() - deadline >= 0)
                {
                    throw new IOException("the standby did not take the refusal within " + REFUSE_LINGER_MS + " ms");
                }
                LockSupport.parkNanos(100_000);
            }, SystemNanoClock.INSTANCE);
            // the standby hangs up once it has read the REFUSE; until then unread bytes here would turn a close
            // into a reset that can overtake it
            while (System.nanoTime() - deadline < 0)
            {
                drain.clear();
                final int read = connection.read(drain);
                if (read < 0)
                {
                    return;
                }
                if (read == 0)
                {
                    LockSupport.parkNanos(1_000_000);
                }
            }
        }
        catch (final IOException ex)
        {
            // the refusal is a courtesy to the peer; the exception the caller throws is what counts
        }
    }
}
