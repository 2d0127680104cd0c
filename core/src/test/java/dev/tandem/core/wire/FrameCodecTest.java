package dev.tandem.core.wire;

import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.zip.CRC32C;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FrameCodecTest
{
    private final ByteBuffer bytes = ByteBuffer.allocateDirect(4096);
    private final UnsafeBuffer buffer = new UnsafeBuffer(bytes);
    private final FrameDecoder decoder = new FrameDecoder(1024);

    private int encode(final FrameType type, final long generation, final long epoch, final int payloadLength)
    {
        FrameCodec.writeHeader(buffer, 0, FrameCodec.MAX_VERSION, type, payloadLength, generation, epoch);
        for (int i = 0; i < payloadLength; i++)
        {
            buffer.putByte(FrameCodec.HEADER_LENGTH + i, (byte)i);
        }
        FrameCodec.sealCrc(new CRC32C(), buffer, bytes.duplicate(), 0, FrameCodec.HEADER_LENGTH + payloadLength, null);
        return FrameCodec.HEADER_LENGTH + payloadLength;
    }

    @Test
    void roundTripsEveryField()
    {
        final int length = encode(FrameType.PAGES, 7, 42, 100);
        assertEquals(0, decoder.decode(buffer, bytes.duplicate(), 0, length - 1), "incomplete frame waits");
        assertEquals(length, decoder.decode(buffer, bytes.duplicate(), 0, length));
        assertEquals(FrameType.PAGES, decoder.type());
        assertEquals(7, decoder.generation());
        assertEquals(42, decoder.epoch());
        assertEquals(100, decoder.length());
        assertEquals(FrameCodec.HEADER_LENGTH, decoder.payloadIndex());
    }

    @Test
    void headerFaultsAreFoundBeforeThePayloadArrives()
    {
        encode(FrameType.BARRIER, 1, 1, 0);
        buffer.putInt(FrameCodec.LENGTH_OFFSET, 5000);
        final ProtocolException ex = assertThrows(ProtocolException.class,
            () -> decoder.decode(buffer, bytes.duplicate(), 0, FrameCodec.HEADER_LENGTH));
        assertEquals(ProtocolException.Fault.BAD_LENGTH, ex.fault());
    }

    @Test
    void everyFlippedBitIsCaught()
    {
        final int length = encode(FrameType.COMPONENT, 3, 9, 64);
        for (int bit = 0; bit < length * 8; bit++)
        {
            buffer.putByte(bit / 8, (byte)(buffer.getByte(bit / 8) ^ (1 << (bit % 8))));
            int decoded;
            try
            {
                // a flip that makes the length longer leaves the frame incomplete: it is never delivered either
                decoded = decoder.decode(buffer, bytes.duplicate(), 0, length);
            }
            catch (final ProtocolException expected)
            {
                decoded = -1;
            }
            assertTrue(decoded <= 0, "bit " + bit + " flipped unnoticed");
            buffer.putByte(bit / 8, (byte)(buffer.getByte(bit / 8) ^ (1 << (bit % 8))));
        }
        assertEquals(length, decoder.decode(buffer, bytes.duplicate(), 0, length));
    }

    @Test
    void helloRoundTripsAndMismatchesAreNamed()
    {
        final Handshake.Hello hello = new Handshake.Hello(1, 1, "vm-1", 4096, 1000,
            List.of(new Handshake.Disk(0, 512, 1 << 20), new Handshake.Disk(3, 4096, 1 << 30)), 20_000_000L, 4, 1 << 20);
        final int length = hello.encode(buffer, 0);
        assertEquals(hello, Handshake.Hello.decode(buffer, 0, length));
        assertEquals(1, hello.accept(hello));
        assertEquals(ProtocolException.Fault.GEOMETRY_MISMATCH, assertThrows(ProtocolException.class,
            () -> hello.accept(new Handshake.Hello(1, 1, "vm-1", 4096, 1001, hello.disks(), 20_000_000L, 4, 1 << 20))).fault());
        assertEquals(ProtocolException.Fault.VM_MISMATCH, assertThrows(ProtocolException.class,
            () -> hello.accept(new Handshake.Hello(1, 1, "vm-2", 4096, 1000, hello.disks(), 20_000_000L, 4, 1 << 20))).fault());
        assertEquals(ProtocolException.Fault.BAD_VERSION, assertThrows(ProtocolException.class,
            () -> hello.accept(new Handshake.Hello(2, 3, "vm-1", 4096, 1000, hello.disks(), 20_000_000L, 4, 1 << 20))).fault());
        assertEquals(ProtocolException.Fault.MALFORMED, assertThrows(ProtocolException.class,
            () -> Handshake.Hello.decode(buffer, 0, length - 1)).fault());
        // an active that sends larger frames than the standby accepts is refused at handshake, naming both limits
        final ProtocolException tooLarge = assertThrows(ProtocolException.class,
            () -> new Handshake.Hello(1, 1, "vm-1", 4096, 1000, hello.disks(), 20_000_000L, 4, 4 << 20)
                .accept(hello));
        assertEquals(ProtocolException.Fault.BAD_LENGTH, tooLarge.fault());
        assertTrue(tooLarge.getMessage().contains("4194304") && tooLarge.getMessage().contains("1048576"),
            tooLarge.getMessage());
    }

    @Test
    void helloOfAReconnectCarriesItsHistoryAndABadHistoryIsNamed()
    {
        final UnsafeBuffer buffer = new UnsafeBuffer(new byte[8192]);
        final Handshake.Hello hello = new Handshake.Hello(FrameCodec.MIN_VERSION, FrameCodec.MAX_VERSION, "vm-1",
            4096, 1000, java.util.List.of(new Handshake.Disk(0, 4096, 1 << 20)), 20_000_000L, 4, 1 << 20, 42,
            java.util.List.of(new Handshake.Checkpoint(39, 7), new Handshake.Checkpoint(40, -3)));
        final int length = hello.encode(buffer, 0);
        assertTrue(length <= hello.maxEncodedLength());
        final Handshake.Hello decoded = Handshake.Hello.decode(buffer, 0, length);
        assertEquals(hello, decoded);
        assertTrue(decoded.names(40, -3));
        assertFalse(decoded.names(40, 7), "the epoch alone is not enough: the fingerprint must match");

        // a history naming an epoch at or after the first epoch cannot be a checkpoint the standby holds
        final int bad = new Handshake.Hello(FrameCodec.MIN_VERSION, FrameCodec.MAX_VERSION, "vm-1", 4096, 1000,
            java.util.List.of(), 20_000_000L, 4, 1 << 20, 42, java.util.List.of(new Handshake.Checkpoint(42, 1)))
            .encode(buffer, 0);
        final ProtocolException late = assertThrows(ProtocolException.class,
            () -> Handshake.Hello.decode(buffer, 0, bad));
        assertTrue(late.getMessage().contains("names epoch 42"), late.getMessage());
        final ProtocolException cut = assertThrows(ProtocolException.class,
            () -> Handshake.Hello.decode(buffer, 0, bad - 8));
        assertTrue(cut.getMessage().contains("history of 1 checkpoints does not fit"), cut.getMessage());
        assertEquals(Handshake.chain(5, 6, 7), Handshake.chain(5, 6, 7));
        assertFalse(Handshake.chain(5, 6, 7) == Handshake.chain(5, 7, 7) ||
            Handshake.chain(5, 6, 7) == Handshake.chain(5, 6, 8) || Handshake.chain(5, 6, 7) == Handshake.chain(4, 6, 7),
            "the fingerprint depends on the history, the epoch and its frames");
    }

    @Test
    void welcomeRoundTripsAndEachBadFieldIsNamed()
    {
        final UnsafeBuffer buffer = new UnsafeBuffer(new byte[64]);
        final Handshake.Welcome resync = new Handshake.Welcome(FrameCodec.MAX_VERSION, 17, 3, 200_000_000L,
            0x1234_5678_9ABC_DEF0L, true);
        assertEquals(Handshake.WELCOME_LENGTH, resync.encode(buffer, 8));
        assertEquals(resync, Handshake.Welcome.decode(buffer, 8, Handshake.WELCOME_LENGTH));
        final Handshake.Welcome welcome = new Handshake.Welcome(FrameCodec.MAX_VERSION, 17, 3, 200_000_000L);
        assertEquals(Handshake.WELCOME_LENGTH, welcome.encode(buffer, 8));
        assertEquals(welcome, Handshake.Welcome.decode(buffer, 8, Handshake.WELCOME_LENGTH));

        final ProtocolException shortOne = assertThrows(ProtocolException.class,
            () -> Handshake.Welcome.decode(buffer, 8, Handshake.WELCOME_LENGTH - 8));
        assertTrue(shortOne.getMessage().contains("WELCOME of " + (Handshake.WELCOME_LENGTH - 8) + " bytes"),
            shortOne.getMessage());

        buffer.putInt(12, 2);
        final ProtocolException reserved = assertThrows(ProtocolException.class,
            () -> Handshake.Welcome.decode(buffer, 8, Handshake.WELCOME_LENGTH));
        assertEquals(ProtocolException.Fault.RESERVED_BITS, reserved.fault());
        buffer.putInt(12, 0);

        buffer.putLong(8 + 24, 0);
        final ProtocolException timeout = assertThrows(ProtocolException.class,
            () -> Handshake.Welcome.decode(buffer, 8, Handshake.WELCOME_LENGTH));
        assertTrue(timeout.getMessage().contains("failure timeout 0 ns"), timeout.getMessage());

        new Handshake.Welcome(FrameCodec.MAX_VERSION + 1, 0, 0, 1).encode(buffer, 8);
        final ProtocolException version = assertThrows(ProtocolException.class,
            () -> Handshake.Welcome.decode(buffer, 8, Handshake.WELCOME_LENGTH));
        assertEquals(ProtocolException.Fault.BAD_VERSION, version.fault());
    }

    @Test
    void aReasonIsCutAtACharacterBoundaryToItsMaximum()
    {
        final String ascii = "x".repeat(Handshake.MAX_REASON_BYTES);
        assertEquals(Handshake.MAX_REASON_PAYLOAD, Handshake.encodeReason(buffer, 0, ascii + "yz"));
        assertEquals(ascii, Handshake.decodeReason(buffer, 0, Handshake.MAX_REASON_PAYLOAD));
        // 1 + 3 * 341 = 1024 bytes fit exactly; one more 3-byte character must go whole, not in part
        final String exact = "a" + "\u20ac".repeat(341);
        assertEquals(Handshake.MAX_REASON_PAYLOAD, Handshake.encodeReason(buffer, 0, exact + "\u20ac"));
        assertEquals(exact, Handshake.decodeReason(buffer, 0, Handshake.MAX_REASON_PAYLOAD));
        // a 4-byte character (a surrogate pair) straddling the limit goes whole
        final String pairs = "ab" + "\ud83d\udc15".repeat(300);
        final int length = Handshake.encodeReason(buffer, 0, pairs);
        assertEquals(4 + 2 + 4 * 255, length);
        assertEquals("ab" + "\ud83d\udc15".repeat(255), Handshake.decodeReason(buffer, 0, length));
        final int shortLength = Handshake.encodeReason(buffer, 0, "disk full \u00e9");
        assertEquals("disk full \u00e9", Handshake.decodeReason(buffer, 0, shortLength));
    }

    @Test
    void aFailureReportCarriesTheLastKnownGoodTimeFromVersion5AndIsCheckedOnDecode()
    {
        final long at = 1_796_000_000_000L;
        final String longest = "x".repeat(Handshake.MAX_REASON_BYTES + 10);
        assertEquals(Handshake.MAX_FAILURE_REPORT_PAYLOAD, Handshake.encodeFailureReport(buffer, 0, 5, longest, at));
        assertEquals(new Handshake.FailureReport("x".repeat(Handshake.MAX_REASON_BYTES), at),
            Handshake.decodeFailureReport(buffer, 0, Handshake.MAX_FAILURE_REPORT_PAYLOAD, 5));
        final int latest = Handshake.encodeFailureReport(buffer, 0, 5, "hung", Handshake.RESTORE_LATEST);
        assertEquals(new Handshake.FailureReport("hung", Handshake.RESTORE_LATEST),
            Handshake.decodeFailureReport(buffer, 0, latest, 5));
        // a version 4 session carries the reason only: the standby resumes its latest recovery point
        final int v4 = Handshake.encodeFailureReport(buffer, 0, 4, "hung", at);
        assertEquals(8, v4);
        assertEquals(new Handshake.FailureReport("hung", Handshake.RESTORE_LATEST),
            Handshake.decodeFailureReport(buffer, 0, v4, 4));
        // a version 4 payload in a version 5 session, a time before 1970, a reason length that overruns the time
        assertEquals(ProtocolException.Fault.MALFORMED, assertThrows(ProtocolException.class,
            () -> Handshake.decodeFailureReport(buffer, 0, v4, 5)).fault());
        Handshake.encodeFailureReport(buffer, 0, 5, "hung", -5);
        assertTrue(assertThrows(ProtocolException.class, () -> Handshake.decodeFailureReport(buffer, 0, latest, 5))
            .getMessage().contains("before 1970"));
        Handshake.encodeFailureReport(buffer, 0, 5, "hung", at);
        buffer.putInt(0, 12);
        assertEquals(ProtocolException.Fault.MALFORMED, assertThrows(ProtocolException.class,
            () -> Handshake.decodeFailureReport(buffer, 0, latest, 5)).fault());
    }
}
