package dev.tandem.examples.simulation;

import org.agrona.concurrent.NanoClock;

/**
 * The simulation's time: moves only when the simulation advances it, so a run depends on its seed alone.
 */
final class SimClock implements NanoClock
{
    private long now;

    SimClock(final long start)
    {
        this.now = start;
    }

    @Override
    public long nanoTime()
    {
        return now;
    }

    void advance(final long nanos)
    {
        now += nanos;
    }
}
