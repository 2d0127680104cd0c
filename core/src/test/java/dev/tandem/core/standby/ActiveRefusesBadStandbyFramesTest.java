package dev.tandem.core.standby;

import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.metrics.ProtectionState;
import dev.tandem.core.system.LeakCheck;
import dev.tandem.core.transport.Connection;
import dev.tandem.core.transport.InJvmTransport;
import dev.tandem.core.transport.Transport;
import dev.tandem.core.wire.FrameCodec;
import dev.tandem.core.wire.FrameType;
import dev.tandem.core.wire.Handshake;
import dev.tandem.core.wire.ProtocolException;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bad input from the standby's side: a WELCOME of a version outside the range, a reply that is no WELCOME, bytes
 * after the WELCOME before any epoch, an ack for an epoch never sent, an ack of another generation. The active
 * names the fault, stops protecting, and releases none of the guest's held output.
 */
@LeakCheck
class ActiveRefusesBadStandbyFramesTest
{
    private static final long GENERATION = 3;

    private static byte[] welcome(final int version)
    {
        final UnsafeBuffer payload = new UnsafeBuffer(new byte[Handshake.WELCOME_LENGTH]);
        new Handshake.Welcome(version, 0, GENERATION, 200_000_000L).encode(payload, 0);
        return RawActive.frame(FrameType.WELCOME, GENERATION, 0, payload.byteArray());
    }

    private static byte[] concat(final byte[] first, final byte[] second)
    {
        final byte[] both = java.util.Arrays.copyOf(first, first.length + second.length);
        System.arraycopy(second, 0, both, first.length, second.length);
        return both;
    }

    /**
     * A standby that reads the HELLO, answers with the first of {@code replies}, sends the rest once the first bytes
     * of the baseline arrived (the active reads frames only after the handshake), and keeps the connection open,
     * draining it.
     */
    private static final class RawStandby implements AutoCloseable
    {
        private final Transport.Listener listener;
        private final Thread thread;
        private final AtomicReference<Connection> connection = new AtomicReference<>();

        RawStandby(final Transport transport, final String endpoint, final Function<Long, byte[][]> replies)
            throws Exception
        {
            listener = transport.listen(endpoint);
            thread = new Thread(() ->
            {
                try
                {
                    Connection pending;
                    while ((pending = listener.accept()) == null)
                    {
                        // accept does not block (null until an active connects)
                        Thread.onSpinWait();
                    }
                    final Connection accepted = pending;
                    connection.set(accepted);
                    final ByteBuffer in = ByteBuffer.allocateDirect(1 << 20);
                    while (accepted.read(in) == 0 || in.position() < FrameCodec.HEADER_LENGTH)
                    {
                        Thread.onSpinWait();
                    }
                    final byte[][] frames = replies.apply(GENERATION);
                    for (int i = 0; i < frames.length; i++)
                    {
                        if (i == 1)
                        {
                            // later frames once the baseline is flowing: the handshake's reader is done by then
                            long received = 0;
                            while (received == 0)
                            {
                                received += Math.max(0, accepted.read(in.clear()));
                            }
                        }
                        final ByteBuffer[] gather = {ByteBuffer.wrap(frames[i])};
                        while (gather[0].hasRemaining())
                        {
                            accepted.write(gather, 0, 1);
                        }
                    }
                    while (!Thread.currentThread().isInterrupted() && accepted.read(in.clear()) >= 0)
                    {
                        Thread.onSpinWait();
                    }
                }
                catch (final Exception ex)
                {
                    // the test closed the connection
                }
            }, "raw-standby");
            thread.start();
        }

        boolean accepted()
        {
            return connection.get() != null;
        }

        @Override
        public void close()
        {
            thread.interrupt();
            final Connection accepted = connection.get();
            if (accepted != null)
            {
                accepted.close();
            }
            listener.close();
            try
            {
                thread.join(5000);
            }
            catch (final InterruptedException ex)
            {
                Thread.currentThread().interrupt();
            }
        }
    }

    private static SimulatedVmm guest()
    {
        // a NIC sending every tick: any frame released without an ack would show on the wire
        return SimulatedVmm.builder().vmId("raw-vm").memoryBytes(1 << 20).workload(Workload.HOTSET)
            .pagesPerMillisecond(5).packetEveryTicks(1).build().start();
    }

    private static ActiveContext context(final SimulatedVmm vmm, final Transport transport, final String endpoint)
    {
        return new ActiveContext().adapter(vmm).transport(transport).standbyEndpoint(endpoint).connectTimeoutMs(5000);
    }

