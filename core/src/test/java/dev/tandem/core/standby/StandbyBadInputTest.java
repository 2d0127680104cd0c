package dev.tandem.core.standby;

import dev.tandem.core.system.LeakCheck;
import dev.tandem.core.transport.InJvmTransport;
import dev.tandem.core.wire.FrameCodec;
import dev.tandem.core.wire.FrameType;
import dev.tandem.core.wire.Handshake;
import dev.tandem.vmm.StateDigest;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Invariant 4 on the wire: every malformed frame is refused with an error naming its fault, nothing of its epoch is
 * applied, the connection is dropped, and the replica still equals its last commit; a good active then reconnects.
 */
@LeakCheck
class StandbyBadInputTest
{
    private static final String VM = "bad-input-vm";
    private static final int PAGE = 4096;
    private static final long PAGES = 256;
    private static final List<Handshake.Disk> DISKS = List.of(new Handshake.Disk(0, 512, 64 * 1024));

    @TempDir
    Path dir;

    private final InJvmTransport transport = new InJvmTransport();
    private StandbyReplica standby;
    private long committedDigest;

    /**
     * One way of breaking the stream, given a connected active in the middle of epoch 2.
     */
    @FunctionalInterface
    interface Fault
    {
        void inject(RawActive active) throws IOException;
    }

    @BeforeEach
    void commitBaseline() throws IOException
    {
        standby = StandbyReplica.launch(new StandbyContext()
            .transport(transport)
            .listenEndpoint("standby")
            .directory(dir)
            .vmId(VM)
            .memory(PAGE, PAGES)
            .disk(0, 512, 64 * 1024));
        try (RawActive active = new RawActive(transport, "standby"))
        {
            active.welcome(VM, PAGE, PAGES, DISKS);
            active.diskWrite(1, 0, 0, filled(4096, (byte)1));
            active.barrier(1);
            active.pages(1, 0, 8, PAGE, (byte)1);
            active.component(1, 7, new byte[] {1, 2, 3});
            active.end(1);
            assertEquals(1, active.awaitAck());
        }
        committedDigest = standby.inspect(StateDigest::of);
        awaitDisconnected();
    }

    @AfterEach
    void closeStandby()
    {
        standby.close();
    }

