package dev.tandem.core.metrics;

/**
 * How the active's link to its standby has fared: reconnects after a lost link, what each resync cost, and how long
 * the guest ran unprotected.
 *
 * @param reconnecting     true while the active tries to reconnect (state {@code RECONNECTING}).
 * @param attempts         connection attempts since the link was last lost (0 while connected).
 * @param windowLeftNs     time left of the reconnect window while reconnecting, else 0.
 * @param reconnects       sessions resumed after a lost link, since the launch.
 * @param quickResyncs     of those, how many sent only what changed since the standby's recovery point.
 * @param resyncBytes      bytes on the wire of every reconnect's first epoch (the resync), since the launch.
 * @param lastResyncBytes  bytes of the newest reconnect's first epoch, 0 until it is sent.
 * @param lastResyncPages  pages the newest reconnect's first epoch copied.
 * @param lastResync       why the newest reconnect resent what it did ({@code "quick: ..."} or {@code "whole: ..."}),
 *                         or null if there was none.
 * @param unprotectedNs    time the guest ran without an acknowledged copy after the first baseline: from each lost
 *                         link to the ack of the session that followed it (or to now).
 */
public record ReconnectStatus(
    boolean reconnecting,
    long attempts,
    long windowLeftNs,
    long reconnects,
    long quickResyncs,
    long resyncBytes,
    long lastResyncBytes,
    long lastResyncPages,
    String lastResync,
    long unprotectedNs)
{
}
