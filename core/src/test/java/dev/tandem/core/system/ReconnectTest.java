package dev.tandem.core.system;

import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.metrics.ProtectionState;
import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.core.metrics.ReconnectStatus;
import dev.tandem.core.transport.LoopbackRelay;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Links that heal, over real loopback TCP through a relay: a reset of every connection, and a partition that heals
 * before the standby's failure timeout. Both sides live, so the active reconnects by itself and the standby, which
 * states its recovery point, gets only what changed since (a quick resync): the pages and disk blocks of every epoch
 * it had not acknowledged and everything the guest wrote meanwhile. The fixture compares the standby's state with
 * the active's at every commit, the resync's epoch included, so a page or block the record missed fails the test.
 */
@LeakCheck
class ReconnectTest
{
    private static final long GUEST_BYTES = 64L << 20;

    @TempDir
    Path dir;

    private SimulatedVmm.Builder guest(final String name)
    {
        return SimulatedVmm.builder()
            .vmId(name)
            .memoryBytes(GUEST_BYTES)
            .workload(Workload.HOTSET)
            .hotsetPages(512)
            .pagesPerMillisecond(100)
            .disk(dir.resolve(name + "-disk.img"), 16L << 20)
            .diskEveryTicks(1)
            .packetEveryTicks(1)
            .seed(5);
    }

    /**
     * The active reaches the standby through a relay; the standby waits 5 s of silence before it promotes, longer
     * than any outage here.
     */
    private ReplicationFixture protect(final String name, final AtomicReference<LoopbackRelay> relay,
        final int resyncExtents) throws Exception
    {
        return protect(guest(name), name, true, relay, ctx -> ctx.resyncExtents(resyncExtents));
    }

    private ReplicationFixture protect(final SimulatedVmm.Builder guest, final String name, final boolean digests,
        final AtomicReference<LoopbackRelay> relay, final java.util.function.Consumer<ActiveContext> more)
        throws Exception
    {
        return new ReplicationFixture(guest, new TcpTransport(), "127.0.0.1:0", dir.resolve(name), digests,
            (ctx, standby) ->
            {
                try
                {
                    relay.set(LoopbackRelay.to(standby.endpoint()));
                }
                catch (final java.io.IOException ex)
                {
                    throw new java.io.UncheckedIOException(ex);
                }
                ctx.standbyEndpoint(relay.get().endpoint())
                    .standbySilenceTimeoutNs(Duration.ofMillis(300).toNanos())
                    .reconnectWindowNs(Duration.ofSeconds(20).toNanos());
                more.accept(ctx);
            },
            standbyCtx -> standbyCtx.failureTimeoutNs(Duration.ofSeconds(5).toNanos()));
    }

    @Test
    void aResetLinkReconnectsAndResendsOnlyWhatChanged() throws Exception
    {
        final AtomicReference<LoopbackRelay> relay = new AtomicReference<>();
        try (ReplicationFixture fixture = protect("reset", relay, 65_536))
        {
            try
            {
                fixture.awaitCommits(20, Duration.ofSeconds(60));
                final long before = fixture.standby.lastCommittedEpoch();
                // every connection reset, new ones refused for half a second
                relay.get().reset(Duration.ofMillis(500));
                awaitReconnected(fixture, 1);
                awaitCommitsAfter(fixture, fixture.standby.lastCommittedEpoch() + 10);

                final ProtectionStatus status = fixture.active.status();
                final ReconnectStatus reconnect = status.reconnect();
                assertEquals(ProtectionState.PROTECTED, status.state(), status.toString());
                assertEquals(1, reconnect.reconnects(), reconnect.toString());
                assertEquals(1, reconnect.quickResyncs(), reconnect.toString());
                assertTrue(reconnect.lastResync().startsWith("quick"), reconnect.lastResync());
                assertTrue(reconnect.lastResyncBytes() > 0, reconnect.toString());
                // what the guest dirtied since the standby's recovery point (its hot set and about 9 000 scattered
                // writes in the second it was cut off), not the 16 384 pages of the guest nor its 16 MiB disk
                assertTrue(reconnect.lastResyncBytes() < GUEST_BYTES / 4, "resync of " +
                    reconnect.lastResyncBytes() + " bytes for a " + GUEST_BYTES + "-byte guest: " + reconnect);
                assertTrue(reconnect.lastResyncPages() < GUEST_BYTES / 4096 / 2, reconnect.toString());
                assertTrue(reconnect.unprotectedNs() > 0, reconnect.toString());
                assertTrue(fixture.standby.lastCommittedEpoch() > before);
                assertEquals("[]", fixture.mismatches.toString(), "the standby differs from the active");
                assertEquals(0, fixture.standby.promotion() == null ? 0 : 1, "the standby did not promote");
            }
            finally
            {
                relay.get().close();
            }
        }
    }