    static Stream<Arguments> faults()
    {
        return Stream.of(
            fault("BAD_MAGIC", a -> a.send(corrupt(frame(a, FrameType.BARRIER, 2), FrameCodec.MAGIC_OFFSET, 0x11))),
            fault("BAD_CRC", a ->
            {
                final byte[] bytes = pagesFrame(a, 2, 10);
                bytes[bytes.length - 1] ^= 0x40;
                a.send(bytes);
            }),
            fault("BAD_LENGTH", a -> a.send(withInt(frame(a, FrameType.BARRIER, 2), FrameCodec.LENGTH_OFFSET,
                FrameCodec.MAX_PAYLOAD_DEFAULT + 1))),
            fault("BAD_LENGTH", a -> a.send(withInt(frame(a, FrameType.BARRIER, 2), FrameCodec.LENGTH_OFFSET, -5))),
            fault("BAD_VERSION", a -> a.send(corrupt(frame(a, FrameType.BARRIER, 2), FrameCodec.VERSION_OFFSET, 9))),
            fault("RESERVED_BITS", a -> a.send(corrupt(frame(a, FrameType.BARRIER, 2), FrameCodec.FLAGS_OFFSET, 1))),
            fault("UNKNOWN_TYPE", a -> a.send(RawActive.frame(FrameType.ACK, a.generation, 2, new byte[0]))),
            fault("UNKNOWN_TYPE", a -> a.send(corrupt(frame(a, FrameType.BARRIER, 2), FrameCodec.TYPE_OFFSET, 99))),
            fault("EPOCH_OUT_OF_ORDER", a -> a.send(pagesFrame(a, 1, 3))),
            fault("EPOCH_OUT_OF_ORDER", a -> a.send(pagesFrame(a, 3, 3))),
            fault("STALE_GENERATION", a -> a.send(RawActive.frame(FrameType.PAGES, a.generation - 1, 2,
                pagesPayload(3)))),
            fault("PAGE_OUT_OF_RANGE", a -> a.pages(2, PAGES - 1, 2, PAGE, (byte)9)),
            fault("BAD_DISK_EXTENT", a -> a.diskWrite(2, 0, 64 * 1024 - 512, filled(1024, (byte)9))),
            fault("BAD_DISK_EXTENT", a -> a.diskWrite(2, 0, 100, filled(512, (byte)9))),
            fault("BAD_DISK_EXTENT", a -> a.diskWrite(2, 3, 0, filled(512, (byte)9))),
            fault("MALFORMED", a ->
            {
                // an epoch end whose counts do not match what arrived
                a.pages++;
                a.end(2);
            }),
            fault("MALFORMED", a -> a.diskWrite(2, 0, 0, filled(512, (byte)9))),
            fault("MALFORMED", a -> a.barrier(2)),
            // page codec entries: LZ4 bytes that do not decode, an XOR delta that decodes short, an unknown encoding
            fault("MALFORMED", a -> a.encodedPage(2, 7, 2, new byte[] {(byte)0xF0, 1, 2, 3, 4, 5, 6, 7})),
            fault("MALFORMED", a -> a.encodedPage(2, 7, 3, new byte[] {0x10, 0x41})),
            fault("MALFORMED", a -> a.encodedPage(2, 7, 9, new byte[0])),
            fault("PAGE_OUT_OF_RANGE", a -> a.encodedPage(2, PAGES, 0, new byte[0])),
            // a restore in place asked while epoch 2 is in assembly (the active's guest is not held at an acked epoch)
            fault("EPOCH_OUT_OF_ORDER", a -> a.send(RawActive.frame(FrameType.RESTORE, a.generation, 1,
                restoreRequest()))),
            // the standby's own answer, sent by an active
            fault("UNKNOWN_TYPE", a -> a.send(RawActive.frame(FrameType.RESTORED, a.generation, 2, new byte[24]))),
            // a version 4 FAILURE_REPORT (no restore time) in a version 6 session: no promotion on a garbled report
            fault("MALFORMED", a -> a.send(RawActive.frame(FrameType.FAILURE_REPORT, a.generation, 1,
                new byte[] {4, 0, 0, 0, 'h', 'u', 'n', 'g'}))));
    }

    /**
     * @return a RESTORE payload: a reason and the latest recovery point.
     */
    private static byte[] restoreRequest()
    {
        final UnsafeBuffer buffer = new UnsafeBuffer(new byte[64]);
        final int length = Handshake.encodeFailureReport(buffer, 0, FrameCodec.MAX_VERSION, "hung",
            Handshake.RESTORE_LATEST);
        final byte[] bytes = new byte[length];
        buffer.getBytes(0, bytes);
        return bytes;
    }

