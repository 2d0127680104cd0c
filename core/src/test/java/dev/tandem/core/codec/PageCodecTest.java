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
    /**
     * Pages rewritten with random bytes at every checkpoint: after the first tries, their delta and whole-page LZ4
     * attempts are skipped, then tried again now and then; when the pages turn into text, the retries find it and
     * they compress again. Every page decodes exactly throughout.
     */
    @Test
    void attemptsOnIncompressiblePagesAreSkippedAndRetried()
    {
        final SplittableRandom random = new SplittableRandom(5);
        final byte[] text = ("the guest's heap holds text again; ").repeat(200).getBytes(StandardCharsets.UTF_8);
        try (Link link = new Link(new PageCodec(PAGE, 128 * PAGE)))
        {
            final int checkpoints = 3 * (PageCodec.SKIP_MIN + PageCodec.SKIP_JITTER);
            for (int checkpoint = 0; checkpoint < checkpoints; checkpoint++)
            {
                for (int page = 0; page < PAGES; page++)
                {
                    link.fillRandom(page, random);
                    assertEquals(PageCodec.RAW, link.roundTrip(page), "random bytes do not compress");
                }
            }
            final PageCodec codec = link.active;
            final long attempts = (long)checkpoints * PAGES;
            // without the skips every page would cost both attempts every time
            assertTrue(codec.skippedAttempts(PageCodec.XOR_LZ4) > attempts * 3 / 4, counters(codec));
            assertTrue(codec.skippedAttempts(PageCodec.LZ4) > attempts * 3 / 4, counters(codec));
            assertTrue(codec.retries() >= 2L * PAGES, "each page retried at least twice: " + counters(codec));
            // now compressible: within one skip's length every page has been tried again and compresses
            int checkpoint = 0;
            int compressed = 0;
            for (; checkpoint <= PageCodec.SKIP_MIN + PageCodec.SKIP_JITTER; checkpoint++)
            {
                compressed = 0;
                for (int page = 0; page < PAGES; page++)
                {
                    link.source.putBytes(page * PAGE, text, (page + checkpoint) % 35, PAGE);
                    compressed += link.roundTrip(page) == PageCodec.RAW ? 0 : 1;
                }
            }
            assertEquals(PAGES, compressed, "every page compresses again after its retry: " + counters(codec));
        }
    }

    /**
     * A page rewritten with what was sent last is a repeat: its entry is the LZ4 of a zero delta without
     * compressing one, byte for byte what a codec that tries every attempt writes, and it decodes exactly.
     */
    @Test
    void repeatedPageIsTheSameEntryWithoutCompressingItsDelta()
    {
        final SplittableRandom random = new SplittableRandom(9);
        try (Link skipping = new Link(new PageCodec(PAGE, 128 * PAGE));
            Link trying = new Link(new PageCodec(PAGE, 128 * PAGE, false)))
        {
            for (int checkpoint = 0; checkpoint < 3; checkpoint++)
            {
                skipping.fillRandom(0, random);
                trying.source.putBytes(0, skipping.source, 0, PAGE);
                for (int again = 0; again < 3; again++)
                {
                    final int kind = skipping.roundTrip(0);
                    assertEquals(again == 0 ? PageCodec.RAW : PageCodec.XOR_LZ4, kind);
                    assertEquals(kind, trying.roundTrip(0));
                    assertEquals(skipping.lastLength, trying.lastLength);
                    for (int i = 0; i < skipping.lastLength; i++)
                    {
                        assertEquals(trying.wire.getByte(i), skipping.wire.getByte(i), "entry byte " + i);
                    }
                }
            }
            assertEquals(6, skipping.active.repeats());
            assertEquals(0, trying.active.repeats());
        }
    }

    /**
     * The same mix of pages through a codec with the skips and one without: both decode exactly, the one without
     * never skips, and the skips cost (next to) no ratio on a mix whose pages change kind now and then.
     */
    @Test
    void skipsCostLittleRatioOnAMixedWorkload()
    {
        final SplittableRandom random = new SplittableRandom(11);
        final byte[] text = ("Tandem keeps a standby copy of the guest. ").repeat(200).getBytes(StandardCharsets.UTF_8);
        try (Link skipping = new Link(new PageCodec(PAGE, 128 * PAGE));
            Link trying = new Link(new PageCodec(PAGE, 128 * PAGE, false)))
        {
            for (int checkpoint = 0; checkpoint < 40; checkpoint++)
            {
                for (int page = 0; page < PAGES; page++)
                {
                    final int offset = page * PAGE;
                    switch ((page * 7 + checkpoint / 10) % 5)
                    {
                        case 0 -> skipping.fillRandom(page, random);
                        case 1 -> skipping.source.putLong(offset + 8 * random.nextInt(PAGE / 8), random.nextLong());
                        case 2 -> skipping.source.putBytes(offset, text, random.nextInt(40), PAGE);
                        case 3 -> skipping.source.setMemory(offset, PAGE, (byte)0);
                        default ->
                        {
                            // half rewritten: the delta is poor, the page half compressible
                            skipping.source.putBytes(offset, text, random.nextInt(40), PAGE / 2);
                            for (int i = PAGE / 2; i < PAGE; i += 8)
                            {
                                skipping.source.putLong(offset + i, random.nextLong());
                            }
                        }
                    }
                    trying.source.putBytes(offset, skipping.source, offset, PAGE);
                    skipping.roundTrip(page);
                    trying.roundTrip(page);
                }
            }
            assertEquals(0, trying.active.skippedAttempts(PageCodec.LZ4) + trying.active.skippedAttempts(
                PageCodec.XOR_LZ4) + trying.active.retries(), counters(trying.active));
            assertTrue(skipping.active.skippedAttempts(PageCodec.LZ4) + skipping.active.skippedAttempts(
                PageCodec.XOR_LZ4) > 0, counters(skipping.active));
            assertTrue(skipping.active.encodedBytes() <= trying.active.encodedBytes() * 101 / 100,
                skipping.active.encodedBytes() + " bytes with the skips, " + trying.active.encodedBytes() +
                " without; " + counters(skipping.active));
        }
    }

    private static String counters(final PageCodec codec)
    {
        return "skipped delta " + codec.skippedAttempts(PageCodec.XOR_LZ4) + ", skipped lz4 " +
            codec.skippedAttempts(PageCodec.LZ4) + ", retries " + codec.retries() + ", kinds " + codec.pages(0) + "/" +
            codec.pages(1) + "/" + codec.pages(2) + "/" + codec.pages(3);
    }

    /**
     * An active's codec, a standby's, and the replica between them: each page round-trips and is committed.
     */
    private static final class Link implements AutoCloseable
    {
        final PageCodec active;
        final PageCodec standby = new PageCodec(PAGE, 0);
        final NativeMemory.Region sourceRegion = NativeMemory.allocateDirect(PAGES * PAGE, PAGE);
        final NativeMemory.Region replicaRegion = NativeMemory.allocate(PAGES * PAGE, PAGE);
        final NativeMemory.Region wireRegion = NativeMemory.allocateDirect(PAGE + 64, 64);
        final NativeMemory.Region decodedRegion = NativeMemory.allocateDirect(PAGE, PAGE);
        final UnsafeBuffer source = new UnsafeBuffer(sourceRegion.byteBuffer());
        final ByteBuffer sourceView = sourceRegion.byteBuffer().duplicate();
        final NativeGuestMemory replica = new NativeGuestMemory(replicaRegion.address(), PAGE, PAGES);
        final UnsafeBuffer wire = new UnsafeBuffer(wireRegion.byteBuffer());
        final ByteBuffer wireView = wireRegion.byteBuffer().duplicate();
        final UnsafeBuffer decoded = new UnsafeBuffer(decodedRegion.byteBuffer());
        final ByteBuffer decodedView = decodedRegion.byteBuffer().duplicate();
        int lastLength;

        Link(final PageCodec active)
        {
            this.active = active;
        }

        void fillRandom(final int page, final SplittableRandom random)
        {
            for (int i = 0; i < PAGE; i += 8)
            {
                source.putLong(page * PAGE + i, random.nextLong());
            }
        }

        /**
         * @return the kind the page was sent as, after checking it decodes exactly.
         */
        int roundTrip(final int page)
        {
            final int offset = page * PAGE;
            lastLength = active.encode(page, source, sourceView, offset, wire, 0);
            assertTrue(lastLength <= PAGE + PageCodec.ENTRY_HEADER, "never larger than raw plus header");
            assertEquals(lastLength, standby.decode(page, wire, wireView, 0, lastLength, decoded, decodedView, 0,
                replica));
            for (int i = 0; i < PAGE; i += 8)
            {
                if (source.getLong(offset + i) != decoded.getLong(i))
                {
                    throw new AssertionError("page " + page + " differs at byte " + i + " after kind " +
                        (wire.getInt(0) & 0xFF));
                }
            }
            // the standby commits: the decoded page becomes the next base
            replica.copyIn(page, 1, decoded, 0);
            return wire.getInt(0) & 0xFF;
        }

        @Override
        public void close()
        {
            active.close();
            standby.close();
            decodedRegion.close();
            wireRegion.close();
            replicaRegion.close();
            sourceRegion.close();
        }
    }
}
