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
 * JFR: the standby committed an epoch and sent its ack, with the time of each of its stages. Created only while a
 * recording enables it; the session's baseline is not among them (its stages are the whole first copy).
 */
@Name("dev.tandem.StandbyCommit")
@Label("Tandem Standby Commit")
@Category({"Tandem", "Standby"})
@Description("An epoch committed on the standby: barrier to end read, applied, acknowledged")
@StackTrace(false)
public final class StandbyCommitEvent extends Event
{
    private static final EventType TYPE = EventType.getEventType(StandbyCommitEvent.class);

    /** The VM. */
    @Label("VM")
    public String vmId;

    /** The epoch. */
    @Label("Epoch")
    public long epoch;

    /** Barrier read to the epoch's end read: the delta on the wire. */
    @Label("Receive")
    @Timespan(Timespan.NANOSECONDS)
    public long receiveNs;

    /** The epoch's end read to its writes, pages and state applied. */
    @Label("Apply")
    @Timespan(Timespan.NANOSECONDS)
    public long applyNs;

    /** Barrier read to ack written. */
    @Label("Commit")
    @Timespan(Timespan.NANOSECONDS)
    public long commitNs;

    /**
     * @return whether a recording wants these events.
     */
    public static boolean enabled()
    {
        return TYPE.isEnabled();
    }
}
