package dev.tandem.core.metrics;

import jdk.jfr.Category;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;
import jdk.jfr.Timespan;

/**
 * JFR: the standby promoted and resumed the guest.
 */
@Name("dev.tandem.Failover")
@Label("Tandem Failover")
@Category({"Tandem", "Standby"})
@Description("The standby promoted from its recovery point")
@StackTrace(false)
public final class FailoverEvent extends Event
{
    /** The VM. */
    @Label("VM")
    public String vmId;

    /** Why. */
    @Label("Reason")
    public String reason;

    /** The epoch resumed from. */
    @Label("Recovery Epoch")
    public long recoveryEpoch;

    /** The new generation. */
    @Label("Generation")
    public long generation;

    /** Last frame of the active to the decision. */
    @Label("Detection")
    @Timespan(Timespan.NANOSECONDS)
    public long detectionNs;

    /** Decision to the guest running. */
    @Label("Promotion")
    @Timespan(Timespan.NANOSECONDS)
    public long promotionNs;

    /**
     * Registers the event type now (it costs tens of milliseconds once), so a promotion does not pay for it.
     */
    public static void register()
    {
        jdk.jfr.EventType.getEventType(FailoverEvent.class);
    }
}
