package dev.tandem.core.wire;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Handshake payloads. The active opens with HELLO; the standby answers WELCOME or REFUSE.
 * <pre>
 *  HELLO    minVersion:u8 maxVersion:u8 reserved:u16 pageSize:int32 pageCount:int64 heartbeatNs:int64
 *           generation:int64 maxFramePayload:int32 diskCount:int32
 *           diskCount * (diskId:int32 blockSize:int32 sizeBytes:int64) vmIdLength:int32 vmId:utf8
 *           firstEpoch:int64 historyCount:int32 historyCount * (epoch:int64 fingerprint:int64)
 *  WELCOME  version:int32 flags:int32 recoveryEpoch:int64 generation:int64 failureTimeoutNs:int64
 *           fingerprint:int64                                   (flags bit 0: RESYNC)
 *  REFUSE   reasonLength:int32 reason:utf8
 *  FAILURE_REPORT  reasonLength:int32 reason:utf8 restoreAtMillis:int64   (version 5 on; version 4: no time)
 * </pre>
 * A FAILURE_REPORT's {@code restoreAtMillis} asks the standby to resume the newest checkpoint it committed at or before
 * that wall-clock time (milliseconds since 1970), {@link #RESTORE_LATEST} its latest one.
 */
public final class Handshake
{
    /** Longest VM identity accepted, in UTF-8 bytes (not characters); the SPI's limit. */
    public static final int MAX_VM_ID_BYTES = dev.tandem.vmm.VmmAdapter.MAX_VM_ID_BYTES;
    /** Most disks a guest may have. */
    public static final int MAX_DISKS = 64;
    /** Longest reason a REFUSE or FAILURE_REPORT carries, in UTF-8 bytes; a longer one is cut (see encodeReason). */
    public static final int MAX_REASON_BYTES = 1024;
    /** Longest REFUSE or FAILURE_REPORT payload: the length field and the longest reason. */
    public static final int MAX_REASON_PAYLOAD = 4 + MAX_REASON_BYTES;
    /** Longest FAILURE_REPORT payload: the reason's and the restore time. */
    public static final int MAX_FAILURE_REPORT_PAYLOAD = MAX_REASON_PAYLOAD + 8;
    /** A FAILURE_REPORT's restore time that asks for the standby's latest recovery point. */
    public static final long RESTORE_LATEST = Long.MAX_VALUE;
    /** The first protocol version whose FAILURE_REPORT carries a restore time. */
    public static final int FAILURE_REPORT_RESTORE_VERSION = 5;
    /** The first protocol version with the restore in place (RESTORE, RESTORED). */
    public static final int RESTORE_IN_PLACE_VERSION = 6;
    /** Length of a WELCOME payload. */
    public static final int WELCOME_LENGTH = 40;
    /** Most checkpoints a HELLO names as ones the standby may hold (a reconnecting active's unacknowledged ones). */
    public static final int MAX_HISTORY = 256;
    /** WELCOME flag: the standby's recovery point is one of the checkpoints the HELLO named; only changes follow. */
    public static final int WELCOME_RESYNC = 1;

    private Handshake()
    {
    }

    /**
     * Geometry of one disk.
     *
     * @param id        disk id.
     * @param blockSize block size in bytes.
     * @param sizeBytes size in bytes.
     */
    public record Disk(int id, int blockSize, long sizeBytes)
    {
    }

    /**
     * The active's opening: what it speaks and what it protects.
     *
     * @param minVersion lowest version spoken.
     * @param maxVersion highest version spoken.
     * @param vmId       identity of the guest, at most {@link #MAX_VM_ID_BYTES} bytes in UTF-8.
     * @param pageSize   page size.
     * @param pageCount  number of pages.
     * @param disks      the guest's disks.
     * @param heartbeatIntervalNs how often the active sends at least one frame.
     * @param generation the generation the active believes current (0 for a first start).
     * @param maxFramePayload the largest frame payload the active sends; a standby that accepts less refuses.
     * @param firstEpoch the epoch the session starts at, or 0 for the one after the standby's recovery point (a
     *                   launch); a reconnecting active starts after every epoch it ever took, so that output it
     *                   holds is released by the new session's acks.
     * @param history    checkpoints of the active's history the standby may hold as its recovery point (a
     *                   reconnecting active's acknowledged and unacknowledged ones; empty for a launch): if it holds
     *                   one of them, with the same fingerprint, only what changed since is sent.
     */
    public record Hello(int minVersion, int maxVersion, String vmId, int pageSize, long pageCount, List<Disk> disks,
        long heartbeatIntervalNs, long generation, int maxFramePayload, long firstEpoch, List<Checkpoint> history)
    {
        /**
         * A launch's hello: the session starts after the standby's recovery point, with no history to resync from.
         *
         * @param minVersion lowest version spoken.
         * @param maxVersion highest version spoken.
         * @param vmId       identity of the guest.
         * @param pageSize   page size.
         * @param pageCount  number of pages.
         * @param disks      the guest's disks.
         * @param heartbeatIntervalNs how often the active sends at least one frame.
         * @param generation the generation the active believes current.
         * @param maxFramePayload the largest frame payload the active sends.
         */
        public Hello(final int minVersion, final int maxVersion, final String vmId, final int pageSize,
            final long pageCount, final List<Disk> disks, final long heartbeatIntervalNs, final long generation,
            final int maxFramePayload)
        {
            this(minVersion, maxVersion, vmId, pageSize, pageCount, disks, heartbeatIntervalNs, generation,
                maxFramePayload, 0, List.of());
        }

        /**
         * @param epoch       a recovery point.
         * @param fingerprint its fingerprint.
         * @return true if that checkpoint is one this hello names.
         */
        public boolean names(final long epoch, final long fingerprint)
        {
            for (final Checkpoint checkpoint : history)
            {
                if (checkpoint.epoch() == epoch && checkpoint.fingerprint() == fingerprint)
                {
                    return true;
                }
            }
            return false;
        }

        /**
         * @param buffer destination.
         * @param index  offset.
         * @return bytes written.
         */
        public int encode(final MutableDirectBuffer buffer, final int index)
        {
            final byte[] id = vmId.getBytes(StandardCharsets.UTF_8);
            if (id.length > MAX_VM_ID_BYTES)
            {
                throw new IllegalArgumentException("vmId is " + id.length + " bytes in UTF-8 (" + vmId.length() +
                    " chars); at most " + MAX_VM_ID_BYTES + " bytes are carried");
            }
            if (disks.size() > MAX_DISKS)
            {
                throw new IllegalArgumentException(disks.size() + " disks; at most " + MAX_DISKS + " are carried");
            }
            if (history.size() > MAX_HISTORY)
            {
                throw new IllegalArgumentException(history.size() + " checkpoints of history; at most " +
                    MAX_HISTORY + " are carried");
            }
            int offset = index;
            buffer.putByte(offset, (byte)minVersion);
            buffer.putByte(offset + 1, (byte)maxVersion);
            buffer.putShort(offset + 2, (short)0);
            buffer.putInt(offset + 4, pageSize);
            buffer.putLong(offset + 8, pageCount);
            buffer.putLong(offset + 16, heartbeatIntervalNs);
            buffer.putLong(offset + 24, generation);
            buffer.putInt(offset + 32, maxFramePayload);
            buffer.putInt(offset + 36, disks.size());
            offset += 40;
            for (final Disk disk : disks)
            {
                buffer.putInt(offset, disk.id());
                buffer.putInt(offset + 4, disk.blockSize());
                buffer.putLong(offset + 8, disk.sizeBytes());
                offset += 16;
            }
            buffer.putInt(offset, id.length);
            buffer.putBytes(offset + 4, id);
            offset += 4 + id.length;
            buffer.putLong(offset, firstEpoch);
            buffer.putInt(offset + 8, history.size());
            offset += 12;
            for (final Checkpoint checkpoint : history)
            {
                buffer.putLong(offset, checkpoint.epoch());
                buffer.putLong(offset + 8, checkpoint.fingerprint());
                offset += 16;
            }
            return offset - index;
        }

        /**
         * @return the most bytes {@link #encode} writes for this hello.
         */
        public int maxEncodedLength()
        {
            return 44 + disks.size() * 16 + MAX_VM_ID_BYTES * 4 + 12 + history.size() * 16;
        }

        /**
         * @param buffer source.
         * @param index  offset of the payload.
         * @param length payload length.
         * @return the decoded hello.
         * @throws ProtocolException if the payload is malformed.
         */
        public static Hello decode(final DirectBuffer buffer, final int index, final int length)
        {
            require(length >= 56, "HELLO payload of " + length + " bytes is too short");
            final int min = buffer.getByte(index) & 0xFF;
            final int max = buffer.getByte(index + 1) & 0xFF;
            require(buffer.getShort(index + 2) == 0, "HELLO reserved bytes are not zero");
            final int pageSize = buffer.getInt(index + 4);
            final long pageCount = buffer.getLong(index + 8);
            final long heartbeatNs = buffer.getLong(index + 16);
            final long generation = buffer.getLong(index + 24);
            final int maxFramePayload = buffer.getInt(index + 32);
            final int diskCount = buffer.getInt(index + 36);
            require(diskCount >= 0 && diskCount <= MAX_DISKS, "HELLO disk count " + diskCount);
            require(length >= 44 + diskCount * 16, "HELLO of " + length + " bytes cannot hold " + diskCount + " disks");
            require(heartbeatNs > 0 && generation >= 0, "HELLO heartbeat " + heartbeatNs + " or generation " +
                generation + " out of range");
            require(maxFramePayload > 0, "HELLO maximum frame payload " + maxFramePayload + " out of range");
            int offset = index + 40;
            final List<Disk> disks = new ArrayList<>(diskCount);
            for (int i = 0; i < diskCount; i++)
            {
                disks.add(new Disk(buffer.getInt(offset), buffer.getInt(offset + 4), buffer.getLong(offset + 8)));
                offset += 16;
            }
            final int idLength = buffer.getInt(offset);
            require(idLength >= 0 && idLength <= MAX_VM_ID_BYTES && offset + 4 + idLength + 12 <= index + length,
                "HELLO vmId length " + idLength + " does not fit the payload");
            final byte[] id = new byte[idLength];
            buffer.getBytes(offset + 4, id);
            final String vmId;
            try
            {
                // strict: a lenient decode would replace bad bytes and name a VM the active never meant
                vmId = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
                    .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT)
                    .decode(java.nio.ByteBuffer.wrap(id)).toString();
            }
            catch (final java.nio.charset.CharacterCodingException ex)
            {
                throw new ProtocolException(ProtocolException.Fault.MALFORMED, "HELLO vmId of " + idLength +
                    " bytes is not valid UTF-8");
            }
            offset += 4 + idLength;
            final long firstEpoch = buffer.getLong(offset);
            final int historyCount = buffer.getInt(offset + 8);
            offset += 12;
            require(firstEpoch >= 0, "HELLO first epoch " + firstEpoch + " is negative");
            require(historyCount >= 0 && historyCount <= MAX_HISTORY && offset + historyCount * 16 == index + length,
                "HELLO history of " + historyCount + " checkpoints does not fit the payload");
            final List<Checkpoint> history = new ArrayList<>(historyCount);
            for (int i = 0; i < historyCount; i++)
            {
                final long epoch = buffer.getLong(offset);
                require(epoch >= 1 && (firstEpoch == 0 || epoch < firstEpoch), "HELLO history names epoch " + epoch +
                    ", not between 1 and the first epoch " + firstEpoch);
                history.add(new Checkpoint(epoch, buffer.getLong(offset + 8)));
                offset += 16;
            }
            require(history.isEmpty() || firstEpoch > 0, "HELLO names a history but no first epoch");
            return new Hello(min, max, vmId, pageSize, pageCount, List.copyOf(disks), heartbeatNs, generation,
                maxFramePayload, firstEpoch, List.copyOf(history));
        }

        /**
         * Checks this (the active's) hello against what the standby protects and picks the version.
         *
         * @param expected the standby's own description.
         * @return the version to speak.
         * @throws ProtocolException naming the mismatch.
         */
        public int accept(final Hello expected)
        {
            final int version = Math.min(maxVersion, expected.maxVersion());
            if (version < Math.max(minVersion, expected.minVersion()))
            {
                throw new ProtocolException(ProtocolException.Fault.BAD_VERSION, "active speaks [" + minVersion +
                    ", " + maxVersion + "], standby [" + expected.minVersion() + ", " + expected.maxVersion() + "]");
            }
            if (!vmId.equals(expected.vmId()))
            {
                throw new ProtocolException(ProtocolException.Fault.VM_MISMATCH,
                    "active protects VM '" + vmId + "' but this standby holds '" + expected.vmId() + "'");
            }
            if (pageSize != expected.pageSize() || pageCount != expected.pageCount())
            {
                throw new ProtocolException(ProtocolException.Fault.GEOMETRY_MISMATCH, "active memory is " + pageCount +
                    " pages of " + pageSize + " bytes, standby " + expected.pageCount() + " pages of " +
                    expected.pageSize());
            }
            if (!disks.equals(expected.disks()))
            {
                throw new ProtocolException(ProtocolException.Fault.GEOMETRY_MISMATCH,
                    "active disks " + disks + " differ from standby disks " + expected.disks());
            }
            if (maxFramePayload > expected.maxFramePayload())
            {
                throw new ProtocolException(ProtocolException.Fault.BAD_LENGTH, "active sends frame payloads up " +
                    "to " + maxFramePayload + " bytes but this standby accepts at most " + expected.maxFramePayload() +
                    "; set the same maxFramePayload on both sides (or a larger one on the standby)");
            }
            return version;
        }
    }

    /**
     * The standby's WELCOME: the session it accepted.
     *
     * @param version          the protocol version the standby chose.
     * @param recoveryEpoch    the standby's newest committed epoch (0 if none).
     * @param generation       the generation of the session (the higher of both sides').
     * @param failureTimeoutNs the standby's failure timeout: silence after which it may promote, so the active knows
     *                         from when on to ask the arbiter whether it was superseded.
     * @param fingerprint      the fingerprint of the recovery point: a hash chained over every epoch the standby
     *                         committed (see {@link #chain}); an active compares it with its own record of that epoch.
     * @param resync           true if the recovery point is one of the checkpoints the HELLO named, with the same
     *                         fingerprint: the standby keeps it and takes only what changed since.
     */
    public record Welcome(int version, long recoveryEpoch, long generation, long failureTimeoutNs, long fingerprint,
        boolean resync)
    {
        /**
         * A welcome with no resync, for a recovery point of fingerprint 0 (an empty replica's).
         *
         * @param version          the protocol version the standby chose.
         * @param recoveryEpoch    the standby's newest committed epoch.
         * @param generation       the generation of the session.
         * @param failureTimeoutNs the standby's failure timeout.
         */
        public Welcome(final int version, final long recoveryEpoch, final long generation, final long failureTimeoutNs)
        {
            this(version, recoveryEpoch, generation, failureTimeoutNs, 0, false);
        }

        /**
         * @param buffer destination, with {@link #WELCOME_LENGTH} bytes from {@code index}.
         * @param index  offset.
         * @return bytes written.
         */
        public int encode(final MutableDirectBuffer buffer, final int index)
        {
            buffer.putInt(index, version);
            buffer.putInt(index + 4, resync ? WELCOME_RESYNC : 0);
            buffer.putLong(index + 8, recoveryEpoch);
            buffer.putLong(index + 16, generation);
            buffer.putLong(index + 24, failureTimeoutNs);
            buffer.putLong(index + 32, fingerprint);
            return WELCOME_LENGTH;
        }

        /**
         * Decodes and checks a WELCOME payload.
         *
         * @param buffer source.
         * @param index  offset of the payload.
         * @param length payload length.
         * @return the welcome.
         * @throws ProtocolException naming the field that is wrong: the length, a version outside this build's
         *                           range, an unknown flag, a failure timeout that is not positive.
         */
        public static Welcome decode(final DirectBuffer buffer, final int index, final int length)
        {
            require(length == WELCOME_LENGTH, "WELCOME of " + length + " bytes, expected " + WELCOME_LENGTH);
            final int version = buffer.getInt(index);
            if (version < FrameCodec.MIN_VERSION || version > FrameCodec.MAX_VERSION)
            {
                throw new ProtocolException(ProtocolException.Fault.BAD_VERSION, "standby chose version " + version +
                    ", this build speaks " + FrameCodec.MIN_VERSION + ".." + FrameCodec.MAX_VERSION);
            }
            final int flags = buffer.getInt(index + 4);
            if ((flags & ~WELCOME_RESYNC) != 0)
            {
                throw new ProtocolException(ProtocolException.Fault.RESERVED_BITS, "WELCOME flags 0x" +
                    Integer.toHexString(flags) + " carry bits this build does not know");
            }
            final long failureTimeoutNs = buffer.getLong(index + 24);
            require(failureTimeoutNs > 0, "standby's failure timeout " + failureTimeoutNs + " ns is not positive");
            return new Welcome(version, buffer.getLong(index + 8), buffer.getLong(index + 16), failureTimeoutNs,
                buffer.getLong(index + 32), (flags & WELCOME_RESYNC) != 0);
        }
    }

    /**
     * A checkpoint of a guest's history: its epoch and fingerprint.
     *
     * @param epoch       the epoch.
     * @param fingerprint the chained hash after that epoch.
     */
    public record Checkpoint(long epoch, long fingerprint)
    {
    }

    /**
     * The fingerprint of a history one epoch longer: both sides chain it over every committed epoch, from the
     * standby's recovery point at the session's start, with the sum of the epoch's frame CRCs that EPOCH_END carries.
     * Two images with the same epoch and fingerprint were built from the same frames. It detects a standby that
     * holds another history (another active's, an older session's), not a forgery (the secure link is for that).
     *
     * @param previous the fingerprint before the epoch (0 for an empty replica).
     * @param epoch    the epoch committed.
     * @param crcSum   the epoch's CRC sum.
     * @return the fingerprint after it.
     */
    public static long chain(final long previous, final long epoch, final long crcSum)
    {
        long h = previous * 0x9E3779B97F4A7C15L + epoch;
        h = (h ^ (h >>> 31)) * 0xBF58476D1CE4E5B9L + crcSum;
        h = (h ^ (h >>> 27)) * 0x94D049BB133111EBL;
        return h ^ (h >>> 31);
    }

    /**
     * Encodes a REFUSE or FAILURE_REPORT payload. A reason over {@link #MAX_REASON_BYTES} UTF-8 bytes is cut at the
     * last character boundary within the limit, so the peer decodes a clean prefix of it; the payload is then at most
     * {@link #MAX_REASON_PAYLOAD} bytes.
     *
     * @param buffer destination, with room for {@link #MAX_REASON_PAYLOAD} bytes from {@code index}.
     * @param index  offset.
     * @param reason why the handshake was refused, or why the guest is unhealthy; any length.
     * @return bytes written.
     */
    public static int encodeReason(final MutableDirectBuffer buffer, final int index, final String reason)
    {
        final byte[] bytes = reason.getBytes(StandardCharsets.UTF_8);
        int length = bytes.length;
        if (length > MAX_REASON_BYTES)
        {
            // back up over continuation bytes (10xxxxxx): cutting inside a character would decode as U+FFFD
            length = MAX_REASON_BYTES;
            while (length > 0 && (bytes[length] & 0xC0) == 0x80)
            {
                length--;
            }
        }
        buffer.putInt(index, length);
        buffer.putBytes(index + 4, bytes, 0, length);
        return 4 + length;
    }

    /**
     * @param buffer source.
     * @param index  offset of the payload.
     * @param length payload length.
     * @return the reason.
     */
    public static String decodeReason(final DirectBuffer buffer, final int index, final int length)
    {
        require(length >= 4, "REFUSE payload too short");
        final int reasonLength = buffer.getInt(index);
        require(reasonLength >= 0 && reasonLength == length - 4, "REFUSE reason length " + reasonLength);
        final byte[] bytes = new byte[reasonLength];
        buffer.getBytes(index + 4, bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    /**
     * Encodes a FAILURE_REPORT payload: the reason as {@link #encodeReason}, then (from version
     * {@link #FAILURE_REPORT_RESTORE_VERSION}) the restore time.
     *
     * @param buffer          destination, with room for {@link #MAX_FAILURE_REPORT_PAYLOAD} bytes from {@code index}.
     * @param index           offset.
     * @param version         the session's protocol version.
     * @param reason          why the guest is unhealthy; any length.
     * @param restoreAtMillis the newest commit time (ms since 1970) the standby may resume, or {@link #RESTORE_LATEST}.
     * @return bytes written.
     */
    public static int encodeFailureReport(final MutableDirectBuffer buffer, final int index, final int version,
        final String reason, final long restoreAtMillis)
    {
        final int length = encodeReason(buffer, index, reason);
        if (version < FAILURE_REPORT_RESTORE_VERSION)
        {
            return length;
        }
        buffer.putLong(index + length, restoreAtMillis);
        return length + 8;
    }

    /**
     * A decoded FAILURE_REPORT.
     *
     * @param reason          why the active's probe finds the guest unhealthy.
     * @param restoreAtMillis the newest commit time (ms since 1970) the standby may resume, or
     *                        {@link #RESTORE_LATEST}.
     */
    public record FailureReport(String reason, long restoreAtMillis)
    {
    }

    /**
     * @param buffer  source.
     * @param index   offset of the payload.
     * @param length  payload length.
     * @param version the session's protocol version.
     * @return the report (version 4 carries no time: the latest recovery point).
     * @throws ProtocolException if the lengths do not add up or the time is negative.
     */
    public static FailureReport decodeFailureReport(final DirectBuffer buffer, final int index, final int length,
        final int version)
    {
        if (version < FAILURE_REPORT_RESTORE_VERSION)
        {
            return new FailureReport(decodeReason(buffer, index, length), RESTORE_LATEST);
        }
        require(length >= 12, "FAILURE_REPORT payload of " + length + " bytes is too short for a reason and a time");
        final String reason = decodeReason(buffer, index, length - 8);
        final long restoreAtMillis = buffer.getLong(index + length - 8);
        require(restoreAtMillis >= 0, "FAILURE_REPORT restore time " + restoreAtMillis + " is before 1970");
        return new FailureReport(reason, restoreAtMillis);
    }

    private static void require(final boolean condition, final String message)
    {
        if (!condition)
        {
            throw new ProtocolException(ProtocolException.Fault.MALFORMED, message);
        }
    }
}
