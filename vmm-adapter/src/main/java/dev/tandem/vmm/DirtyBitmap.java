package dev.tandem.vmm;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * One bit per guest page, in {@code long} words laid out like KVM's dirty bitmap (bit {@code i % 64} of word
 * {@code i / 64} is page {@code i}), so a KVM adapter can OR the kernel's words in with {@link #orWord}.
 * <p>
 * Plain methods are for a single owner thread. The {@code *Concurrent} methods are for software trackers where many
 * writer threads mark pages while one harvester takes them. Nothing here allocates after construction.
 */
public final class DirtyBitmap
{
    private static final VarHandle WORDS = MethodHandles.arrayElementVarHandle(long[].class);

    private final long bitCount;
    private final long[] words;

    /**
     * Visits runs of contiguous set bits.
     */
    @FunctionalInterface
    public interface RunConsumer
    {
        /**
         * @param firstPage first page of the run.
         * @param pageCount length of the run, at least 1.
         */
        void accept(long firstPage, long pageCount);
    }

    /**
     * @param bitCount number of pages tracked; at most {@code 2^37} (512 TiB of 4 KiB pages).
     */
    public DirtyBitmap(final long bitCount)
    {
        if (bitCount < 0 || bitCount > (1L << 37))
        {
            throw new IllegalArgumentException("bitCount out of range [0, 2^37]: " + bitCount);
        }
        this.bitCount = bitCount;
        this.words = new long[(int)((bitCount + 63) >>> 6)];
    }

    /**
     * @return number of bits (pages) tracked.
     */
    public long bitCount()
    {
        return bitCount;
    }

    /**
     * @return number of 64-bit words.
     */
    public int wordCount()
    {
        return words.length;
    }

    /**
     * @param wordIndex index of a word.
     * @return the word.
     */
    public long word(final int wordIndex)
    {
        return words[wordIndex];
    }

    /**
     * ORs bits into one word, e.g. a word of {@code KVM_GET_DIRTY_LOG}'s bitmap.
     *
     * @param wordIndex index of the word.
     * @param bits      bits to set.
     */
    public void orWord(final int wordIndex, final long bits)
    {
        words[wordIndex] |= bits & validMask(wordIndex);
    }

    /**
     * @param bit page index.
     */
    public void set(final long bit)
    {
        checkBit(bit);
        words[(int)(bit >>> 6)] |= 1L << bit;
    }

    /**
     * Sets a bit with an atomic OR, safe against concurrent setters and {@link #getAndClearWordConcurrent}.
     *
     * @param bit page index.
     */
    public void setConcurrent(final long bit)
    {
        checkBit(bit);
        final int index = (int)(bit >>> 6);
        final long mask = 1L << bit;
        // a plain volatile read first: hot pages are usually already marked and the CAS-like OR is skipped
        if (((long)WORDS.getOpaque(words, index) & mask) == 0)
        {
            WORDS.getAndBitwiseOr(words, index, mask);
        }
    }

    /**
     * Atomically takes one word and leaves it zero: the get-and-clear of a software dirty log.
     *
     * @param wordIndex index of the word.
     * @return the bits that were set.
     */
    public long getAndClearWordConcurrent(final int wordIndex)
    {
        if ((long)WORDS.getOpaque(words, wordIndex) == 0)
        {
            return 0;
        }
        return (long)WORDS.getAndSet(words, wordIndex, 0L);
    }

    /**
     * Get-and-clear of the whole bitmap into another, safe against concurrent {@link #setConcurrent} callers.
     *
     * @param into bitmap of at least this size that receives the bits.
     */
    public void harvestConcurrentInto(final DirtyBitmap into)
    {
        checkSameSize(into);
        final long[] src = words;
        final long[] dst = into.words;
        for (int i = 0; i < src.length; i++)
        {
            final long bits = getAndClearWordConcurrent(i);
            if (bits != 0)
            {
                dst[i] |= bits;
            }
        }
    }

    /**
     * @param bit page index.
     * @return true if set.
     */
    public boolean isSet(final long bit)
    {
        checkBit(bit);
        return (words[(int)(bit >>> 6)] & (1L << bit)) != 0;
    }

    /**
     * @param bit page index.
     */
    public void clear(final long bit)
    {
        checkBit(bit);
        words[(int)(bit >>> 6)] &= ~(1L << bit);
    }

    /**
     * Clears every bit.
     */
    public void clearAll()
    {
        java.util.Arrays.fill(words, 0L);
    }

    /**
     * Sets every bit.
     */
    public void setAll()
    {
        for (int i = 0; i < words.length; i++)
        {
            words[i] = validMask(i);
        }
    }

    /**
     * ORs another bitmap of the same size into this one.
     *
     * @param other bits to add.
     */
    public void or(final DirtyBitmap other)
    {
        checkSameSize(other);
        final long[] src = other.words;
        final long[] dst = words;
        for (int i = 0; i < dst.length; i++)
        {
            dst[i] |= src[i];
        }
    }

    /**
     * @return number of set bits.
     */
    public long cardinality()
    {
        long count = 0;
        for (final long word : words)
        {
            count += Long.bitCount(word);
        }
        return count;
    }

    /**
     * @param from first page to look at.
     * @return the first set bit at or after {@code from}, or -1 if none.
     */
    public long nextSetBit(final long from)
    {
        if (from >= bitCount)
        {
            return -1;
        }
        int index = (int)(from >>> 6);
        long word = words[index] & (-1L << from);
        while (true)
        {
            if (word != 0)
            {
                return ((long)index << 6) + Long.numberOfTrailingZeros(word);
            }
            if (++index == words.length)
            {
                return -1;
            }
            word = words[index];
        }
    }

    /**
     * @param from first page to look at.
     * @return the first clear bit at or after {@code from}, or {@link #bitCount()} if none.
     */
    public long nextClearBit(final long from)
    {
        if (from >= bitCount)
        {
            return bitCount;
        }
        int index = (int)(from >>> 6);
        long word = ~words[index] & (-1L << from);
        while (true)
        {
            if (word != 0)
            {
                return Math.min(bitCount, ((long)index << 6) + Long.numberOfTrailingZeros(word));
            }
            if (++index == words.length)
            {
                return bitCount;
            }
            word = ~words[index];
        }
    }

    /**
     * Visits the runs of contiguous set bits in ascending order.
     *
     * @param consumer receives each run.
     * @return number of runs visited.
     */
    public long forEachRun(final RunConsumer consumer)
    {
        long runs = 0;
        long start = nextSetBit(0);
        while (start >= 0)
        {
            final long end = nextClearBit(start);
            consumer.accept(start, end - start);
            runs++;
            start = nextSetBit(end);
        }
        return runs;
    }

    private long validMask(final int wordIndex)
    {
        final long remaining = bitCount - ((long)wordIndex << 6);
        return remaining >= 64 ? -1L : (1L << remaining) - 1;
    }

    private void checkBit(final long bit)
    {
        if (bit < 0 || bit >= bitCount)
        {
            throw new IndexOutOfBoundsException("page " + bit + " outside bitmap of " + bitCount + " pages");
        }
    }

    private void checkSameSize(final DirtyBitmap other)
    {
        if (other.bitCount != bitCount)
        {
            throw new IllegalArgumentException(
                "bitmap sizes differ: " + other.bitCount + " pages vs " + bitCount + " pages");
        }
    }
}
