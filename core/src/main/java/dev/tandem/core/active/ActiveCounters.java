package dev.tandem.core.active;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Counters of the active side. Each has one writer thread (lazySet of its own increment); any thread may read.
 */
final class ActiveCounters
{
    final AtomicLong checkpoints = new AtomicLong();
    final AtomicLong pagesCopied = new AtomicLong();
    final AtomicLong stagingOverflows = new AtomicLong();
    final AtomicLong inFlightWaits = new AtomicLong();
    final AtomicLong bytesSent = new AtomicLong();
    final AtomicLong framesSent = new AtomicLong();
    final AtomicLong heartbeats = new AtomicLong();
    final AtomicLong pageBytesRaw = new AtomicLong();
    final AtomicLong pageBytesEncoded = new AtomicLong();
    final AtomicLong zeroPages = new AtomicLong();
    final AtomicLong rawPages = new AtomicLong();
    final AtomicLong lz4Pages = new AtomicLong();
    final AtomicLong deltaPages = new AtomicLong();
}
