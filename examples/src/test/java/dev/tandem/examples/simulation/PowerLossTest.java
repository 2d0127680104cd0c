package dev.tandem.examples.simulation;

import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.standby.Durability;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.StateDigest;
import dev.tandem.vmm.sim.SimulatedDisk;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Invariant 6 against a lost page cache, not only a killed process: the DURABLE standby runs under a
 * {@link PowerLossModel} that, at every kind of journal and image step (appends' forces, the image's forces, the
 * meta's write and rename, directory forces, deletes of journal segments, the recovery's own cut and checkpoint) and
 * at random steps between, writes out what the disk could hold had the power gone just before that step. Each such
 * disk must open to a whole epoch at least as new as the newest one acknowledged before the step, byte-equal to the
 * active's checkpoint of that epoch. {@code -Dtandem.powerloss.restarts=N} runs more standby restarts (each taking
 * its own power losses) for a soak; {@code -Dtandem.powerloss.seed=S} repeats a run.
 */
class PowerLossTest
{
    private static final long MEMORY_BYTES = 8L << 20;
    private static final long DISK_BYTES = 1L << 20;

    @TempDir
    Path dir;

    private final Map<Long, Long> digests = new ConcurrentHashMap<>();

    private StandbyContext standby(final Path directory, final String listen)
    {
        return new StandbyContext()
            .transport(new TcpTransport())
            .listenEndpoint(listen)
            .directory(directory)
            .durability(Durability.DURABLE)
            // checkpoints and segment rolls every few epochs: the power goes during every kind of step
            .imageCheckpointBytes(1L << 20)
            .imageCheckpointIntervalNs(Duration.ofMillis(40).toNanos())
            .vmId("power")
            .memory(SimulatedVmm.PAGE_SIZE, MEMORY_BYTES / SimulatedVmm.PAGE_SIZE)
            .disk(0, SimulatedDisk.BLOCK_SIZE, DISK_BYTES)
            .failureTimeoutNs(Duration.ofSeconds(30).toNanos());
    }

    @Test
    void aPowerLossAtAnyJournalOrImageStepRecoversAWholeAcknowledgedEpoch() throws Exception
    {
        final long liveBefore = NativeMemory.liveBytes();
        final long seed = Long.getLong("tandem.powerloss.seed", System.nanoTime());
        final int restarts = Integer.getInteger("tandem.powerloss.restarts", 2);
        final Path directory = dir.resolve("standby");
        final PowerLossModel model = new PowerLossModel(directory, dir.resolve("crashes"), seed, 25);
        final AtomicReference<StandbyReplica> running = new AtomicReference<>();
        final AtomicLong acknowledgedBefore = new AtomicLong();
        // while a restarted standby opens, what it must recover is what its predecessor acknowledged
        model.acknowledged(() ->
        {
            final StandbyReplica standby = running.get();
            return standby == null ? acknowledgedBefore.get() : standby.lastCommittedEpoch();
        });
        try (SimulatedVmm vmm = SimulatedVmm.builder()
            .vmId("power")
            .memoryBytes(MEMORY_BYTES)
            .workload(Workload.HOTSET)
            .hotsetPages(128)
            .pagesPerMillisecond(5)
            .disk(dir.resolve("active-disk.img"), DISK_BYTES)
            .diskEveryTicks(1)
            .packetEveryTicks(1)
            .seed(seed)
            .build()
            .start())
        {
            StandbyReplica first = StandbyReplica.launch(standby(directory, "127.0.0.1:0").storageWitness(model));
            running.set(first);
            final String endpoint = first.endpoint();
            try (ActiveReplicator active = ActiveReplicator.launch(new ActiveContext()
                .adapter(vmm)
                .transport(new TcpTransport())
                .standbyEndpoint(endpoint)
                .stagingAreaBytes(2 << 20)
                .checkpointPeriodNs(Duration.ofMillis(5).toNanos())
                .reconnectWindowNs(Duration.ofSeconds(60).toNanos())
                .checkpointObserver((epoch, adapter) -> digests.put(epoch, StateDigest.of(adapter)))))
            {
                for (int restart = 0; restart <= restarts; restart++)
                {
                    final StandbyReplica standby = restart == 0 ? first :
                        StandbyReplica.launch(standby(directory, endpoint).storageWitness(model));
                    running.set(standby);
                    try
                    {
                        final long from = standby.lastCommittedEpoch();
                        await(() -> standby.lastCommittedEpoch() >= from + 60, "60 commits after restart " + restart +
                            " (seed " + seed + ")");
                    }
                    finally
                    {
                        acknowledgedBefore.set(standby.lastCommittedEpoch());
                        running.set(null);
                        standby.close();
                    }
                }
                assertTrue(active.status().reconnect().reconnects() >= restarts, active.status().toString());
            }
        }
        final List<PowerLossModel.Crash> crashes = model.crashes();
        final Set<String> steps = new TreeSet<>();
        final List<String> wrong = new ArrayList<>();
        for (final PowerLossModel.Crash crash : crashes)
        {
            steps.add(crash.step());
            try (StandbyReplica recovered = StandbyReplica.launch(standby(crash.directory(), "127.0.0.1:0")))
            {
                final long epoch = recovered.lastCommittedEpoch();
                final String where = crash.directory().getFileName() + " (power lost before '" + crash.step() +
                    "', epoch " + crash.acknowledged() + " acknowledged, seed " + seed + "): recovered epoch " +
                    epoch + ", " + recovered.recoveryReport();
                if (epoch < crash.acknowledged())
                {
                    wrong.add(where + ": an acknowledged epoch was lost");
                }
                else if (epoch > 0)
                {
                    final long digest = recovered.inspect(point -> StateDigest.of(point));
                    if (!Long.valueOf(digest).equals(digests.get(epoch)))
                    {
                        wrong.add(where + ": the image is not the active's checkpoint of that epoch");
                    }
                }
            }
            catch (final RuntimeException ex)
            {
                wrong.add(crash.directory().getFileName() + " (power lost before '" + crash.step() + "', seed " +
                    seed + "): the restart failed: " + ex);
            }
            deleteTree(crash.directory());
        }
        assertEquals("[]", wrong.toString(), crashes.size() + " power losses");
        for (final String step : List.of("force journal", "force memory.img", "force image.meta.next",
            "rename image.meta.next", "force directory", "delete journal"))
        {
            assertTrue(steps.contains(step), "no power loss at '" + step + "': " + steps);
        }
        assertEquals(liveBefore, NativeMemory.liveBytes(), "off-heap bytes left allocated");
    }

    private static void deleteTree(final Path path) throws java.io.IOException
    {
        try (java.util.stream.Stream<Path> walk = java.nio.file.Files.walk(path))
        {
            for (final Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList())
            {
                java.nio.file.Files.delete(p);
            }
        }
    }

    private static void await(final BooleanSupplier condition, final String what) throws InterruptedException
    {
        final long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!condition.getAsBoolean())
        {
            if (System.nanoTime() > deadline)
            {
                fail("timed out waiting for " + what);
            }
            Thread.sleep(5);
        }
    }
}
