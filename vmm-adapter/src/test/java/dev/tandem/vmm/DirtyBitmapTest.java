package dev.tandem.vmm;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DirtyBitmapTest
{
    @Test
    void runsMatchAReferenceBitSetAtEveryDensity()
    {
        final SplittableRandom random = new SplittableRandom(3);
        for (final long size : new long[] {1, 63, 64, 65, 1000, 4096 + 17})
        {
            for (final double density : new double[] {0, 0.01, 0.5, 0.99, 1})
            {
                final DirtyBitmap bitmap = new DirtyBitmap(size);
                final BitSet reference = new BitSet();
                for (long i = 0; i < size; i++)
                {
                    if (random.nextDouble() < density)
                    {
                        bitmap.set(i);
                        reference.set((int)i);
                    }
                }
                assertEquals(reference.cardinality(), bitmap.cardinality());
                final List<long[]> runs = new ArrayList<>();
                bitmap.forEachRun((first, count) -> runs.add(new long[] {first, count}));
                final List<long[]> expected = new ArrayList<>();
                for (int start = reference.nextSetBit(0); start >= 0; )
                {
                    final int end = reference.nextClearBit(start);
                    expected.add(new long[] {start, end - start});
                    start = reference.nextSetBit(end);
                }
                assertEquals(expected.size(), runs.size(), "runs for size " + size + " density " + density);
                for (int i = 0; i < runs.size(); i++)
                {
                    assertEquals(expected.get(i)[0], runs.get(i)[0]);
                    assertEquals(expected.get(i)[1], runs.get(i)[1]);
                }
            }
        }
    }

    @Test
    void setAllStopsAtTheLastPageAndOrWordMasksTheTail()
    {
        final DirtyBitmap bitmap = new DirtyBitmap(70);
        bitmap.setAll();
        assertEquals(70, bitmap.cardinality());
        assertEquals(70, bitmap.nextClearBit(0));
        bitmap.clearAll();
        bitmap.orWord(1, -1L);
        assertEquals(6, bitmap.cardinality(), "bits past the last page are ignored");
        assertEquals(-1, new DirtyBitmap(70).nextSetBit(0));
        assertThrows(IndexOutOfBoundsException.class, () -> bitmap.set(70));
        assertThrows(IllegalArgumentException.class, () -> bitmap.or(new DirtyBitmap(71)));
    }

    @Test
    void concurrentMarksAreNeverLostByGetAndClear() throws InterruptedException
    {
        final int pages = 1 << 14;
        final DirtyBitmap log = new DirtyBitmap(pages);
        final DirtyBitmap harvested = new DirtyBitmap(pages);
        final AtomicBoolean stop = new AtomicBoolean();
        final BitSet touched = new BitSet();
        final java.util.concurrent.atomic.AtomicLong marks = new java.util.concurrent.atomic.AtomicLong();
        final Thread writer = new Thread(() ->
        {
            final SplittableRandom random = new SplittableRandom(9);
            while (!stop.get())
            {
                final int page = random.nextInt(pages);
                log.setConcurrent(page);
                touched.set(page);
                marks.incrementAndGet();
            }
        });
        writer.start();
        // harvests race the writer until it has marked plenty: on a loaded machine (the Temurin 25 pass of CI) the
        // writer had not run at all by the 2000th harvest, and the test then proved nothing
        for (int i = 0; i < 2000 || marks.get() < 100_000; i++)
        {
            log.harvestConcurrentInto(harvested);
        }
        stop.set(true);
        writer.join();
        log.harvestConcurrentInto(harvested);
        assertTrue(touched.cardinality() > 0);
        assertEquals(touched.cardinality(), harvested.cardinality(), "pages marked but never harvested");
        for (int i = touched.nextSetBit(0); i >= 0; i = touched.nextSetBit(i + 1))
        {
            assertTrue(harvested.isSet(i), "page " + i + " lost");
        }
        assertFalse(log.cardinality() > 0, "harvest leaves the log clear");
    }
}
