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
    /**
     * the standby was lost (connection lost, silence, protocol error) and an arbiter decides who owns the guest:
     * output is held while this side asks it; next FAILED (this side won the next generation) or FENCED.
     */
    ARBITRATING,
    /**
     * protection failed and this side owns the guest (it won the next generation at the arbiter, or none is
     * configured): the guest runs unprotected, output held or passed through as configured.
     */
    FAILED,
    /** another side owns the guest now (the standby promoted): this side stopped its guest and releases no output. */
    FENCED,
    /** protection was stopped. */
    STOPPED,
    /**
     * the standby was lost and this side tries to reconnect within {@code ActiveContext.reconnectWindowNs}: the guest
     * runs, output is held, the arbiter is watched (and claimed after the claim delay) as while ARBITRATING; next
     * SYNCING (a session resumed: a quick resync or a whole baseline), FENCED, or at the window's end FAILED or
     * ARBITRATING.
     */
    RECONNECTING
}
