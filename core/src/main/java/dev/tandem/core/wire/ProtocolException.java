package dev.tandem.core.wire;

/**
 * A frame or handshake that breaks the protocol. Nothing of the offending frame, nor of its unfinished epoch, has
 * been applied when this is thrown; the connection is dropped.
 */
public final class ProtocolException extends RuntimeException
{
    private static final long serialVersionUID = 1L;

    /**
     * What was wrong.
     */
    public enum Fault
    {
        /** the frame does not start with the magic number. */
        BAD_MAGIC,
        /** the protocol version is outside the supported or negotiated range. */
        BAD_VERSION,
        /** flag bits that must be zero were set. */
        RESERVED_BITS,
        /** the payload length is negative or over the maximum. */
        BAD_LENGTH,
        /** the stream ended inside a frame. */
        TRUNCATED,
        /** the CRC32C does not match header and payload. */
        BAD_CRC,
        /** the frame type is unknown or not allowed in this direction or phase. */
        UNKNOWN_TYPE,
        /** the frame's epoch repeats, skips or goes backwards. */
        EPOCH_OUT_OF_ORDER,
        /** the frame's generation is not the connection's. */
        STALE_GENERATION,
        /** the handshake names another VM. */
        VM_MISMATCH,
        /** page size, page count or disks differ between active and standby. */
        GEOMETRY_MISMATCH,
        /** a page run lies outside guest memory. */
        PAGE_OUT_OF_RANGE,
        /** a disk extent is outside the disk, misaligned or empty. */
        BAD_DISK_EXTENT,
        /** a frame's fields contradict each other or the epoch end's counts. */
        MALFORMED,
        /** the active's heartbeat is too slow for the standby's failure timeout. */
        TIMING_MISMATCH,
        /** the peer refused the handshake. */
        REFUSED
    }

    private final Fault fault;

    /**
     * @param fault  what was wrong.
     * @param detail the values involved.
     */
    public ProtocolException(final Fault fault, final String detail)
    {
        super(fault + ": " + detail);
        this.fault = fault;
    }

    /**
     * @return what was wrong.
     */
    public Fault fault()
    {
        return fault;
    }
}
