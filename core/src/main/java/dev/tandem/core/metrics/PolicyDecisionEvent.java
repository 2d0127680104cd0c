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
 * JFR: the checkpoint policy changed the period, with what it saw. Emitted only when the period changes and only
 * while a recording enables it.
 */
@Name("dev.tandem.PolicyDecision")
@Label("Tandem Policy Decision")
@Category({"Tandem", "Active"})
@Description("The checkpoint policy moved the period, and the inputs that made it")
@StackTrace(false)
public final class PolicyDecisionEvent extends Event
{
    private static final EventType TYPE = EventType.getEventType(PolicyDecisionEvent.class);

    /** The VM. */
    @Label("VM")
    public String vmId;

    /** The policy's name. */
    @Label("Policy")
    public String policy;

    /** The checkpoint after which it decided. */
    @Label("Epoch")
    public long epoch;

    /** Why (a {@code CheckpointPolicy.Decision}). */
    @Label("Decision")
    public String decision;

    /** The period before. */
    @Label("Previous Period")
    @Timespan(Timespan.NANOSECONDS)
    public long previousPeriodNs;

    /** The period after. */
    @Label("Next Period")
    @Timespan(Timespan.NANOSECONDS)
    public long nextPeriodNs;

    /** The checkpoint's pause. */
    @Label("Pause")
    @Timespan(Timespan.NANOSECONDS)
    public long pauseNs;

    /** The newest checkpoint-to-ack latency. */
    @Label("Commit Latency")
    @Timespan(Timespan.NANOSECONDS)
    public long commitLatencyNs;

    /** Time the newest fully sent delta took on the wire. */
    @Label("Send Time")
    @Timespan(Timespan.NANOSECONDS)
    public long sendNs;

    /** Epochs checkpointed and not yet acknowledged. */
    @Label("Epochs In Flight")
    public long epochsInFlight;

    /**
     * @return whether a recording wants these events (checked before allocating one).
     */
    public static boolean enabled()
    {
        return TYPE.isEnabled();
    }
}
