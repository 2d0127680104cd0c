package dev.tandem.examples;

import dev.tandem.vmm.PacketSink;
import org.agrona.DirectBuffer;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.locks.LockSupport;

/**
 * A node's ownership record (see {@link OwnershipTimeline} for the lines): wraps the guest's {@link PacketSink} and
 * notes, on the shared wall clock, the first and last release of every millisecond in which output left the guest,
 * plus the moments the node {@link #mark}s (guest stopped, promotion decided, guest resumed, killed).
 * <p>
 * The releasing thread only updates the current millisecond's bucket under an uncontended lock; a daemon thread
 * writes closed buckets to the file every {@value #DRAIN_INTERVAL_MS} ms, so the guest's release path never waits
 * on the file. A node killed with SIGKILL loses at most the releases of the last drain interval.
 */
public final class ReleaseRecorder implements PacketSink, AutoCloseable
{
    /** How often closed buckets go to the file. */
    static final long DRAIN_INTERVAL_MS = 2;
    private static final int PENDING_BUCKETS = 1024;

    private final PacketSink next;
    private final PrintStream file;
    private final Thread drainer;
    private final long[] pending = new long[PENDING_BUCKETS * 3];
    private int pendingCount;
    private long bucketMs = -1;
    private long bucketFirstUs;
    private long bucketLastUs;
    private long bucketCount;
    private volatile boolean closed;

    /**
     * @param next   where output really goes (the bank's client port); null drops it after recording.
     * @param record the ownership file, appended to.
     * @throws IOException if it cannot be opened.
     */
    public ReleaseRecorder(final PacketSink next, final Path record) throws IOException
    {
        this.next = next;
        this.file = new PrintStream(Files.newOutputStream(record, StandardOpenOption.CREATE,
            StandardOpenOption.APPEND), false, StandardCharsets.UTF_8);
        drainer = new Thread(this::drainLoop, "ownership-recorder");
        drainer.setDaemon(true);
        drainer.start();
    }

    @Override
    public void send(final DirectBuffer frame, final int index, final int length)
    {
        if (next != null)
        {
            next.send(frame, index, length);
        }
        // timed after the frame went on: for overlap, the later instant is the cautious one
        final long us = OwnershipTimeline.wallMicros();
        final long ms = us / 1000;
        synchronized (this)
        {
            if (ms != bucketMs || bucketCount == 0)
            {
                if (bucketCount > 0)
                {
                    pend(bucketFirstUs, bucketLastUs, bucketCount);
                }
                bucketMs = ms;
                bucketFirstUs = us;
                bucketCount = 0;
            }
            bucketLastUs = us;
            bucketCount++;
        }
    }

    /**
     * Writes one fact at once (not batched), flushed to the file before returning, so that it survives the process
     * halting right after.
     *
     * @param what    the record word: {@code stopped}, {@code killed}, {@code decided}, {@code resumed}.
     * @param micros  when, from {@link OwnershipTimeline#wallMicros()}.
     * @param details the rest of the line, or empty.
     */
    public void mark(final String what, final long micros, final String details)
    {
        drain(true);
        synchronized (file)
        {
            file.println(what + " " + micros + (details.isEmpty() ? "" : " " + details));
            file.flush();
        }
    }

    private void pend(final long first, final long last, final long count)
    {
        if (pendingCount == PENDING_BUCKETS)
        {
            // the drainer fell a second behind: widen the newest bucket rather than lose the fact that output left
            // then (a merged run can only make ownership look longer, never shorter)
            final int newest = (pendingCount - 1) * 3;
            pending[newest + 1] = last;
            pending[newest + 2] += count;
            return;
        }
        final int at = pendingCount * 3;
        pending[at] = first;
        pending[at + 1] = last;
        pending[at + 2] = count;
        pendingCount++;
    }

    private void drainLoop()
    {
        while (!closed)
        {
            LockSupport.parkNanos(DRAIN_INTERVAL_MS * 1_000_000);
            drain(false);
        }
    }

    private void drain(final boolean all)
    {
        final long nowMs = OwnershipTimeline.wallMicros() / 1000;
        final long[] copy;
        final int count;
        synchronized (this)
        {
            if (bucketCount > 0 && (all || bucketMs < nowMs))
            {
                pend(bucketFirstUs, bucketLastUs, bucketCount);
                bucketCount = 0;
            }
            count = pendingCount;
            if (count == 0)
            {
                return;
            }
            copy = java.util.Arrays.copyOf(pending, count * 3);
            pendingCount = 0;
        }
        synchronized (file)
        {
            for (int i = 0; i < count; i++)
            {
                file.println("release " + copy[i * 3] + " " + copy[i * 3 + 1] + " " + copy[i * 3 + 2]);
            }
            file.flush();
        }
    }

    /**
     * Writes what is pending and closes the file.
     */
    @Override
    public void close()
    {
        closed = true;
        drain(true);
        synchronized (file)
        {
            file.close();
        }
    }
}
