package dev.tandem.core.metrics;

/**
 * Where the baseline (the first, full copy of the guest) stands. A live baseline copies memory in rounds while the
 * guest runs (round 1 every page, each later round the pages dirtied during the one before), then one short pause
 * copies what is left and makes the baseline checkpoint; the disks are copied while the guest runs too.
 *
 * @param live            true for a live baseline, false for a paused one (the guest stopped for all of it).
 * @param round           the memory round in progress (1-based), or the last one once the final pause was taken.
 * @param pagesCopied     pages copied so far in all rounds and the final pause (a page dirtied again is copied again).
 * @param pagesLeft       pages still to copy in this round (the final pause's set once the rounds ended); 0 when done.
 * @param diskBytesSent   disk bytes of the baseline's disk copy sent so far.
 * @param diskBytes       disk bytes the baseline copies (all disks).
 * @param done            true once the final pause was taken (the baseline checkpoint exists; its ack may follow).
 * @param longestPauseNs  the longest the guest stopped for the baseline: the launch's pause to attach and open it,
 *                        or the final pause, whichever is longer (a paused baseline: its one long pause).
 * @param elapsedNs       from the launch to the baseline's ack (so far, while it is not acknowledged).
 */
public record BaselineProgress(
    boolean live,
    int round,
    long pagesCopied,
    long pagesLeft,
    long diskBytesSent,
    long diskBytes,
    boolean done,
    long longestPauseNs,
    long elapsedNs)
{
    /**
     * @return e.g. {@code "baseline round 2: 262144 pages copied, 1830 left; disks 12/16 MiB"}.
     */
    public String describe()
    {
        return String.format(java.util.Locale.ROOT, "baseline %sround %d: %d pages copied, %d left; disks %d/%d MiB%s",
            live ? "" : "(paused) ", round, pagesCopied, pagesLeft, diskBytesSent >> 20, diskBytes >> 20,
            done ? String.format(java.util.Locale.ROOT, " (final pause taken; longest stop %.1f ms)",
                longestPauseNs / 1e6) : "");
    }
}
