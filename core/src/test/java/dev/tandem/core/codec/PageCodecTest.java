package dev.tandem.core.codec;

import dev.tandem.core.system.LeakCheck;
import dev.tandem.core.wire.ProtocolException;
import dev.tandem.vmm.NativeGuestMemory;
import dev.tandem.vmm.NativeMemory;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Round trips over every kind of page, across checkpoints where pages change, with the replica as the XOR base;
 * the encoded size never exceeds raw plus the header; corrupt input is refused.
 */
@LeakCheck
class PageCodecTest
{
    private static final int PAGE = 4096;
    private static final int PAGES = 64;

    @Test
    void everyPageKindRoundTripsAcrossCheckpoints()
    {
        final SplittableRandom random = new SplittableRandom(3);
        try (NativeMemory.Region sourceRegion = NativeMemory.allocateDirect(PAGES * PAGE, PAGE);
            NativeMemory.Region replicaRegion = NativeMemory.allocate(PAGES * PAGE, PAGE);
            NativeMemory.Region wireRegion = NativeMemory.allocateDirect(PAGE + 64, 64);
            NativeMemory.Region decodedRegion = NativeMemory.allocateDirect(PAGE, PAGE);
            PageCodec active = new PageCodec(PAGE, 128 * PAGE);
            PageCodec standby = new PageCodec(PAGE, 0))
        {
            final UnsafeBuffer source = new UnsafeBuffer(sourceRegion.byteBuffer());
            final ByteBuffer sourceView = sourceRegion.byteBuffer().duplicate();
            final NativeGuestMemory replica = new NativeGuestMemory(replicaRegion.address(), PAGE, PAGES);
            final UnsafeBuffer wire = new UnsafeBuffer(wireRegion.byteBuffer());
            final ByteBuffer wireView = wireRegion.byteBuffer().duplicate();
            final UnsafeBuffer decoded = new UnsafeBuffer(decodedRegion.byteBuffer());
            final ByteBuffer decodedView = decodedRegion.byteBuffer().duplicate();
            final byte[] text = ("Tandem keeps a standby copy of the guest. ").repeat(200).getBytes(StandardCharsets.UTF_8);
            for (int checkpoint = 0; checkpoint < 20; checkpoint++)
            {
                for (int page = 0; page < PAGES; page++)
                {
                    final int offset = page * PAGE;
                    switch ((page + checkpoint) % 5)
                    {
                        case 0 -> source.setMemory(offset, PAGE, (byte)0);
                        case 1 ->
                        {
                            for (int i = 0; i < PAGE; i += 8)
                            {
                                source.putLong(offset + i, random.nextLong());
                            }
                        }
                        case 2 -> source.putLong(offset + 8 * random.nextInt(PAGE / 8), random.nextLong());
                        case 3 ->
                        {
                            for (int i = 0; i < PAGE / 2; i += 8)
                            {
                                source.putLong(offset + i, random.nextLong());
                            }
                        }
                        default -> source.putBytes(offset, text, checkpoint, PAGE);
                    }
                    final int length = active.encode(page, source, sourceView, offset, wire, 0);
                    assertTrue(length <= PAGE + PageCodec.ENTRY_HEADER, "never larger than raw plus header");
                    assertEquals(length, standby.decode(page, wire, wireView, 0, length, decoded, decodedView, 0,
                        replica));
                    for (int i = 0; i < PAGE; i += 8)
                    {
                        assertEquals(source.getLong(offset + i), decoded.getLong(i),
                            "page " + page + " checkpoint " + checkpoint + " byte " + i);
                    }
                    // the standby commits: the decoded page becomes the next base
                    replica.copyIn(page, 1, decoded, 0);
                }
            }
            final String kinds = active.pages(0) + "/" + active.pages(1) + "/" + active.pages(2) + "/" + active.pages(3);
            assertTrue(active.pages(PageCodec.ZERO) > 0 && active.pages(PageCodec.RAW) > 0 &&
                active.pages(PageCodec.LZ4) > 0 && active.pages(PageCodec.XOR_LZ4) > 0, "every kind was chosen: " + kinds);
            assertTrue(active.encodedBytes() < active.rawBytes() / 2, "the mix compresses: " +
                active.encodedBytes() + " of " + active.rawBytes());
        }
    }

    @Test
    void corruptEntriesAreRefused()
    {
        try (NativeMemory.Region pageRegion = NativeMemory.allocateDirect(PAGE, PAGE);
            NativeMemory.Region wireRegion = NativeMemory.allocateDirect(PAGE + 64, 64);
            NativeMemory.Region replicaRegion = NativeMemory.allocate(PAGE, PAGE);
            PageCodec codec = new PageCodec(PAGE, 0))
        {
            final UnsafeBuffer page = new UnsafeBuffer(pageRegion.byteBuffer());
            final UnsafeBuffer wire = new UnsafeBuffer(wireRegion.byteBuffer());
            final ByteBuffer wireView = wireRegion.byteBuffer().duplicate();
            final NativeGuestMemory replica = new NativeGuestMemory(replicaRegion.address(), PAGE, 1);
            page.putStringWithoutLengthAscii(0, "a page that compresses well ".repeat(100));
            final int length = codec.encode(0, page, pageRegion.byteBuffer().duplicate(), 0, wire, 0);
            assertEquals(PageCodec.LZ4, wire.getInt(0) & 0xFF);
            wire.putByte(PageCodec.ENTRY_HEADER + 1, (byte)0x7F);
            wire.putByte(PageCodec.ENTRY_HEADER + 2, (byte)0x7F);
            final ProtocolException corrupt = assertThrows(ProtocolException.class, () -> codec.decode(0, wire,
                wireView, 0, length, page, pageRegion.byteBuffer().duplicate(), 0, replica));
            assertTrue(corrupt.getMessage().contains("page 0"), corrupt.getMessage());
            wire.putInt(0, PageCodec.RAW | (100 << 8));
            assertThrows(ProtocolException.class, () -> codec.decode(0, wire, wireView, 0, PAGE + 4, page,
                pageRegion.byteBuffer().duplicate(), 0, replica));
            wire.putInt(0, 9);
            assertThrows(ProtocolException.class, () -> codec.decode(0, wire, wireView, 0, 4, page,
                pageRegion.byteBuffer().duplicate(), 0, replica));
        }
    }
}