    /**
     * A restore in place asked of a MEMORY standby at its recovery point: it answers with every component's state at
     * that point and RESTORED (no pages or blocks differ from the point itself), and the session goes on. A version 5
     * session has no restore in place: its RESTORE is refused by name.
     */
    @Test
    void aRestoreInPlaceAtTheRecoveryPointIsAnsweredAndAVersion5OneRefused() throws Exception
    {
        try (RawActive active = new RawActive(transport, "standby"))
        {
            active.welcome(VM, PAGE, PAGES, DISKS);
            active.send(RawActive.frame(FrameType.RESTORE, active.generation, 1, restoreRequest()));
            final UnsafeBuffer component = active.awaitFrame();
            assertEquals(FrameType.COMPONENT.code(), component.getByte(FrameCodec.TYPE_OFFSET));
            assertEquals(1, component.getLong(FrameCodec.EPOCH_OFFSET));
            assertEquals(7, component.getInt(FrameCodec.HEADER_LENGTH), "component 7's state at epoch 1");
            assertEquals(3, component.getInt(FrameCodec.LENGTH_OFFSET) - FrameCodec.COMPONENT_HEADER);
            final UnsafeBuffer restored = active.awaitFrame();
            assertEquals(FrameType.RESTORED.code(), restored.getByte(FrameCodec.TYPE_OFFSET));
            assertEquals(1, restored.getLong(FrameCodec.EPOCH_OFFSET));
            assertEquals(0, restored.getLong(FrameCodec.HEADER_LENGTH), "no page differs");
            assertEquals(0, restored.getLong(FrameCodec.HEADER_LENGTH + 8), "no disk block differs");
            assertEquals(1, restored.getInt(FrameCodec.HEADER_LENGTH + 16), "one component's state came");
            final String said = Handshake.decodeReason(restored, FrameCodec.HEADER_LENGTH + 24,
                restored.getInt(FrameCodec.LENGTH_OFFSET) - 24);
            assertTrue(said.contains("restored the latest checkpoint, epoch 1"), said);
            commitEpochTwo(active);
        }
        awaitDisconnected();
        final long rejectedBefore = standby.status().rejectedFrames();
        try (RawActive active = new RawActive(transport, "standby"))
        {
            active.version = 5;
            active.hello(5, 5, VM, PAGE, PAGES, DISKS);
            final UnsafeBuffer reply = active.awaitFrame();
            active.generation = reply.getLong(FrameCodec.HEADER_LENGTH + 16);
            active.send(RawActive.frame(5, FrameType.RESTORE, active.generation, 2, restoreRequest()));
            awaitRejected(rejectedBefore);
        }
        assertTrue(standby.status().lastError().contains("needs version 6"), standby.status().lastError());
        assertEquals(2, standby.lastCommittedEpoch());
    }

