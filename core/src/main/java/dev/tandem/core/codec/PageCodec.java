package dev.tandem.core.codec;

import dev.tandem.core.wire.ProtocolException;
import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.NativeMemory;
import net.jpountz.lz4.LZ4Compressor;
import net.jpountz.lz4.LZ4Exception;
import net.jpountz.lz4.LZ4Factory;
import net.jpountz.lz4.LZ4SafeDecompressor;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

import java.nio.ByteBuffer;

/**
 * Encodes each page as the smallest of: a zero page (no payload), the raw bytes, LZ4 of the page, or LZ4 of the XOR
 * against the last version of the page sent (when that version is still in the bounded cache). A page never takes
 * more than its raw size plus the 4-byte header. Zero detection and XOR run 8 bytes at a time.
 * <pre>
 *  page entry: kind:u8 length:u24 (bytes that follow)   kind 0 ZERO (length 0), 1 RAW, 2 LZ4, 3 XOR_LZ4
 * </pre>
 * The decoder (the standby) uses LZ4's safe decompressor and takes the XOR base from its replica, which holds the
 * last version sent once the previous epoch is committed. One instance per thread; nothing is allocated per page.
 * <p>
 * Attempts that cannot win are skipped (the encoder's choice only: every entry is one of the four kinds above, and
 * the decoder is the same whether attempts were skipped or not):
 * <ul>
 *   <li>a delta of a quarter page or less: LZ4 of the whole page is not tried (it would rarely beat it by much);</li>
 *   <li>a delta that is all zero (the page was rewritten with what was sent last): a repeat, sent as the LZ4 of a
 *       zero page computed once, byte for byte what compressing the delta would give;</li>
 *   <li>a delta whose LZ4 saved less than a sixteenth of the page ("poor"): LZ4 of the whole page is not tried
 *       now, unless it paid for this page last time or is due for a retry; it is tried at the page's next encode,
 *       so a page that compresses though its delta does not costs one encode;</li>
 *   <li>an attempt (LZ4 of the delta, or of the whole page) that was poor {@value #POOR_IN_A_ROW} times in a row
 *       for a page is skipped for the page's next few encodes, then retried; a poor retry skips the next few again
 *       at once, one that pays ends the skipping. The delta itself is still made (it is the same pass that
 *       updates the cache), and a delta with zero runs (an eighth of its words or more) is compressed even while
 *       skipping: a page that settles after being rewritten is found at once.</li>
 * </ul>
 * "The next few" is {@value #SKIP_MIN} to {@value #SKIP_MIN} + {@value #SKIP_JITTER} - 1 encodes of the page (varied
 * by page index, so that the retries of a whole rewritten region do not all land in one checkpoint), so a page that
 * became compressible is found again within that many checkpoints. The history is a small table indexed by
 * page number ({@value #HISTORY_PAGES} entries): pages that share an entry share a guess, which costs ratio or
 * time, never correctness.
 */
public final class PageCodec implements AutoCloseable
{
    /** Page of zeros. */
    public static final int ZERO = 0;
    /** Raw bytes. */
    public static final int RAW = 1;
    /** LZ4 of the page. */
    public static final int LZ4 = 2;
    /** LZ4 of the XOR with the last version sent. */
    public static final int XOR_LZ4 = 3;
    /** Bytes before each page's data. */
    public static final int ENTRY_HEADER = 4;
    /** Fewest encodes of a page for which an attempt that did not pay is skipped. */
    public static final int SKIP_MIN = 8;
    /** Spread of the skip over pages (a power of two): a page skips {@code SKIP_MIN + (page & (SKIP_JITTER - 1))}. */
    public static final int SKIP_JITTER = 8;
    /** Entries of the per-page history of attempts (a power of two). */
    public static final int HISTORY_PAGES = 1 << 16;

    /** Poor attempts in a row after which the attempt is skipped for the page. */
    public static final int POOR_IN_A_ROW = 3;

    // History of one attempt for one page: 0 no opinion; 1 .. POOR_IN_A_ROW - 1 poor attempts in a row; PAID it paid
    // last time; RETRY its skip ran out (try it whatever else says); negative: -n, n more encodes skip it.
    private static final byte PAID = 64;
    private static final byte RETRY = 65;

    private static final LZ4Factory FACTORY = LZ4Factory.fastestInstance();

    private final int pageSize;
    private final LZ4Compressor compressor = FACTORY.fastCompressor();
    private final LZ4SafeDecompressor decompressor = FACTORY.safeDecompressor();
    private final SentPageCache cache;
    private boolean deltas = true;
    private final NativeMemory.Region scratchRegion;
    private final UnsafeBuffer xorScratch;
    private final ByteBuffer xorView;
    private final UnsafeBuffer candidate;
    private final ByteBuffer candidateView;
    private final UnsafeBuffer baseScratch;
    private final long[] kindCounts = new long[4];
    private long rawBytes;
    private long encodedBytes;

