package dev.tandem.core.metrics;

import org.agrona.MutableDirectBuffer;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.status.CountersReader;

import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Every counter Tandem publishes in its {@link CountersFile}: the Agrona type id (stable across versions: a reader
 * may rely on it), the side that owns it, and what it counts. Latencies are in nanoseconds, published from the
 * HdrHistogram distributions at most {@link ProcessCounters#LATENCY_PUBLISH_INTERVAL_NS} apart and whenever a status
 * snapshot is taken.
 * <p>
 * The key of each counter:
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +---------------------------------------------------------------+
 * |                     Role (1 active, 2 standby)                |
 * +---------------------------------------------------------------+
 * |                       VM Id Length (bytes)                    |
 * +---------------------------------------------------------------+
 * |                VM Id (UTF-8, at most 104 bytes)              ...
 * +---------------------------------------------------------------+
 * </pre>
 */
public enum CounterType
{
    /** The active's {@link ProtectionState} as its ordinal. */
    ACTIVE_STATE(100, Role.ACTIVE,
        "state (0 syncing, 1 protected, 2 arbitrating, 3 failed, 4 fenced, 5 stopped)"),
    /** Checkpoints taken. */
    ACTIVE_CHECKPOINTS(101, Role.ACTIVE, "checkpoints"),
    /** Newest checkpoint epoch. */
    ACTIVE_CHECKPOINT_EPOCH(102, Role.ACTIVE, "last checkpoint epoch"),
    /** Newest epoch the standby acknowledged. */
    ACTIVE_ACKED_EPOCH(103, Role.ACTIVE, "acked epoch"),
    /** Bytes written to the standby. */
    ACTIVE_BYTES_SENT(104, Role.ACTIVE, "bytes sent"),
    /** Frames written to the standby. */
    ACTIVE_FRAMES_SENT(105, Role.ACTIVE, "frames sent"),
    /** Heartbeats written to the standby. */
    ACTIVE_HEARTBEATS(106, Role.ACTIVE, "heartbeats sent"),
    /** Dirty pages copied into staging. */
    ACTIVE_PAGES_COPIED(107, Role.ACTIVE, "pages copied"),
    /** Deltas larger than one staging area. */
    ACTIVE_STAGING_OVERFLOWS(108, Role.ACTIVE, "staging overflows"),
    /** Checkpoints delayed because the bound of epochs in flight was reached. */
    ACTIVE_IN_FLIGHT_WAITS(109, Role.ACTIVE, "in-flight waits"),
    /** Page bytes handed to the page codec. */
    ACTIVE_PAGE_BYTES_RAW(110, Role.ACTIVE, "page bytes raw"),
    /** Page bytes the codec made of them. */
    ACTIVE_PAGE_BYTES_ENCODED(111, Role.ACTIVE, "page bytes encoded"),
    /** Pages sent as zero pages. */
    ACTIVE_ZERO_PAGES(112, Role.ACTIVE, "zero pages"),
    /** Pages sent raw. */
    ACTIVE_RAW_PAGES(113, Role.ACTIVE, "raw pages"),
    /** Pages sent as LZ4. */
    ACTIVE_LZ4_PAGES(114, Role.ACTIVE, "lz4 pages"),
    /** Pages sent as LZ4 of the XOR with the version sent before. */
    ACTIVE_DELTA_PAGES(115, Role.ACTIVE, "xor-lz4 pages"),
    /** Median guest pause of a checkpoint, after the baseline. */
    ACTIVE_PAUSE_P50_NS(116, Role.ACTIVE, "pause p50 ns"),
    /** 99th percentile guest pause. */
    ACTIVE_PAUSE_P99_NS(117, Role.ACTIVE, "pause p99 ns"),
    /** Longest guest pause. */
    ACTIVE_PAUSE_MAX_NS(118, Role.ACTIVE, "pause max ns"),
    /** 99th percentile of checkpoint to ack. */
    ACTIVE_COMMIT_P99_NS(119, Role.ACTIVE, "commit p99 ns"),
    /** 99th percentile of the time a network frame was held, offer to release. */
    ACTIVE_OUTPUT_HOLD_P99_NS(120, Role.ACTIVE, "output hold p99 ns"),
    /** The fencing generation served. */
    ACTIVE_GENERATION(121, Role.ACTIVE, "generation"),
    /** Questions asked of the arbiter (ownership checks and claims after losing the standby). */
    ACTIVE_ARBITER_ATTEMPTS(122, Role.ACTIVE, "arbiter attempts"),
    /** Sessions resumed after a lost link. */
    ACTIVE_RECONNECTS(123, Role.ACTIVE, "reconnects"),
    /** Bytes of the resyncs (each resumed session's first epoch). */
    ACTIVE_RESYNC_BYTES(124, Role.ACTIVE, "resync bytes"),
    /** Time unprotected after the first baseline, up to the newest session's ack (it grows only then). */
    ACTIVE_UNPROTECTED_NS(125, Role.ACTIVE, "unprotected ns"),

    /** 1 while an active is connected and past the handshake. */
    STANDBY_CONNECTED(200, Role.STANDBY, "connected"),
    /** Epochs committed. */
    STANDBY_COMMITS(201, Role.STANDBY, "commits"),
    /** The recovery point's epoch. */
    STANDBY_COMMITTED_EPOCH(202, Role.STANDBY, "last committed epoch"),
    /** Frames accepted. */
    STANDBY_FRAMES_RECEIVED(203, Role.STANDBY, "frames received"),
    /** Bytes read from connections. */
    STANDBY_BYTES_RECEIVED(204, Role.STANDBY, "bytes received"),
    /** Frames or handshakes refused. */
    STANDBY_REFUSALS(205, Role.STANDBY, "refusals"),
    /** Sessions accepted: the first connection of an active and every reconnection. */
    STANDBY_SESSIONS(206, Role.STANDBY, "sessions"),
    /** Promotions (failovers) this standby performed. */
    STANDBY_PROMOTIONS(207, Role.STANDBY, "promotions"),
    /** 99th percentile of barrier read to ack written. */
    STANDBY_COMMIT_P99_NS(208, Role.STANDBY, "commit p99 ns"),
    /** The fencing generation served. */
    STANDBY_GENERATION(209, Role.STANDBY, "generation");

    /** Which side of protection a counter belongs to; the first int of its key. */
    public enum Role
    {
        /** The protected guest's side. */
        ACTIVE(1, "active"),
        /** The replica's side. */
        STANDBY(2, "standby");

        private final int code;
        private final String label;

        Role(final int code, final String label)
        {
            this.code = code;
            this.label = label;
        }

        /**
         * @return the code in the key.
         */
        public int code()
        {
            return code;
        }

        /**
         * @return the word in labels.
         */
        public String label()
        {
            return label;
        }

        /**
         * @param code a key's role code.
         * @return the role, or null if unknown.
         */
        public static Role of(final int code)
        {
            for (final Role role : values())
            {
                if (role.code == code)
                {
                    return role;
                }
            }
            return null;
        }
    }

    /** Offset of the role in the key. */
    public static final int KEY_ROLE_OFFSET = 0;
    /** Offset of the VM id's length in the key. */
    public static final int KEY_VM_ID_LENGTH_OFFSET = 4;
    /** Offset of the VM id in the key. */
    public static final int KEY_VM_ID_OFFSET = 8;
    /** Longest VM id prefix a key carries; the label carries it whole (up to the label's limit). */
    public static final int KEY_MAX_VM_ID_BYTES = CountersReader.MAX_KEY_LENGTH - KEY_VM_ID_OFFSET;

    private final int typeId;
    private final Role role;
    private final String description;

    CounterType(final int typeId, final Role role, final String description)
    {
        this.typeId = typeId;
        this.role = role;
        this.description = description;
    }

    /**
     * @return the Agrona type id.
     */
    public int typeId()
    {
        return typeId;
    }

    /**
     * @return the side that owns it.
     */
    public Role role()
    {
        return role;
    }

    /**
     * @return what it counts, as in the label.
     */
    public String description()
    {
        return description;
    }

    /**
     * @param vmId the VM the counter is of.
     * @return the label: {@code <role> <vmId>: <description>}, cut to Agrona's label limit.
     */
    public String label(final String vmId)
    {
        String label = role.label + " " + vmId + ": " + description;
        while (label.getBytes(StandardCharsets.UTF_8).length > CountersReader.MAX_LABEL_LENGTH)
        {
            // a VM id of up to 256 bytes and a description fit; cut only what Agrona could not store
            label = label.substring(0, label.length() - 1);
        }
        return label;
    }

    /**
     * Writes the key of a counter of this type.
     *
     * @param key   the key buffer Agrona hands out (at most {@link CountersReader#MAX_KEY_LENGTH} bytes).
     * @param vmId  the VM.
     */
    public void writeKey(final MutableDirectBuffer key, final String vmId)
    {
        final byte[] bytes = vmId.getBytes(StandardCharsets.UTF_8);
        final int length = Math.min(bytes.length, KEY_MAX_VM_ID_BYTES);
        key.putInt(KEY_ROLE_OFFSET, role.code, ByteOrder.LITTLE_ENDIAN);
        key.putInt(KEY_VM_ID_LENGTH_OFFSET, length, ByteOrder.LITTLE_ENDIAN);
        key.putBytes(KEY_VM_ID_OFFSET, bytes, 0, length);
    }

    /**
     * @param key a counter's key buffer, as {@link CountersReader.MetaData} hands it.
     * @return the VM id it carries (a prefix when longer than {@link #KEY_MAX_VM_ID_BYTES}).
     */
    public static String vmIdOfKey(final DirectBuffer key)
    {
        final int length = key.getInt(KEY_VM_ID_LENGTH_OFFSET, ByteOrder.LITTLE_ENDIAN);
        if (length < 0 || length > KEY_MAX_VM_ID_BYTES)
        {
            return "";
        }
        return key.getStringWithoutLengthUtf8(KEY_VM_ID_OFFSET, length);
    }

    /**
     * @param typeId an Agrona type id.
     * @return the type, or null if not Tandem's.
     */
    public static CounterType of(final int typeId)
    {
        for (final CounterType type : values())
        {
            if (type.typeId == typeId)
            {
                return type;
            }
        }
        return null;
    }
}