    private static Arguments fault(final String name, final Fault fault)
    {
        return Arguments.of(name, fault);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("faults")
    void malformedFrameIsRefusedAndNothingApplied(final String expectedFault, final Fault fault) throws Exception
    {
        final long rejectedBefore = standby.status().rejectedFrames();
        try (RawActive active = new RawActive(transport, "standby"))
        {
            active.welcome(VM, PAGE, PAGES, DISKS);
            // a valid start of epoch 2 that must be discarded with the bad frame
            active.diskWrite(2, 0, 0, filled(4096, (byte)2));
            active.barrier(2);
            active.pages(2, 0, 4, PAGE, (byte)2);
            fault.inject(active);
            awaitRejected(rejectedBefore);
        }
        final String error = standby.status().lastError();
        assertNotNull(error);
        assertTrue(error.startsWith(expectedFault), "error names the fault: " + error);
        assertEquals(1, standby.lastCommittedEpoch(), "recovery point unchanged");
        assertEquals(committedDigest, (long)standby.inspect(StateDigest::of), "replica still equals commit 1");
        awaitDisconnected();
        commitEpochTwo();
    }

    @Test
    void truncatedFrameIsNeverApplied() throws Exception
    {
        try (RawActive active = new RawActive(transport, "standby"))
        {
            active.welcome(VM, PAGE, PAGES, DISKS);
            active.barrier(2);
            final byte[] frame = pagesFrame(active, 2, 5);
            final byte[] half = new byte[frame.length / 2];
            System.arraycopy(frame, 0, half, 0, half.length);
            active.send(half);
        }
        awaitDisconnected();
        // the read that meets the end of the stream says "closed the connection"; on a loaded machine a heartbeat
        // falls due first and its write meets the closed peer ("is closed"): a lost link either way, never a fault
        // found in the half frame
        assertTrue(standby.status().lastError().contains("closed"), standby.status().lastError());
        assertEquals(1, standby.lastCommittedEpoch());
        assertEquals(committedDigest, (long)standby.inspect(StateDigest::of));
        commitEpochTwo();
    }

    @Test
    void handshakeWithWrongGeometryOrVmIsRefused() throws Exception
    {
        for (final Object[] bad : new Object[][] {
            {"GEOMETRY_MISMATCH", VM, PAGES + 1, DISKS},
            {"GEOMETRY_MISMATCH", VM, PAGES, List.of(new Handshake.Disk(0, 512, 128 * 1024))},
            {"VM_MISMATCH", "another-vm", PAGES, DISKS}})
        {
            final long rejectedBefore = standby.status().rejectedFrames();
            try (RawActive active = new RawActive(transport, "standby"))
            {
                @SuppressWarnings("unchecked")
                final List<Handshake.Disk> disks = (List<Handshake.Disk>)bad[3];
                active.hello((String)bad[1], PAGE, (long)bad[2], disks);
                final UnsafeBuffer reply = active.awaitFrame();
                assertEquals(FrameType.REFUSE.code(), reply.getByte(FrameCodec.TYPE_OFFSET));
                final String reason = Handshake.decodeReason(reply, FrameCodec.HEADER_LENGTH,
                    reply.getInt(FrameCodec.LENGTH_OFFSET));
                assertTrue(reason.startsWith((String)bad[0]), reason);
                awaitRejected(rejectedBefore);
            }
            assertTrue(standby.status().lastError().startsWith((String)bad[0]), standby.status().lastError());
            awaitDisconnected();
        }
        assertEquals(committedDigest, (long)standby.inspect(StateDigest::of));
        commitEpochTwo();
    }

    @Test
    void helloOutsideTheStandbysVersionsIsRefused() throws Exception
    {
        final long rejectedBefore = standby.status().rejectedFrames();
        try (RawActive active = new RawActive(transport, "standby"))
        {
            active.hello(FrameCodec.MAX_VERSION + 1, FrameCodec.MAX_VERSION + 3, VM, PAGE, PAGES, DISKS);
            final UnsafeBuffer reply = active.awaitFrame();
            assertEquals(FrameType.REFUSE.code(), reply.getByte(FrameCodec.TYPE_OFFSET));
            final String reason = Handshake.decodeReason(reply, FrameCodec.HEADER_LENGTH,
                reply.getInt(FrameCodec.LENGTH_OFFSET));
            assertTrue(reason.startsWith("BAD_VERSION"), reason);
            awaitRejected(rejectedBefore);
        }
        awaitDisconnected();
        assertEquals(committedDigest, (long)standby.inspect(StateDigest::of));
        commitEpochTwo();
    }

    /**
     * An active that speaks only version 4 is served at version 4, and its FAILURE_REPORT (no restore time) is no
     * malformed frame.
     */
    @Test
    void aVersion4ActiveIsServedAndItsFailureReportCarriesNoTime() throws Exception
    {
        final long rejectedBefore = standby.status().rejectedFrames();
        try (RawActive active = new RawActive(transport, "standby"))
        {
            active.version = 4;
            active.hello(4, 4, VM, PAGE, PAGES, DISKS);
            final UnsafeBuffer reply = active.awaitFrame();
            assertEquals(FrameType.WELCOME.code(), reply.getByte(FrameCodec.TYPE_OFFSET));
            assertEquals(4, reply.getInt(FrameCodec.HEADER_LENGTH), "the version both speak");
            active.generation = reply.getLong(FrameCodec.HEADER_LENGTH + 16);
            active.barrier(2);
            active.pages(2, 100, 1, PAGE, (byte)5);
            active.end(2);
            assertEquals(2, active.awaitAck());
            active.send(RawActive.frame(4, FrameType.FAILURE_REPORT, active.generation, 2,
                new byte[] {4, 0, 0, 0, 'h', 'u', 'n', 'g'}));
        }
        awaitDisconnected();
        assertEquals(rejectedBefore, standby.status().rejectedFrames(), "nothing refused: " + standby.status());
        assertEquals(2, standby.lastCommittedEpoch());
    }

    /**
     * Once epoch 2 is committed, a second epoch end for it, or epoch 2 begun again, is refused and the recovery
     * point stays the committed epoch 2.
     */
    @Test
    void epochRepeatedOrEndedTwiceAfterItsCommitIsRefused() throws Exception
    {
        commitEpochTwo();
        final long committedTwo = standby.inspect(StateDigest::of);
        for (final Fault repeat : java.util.List.<Fault>of(a -> a.end(2), a -> a.barrier(2),
            a -> a.pages(2, 7, 1, PAGE, (byte)7)))
        {
            final long rejectedBefore = standby.status().rejectedFrames();
            try (RawActive active = new RawActive(transport, "standby"))
            {
                active.welcome(VM, PAGE, PAGES, DISKS);
                repeat.inject(active);
                awaitRejected(rejectedBefore);
            }
            final String error = standby.status().lastError();
            assertTrue(error.startsWith("EPOCH_OUT_OF_ORDER"), "error names the fault: " + error);
            assertEquals(2, standby.lastCommittedEpoch(), "recovery point unchanged");
            assertEquals(committedTwo, (long)standby.inspect(StateDigest::of), "replica still equals commit 2");
            awaitDisconnected();
        }
    }

    private void commitEpochTwo() throws IOException
    {
        try (RawActive active = new RawActive(transport, "standby"))
        {
            active.welcome(VM, PAGE, PAGES, DISKS);
            commitEpochTwo(active);
        }
    }

    private void commitEpochTwo(final RawActive active) throws IOException
    {
        active.barrier(2);
        active.pages(2, 100, 1, PAGE, (byte)5);
        active.end(2);
        assertEquals(2, active.awaitAck(), "a good active commits after the fault");
        assertTrue(committedDigest != standby.inspect(StateDigest::of));
    }

    private void awaitRejected(final long before) throws IOException
    {
        final long deadline = System.nanoTime() + 10_000_000_000L;
        while (standby.status().rejectedFrames() == before)
        {
            if (System.nanoTime() > deadline)
            {
                throw new IOException("standby did not refuse the frame: " + standby.status());
            }
            Thread.onSpinWait();
        }
    }

    private void awaitDisconnected() throws IOException
    {
        final long deadline = System.nanoTime() + 10_000_000_000L;
        while (standby.status().connected())
        {
            if (System.nanoTime() > deadline)
            {
                throw new IOException("standby still connected: " + standby.status());
            }
            Thread.onSpinWait();
        }
    }

    private static byte[] frame(final RawActive active, final FrameType type, final long epoch)
    {
        return RawActive.frame(type, active.generation, epoch, new byte[0]);
    }

    private static byte[] pagesPayload(final long firstPage)
    {
        final UnsafeBuffer payload = new UnsafeBuffer(new byte[FrameCodec.PAGES_HEADER + PAGE]);
        payload.putLong(0, firstPage);
        payload.putInt(8, 1);
        return payload.byteArray();
    }

    private static byte[] pagesFrame(final RawActive active, final long epoch, final long firstPage)
    {
        return RawActive.frame(FrameType.PAGES, active.generation, epoch, pagesPayload(firstPage));
    }

    private static byte[] corrupt(final byte[] frame, final int offset, final int value)
    {
        frame[offset] = (byte)value;
        return frame;
    }

    private static byte[] withInt(final byte[] frame, final int offset, final int value)
    {
        new UnsafeBuffer(frame).putInt(offset, value);
        return frame;
    }

    private static byte[] filled(final int length, final byte value)
    {
        final byte[] bytes = new byte[length];
        java.util.Arrays.fill(bytes, value);
        return bytes;
    }
}
