package dev.tandem.core.standby;

/**
 * A snapshot of the standby side.
 *
 * @param lastCommittedEpoch the recovery point's epoch: the newest received whole, verified and acknowledged (0 before
 *                           the baseline committed).
 * @param connected          an active is connected and past the handshake.
 * @param commits            epochs committed.
 * @param framesReceived     frames accepted.
 * @param bytesReceived      bytes read from connections.
 * @param rejectedFrames     frames or handshakes refused as malformed.
 * @param lastError          the last refusal or failure, or null.
 * @param generation         the generation this standby serves (the session's; raised by a promotion).
 * @param ownership          what this side's ownership is doing: {@code standby}, {@code claiming generation N:
 *                           arbiter unreachable (...)} while it retries, {@code promoted at generation N},
 *                           {@code superseded by generation N}.
 * @param arbiterAttempts    questions asked of the arbiter so far.
 * @param arbiterError       why the arbiter last could not be reached, or null once it answered.
 * @param stages             per stage of this side (receive: barrier to the epoch's end read; apply: the applier
 *                           replaying the epoch into the replica; commit: barrier to ack written, which no longer
 *                           waits for the apply), after each session's baseline.
 * @param appliedEpoch       the newest epoch the applier has applied; {@code lastCommittedEpoch - appliedEpoch} is
 *                           how far it lags (at most the number of epoch logs).
 */
public record StandbyStatus(
    long lastCommittedEpoch,
    boolean connected,
    long commits,
    long framesReceived,
    long bytesReceived,
    long rejectedFrames,
    String lastError,
    long generation,
    String ownership,
    long arbiterAttempts,
    String arbiterError,
    java.util.List<dev.tandem.core.metrics.StageLatency> stages,
    long appliedEpoch)
{
}
