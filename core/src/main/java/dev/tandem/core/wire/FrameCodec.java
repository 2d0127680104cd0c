package dev.tandem.core.wire;

import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * The one frame codec of the replication stream. Every frame is a 32-byte header and a bounded payload,
 * little-endian:
 * <pre>
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +---------------------------------------------------------------+
 *  |                    magic 0x4D444E54 ("TNDM")                  |  0
 *  +---------------+---------------+-------------------------------+
 *  |    version    |     type      |      flags (reserved, 0)      |  4
 *  +---------------+---------------+-------------------------------+
 *  |                   payload length (int32, bounded)             |  8
 *  +---------------------------------------------------------------+
 *  |          CRC32C of header (this field as 0) and payload       | 12
 *  +---------------------------------------------------------------+
 *  |                      generation (int64)                       | 16
 *  |                                                               |
 *  +---------------------------------------------------------------+
 *  |                        epoch (int64)                          | 24
 *  |                                                               |
 *  +---------------------------------------------------------------+
 *  |                     payload (length bytes)                  ...  32
 *  +---------------------------------------------------------------+
 * </pre>
 * Payloads by type (offsets from the payload start):
 * <pre>
 *  PAGES       firstPage:int64  pageCount:int32  reserved:int32   pageCount * pageSize bytes
 *  PAGES_ENCODED  the same sub-header, then pageCount entries of the page codec (kind:u8 length:u24 bytes)
 *  DISK_WRITE  diskId:int32     length:int32     offset:int64     length bytes
 *  DISK_FLUSH  diskId:int32
 *  COMPONENT   id:int32         version:int32                     state bytes
 *  EPOCH_END   pageCount:int64  frameCount:int32 diskWrites:int32 components:int32 reserved:int32 crcSum:int64
 *  BARRIER, ACK, HEARTBEAT, GOODBYE: empty (the standby sends HEARTBEAT too, so that the active hears it alive,
 *              and answers GOODBYE with GOODBYE, so that the active knows its goodbye was delivered)
 *  SWITCHOVER  empty from the active; generation:int64 (the one the standby won) from the standby
 *  RESTORE     as FAILURE_REPORT (reason, restore time); epoch: the held, acknowledged epoch
 *  RESTORED    pages:int64      diskBytes:int64  components:int32 reserved:int32  reason as in REFUSE; epoch: the
 *              restored one (the counts of the PAGES, DISK_WRITE bytes and COMPONENT frames before it)
 *  HELLO, WELCOME, REFUSE, FAILURE_REPORT: see {@link Handshake}
 * </pre>
 * {@code crcSum} is the 64-bit sum of the CRC32C of every DISK_WRITE, DISK_FLUSH, PAGES and COMPONENT frame of the
 * epoch, so a lost or repeated frame fails verification before anything is applied.
 * <p>
 * Order within epoch N: its disk writes and flushes, BARRIER N (after the last write of N), its pages, its
 * components, EPOCH_END N. The session's first epoch (the baseline) differs since version 3: a live baseline's
 * pages may come before its barrier, interleaved with the disk copy and the guest's writes meanwhile (they are
 * copied while the guest runs); the standby applies the epoch's frames in the order they came. Version 4 adds the
 * reconnecting active's history to HELLO and the recovery point's fingerprint to WELCOME: a session that resumes the
 * standby's recovery point (a quick resync) starts at the HELLO's first epoch, its first epoch carrying only the
 * pages and blocks that changed since that point. Version 5 adds to FAILURE_REPORT the time the guest was last known
 * good, so the standby resumes a checkpoint from before it (see {@link Handshake}). Version 6 adds the restore in
 * place: RESTORE (the active's FAILURE_REPORT payload, at its held, acknowledged epoch H), answered by the standby
 * with PAGES, DISK_WRITE and COMPONENT frames of the restored epoch E (the same payloads, flowing the other way) and
 * RESTORED E.
 */
public final class FrameCodec
{
    /** "TNDM" read as a little-endian int. */
    public static final int MAGIC = 0x4D444E54;
    /** Lowest protocol version this build speaks. */
    public static final int MIN_VERSION = 4;
    /** Highest protocol version this build speaks. */
    public static final int MAX_VERSION = 6;
    /** Header length. */
    public static final int HEADER_LENGTH = 32;
    /** Default bound on a payload. */
    public static final int MAX_PAYLOAD_DEFAULT = 1024 * 1024 + 64;

    /** Offset of the magic. */
    public static final int MAGIC_OFFSET = 0;
    /** Offset of the version. */
    public static final int VERSION_OFFSET = 4;
    /** Offset of the type. */
    public static final int TYPE_OFFSET = 5;
    /** Offset of the flags. */
    public static final int FLAGS_OFFSET = 6;
    /** Offset of the payload length. */
    public static final int LENGTH_OFFSET = 8;
    /** Offset of the CRC. */
    public static final int CRC_OFFSET = 12;
    /** Offset of the generation. */
    public static final int GENERATION_OFFSET = 16;
    /** Offset of the epoch. */
    public static final int EPOCH_OFFSET = 24;

    /** Length of the PAGES sub-header. */
    public static final int PAGES_HEADER = 16;
    /** Length of the DISK_WRITE sub-header. */
    public static final int DISK_WRITE_HEADER = 16;
    /** Length of the COMPONENT sub-header. */
    public static final int COMPONENT_HEADER = 8;
    /** Length of the EPOCH_END payload. */
    public static final int EPOCH_END_LENGTH = 32;
    /** Length of the DISK_FLUSH payload. */
    public static final int DISK_FLUSH_LENGTH = 4;

    static
    {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN)
        {
            // Agrona buffers use native order; the format is little-endian
            throw new IllegalStateException("Tandem's wire format needs a little-endian platform");
        }
    }

    private FrameCodec()
    {
    }

    /**
     * Writes a header with a zero CRC; call {@link #sealCrc} once the payload is in place.
     *
     * @param buffer     destination.
     * @param index      offset of the frame.
     * @param version    protocol version.
     * @param type       frame type.
     * @param length     payload length.
     * @param generation fencing generation.
     * @param epoch      epoch the frame belongs to.
     */
    public static void writeHeader(
        final MutableDirectBuffer buffer,
        final int index,
        final int version,
        final FrameType type,
        final int length,
        final long generation,
        final long epoch)
    {
        buffer.putInt(index + MAGIC_OFFSET, MAGIC);
        buffer.putByte(index + VERSION_OFFSET, (byte)version);
        buffer.putByte(index + TYPE_OFFSET, (byte)type.code());
        buffer.putShort(index + FLAGS_OFFSET, (short)0);
        buffer.putInt(index + LENGTH_OFFSET, length);
        buffer.putInt(index + CRC_OFFSET, 0);
        buffer.putLong(index + GENERATION_OFFSET, generation);
        buffer.putLong(index + EPOCH_OFFSET, epoch);
    }

    /**
     * Computes the frame's CRC over the header (CRC field zero) and the payload, which may live in a separate
     * buffer (gathering writes), and stores it in the header.
     *
     * @param crc          reusable checksum.
     * @param header       buffer holding the header at position 0.. of {@code headerBytes}.
     * @param headerView   a reusable {@link ByteBuffer} view of {@code header}'s memory.
     * @param headerIndex  offset of the header in {@code header}.
     * @param headerBytes  bytes of the frame held in {@code header} (the header and any sub-header).
     * @param payload      the rest of the payload, or null; position..limit are used and restored.
     * @return the CRC stored.
     */
    public static int sealCrc(
        final CRC32C crc,
        final UnsafeBuffer header,
        final ByteBuffer headerView,
        final int headerIndex,
        final int headerBytes,
        final ByteBuffer payload)
    {
        crc.reset();
        headerView.limit(headerIndex + headerBytes).position(headerIndex);
        crc.update(headerView);
        if (payload != null)
        {
            final int position = payload.position();
            crc.update(payload);
            payload.position(position);
        }
        final int value = (int)crc.getValue();
        header.putInt(headerIndex + CRC_OFFSET, value);
        return value;
    }
}
