package dev.tandem.core.metrics;

import org.junit.jupiter.api.Test;

import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The sliding window is the steady state: it forgets what is older than its seconds, keeps the total, and slides
 * with time, not with the number of readers.
 */
class LatencyDistributionTest
{
    private static final long SECOND = TimeUnit.SECONDS.toNanos(1);

    @Test
    void theWindowForgetsAWarmUpThatTheTotalKeeps()
    {
        final LatencyDistribution distribution = new LatencyDistribution();
        long now = 5 * SECOND;
        // a warm-up: 100 epochs of 300 ms
        for (int i = 0; i < 100; i++)
        {
            distribution.recorder().recordValue(300_000_000L);
        }
        distribution.fold(now);
        // then a steady state of 10 ms, one second's worth folded each second for twelve seconds
        for (int s = 1; s <= 12; s++)
        {
            now += SECOND;
            for (int i = 0; i < 100; i++)
            {
                distribution.recorder().recordValue(10_000_000L);
            }
            distribution.fold(now);
        }
        distribution.refresh(now);
        final long windowP99 = distribution.window().getValueAtPercentile(99);
        assertTrue(Math.abs(windowP99 - 10_000_000L) <= 100_000L, "window p99 " + windowP99);
        assertEquals(LatencyDistribution.WINDOW_SECONDS * 100L, distribution.window().getTotalCount());
        assertTrue(distribution.refresh(now).getValueAtPercentile(99) >= 299_000_000L,
            "the total keeps the warm-up");
        assertEquals(1300, distribution.refresh(now).getTotalCount());
    }

    @Test
    void readersDoNotShrinkTheWindowAndSilenceEmptiesIt()
    {
        final LatencyDistribution distribution = new LatencyDistribution();
        final long start = 100 * SECOND + SECOND / 2;
        for (int i = 1; i <= 50; i++)
        {
            distribution.recorder().recordValue(i * 1_000_000L);
        }
        distribution.refresh(start);
        assertEquals(50, distribution.window().getTotalCount());
        // another reader a moment later sees the same samples, not an empty "since the last reader" window
        distribution.refresh(start + 1_000_000L);
        assertEquals(50, distribution.window().getTotalCount());
        distribution.refresh(start + 3 * SECOND);
        assertEquals(50, distribution.window().getTotalCount(), "still inside the window");
        // a long silence (no fold for a minute) leaves nothing in the window, however many slots it skipped
        distribution.refresh(start + 60 * SECOND);
        assertEquals(0, distribution.window().getTotalCount());
        assertEquals(50, distribution.refresh(start + 61 * SECOND).getTotalCount());
    }

    @Test
    void aClockReadJustBeforeTheNewestSecondStillCounts()
    {
        final LatencyDistribution distribution = new LatencyDistribution();
        distribution.recorder().recordValue(1_000L);
        distribution.fold(20 * SECOND);
        distribution.recorder().recordValue(2_000L);
        // another thread's clock, read a moment before the newest fold's
        distribution.fold(20 * SECOND - 1);
        distribution.refresh(20 * SECOND);
        assertEquals(2, distribution.window().getTotalCount());
    }
}
