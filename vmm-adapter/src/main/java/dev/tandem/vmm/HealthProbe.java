package dev.tandem.vmm;

/**
 * Tells whether the guest is making progress and behaving normally (watchdog, heartbeat inside the guest,
 * error counters of the VMM). Polled by the library on the active; an unhealthy answer is reported to the
 * standby, which then promotes from its recovery point.
 */
@FunctionalInterface
public interface HealthProbe
{
    /**
     * @return null when healthy, otherwise a short description of what is wrong.
     */
    String unhealthyReason();

    /**
     * A probe that always reports healthy.
     */
    HealthProbe ALWAYS_HEALTHY = () -> null;
}
