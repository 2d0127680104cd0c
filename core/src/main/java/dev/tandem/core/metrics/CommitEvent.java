package dev.tandem.core.metrics;

import jdk.jfr.Category;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.EventType;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;
import jdk.jfr.Timespan;

/**
 * JFR: the standby acknowledged an epoch and its output was released. Created only while a recording enables it.
 */
@Name("dev.tandem.Commit")
@Label("Tandem Commit")
@Category({"Tandem", "Active"})
@Description("Ack of an epoch from the standby; its held output left")
@StackTrace(false)
public final class CommitEvent extends Event
{
    private static final EventType TYPE = EventType.getEventType(CommitEvent.class);

    /** The VM. */
    @Label("VM")
    public String vmId;

    /** The epoch. */
    @Label("Epoch")
    public long epoch;

    /** Checkpoint to ack. */
    @Label("Commit Latency")
    @Timespan(Timespan.NANOSECONDS)
    public long latencyNs;

    /**
     * @return whether a recording wants these events.
     */
    public static boolean enabled()
    {
        return TYPE.isEnabled();
    }
}
