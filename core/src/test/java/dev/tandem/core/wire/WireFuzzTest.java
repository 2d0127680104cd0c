package dev.tandem.core.wire;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.tandem.core.codec.PageCodec;
import dev.tandem.vmm.sim.SimulatedGuestMemory;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.zip.CRC32C;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Coverage-guided fuzz tests (Jazzer) of everything that reads bytes from the other side: the frame decoder, the
 * handshake and the page decoder. The property is the same for each: any input either decodes to something
 * well-formed or is refused with a {@link ProtocolException} naming the fault; no other exception, no read outside
 * the input, no page of the wrong size.
 * <p>
 * {@code mvn verify} runs them in regression mode over the committed corpus in
 * {@code src/test/resources/dev/tandem/core/wire/WireFuzzTestInputs/<method>/}; {@code JAZZER_FUZZ=1} with one
 * method selected fuzzes it for its {@code maxDuration} (CI does a short pass of each).
 */
class WireFuzzTest
{
    private static final int PAGE = 4096;
    private static final int PAGES = 64;
    private static SimulatedGuestMemory replica;
    private static PageCodec codec;

    @BeforeAll
    static void allocate()
    {
        replica = new SimulatedGuestMemory((long)PAGES * PAGE, PAGE);
        for (int i = 0; i < PAGES * PAGE; i += 8)
        {
            replica.putLong(i, i * 0x9E3779B97F4A7C15L);
        }
        codec = new PageCodec(PAGE, 0);
    }

    @AfterAll
    static void free()
    {
        codec.close();
        replica.close();
    }

    private static UnsafeBuffer direct(final byte[] data, final int extra)
    {
        final UnsafeBuffer buffer = new UnsafeBuffer(ByteBuffer.allocateDirect(data.length + extra));
        buffer.putBytes(0, data);
        return buffer;
    }

    /**
     * Raw bytes as they arrive: the decoder finds frames, asks for more, or names the fault.
     */
    @FuzzTest(maxDuration = "30s")
    void frameDecoder(final byte[] data)
    {
        decodeAll(data);
    }

    /**
     * The same with the CRC of the first frame made right, so the fuzzer gets past the checksum to everything after.
     */
    @FuzzTest(maxDuration = "30s")
    void frameDecoderWithValidCrc(final byte[] data)
    {
        if (data.length >= FrameCodec.HEADER_LENGTH)
        {
            final UnsafeBuffer buffer = new UnsafeBuffer(data);
            final int length = buffer.getInt(FrameCodec.LENGTH_OFFSET);
            if (length >= 0 && length <= data.length - FrameCodec.HEADER_LENGTH)
            {
                buffer.putInt(FrameCodec.CRC_OFFSET, 0);
                final CRC32C crc = new CRC32C();
                crc.update(data, 0, FrameCodec.HEADER_LENGTH + length);
                buffer.putInt(FrameCodec.CRC_OFFSET, (int)crc.getValue());
            }
        }
        decodeAll(data);
    }

    private static void decodeAll(final byte[] data)
    {
        final UnsafeBuffer buffer = direct(data, 0);
        final ByteBuffer view = buffer.byteBuffer().duplicate();
        final FrameDecoder decoder = new FrameDecoder(1 << 16);
        int index = 0;
        try
        {
            int frame;
            while ((frame = decoder.decode(buffer, view, index, data.length - index)) > 0)
            {
                assertTrue(frame >= FrameCodec.HEADER_LENGTH && index + frame <= data.length, "frame inside input");
                assertEquals(frame, FrameCodec.HEADER_LENGTH + decoder.length());
                assertTrue(decoder.type() != null);
                index += frame;
            }
        }
        catch (final ProtocolException expected)
        {
            assertTrue(expected.getMessage() != null && !expected.getMessage().isEmpty());
        }
    }

    /**
     * A HELLO payload: decoded to a Hello that round-trips, or refused; accepting it against this standby's
     * geometry gives a version in range or a named refusal.
     */
    @FuzzTest(maxDuration = "30s")
    void handshake(final byte[] data)
    {
        final UnsafeBuffer buffer = direct(data, 0);
        final Handshake.Hello expected = new Handshake.Hello(FrameCodec.MIN_VERSION, FrameCodec.MAX_VERSION, "vm",
            PAGE, PAGES, List.of(new Handshake.Disk(0, 512, 1 << 20)), 20_000_000L, 0,
            FrameCodec.MAX_PAYLOAD_DEFAULT);
        try
        {
            final Handshake.Hello hello = Handshake.Hello.decode(buffer, 0, data.length);
            final UnsafeBuffer again = new UnsafeBuffer(new byte[Math.max(64, data.length * 2 + 1024)]);
            final int length = hello.encode(again, 0);
            assertEquals(hello, Handshake.Hello.decode(again, 0, length), "a decoded HELLO encodes to itself");
            final int version = hello.accept(expected);
            assertTrue(version >= FrameCodec.MIN_VERSION && version <= FrameCodec.MAX_VERSION);
        }
        catch (final ProtocolException refused)
        {
            assertTrue(refused.getMessage() != null && !refused.getMessage().isEmpty());
        }
    }

    /**
     * Encoded page entries as a PAGES_ENCODED frame carries them: each decodes to exactly one page, or the frame is
     * refused; nothing is read or written past the entry or the page.
     */
    @FuzzTest(maxDuration = "30s")
    void pageDecoder(final byte[] data)
    {
        final UnsafeBuffer src = direct(data, 0);
        final ByteBuffer srcView = src.byteBuffer().duplicate();
        final UnsafeBuffer dst = new UnsafeBuffer(ByteBuffer.allocateDirect(PAGE + 64));
        final ByteBuffer dstView = dst.byteBuffer().duplicate();
        dst.putLong(PAGE, 0x5EA1_5EA1_5EA1_5EA1L);
        int index = 0;
        long page = 0;
        try
        {
            while (index < data.length)
            {
                final int used = codec.decode(page % PAGES, src, srcView, index, data.length - index, dst, dstView, 0,
                    replica);
                assertTrue(used >= PageCodec.ENTRY_HEADER && index + used <= data.length, "entry inside input");
                assertEquals(0x5EA1_5EA1_5EA1_5EA1L, dst.getLong(PAGE), "nothing written past the page");
                index += used;
                page++;
            }
        }
        catch (final ProtocolException refused)
        {
            assertTrue(refused.getMessage().contains("page " + page % PAGES + ":"), refused.getMessage());
        }
    }
}