    private final boolean skipAttempts;
    private final int poorLength;
    private final byte[] xorHistory;
    private final byte[] lz4History;
    private final byte[] zeroDelta;
    private long xorSkips;
    private long lz4Skips;
    private long retries;
    private long repeats;

    /**
     * A codec that skips attempts that cannot win (see the class comment).
     *
     * @param pageSize   page size.
     * @param cacheBytes room for last-sent pages (the XOR bases); 0 disables XOR deltas.
     */
    public PageCodec(final int pageSize, final long cacheBytes)
    {
        this(pageSize, cacheBytes, true);
    }

    /**
     * @param pageSize     page size.
     * @param cacheBytes   room for last-sent pages (the XOR bases); 0 disables XOR deltas.
     * @param skipAttempts skip attempts that cannot win; false tries every one for every page (the encoding before
     *                     the skips, kept to measure them against).
     */
    public PageCodec(final int pageSize, final long cacheBytes, final boolean skipAttempts)
    {
        this.pageSize = pageSize;
        this.cache = cacheBytes >= pageSize ? new SentPageCache(cacheBytes, pageSize) : null;
        final int candidateBytes = compressor.maxCompressedLength(pageSize);
        this.scratchRegion = NativeMemory.allocateDirect(2 * pageSize + candidateBytes, 64);
        final ByteBuffer scratch = scratchRegion.byteBuffer();
        this.xorScratch = new UnsafeBuffer(scratch, 0, pageSize);
        this.xorView = scratch.duplicate();
        this.baseScratch = new UnsafeBuffer(scratch, pageSize, pageSize);
        this.candidate = new UnsafeBuffer(scratch, 2 * pageSize, candidateBytes);
        this.candidateView = scratch.duplicate();
        this.skipAttempts = skipAttempts;
        this.poorLength = pageSize - pageSize / 16;
        this.xorHistory = skipAttempts && cache != null ? new byte[HISTORY_PAGES] : null;
        this.lz4History = skipAttempts ? new byte[HISTORY_PAGES] : null;
        // the LZ4 of a zero delta, once: what compressing a repeat's delta gives, without compressing it
        xorScratch.setMemory(0, pageSize, (byte)0);
        final int zeroLength = compressor.compress(xorView, 0, pageSize, candidateView, 2 * pageSize, candidateBytes);
        this.zeroDelta = new byte[zeroLength];
        candidate.getBytes(0, zeroDelta);
    }

    /**
     * @return the most bytes one encoded page can take.
     */
    public int maxEntryBytes()
    {
        return ENTRY_HEADER + pageSize;
    }

    /**
     * Turns XOR deltas off or on for the pages encoded next; the cache still records every page sent. Off while a
     * page may be sent twice in one epoch (the live baseline's rounds): the standby decodes a delta against its last
     * committed version, not against a version sent earlier in the same epoch.
     *
     * @param allowed false to encode without deltas.
     */
    public void deltas(final boolean allowed)
    {
        this.deltas = allowed;
    }

