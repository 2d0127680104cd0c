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

    /**
     * @param pageSize   page size.
     * @param cacheBytes room for last-sent pages (the XOR bases); 0 disables XOR deltas.
     */
    public PageCodec(final int pageSize, final long cacheBytes)
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
        }
        else
        {
            kind = RAW;
            length = pageSize;
            final UnsafeBuffer base = cache == null || !deltas ? null : cache.get(page);
            int xorLength = Integer.MAX_VALUE;
            if (base != null)
            {
                for (int i = 0; i < pageSize; i += 8)
                {
                    xorScratch.putLong(i, src.getLong(srcIndex + i) ^ base.getLong(i));
                }
                xorLength = compressor.compress(xorView, 0, pageSize, candidateView, 2 * pageSize,
                    candidate.capacity());
                if (xorLength < length)
                {
                    kind = XOR_LZ4;
                    length = xorLength;
                    out.putBytes(outIndex + ENTRY_HEADER, candidate, 0, length);
                }
            }
            // a delta of a quarter page or less is good enough: LZ4 of the whole page would rarely beat it by much and
            // costs a second pass over the page
            if (xorLength > pageSize / 4)
            {
                final int lz4Length = compressor.compress(srcView, srcIndex, pageSize, candidateView, 2 * pageSize,
                    candidate.capacity());
                if (lz4Length < length)
                {
                    kind = LZ4;
                    length = lz4Length;
                    out.putBytes(outIndex + ENTRY_HEADER, candidate, 0, length);
                }
            }
            if (kind == RAW)
            {
                out.putBytes(outIndex + ENTRY_HEADER, src, srcIndex, pageSize);
            }
        }
        if (cache != null)
        {
            cache.put(page, src, srcIndex);
        }
        out.putInt(outIndex, kind | (length << 8));
        kindCounts[kind]++;
        encodedBytes += ENTRY_HEADER + length;
        return ENTRY_HEADER + length;
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
