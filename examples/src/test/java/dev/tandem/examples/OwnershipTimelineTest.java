package dev.tandem.examples;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The harness's ownership count and false-takeover classification on synthetic records, so that each is seen to
 * fail when it should: an overlap counts 2, a promotion before the fault is a false takeover.
 */
class OwnershipTimelineTest
{
    private static final long T = 1_700_000_000_000_000L;

    @Test
    void oldActiveSilentBeforeTheResumeIsOneOwner()
    {
        final OwnershipTimeline.Records active = OwnershipTimeline.Records.parse(List.of(
            "release " + T + " " + (T + 900) + " 12", "release " + (T + 5_000) + " " + (T + 5_400) + " 3",
            "stopped " + (T + 400_000) + " guest-stopped"));
        final OwnershipTimeline.Records standby = OwnershipTimeline.Records.parse(List.of(
            "decided " + (T + 250_000), "resumed " + (T + 300_000), "release " + (T + 310_000) + " " + (T + 320_000) +
            " 4"));
        final OwnershipTimeline.Ownership ownership = OwnershipTimeline.ownersMax(active, standby);
        assertEquals(1, ownership.owners(), ownership.overlap());
        assertEquals(T + 5_400, active.lastReleaseUs());
    }

    @Test
    void oldActiveReleasingAfterTheResumeMakesTwoOwners()
    {
        // the old active let output leave 1 ms after the promoted guest started: two owners at once
        final OwnershipTimeline.Records active = OwnershipTimeline.Records.parse(List.of(
            "release " + T + " " + (T + 900) + " 12", "release " + (T + 301_000) + " " + (T + 301_000) + " 1"));
        final OwnershipTimeline.Records standby = OwnershipTimeline.Records.parse(List.of(
            "decided " + (T + 250_000), "resumed " + (T + 300_000)));
        final OwnershipTimeline.Ownership ownership = OwnershipTimeline.ownersMax(active, standby);
        assertEquals(2, ownership.owners());
        assertTrue(ownership.overlap().contains("1.000 ms after the promoted guest resumed"), ownership.overlap());
        assertTrue(ownership.overlap().contains("never stopped"), ownership.overlap());
    }

    @Test
    void aReleaseAtTheVeryInstantOfTheResumeOverlaps()
    {
        final OwnershipTimeline.Records active = OwnershipTimeline.Records.parse(List.of(
            "release " + T + " " + (T + 300_000) + " 2", "stopped " + (T + 299_000) + " fenced"));
        final OwnershipTimeline.Records standby = OwnershipTimeline.Records.parse(List.of("resumed " + (T + 300_000)));
        // released after its own stop, too: output that left counts whatever the active believed
        assertEquals(2, OwnershipTimeline.ownersMax(active, standby).owners());
    }

    @Test
    void nobodyOwningIsNotOne()
    {
        assertEquals(0, OwnershipTimeline.ownersMax(OwnershipTimeline.Records.EMPTY,
            OwnershipTimeline.Records.EMPTY).owners());
        assertEquals(3, OwnershipTimeline.maxOverlap(List.of(new long[] {0, 10}, new long[] {5, 20},
            new long[] {10, 30}, new long[] {31, 40})));
    }

    @Test
    void tornAndUnknownLinesAreSkipped()
    {
        final OwnershipTimeline.Records records = OwnershipTimeline.Records.parse(List.of("release 5 9 1",
            "release 12", "resumed", "whatever 3", "", "killed 77 delta-send"));
        assertEquals(1, records.releases().size());
        assertEquals(77, records.killedUs());
        assertEquals(OwnershipTimeline.NONE, records.resumedUs());
        assertEquals(9, records.lastReleaseUs());
    }

    @Test
    void promotionBeforeTheFaultIsAFalseTakeover()
    {
        final OwnershipTimeline.Records early = OwnershipTimeline.Records.parse(List.of(
            "decided " + (T - 40_000), "resumed " + (T - 35_000)));
        final String reason = FailoverHarness.classifyTakeover(T, "kill", false, early);
        assertTrue(reason != null && reason.startsWith("false takeover: "), reason);
        assertTrue(reason.contains("40.000 ms before the kill"), reason);
    }

    @Test
    void promotionAfterTheFaultIsATakeover()
    {
        final OwnershipTimeline.Records late = OwnershipTimeline.Records.parse(List.of(
            "decided " + (T + 210_000), "resumed " + (T + 215_000)));
        assertNull(FailoverHarness.classifyTakeover(T, "partition", false, late));
        assertNull(FailoverHarness.classifyTakeover(T, "kill", false, OwnershipTimeline.Records.EMPTY));
    }

    @Test
    void aPromotionRecordSeenBeforeTheFaultIsAFalseTakeoverEvenWithoutTimes()
    {
        final String reason = FailoverHarness.classifyTakeover(T, "partition", true, OwnershipTimeline.Records.EMPTY);
        assertTrue(reason != null && reason.startsWith("false takeover: ") && reason.contains("partition"), reason);
    }

    @Test
    void resumedWithoutADecisionRecordIsJudgedByTheResume()
    {
        final OwnershipTimeline.Records early = OwnershipTimeline.Records.parse(List.of("resumed " + (T - 1)));
        assertTrue(OwnershipTimeline.falseTakeover(T, "kill", early).contains("resumed the guest"));
    }
}