    @Test
    void welcomeOutsideTheVersionRangeNoWelcomeOrBytesAfterItAreRefusedAtLaunch() throws Exception
    {
        final InJvmTransport transport = new InJvmTransport();
        for (final Object[] bad : new Object[][] {
            {"BAD_VERSION", (Function<Long, byte[][]>)g -> new byte[][] {welcome(FrameCodec.MAX_VERSION + 7)}},
            {"UNKNOWN_TYPE", (Function<Long, byte[][]>)g -> new byte[][] {
                RawActive.frame(FrameType.ACK, g, 1, new byte[0])}},
            // an ack in the same write as the WELCOME, before the active sent anything
            {"MALFORMED", (Function<Long, byte[][]>)g -> new byte[][] {
                concat(welcome(FrameCodec.MAX_VERSION), RawActive.frame(FrameType.ACK, g, 1, new byte[0]))}}})
        {
            @SuppressWarnings("unchecked")
            final Function<Long, byte[][]> replies = (Function<Long, byte[][]>)bad[1];
            try (SimulatedVmm vmm = guest(); RawStandby standby = new RawStandby(transport, "raw-launch", replies))
            {
                final ProtocolException ex = assertThrows(ProtocolException.class,
                    () -> ActiveReplicator.launch(context(vmm, transport, "raw-launch")));
                assertTrue(ex.getMessage().startsWith((String)bad[0]), ex.getMessage());
                assertTrue(standby.accepted(), "the active reached the raw standby");
                assertTrue(!vmm.isPaused(), "the guest keeps running unprotected after a refused launch");
            }
        }
    }

    @Test
    void ackForAnEpochNeverSentOrOfAnotherGenerationStopsProtectionAndReleasesNothing() throws Exception
    {
        final InJvmTransport transport = new InJvmTransport();
        for (final Object[] bad : new Object[][] {
            {"EPOCH_OUT_OF_ORDER", "ack 99", (Function<Long, byte[][]>)g -> new byte[][] {
                welcome(FrameCodec.MAX_VERSION), RawActive.frame(FrameType.ACK, g, 99, new byte[0])}},
            {"STALE_GENERATION", "generation 2", (Function<Long, byte[][]>)g -> new byte[][] {
                welcome(FrameCodec.MAX_VERSION), RawActive.frame(FrameType.ACK, g - 1, 1, new byte[0])}},
            // a restore in place's pages from a standby that was asked for none: nothing is written into the guest
            {"UNKNOWN_TYPE", "asked for no restore in place", (Function<Long, byte[][]>)g -> new byte[][] {
                welcome(FrameCodec.MAX_VERSION), RawActive.frame(FrameType.PAGES, g, 1, new byte[16 + 4096])}}})
        {
            @SuppressWarnings("unchecked")
            final Function<Long, byte[][]> replies = (Function<Long, byte[][]>)bad[2];
            try (SimulatedVmm vmm = guest(); RawStandby standby = new RawStandby(transport, "raw-ack", replies);
                ActiveReplicator active = ActiveReplicator.launch(context(vmm, transport, "raw-ack")))
            {
                final long deadline = System.nanoTime() + 10_000_000_000L;
                // the session is dropped and the active tries to reconnect, holding output (the raw standby
                // takes no second connection)
                while (active.status().state() != ProtectionState.RECONNECTING && System.nanoTime() < deadline)
                {
                    Thread.sleep(5);
                }
                assertEquals(ProtectionState.RECONNECTING, active.status().state());
                final Throwable failure = active.failure();
                assertTrue(failure instanceof ProtocolException, String.valueOf(failure));
                assertTrue(failure.getMessage().startsWith((String)bad[0]) &&
                    failure.getMessage().contains((String)bad[1]), failure.getMessage());
                assertEquals(0, active.status().lastAckedEpoch(), "the bad ack acknowledged nothing");
                assertEquals(0, active.status().outputReleased(), "no held output released");
                // the NIC kept sending before protection began; from the failure on, its frames stay held
                final long onWire = vmm.framesOnWire();
                Thread.sleep(200);
                assertEquals(onWire, vmm.framesOnWire(), "nothing reached the wire after the bad ack");
                assertTrue(vmm.txFrames() > onWire, "the guest kept offering frames: " + vmm.txFrames());
                assertTrue(standby.accepted());
            }
        }
    }
}
