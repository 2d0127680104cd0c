package dev.tandem.core.wire;

/**
 * Frame types of the replication stream. Codes are part of the wire format and never reused.
 */
public enum FrameType
{
    /** active -> standby: protocol range, VM identity and geometry. */
    HELLO(1),
    /** standby -> active: handshake accepted, with the standby's recovery point. */
    WELCOME(2),
    /** standby -> active: handshake refused, with the reason. */
    REFUSE(3),
    /** a guest disk write of the frame's epoch. */
    DISK_WRITE(4),
    /** a guest disk flush of the frame's epoch. */
    DISK_FLUSH(5),
    /** barrier N: every disk write of epoch N precedes it. */
    BARRIER(6),
    /** a run of pages of delta N. */
    PAGES(7),
    /** saved state of one component at checkpoint N. */
    COMPONENT(8),
    /** delta N is complete; carries counts to verify it. */
    EPOCH_END(9),
    /** standby -> active: commit N happened. */
    ACK(10),
    /** active -> standby: liveness when otherwise idle. */
    HEARTBEAT(11),
    /** active -> standby: the guest misbehaves (health probe); promote from the recovery point. */
    FAILURE_REPORT(12),
    /** active -> standby: protection stops on purpose; the silence that follows is not a failure. */
    GOODBYE(13),
    /** a run of pages of delta N, each encoded by the page codec. */
    PAGES_ENCODED(14),
    /**
     * Planned switchover. active -> standby (empty): the guest is paused at the acknowledged epoch N, promote now.
     * standby -> active ({@code generation:int64}): the standby won that generation and resumes the guest from
     * epoch N; the active's copy stays stopped.
     */
    SWITCHOVER(15),
    /**
     * active -> standby (since version 6): the guest is paused at the acknowledged epoch N and is to be restored on
     * the active's own host; the payload is a FAILURE_REPORT's (reason, restore time). The standby answers with the
     * PAGES and DISK_WRITE frames of the chosen checkpoint whose contents differ from epoch N, every component's
     * state at it (COMPONENT), then RESTORED.
     */
    RESTORE(16),
    /**
     * standby -> active (since version 6): the restore in place of epoch N's checkpoint is complete ({@code
     * pages:int64 diskBytes:int64 components:int32 reserved:int32}, the counts of what came before it, then a reason
     * as in REFUSE: what was restored, or why not the checkpoint asked).
     */
    RESTORED(17);

    private static final FrameType[] BY_CODE = new FrameType[18];

    static
    {
        for (final FrameType type : values())
        {
            BY_CODE[type.code] = type;
        }
    }

    private final int code;

    FrameType(final int code)
    {
        this.code = code;
    }

    /**
     * @return the type's code on the wire.
     */
    public int code()
    {
        return code;
    }

    /**
     * @param code a code read from the wire.
     * @return the type, or null if the code is unknown.
     */
    public static FrameType of(final int code)
    {
        return code >= 0 && code < BY_CODE.length ? BY_CODE[code] : null;
    }
}