    /**
     * Encodes one page.
     *
     * @param page     the page's index, the key of its XOR base.
     * @param src      buffer holding the page.
     * @param srcView  a {@link ByteBuffer} over the same memory as {@code src}.
     * @param srcIndex offset of the page in both.
     * @param out      destination.
     * @param outIndex where the entry goes; {@link #maxEntryBytes()} must fit.
     * @return bytes written.
     */
    public int encode(final long page, final UnsafeBuffer src, final ByteBuffer srcView, final int srcIndex,
        final MutableDirectBuffer out, final int outIndex)
    {
        final int pageSize = this.pageSize;
        rawBytes += pageSize;
        int kind;
        int length;
        if (isZero(src, srcIndex))
        {
            kind = ZERO;
            length = 0;
            if (cache != null)
            {
                cache.put(page, src, srcIndex);
            }
        }
        else
        {
            kind = RAW;
            length = pageSize;
            final int entry = (int)page & (HISTORY_PAGES - 1);
            final byte lz4Before = skipAttempts ? lz4History[entry] : 0;
            if (lz4Before < 0)
            {
                // a skip lasts the page's next few encodes, whichever attempts they reach
                lz4History[entry] = skipped(lz4Before);
            }
            final UnsafeBuffer base = cache == null || !deltas ? null : cache.get(page);
            int xorLength = Integer.MAX_VALUE;
            boolean poorDelta = false;
            if (base == null)
            {
                if (cache != null)
                {
                    cache.put(page, src, srcIndex);
                }
            }
            else
            {
                // one pass: the delta out, the page into its cache slot (the last version sent, from now on), and
                // what the delta looks like
                int zeroWords = 0;
                for (int i = 0; i < pageSize; i += 8)
                {
                    final long word = src.getLong(srcIndex + i);
                    final long delta = word ^ base.getLong(i);
                    xorScratch.putLong(i, delta);
                    base.putLong(i, word);
                    zeroWords += delta == 0 ? 1 : 0;
                }
                final byte xorBefore = skipAttempts ? xorHistory[entry] : 0;
                if (skipAttempts && zeroWords == pageSize / 8)
                {
                    // a repeat: nothing is smaller than the LZ4 of a zero delta, and that is known already
                    repeats++;
                    kind = XOR_LZ4;
                    xorLength = zeroDelta.length;
                    length = xorLength;
                    out.putBytes(outIndex + ENTRY_HEADER, zeroDelta);
                    xorHistory[entry] = tried(xorBefore, false, page);
                }
                else if (xorBefore < 0 && zeroWords < pageSize / 64)
                {
                    // the page's deltas were poor and this one has no zero runs to use either (fewer than one
                    // eighth of its words): not worth compressing
                    xorSkips++;
                    xorHistory[entry] = skipped(xorBefore);
                    poorDelta = true;
                }
                else
                {
                    xorLength = compressor.compress(xorView, 0, pageSize, candidateView, 2 * pageSize,
                        candidate.capacity());
                    if (xorLength < length)
                    {
                        kind = XOR_LZ4;
                        length = xorLength;
                        out.putBytes(outIndex + ENTRY_HEADER, candidate, 0, length);
                    }
                    if (skipAttempts)
                    {
                        poorDelta = xorLength > poorLength;
                        // a skipped page whose delta turned sparse is retried at once
                        xorHistory[entry] = tried(xorBefore < 0 ? RETRY : xorBefore, poorDelta, page);
                    }
                }
            }
            // a delta of a quarter page or less is good enough: LZ4 of the whole page would rarely beat it by much and
            // costs a second pass over the page
            if (xorLength > pageSize / 4)
            {
                if (lz4Before < 0)
                {
                    lz4Skips++;
                }
                else if (poorDelta && lz4Before != PAID && lz4Before != RETRY)
                {
                    // the page changed so much that its delta would not compress: most likely the page would not
                    // either. Its next encode tries it, so a page that does compress costs one encode.
                    lz4Skips++;
                    lz4History[entry] = RETRY;
                }
                else
                {
                    final int lz4Length = compressor.compress(srcView, srcIndex, pageSize, candidateView, 2 * pageSize,
                        candidate.capacity());
                    if (lz4Length < length)
                    {
                        kind = LZ4;
                        length = lz4Length;
                        out.putBytes(outIndex + ENTRY_HEADER, candidate, 0, length);
                    }
                    if (skipAttempts)
                    {
                        lz4History[entry] = tried(lz4Before, lz4Length > poorLength, page);
                    }
                }
            }
            if (kind == RAW)
            {
                out.putBytes(outIndex + ENTRY_HEADER, src, srcIndex, pageSize);
            }
        }
        out.putInt(outIndex, kind | (length << 8));
        kindCounts[kind]++;
        encodedBytes += ENTRY_HEADER + length;
        return ENTRY_HEADER + length;
    }

    /**
     * @return the history after one more skip: the skips left, or {@link #RETRY} after the last.
     */
    private static byte skipped(final byte history)
    {
        return history == -1 ? RETRY : (byte)(history + 1);
    }

    /**
     * @return the history after an attempt: {@link #PAID}, one more poor attempt in a row, or, at
     *         {@link #POOR_IN_A_ROW} of them or a poor retry, the skips of the next few encodes.
     */
    private byte tried(final byte history, final boolean poor, final long page)
    {
        if (history == RETRY)
        {
            retries++;
        }
        if (!poor)
        {
            return PAID;
        }
        final int inARow = history == PAID ? 1 : history + 1;
        return history == RETRY || inARow >= POOR_IN_A_ROW ? (byte)-skipFor(page) : (byte)inARow;
    }

    private static byte skipFor(final long page)
    {
        return (byte)(SKIP_MIN + ((int)page & (SKIP_JITTER - 1)));
    }

