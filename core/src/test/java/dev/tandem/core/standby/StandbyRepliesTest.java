package dev.tandem.core.standby;

import dev.tandem.core.system.LeakCheck;
import dev.tandem.core.transport.Connection;
import dev.tandem.core.transport.ForwardingConnection;
import dev.tandem.core.transport.InJvmTransport;
import dev.tandem.core.transport.Transport;
import dev.tandem.core.wire.Handshake;
import dev.tandem.vmm.StateDigest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The standby's replies (acks, heartbeats) never hold its duty cycle: an active that stops reading them leaves a
 * reply half-written, the receiver takes no further frame of that active until the reply is whole, and meanwhile it
 * goes on serving what else it must (here an inspection, which runs between two frames on its thread). Once the
 * active reads again, the reply resumes where it stopped and the epochs that waited are committed and acked in
 * order.
 */
@LeakCheck
class StandbyRepliesTest
{
    private static final String VM = "replies-vm";
    private static final int PAGE = 4096;
    private static final long PAGES = 64;
    private static final List<Handshake.Disk> DISKS = List.of(new Handshake.Disk(0, 512, 64 * 1024));

    @TempDir
    Path dir;

    @Test
    void aReplyTheActiveDoesNotReadLeavesTheReceiverServing() throws Exception
    {
        final BlockableReplies transport = new BlockableReplies();
        // far longer than the test's bound: a receiver blocked inside a reply would hold the inspection that long
        try (StandbyReplica standby = StandbyReplica.launch(new StandbyContext()
            .transport(transport)
            .listenEndpoint("standby")
            .directory(dir)
            .vmId(VM)
            .memory(PAGE, PAGES)
            .disk(0, 512, 64 * 1024)
            .failureTimeoutNs(TimeUnit.SECONDS.toNanos(120)));
            RawActive active = new RawActive(transport, "standby"))
        {
            active.welcome(VM, PAGE, PAGES, DISKS);
            sendEpoch(active, 1);
            assertEquals(1, active.awaitAck());

            // the active stops reading: the next reply gets 5 bytes out, then nothing
            transport.block(5);
            sendEpoch(active, 2);
            sendEpoch(active, 3);
            final long digest = assertTimeoutPreemptively(Duration.ofSeconds(30),
                () -> standby.inspect(StateDigest::of), "the receiver is stuck in a reply the active does not read");
            assertTrue(transport.refused.get() > 0, "a reply was refused by the full connection");
            final long committed = standby.lastCommittedEpoch();
            assertTrue(committed == 1 || committed == 2, "no frame is taken while a reply is under way: " +
                committed);
            // the applier may still be applying the epoch committed before the block (the first inspection can
            // come before it, on a loaded machine); once it has caught up, nothing more changes while the reply waits
            final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (standby.appliedEpoch() < committed && System.nanoTime() < deadline)
            {
                Thread.sleep(1);
            }
            final long settled = standby.inspect(StateDigest::of);
            Thread.sleep(50);
            assertEquals(settled, (long)standby.inspect(StateDigest::of));
            assertEquals(committed, standby.lastCommittedEpoch(), "still no frame taken");
            assertTrue(digest != 0);

            transport.unblock();
            assertEquals(2, active.awaitAck(), "the reply resumed whole, then the next ack");
            assertEquals(3, active.awaitAck());
            assertEquals(3, standby.lastCommittedEpoch());
        }
    }

    private static void sendEpoch(final RawActive active, final long epoch) throws IOException
    {
        // an epoch's disk writes come before its barrier, its pages after
        active.diskWrite(epoch, 0, 512 * epoch, new byte[512]);
        active.barrier(epoch);
        active.pages(epoch, epoch, 2, PAGE, (byte)epoch);
        active.end(epoch);
    }

    /**
     * The in-JVM transport with the standby's writes stoppable: once blocked, they take a given number of bytes in
     * all and then nothing, as a socket whose reader stopped reading.
     */
    private static final class BlockableReplies implements Transport
    {
        private final InJvmTransport inner = new InJvmTransport();
        private final AtomicBoolean blocked = new AtomicBoolean();
        private final AtomicLong allowance = new AtomicLong();
        final AtomicLong refused = new AtomicLong();

        void block(final long bytes)
        {
            allowance.set(bytes);
            blocked.set(true);
        }

        void unblock()
        {
            blocked.set(false);
        }

        @Override
        public Connection connect(final String endpoint, final long timeoutMillis) throws IOException
        {
            return inner.connect(endpoint, timeoutMillis);
        }

        @Override
        public Listener listen(final String endpoint) throws IOException
        {
            return ForwardingConnection.acceptingWrapped(inner.listen(endpoint), this::replies);
        }

        private Connection replies(final Connection connection)
        {
            return new ForwardingConnection(connection)
            {
                @Override
                public long write(final ByteBuffer[] srcs, final int offset, final int length) throws IOException
                {
                    if (!blocked.get())
                    {
                        return delegate.write(srcs, offset, length);
                    }
                    final long written = writeAtMost(srcs, offset, length, allowance.get());
                    allowance.addAndGet(-written);
                    if (written == 0)
                    {
                        refused.incrementAndGet();
                    }
                    return written;
                }
            };
        }
    }
}
