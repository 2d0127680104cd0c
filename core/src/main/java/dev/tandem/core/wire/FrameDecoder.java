package dev.tandem.core.wire;

import org.agrona.concurrent.UnsafeBuffer;

import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

import static dev.tandem.core.wire.FrameCodec.CRC_OFFSET;
import static dev.tandem.core.wire.FrameCodec.EPOCH_OFFSET;
import static dev.tandem.core.wire.FrameCodec.FLAGS_OFFSET;
import static dev.tandem.core.wire.FrameCodec.GENERATION_OFFSET;
import static dev.tandem.core.wire.FrameCodec.HEADER_LENGTH;
import static dev.tandem.core.wire.FrameCodec.LENGTH_OFFSET;
import static dev.tandem.core.wire.FrameCodec.MAGIC;
import static dev.tandem.core.wire.FrameCodec.MAGIC_OFFSET;
import static dev.tandem.core.wire.FrameCodec.TYPE_OFFSET;
import static dev.tandem.core.wire.FrameCodec.VERSION_OFFSET;

/**
 * Finds and verifies whole frames in a receive buffer. The header is checked as soon as it has arrived (so a bad
 * length is refused before waiting for its payload), the CRC once the whole frame is there. After a successful
 * {@link #decode}, the accessors describe the frame. Allocates nothing.
 */
public final class FrameDecoder
{
    private final int maxPayload;
    private final CRC32C crc = new CRC32C();
    private int minVersion = FrameCodec.MIN_VERSION;
    private int maxVersion = FrameCodec.MAX_VERSION;

    private FrameType type;
    private int length;
    private int payloadIndex;
    private long generation;
    private long epoch;
    private int frameCrc;

    /**
     * @param maxPayload largest payload accepted.
     */
    public FrameDecoder(final int maxPayload)
    {
        this.maxPayload = maxPayload;
    }

    /**
     * Narrows the accepted version to the one negotiated at handshake.
     *
     * @param version the negotiated version.
     */
    public void negotiated(final int version)
    {
        minVersion = version;
        maxVersion = version;
    }

    /**
     * Accepts any supported version again (a new connection).
     */
    public void reset()
    {
        minVersion = FrameCodec.MIN_VERSION;
        maxVersion = FrameCodec.MAX_VERSION;
    }

    /**
     * Looks for one frame.
     *
     * @param buffer    receive buffer.
     * @param view      a {@link ByteBuffer} over the same memory, for the CRC.
     * @param index     offset of the next frame.
     * @param available bytes available from {@code index}.
     * @return the whole frame's length when one is there, 0 when more bytes are needed.
     * @throws ProtocolException naming the fault when the frame is malformed.
     */
    public int decode(final UnsafeBuffer buffer, final ByteBuffer view, final int index, final int available)
    {
        if (available >= 3 && looksLikeTls(buffer, index))
        {
            // said at once, not after 32 bytes: a TLS alert is 7 bytes and then the peer hangs up
            throw new ProtocolException(ProtocolException.Fault.BAD_MAGIC, "the peer speaks TLS (a TLS record of " +
                "type " + buffer.getByte(index) + " arrived) but this side's transport is plaintext: configure " +
                "TlsTransport on both sides, or plaintext on both");
        }
        if (available < HEADER_LENGTH)
        {
            return 0;
        }
        final int magic = buffer.getInt(index + MAGIC_OFFSET);
        if (magic != MAGIC)
        {
            throw new ProtocolException(ProtocolException.Fault.BAD_MAGIC,
                "expected 0x" + Integer.toHexString(MAGIC) + " got 0x" + Integer.toHexString(magic));
        }
        final int version = buffer.getByte(index + VERSION_OFFSET) & 0xFF;
        if (version < minVersion || version > maxVersion)
        {
            throw new ProtocolException(ProtocolException.Fault.BAD_VERSION,
                "version " + version + " outside [" + minVersion + ", " + maxVersion + "]");
        }
        final int flags = buffer.getShort(index + FLAGS_OFFSET) & 0xFFFF;
        if (flags != 0)
        {
            throw new ProtocolException(ProtocolException.Fault.RESERVED_BITS,
                "flags 0x" + Integer.toHexString(flags) + " set; none are defined in version " + version);
        }
        final int payloadLength = buffer.getInt(index + LENGTH_OFFSET);
        if (payloadLength < 0 || payloadLength > maxPayload)
        {
            throw new ProtocolException(ProtocolException.Fault.BAD_LENGTH,
                "payload length " + payloadLength + " outside [0, " + maxPayload + "]");
        }
        final int typeCode = buffer.getByte(index + TYPE_OFFSET) & 0xFF;
        final FrameType frameType = FrameType.of(typeCode);
        if (frameType == null)
        {
            throw new ProtocolException(ProtocolException.Fault.UNKNOWN_TYPE, "frame type code " + typeCode);
        }
        final int frameLength = HEADER_LENGTH + payloadLength;
        if (available < frameLength)
        {
            return 0;
        }
        final int expectedCrc = buffer.getInt(index + CRC_OFFSET);
        buffer.putInt(index + CRC_OFFSET, 0);
        crc.reset();
        view.limit(index + frameLength).position(index);
        crc.update(view);
        final int actualCrc = (int)crc.getValue();
        buffer.putInt(index + CRC_OFFSET, expectedCrc);
        if (actualCrc != expectedCrc)
        {
            throw new ProtocolException(ProtocolException.Fault.BAD_CRC, frameType + " frame CRC32C 0x" +
                Integer.toHexString(expectedCrc) + " but header and payload give 0x" + Integer.toHexString(actualCrc));
        }
        this.type = frameType;
        this.length = payloadLength;
        this.payloadIndex = index + HEADER_LENGTH;
        this.generation = buffer.getLong(index + GENERATION_OFFSET);
        this.epoch = buffer.getLong(index + EPOCH_OFFSET);
        this.frameCrc = expectedCrc;
        return frameLength;
    }

    /**
     * @return type of the last decoded frame.
     */
    public FrameType type()
    {
        return type;
    }

    /**
     * @return payload length of the last decoded frame.
     */
    public int length()
    {
        return length;
    }

    /**
     * @return offset of the last decoded frame's payload in the buffer.
     */
    public int payloadIndex()
    {
        return payloadIndex;
    }

    /**
     * @return generation of the last decoded frame.
     */
    public long generation()
    {
        return generation;
    }

    /**
     * @return epoch of the last decoded frame.
     */
    public long epoch()
    {
        return epoch;
    }

    /**
     * @return CRC of the last decoded frame, as an unsigned value.
     */
    public long crc()
    {
        return frameCrc & 0xFFFF_FFFFL;
    }

    /**
     * A TLS record starts with its content type (20 to 23: change_cipher_spec, alert, handshake, application data)
     * and the major version 3; a Tandem frame starts with the magic's low byte, 'T'.
     */
    private static boolean looksLikeTls(final UnsafeBuffer buffer, final int index)
    {
        final int type = buffer.getByte(index);
        return type >= 20 && type <= 23 && buffer.getByte(index + 1) == 3 && buffer.getByte(index + 2) <= 4;
    }
}
