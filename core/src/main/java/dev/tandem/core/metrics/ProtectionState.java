package dev.tandem.core.metrics;

/**
 * Where protection of a guest stands.
 */
public enum ProtectionState
{
    /** connected, baseline not yet acknowledged. */
    SYNCING,
    /** the standby holds a recovery point and follows every checkpoint. */
    PROTECTED,
    /** protection failed (connection lost, protocol error); the guest runs unprotected. */
    FAILED,
    /** another side owns the guest now (the standby promoted): this side stopped its guest and releases no output. */
    FENCED,
    /** protection was stopped. */
    STOPPED
}
