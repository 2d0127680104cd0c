package dev.tandem.vmm;

import java.time.Instant;

/**
 * Tells whether the guest is making progress and behaving normally (watchdog, heartbeat inside the guest,
 * error counters of the VMM). Polled by the library on the active; an unhealthy answer is reported to the
 * standby, which then promotes from its recovery point: the latest one, or the newest one from before the guest went
 * wrong when the probe names that time ({@link #lastKnownGood()}).
 */
@FunctionalInterface
public interface HealthProbe
{
    /**
     * @return null when healthy, otherwise a short description of what is wrong.
     */
    String unhealthyReason();

    /**
     * Asked once, right after {@link #unhealthyReason()} complained: until when the guest was known to behave (the
     * last time its watchdog was fed, the last clean answer of its heartbeat). The standby then resumes the newest
     * checkpoint it committed at or before that time rather than its latest one, which may already hold the fault
     * (a corrupted page cache, a wedged driver). That takes back what the guest did since, output already released
     * included: the probe asks for it only when the guest's state since is worth less than its output.
     * <p>
     * An earlier checkpoint needs a DURABLE standby with a retention window covering that time
     * ({@code StandbyContext.retentionNs} or {@code retentionEpochs}); a standby that cannot give it resumes its
     * latest recovery point and says why in the promotion's reason. Times are wall-clock times of the two hosts,
     * which are assumed synchronised (NTP): the choice is as exact as their clocks agree.
     *
     * @return the time, or null (the default) for the latest recovery point.
     */
    default Instant lastKnownGood()
    {
        return null;
    }

    /**
     * Asked once, right after {@link #unhealthyReason()} complained (and {@link #lastKnownGood()} answered): where
     * the guest is restored. False (the default): on the standby's host, which promotes from its recovery point while
     * this side stops its copy. True: here, on the active's own host, from the standby's checkpoint (the latest, or the
     * newest from {@link #lastKnownGood()} or before): the library pauses the guest after one more checkpoint, waits
     * for its acknowledgement, asks the standby for the pages, disk blocks and component states that differ at the
     * chosen checkpoint, writes them into the guest here ({@code GuestMemory.copyIn}, {@link VirtualDisk#write},
     * {@code StatefulComponent.restore}), and resumes it; the next checkpoint carries them back to the standby, which
     * stays the standby. Output already released is not taken back here either. Needs every disk
     * {@link VirtualDisk#writable()} and a standby of protocol version 6; otherwise the guest is handed over as for
     * false, and the log says why. A restore cut short once the guest was partly written hands it over too (it never
     * resumes here half restored). A standby that can give nothing earlier than the held checkpoint (no retention
     * window covering the time) restores that checkpoint itself, which leaves the guest as it was: if the probe then
     * complains again, the guest is handed over instead of restored the same way again.
     *
     * @return true to restore the guest on this host.
     */
    default boolean restoreHere()
    {
        return false;
    }

    /**
     * A probe that always reports healthy.
     */
    HealthProbe ALWAYS_HEALTHY = () -> null;
}
