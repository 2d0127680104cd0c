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
 * JFR: one checkpoint of a protected guest. Created only while a recording enables it, so checkpoints allocate
 * nothing otherwise.
 */
@Name("dev.tandem.Checkpoint")
@Label("Tandem Checkpoint")
@Category({"Tandem", "Active"})
@Description("The guest was paused, its dirty pages and state copied to staging, and resumed")
@StackTrace(false)
public final class CheckpointEvent extends Event
{
    private static final EventType TYPE = EventType.getEventType(CheckpointEvent.class);

    /** The VM. */
    @Label("VM")
    public String vmId;

    /** The checkpoint's epoch. */
    @Label("Epoch")
    public long epoch;

    /** Pages copied. */
    @Label("Dirty Pages")
    public long dirtyPages;

    /** The guest's pause. */
    @Label("Pause")
    @Timespan(Timespan.NANOSECONDS)
    public long pauseNs;

    /** The period the policy chose next. */
    @Label("Next Period")
    @Timespan(Timespan.NANOSECONDS)
    public long nextPeriodNs;

    /** Why. */
    @Label("Policy Decision")
    public String decision;

    /**
     * @return whether a recording wants these events (checked before allocating one).
     */
    public static boolean enabled()
    {
        return TYPE.isEnabled();
    }
}
