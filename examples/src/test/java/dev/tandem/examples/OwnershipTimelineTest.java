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

    /**
     * Two handovers: the promoted guest, serving as the active in its turn, owns the guest from its resume to its
     * last release; the restarted standby's guest from its resume on. A release of the middle one after the last
     * one resumed is two owners, named.
     */
    @Test
    void aChainOfThreeLivesCountsTheMiddleOneUntilItsLastRelease()
    {
        final OwnershipTimeline.Records first = OwnershipTimeline.Records.parse(List.of(
            "release " + T + " " + (T + 900) + " 12", "stopped " + (T + 1_000) + " guest-stopped"));
        final OwnershipTimeline.Records middle = OwnershipTimeline.Records.parse(List.of("decided " + (T + 1_100),
            "resumed " + (T + 2_000), "release " + (T + 2_100) + " " + (T + 500_000) + " 40"));
        final OwnershipTimeline.Records last = OwnershipTimeline.Records.parse(List.of("decided " + (T + 800_000),
            "resumed " + (T + 900_000)));
        final List<OwnershipTimeline.Life> lives = List.of(new OwnershipTimeline.Life("the old active", first),
            new OwnershipTimeline.Life("the promoted guest", middle), new OwnershipTimeline.Life("the restarted " +
            "standby's guest", last));
        assertEquals(1, OwnershipTimeline.ownersMax(lives).owners(), OwnershipTimeline.ownersMax(lives).overlap());

        final OwnershipTimeline.Records late = OwnershipTimeline.Records.parse(List.of("resumed " + (T + 400_000)));
        final OwnershipTimeline.Ownership overlap = OwnershipTimeline.ownersMax(List.of(lives.get(0), lives.get(1),
            new OwnershipTimeline.Life("the restarted standby's guest", late)));
        assertEquals(2, overlap.owners());
        assertTrue(overlap.overlap().startsWith("the promoted guest let output leave until ") &&
            overlap.overlap().contains("100.000 ms after the restarted standby's guest resumed"), overlap.overlap());
    }

    /**
     * A planned switchover's promotion is expected: decided after the harness asked for it, it is no false takeover;
     * decided before the request, it is one, like any promotion before its fault.
     */
    @Test
    void thePlannedPromotionAfterTheSwitchoverRequestIsNoFalseTakeover()
    {
        final OwnershipTimeline.Records planned = OwnershipTimeline.Records.parse(List.of(
            "decided " + (T + 30_000), "resumed " + (T + 250_000)));
        assertNull(FailoverHarness.classifyTakeover(T, "switchover", false, planned));
        final String early = FailoverHarness.classifyTakeover(T + 40_000, "switchover", false, planned);
        assertTrue(early != null && early.contains("10.000 ms before the switchover"), early);
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
