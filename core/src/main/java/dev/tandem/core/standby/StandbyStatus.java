package dev.tandem.core.standby;

/**
 * A snapshot of the standby side.
 *
 * @param lastCommittedEpoch the recovery point's epoch (0 before the baseline committed).
 * @param connected          an active is connected and past the handshake.
 * @param commits            epochs committed.
 * @param framesReceived     frames accepted.
 * @param bytesReceived      bytes read from connections.
 * @param rejectedFrames     frames or handshakes refused as malformed.
 * @param lastError          the last refusal or failure, or null.
 */
public record StandbyStatus(
    long lastCommittedEpoch,
    boolean connected,
    long commits,
    long framesReceived,
    long bytesReceived,
    long rejectedFrames,
    String lastError)
{
}
