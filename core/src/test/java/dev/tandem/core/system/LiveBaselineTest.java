package dev.tandem.core.system;

import dev.tandem.core.metrics.BaselineProgress;
import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The live baseline: memory copied in rounds and the disks copied while the guest runs, then one short pause. The
 * guest here rewrites a small hot set of pages and writes its disk every tick, so the rounds copy pages it is
 * writing and the disk copy reads blocks it is overwriting; the standby must still equal the active exactly at the
 * baseline checkpoint and at every one after it (memory, component state and disk, by digest).
 */
@LeakCheck
class LiveBaselineTest
{
    @TempDir
    Path dir;

    private SimulatedVmm.Builder guest(final String name)
    {
        return SimulatedVmm.builder()
            .vmId(name)
            .memoryBytes(32L << 20)
            .workload(Workload.HOTSET)
            .hotsetPages(256)
            .pagesPerMillisecond(400)
            .disk(dir.resolve(name + "-disk.img"), 32L << 20)
            .diskEveryTicks(1)
            .packetEveryTicks(1)
            .seed(11);
    }

    @Test
    void aGuestRewritingThePagesTheRoundsSendIsReplicatedExactly() throws Exception
    {
        final java.util.concurrent.atomic.AtomicReference<List<Path>> spillAtBaselineCommit =
            new java.util.concurrent.atomic.AtomicReference<>();
        try (ReplicationFixture fixture = new ReplicationFixture(guest("live-baseline"), new TcpTransport(),
            "127.0.0.1:0", dir.resolve("standby"), true, (ctx, standby) -> ctx
                .stagingAreaBytes(2 << 20)
                .baselineRounds(6)
                // an all but empty dirty set ends the rounds: with this guest they run until they stop converging
                .baselineFinalPages(1),
            // epoch logs of 8 MiB: room for a steady-state delta here, not for the 32 MiB baseline
            standbyCtx -> standbyCtx.epochLogMemoryBytes(16 << 20),
            (epoch, point) ->
            {
                // looked at as the baseline commits: a later epoch may spill on a loaded machine, and may
                if (epoch == 1)
                {
                    try (Stream<Path> files = Files.list(dir.resolve("standby")))
                    {
                        spillAtBaselineCommit.set(files.filter(path -> path.toString().endsWith(".spill")).toList());
                    }
                    catch (final java.io.IOException ex)
                    {
                        throw new java.io.UncheckedIOException(ex);
                    }
                }
            }))
        {
            fixture.awaitCommits(40, Duration.ofSeconds(60));
            assertEquals("[]", fixture.mismatches.toString(), "standby differs from the active at a checkpoint");
            assertEquals("[]", fixture.standbyErrors.toString(), "standby reported errors");

            final ProtectionStatus status = fixture.active.status();
            final BaselineProgress baseline = status.baseline();
            assertTrue(baseline.live() && baseline.done(), baseline.toString());
            assertEquals(0, baseline.pagesLeft(), baseline.toString());
            assertTrue(baseline.longestPauseNs() > 0, "the final pause is timed: " + baseline);
            // round 1 copied every page; anything beyond is a page the guest wrote while the rounds ran
            assertTrue(baseline.pagesCopied() > fixture.vmm.memory().pageCount(),
                "the guest dirtied pages during the rounds: " + baseline);
            // a second round resends the pages the guest rewrote during the first; a guest kept off the CPU for
            // the whole first round (seen once, with both cores busy at a load of 8) dirtied at most the one page
            // that ends the rounds, and the final pause copied what it wrote after: exact all the same
            assertTrue(baseline.round() >= 2 || baseline.pagesCopied() - fixture.vmm.memory().pageCount() <=
                fixture.vmm.memory().pageCount() / 4, "a second round resent the rewritten pages: " + baseline);
            assertEquals(fixture.vmm.disk().sizeBytes(), baseline.diskBytesSent(), baseline.toString());
            assertEquals(List.of(), spillAtBaselineCommit.get(),
                "the baseline went straight into the replica, not through a spilled epoch log");
        }
    }

    @Test
    void thePausedBaselineStaysAvailableAndExact() throws Exception
    {
        try (ReplicationFixture fixture = new ReplicationFixture(guest("paused-baseline"), new TcpTransport(),
            "127.0.0.1:0", dir.resolve("standby"), true, (ctx, standby) -> ctx.baselineRounds(0)))
        {
            fixture.awaitCommits(20, Duration.ofSeconds(60));
            assertEquals("[]", fixture.mismatches.toString(), "standby differs from the active at a checkpoint");
            final BaselineProgress baseline = fixture.active.status().baseline();
            assertFalse(baseline.live(), baseline.toString());
            assertTrue(baseline.done(), baseline.toString());
            assertEquals(fixture.vmm.memory().pageCount(), baseline.pagesCopied(), "one full copy: " + baseline);
        }
    }
}
