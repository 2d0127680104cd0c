package dev.tandem.core.active;

import dev.tandem.core.system.LeakCheck;
import org.HdrHistogram.SingleWriterRecorder;
import org.agrona.concurrent.SystemNanoClock;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@LeakCheck
class OutputCommitGateTest
{
    @Test
    void releasesEachEpochInOrderOnlyAfterItsAck()
    {
        final List<Long> sent = new ArrayList<>();
        final SingleWriterRecorder holds = new SingleWriterRecorder(60_000_000_000L, 3);
        try (OutputCommitGate gate = new OutputCommitGate(64 * 1024, (frame, index, length) ->
        {
            assertEquals(16, length);
            sent.add(frame.getLong(index));
        }, holds, 60_000_000_000L, SystemNanoClock.INSTANCE))
        {
            final UnsafeBuffer frame = new UnsafeBuffer(new byte[16]);
            long sequence = 0;
            for (long epoch = 5; epoch <= 7; epoch++)
            {
                gate.epoch(epoch);
                for (int i = 0; i < 3; i++)
                {
                    frame.putLong(0, sequence++);
                    assertTrue(gate.offer(frame, 0, 16));
                }
            }
            assertEquals(0, gate.release(4), "nothing acked yet");
            assertEquals(3, gate.release(5));
            assertEquals(List.of(0L, 1L, 2L), sent);
            assertEquals(0, gate.release(5), "epoch 6 waits for its own ack");
            assertEquals(6, gate.release(7));
            assertEquals(List.of(0L, 1L, 2L, 3L, 4L, 5L, 6L, 7L, 8L), sent);
            assertEquals(9, gate.releasedFrames());
            assertEquals(0, gate.heldBytes());
            assertEquals(9, holds.getIntervalHistogram().getTotalCount(), "every release records its hold time");
        }
    }

    @Test
    void outputHeldForTheBaselineIsReportedApartFromTheSteadyState()
    {
        final SingleWriterRecorder holds = new SingleWriterRecorder(60_000_000_000L, 3);
        final long[] now = {1_000};
        try (OutputCommitGate gate = new OutputCommitGate(64 * 1024, (frame, index, length) -> { }, holds,
            60_000_000_000L, () -> now[0]))
        {
            gate.baselineEpoch(1);
            final UnsafeBuffer frame = new UnsafeBuffer(new byte[16]);
            gate.epoch(1);
            assertTrue(gate.offer(frame, 0, 16));
            assertTrue(gate.offer(frame, 0, 16));
            gate.epoch(2);
            assertTrue(gate.offer(frame, 0, 16));
            // the baseline's ack comes after the whole first copy; epoch 2's a few milliseconds later
            now[0] += 900_000_000L;
            assertEquals(2, gate.release(1));
            now[0] += 3_000_000L;
            assertEquals(1, gate.release(2));
            assertEquals(900_000_000L, gate.baselineHoldMaxNs());
            final org.HdrHistogram.Histogram steady = holds.getIntervalHistogram();
            assertEquals(1, steady.getTotalCount(), "only the frame offered after the baseline is steady state");
            assertTrue(steady.getMaxValue() < 1_000_000_000L && steady.getMaxValue() >= 903_000_000L,
                "its hold, offer to release: " + steady.getMaxValue());
        }
    }

    @Test
    void dropsWhenFullAndRefusesOversizedFrames()
    {
        try (OutputCommitGate gate = new OutputCommitGate(64 * 1024, (frame, index, length) -> { },
            new SingleWriterRecorder(60_000_000_000L, 3), 60_000_000_000L, SystemNanoClock.INSTANCE))
        {
            final UnsafeBuffer frame = new UnsafeBuffer(new byte[1500]);
            int accepted = 0;
            while (gate.offer(frame, 0, 1500))
            {
                accepted++;
            }
            assertTrue(accepted > 30, "accepted " + accepted);
            assertEquals(1, gate.droppedFrames());
            assertFalse(gate.offer(frame, 0, 1500));
            gate.release(0);
            assertTrue(gate.offer(frame, 0, 1500), "room again after release");
            assertThrows(IllegalArgumentException.class, () -> gate.offer(new UnsafeBuffer(new byte[16384]), 0, 16384));
        }
    }
}
