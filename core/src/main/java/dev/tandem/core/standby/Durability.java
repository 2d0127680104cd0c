package dev.tandem.core.standby;

/**
 * Where the standby keeps its recovery image (DESIGN.md "The standby").
 */
public enum Durability
{
    /**
     * In this process's memory (Remus): fastest acks; a restart of the standby process loses the replica, and the
     * active then sends a whole baseline to the new one.
     */
    MEMORY,

    /**
     * In files of the standby's directory: each epoch is journaled and forced before its ack, the image files are
     * updated behind it, so a restarted standby recovers its last acknowledged epoch and the active resends only what
     * changed since.
     */
    DURABLE
}
