package dev.tandem.core.active;

/**
 * What the output gate does while the guest is unprotected (no standby connected, or it was lost).
 */
public enum UnprotectedOutput
{
    /** Keep holding output until a standby acknowledges it; frames are dropped once the hold queue is full. */
    HOLD,
    /** Release output at once; logged, because a failover in this state can contradict what clients saw. */
    PASS_THROUGH
}