    @Test
    void aPartitionThatHealsBeforeTheStandbysTimeoutReconnects() throws Exception
    {
        final AtomicReference<LoopbackRelay> relay = new AtomicReference<>();
        try (ReplicationFixture fixture = protect("heal", relay, 65_536))
        {
            try
            {
                fixture.awaitCommits(20, Duration.ofSeconds(60));
                relay.get().stall();
                // past the active's silence timeout (300 ms): it drops the session and holds output
                await(() -> fixture.active.status().state() == ProtectionState.RECONNECTING, fixture,
                    "the active noticing the silence");
                final long held = fixture.vmm.framesOnWire();
                Thread.sleep(300);
                assertEquals(held, fixture.vmm.framesOnWire(), "output left while the standby could not ack it");
                relay.get().resume();
                awaitReconnected(fixture, 1);
                awaitCommitsAfter(fixture, fixture.standby.lastCommittedEpoch() + 10);
                final ReconnectStatus reconnect = fixture.active.status().reconnect();
                assertEquals(1, reconnect.quickResyncs(), reconnect.toString());
                assertEquals("[]", fixture.mismatches.toString(), "the standby differs from the active");
                assertTrue(fixture.vmm.framesOnWire() > held, "held output was released by the new session's acks");
            }
            finally
            {
                relay.get().close();
            }
        }
    }

    @Test
    void aDiskRecordThatOverflowedCopiesTheDisksWholeAndStaysExact() throws Exception
    {
        final AtomicReference<LoopbackRelay> relay = new AtomicReference<>();
        // 16 extents: the writes during the outage alone overflow it
        try (ReplicationFixture fixture = protect("overflow", relay, 16))
        {
            try
            {
                fixture.awaitCommits(20, Duration.ofSeconds(60));
                relay.get().reset(Duration.ofMillis(300));
                awaitReconnected(fixture, 1);
                awaitCommitsAfter(fixture, fixture.standby.lastCommittedEpoch() + 10);
                final ReconnectStatus reconnect = fixture.active.status().reconnect();
                assertNotNull(reconnect.lastResync());
                assertTrue(reconnect.lastResync().contains("disks copied whole"), reconnect.lastResync());
                // the memory half is still a quick one; the disk's 16 MiB are sent whole
                assertTrue(reconnect.lastResyncBytes() >= 16L << 20, reconnect.toString());
                assertEquals("[]", fixture.mismatches.toString(), "the standby differs from the active");
            }
            finally
            {
                relay.get().close();
            }
        }
    }

    @Test
    void aOneGibGuestResendsWhatChangedNotItsSize() throws Exception
    {
        final long guestBytes = 1L << 30;
        final AtomicReference<LoopbackRelay> relay = new AtomicReference<>();
        // no digests: hashing 1 GiB in every pause would be the test; the 64 MiB runs above check exactness
        try (ReplicationFixture fixture = protect(SimulatedVmm.builder().vmId("resync-1g")
                .memoryBytes(guestBytes).workload(Workload.HOTSET).hotsetPages(2048).pagesPerMillisecond(50)
                .disk(dir.resolve("resync-1g-disk.img"), 16L << 20).diskEveryTicks(1).packetEveryTicks(1).seed(7),
            "resync-1g", false, relay, ctx -> ctx.checkpointPeriodNs(Duration.ofMillis(10).toNanos())))
        {
            try
            {
                fixture.awaitCommits(10, Duration.ofSeconds(120));
                relay.get().reset(Duration.ofMillis(300));
                awaitReconnected(fixture, 1);
                final ReconnectStatus reconnect = fixture.active.status().reconnect();
                final double ratio = (double)reconnect.lastResyncBytes() / guestBytes;
                System.out.printf(java.util.Locale.ROOT, "1 GiB guest: resync of %d bytes, %.3f%% of the guest " +
                    "(%d pages), unprotected %.0f ms%n", reconnect.lastResyncBytes(), 100 * ratio,
                    reconnect.lastResyncPages(), reconnect.unprotectedNs() / 1e6);
                assertEquals(1, reconnect.quickResyncs(), reconnect.toString());
                // the hot set and the few thousand scattered writes of the outage, not 262 144 pages
                assertTrue(ratio < 0.05, "resync of " + reconnect.lastResyncBytes() + " bytes: " + reconnect);
            }
            finally
            {
                relay.get().close();
            }
        }
    }

    private static void awaitReconnected(final ReplicationFixture fixture, final long reconnects)
        throws InterruptedException
    {
        await(() -> fixture.active.status().reconnect().reconnects() >= reconnects &&
            fixture.active.status().state() == ProtectionState.PROTECTED, fixture, "a reconnected, protected session");
    }

    private static void awaitCommitsAfter(final ReplicationFixture fixture, final long epoch)
        throws InterruptedException
    {
        await(() -> fixture.standby.lastCommittedEpoch() >= epoch && fixture.verifiedCommits.get() > 0, fixture,
            "commits up to epoch " + epoch);
    }

    private static void await(final BooleanSupplier condition, final ReplicationFixture fixture, final String what)
        throws InterruptedException
    {
        final long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!condition.getAsBoolean())
        {
            if (System.nanoTime() > deadline)
            {
                fail("no " + what + " within 60 s; active " + fixture.active.status() + " failure " +
                    fixture.active.failure() + "; standby " + fixture.standby.status());
            }
            Thread.sleep(5);
        }
    }
}