    /**
     * Decodes one entry into a page.
     *
     * @param page      the page's index (for the XOR base and errors).
     * @param src       buffer holding the entry.
     * @param srcView   a {@link ByteBuffer} over the same memory as {@code src}.
     * @param srcIndex  offset of the entry.
     * @param available bytes of the entry's frame left from {@code srcIndex}.
     * @param dst       where the page goes.
     * @param dstView   a {@link ByteBuffer} over the same memory as {@code dst}.
     * @param dstIndex  offset of the page.
     * @param base      the replica holding the last committed version of the page.
     * @return bytes of the entry consumed.
     * @throws ProtocolException if the entry is malformed or does not decode to exactly one page.
     */
    public int decode(final long page, final DirectBuffer src, final ByteBuffer srcView, final int srcIndex,
        final int available, final MutableDirectBuffer dst, final ByteBuffer dstView, final int dstIndex,
        final GuestMemory base)
    {
        if (available < ENTRY_HEADER)
        {
            throw new ProtocolException(ProtocolException.Fault.MALFORMED, "page " + page + ": entry header cut off");
        }
        final int header = src.getInt(srcIndex);
        final int kind = header & 0xFF;
        final int length = header >>> 8;
        if (length > available - ENTRY_HEADER || length > pageSize)
        {
            throw new ProtocolException(ProtocolException.Fault.MALFORMED, "page " + page + ": entry of " + length +
                " bytes does not fit the frame or exceeds the page");
        }
        final int data = srcIndex + ENTRY_HEADER;
        switch (kind)
        {
            case ZERO:
                requireLength(page, kind, length, 0);
                dst.setMemory(dstIndex, pageSize, (byte)0);
                break;
            case RAW:
                requireLength(page, kind, length, pageSize);
                dst.putBytes(dstIndex, src, data, pageSize);
                break;
            case LZ4:
                decompress(page, srcView, data, length, dstView, dstIndex);
                break;
            case XOR_LZ4:
                decompress(page, srcView, data, length, dstView, dstIndex);
                base.copyOut(page, 1, baseScratch, 0);
                for (int i = 0; i < pageSize; i += 8)
                {
                    dst.putLong(dstIndex + i, dst.getLong(dstIndex + i) ^ baseScratch.getLong(i));
                }
                break;
            default:
                throw new ProtocolException(ProtocolException.Fault.MALFORMED, "page " + page + ": unknown encoding " +
                    kind);
        }
        return ENTRY_HEADER + length;
    }

    private void decompress(final long page, final ByteBuffer srcView, final int data, final int length,
        final ByteBuffer dstView, final int dstIndex)
    {
        final int decoded;
        try
        {
            decoded = decompressor.decompress(srcView, data, length, dstView, dstIndex, pageSize);
        }
        catch (final LZ4Exception ex)
        {
            throw new ProtocolException(ProtocolException.Fault.MALFORMED, "page " + page + ": corrupt LZ4 data (" +
                ex.getMessage() + ")");
        }
        if (decoded != pageSize)
        {
            throw new ProtocolException(ProtocolException.Fault.MALFORMED, "page " + page + ": LZ4 data decodes to " +
                decoded + " bytes, not a page of " + pageSize);
        }
    }

    private void requireLength(final long page, final int kind, final int length, final int expected)
    {
        if (length != expected)
        {
            throw new ProtocolException(ProtocolException.Fault.MALFORMED, "page " + page + ": encoding " + kind +
                " with " + length + " bytes, expected " + expected);
        }
    }

    private boolean isZero(final UnsafeBuffer src, final int index)
    {
        for (int i = 0; i < pageSize; i += 8)
        {
            if (src.getLong(index + i) != 0)
            {
                return false;
            }
        }
        return true;
    }

    /**
     * @param kind {@link #ZERO}, {@link #RAW}, {@link #LZ4} or {@link #XOR_LZ4}.
     * @return pages encoded that way.
     */
    public long pages(final int kind)
    {
        return kindCounts[kind];
    }

    /**
     * @param kind {@link #LZ4} (whole-page LZ4) or {@link #XOR_LZ4} (the delta and its LZ4).
     * @return attempts of that kind skipped because they could not win (not counting whole-page LZ4 after a delta of
     *         a quarter page or less).
     */
    public long skippedAttempts(final int kind)
    {
        return kind == LZ4 ? lz4Skips : kind == XOR_LZ4 ? xorSkips : 0;
    }

    /**
     * @return attempts tried again after their skips ran out.
     */
    public long retries()
    {
        return retries;
    }

    /**
     * @return pages sent with an all-zero delta (rewritten as they were sent last), without compressing it.
     */
    public long repeats()
    {
        return repeats;
    }

    /**
     * @return bytes of the pages encoded, before encoding.
     */
    public long rawBytes()
    {
        return rawBytes;
    }

    /**
     * @return bytes of the encoded entries.
     */
    public long encodedBytes()
    {
        return encodedBytes;
    }

    @Override
    public void close()
    {
        if (cache != null)
        {
            cache.close();
        }
        scratchRegion.close();
    }
}
