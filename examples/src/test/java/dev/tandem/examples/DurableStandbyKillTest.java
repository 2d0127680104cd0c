package dev.tandem.examples;

import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.StateDigest;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * kill -9 of a DURABLE standby process at random instants (during a journal append, an apply into the image files,
 * an image checkpoint forcing them and deleting journal behind it): each time, the standby started again on its
 * directory and port must recover a whole epoch, at least the newest the active saw acknowledged (an ack promises
 * durability), whose digest equals the active's checkpoint of that epoch; and the active, which held its output and
 * kept trying, resumes protection onto it. The image is checkpointed every 100 ms so that kills land in every step.
 * Three kills by default; {@code -Dtandem.durable.kills=N} for a soak.
 */
class DurableStandbyKillTest
{
    private static final String VM = "durable-kill";

    @TempDir
    Path dir;

    @Test
    void aKilledStandbyRecoversAWholeAcknowledgedEpochEachTime() throws Exception
    {
        final int kills = Integer.getInteger("tandem.durable.kills", 3);
        final Random random = new Random(Long.getLong("tandem.durable.seed", System.nanoTime()));
        final Map<Long, Long> digests = new ConcurrentHashMap<>();
        final Path standbyDir = dir.resolve("standby");
        Files.createDirectories(standbyDir);
        Process standby = start(standbyDir, "127.0.0.1:0", 0);
        final String endpoint = ready(standbyDir, standby, 0)[0];
        final List<String> seen = new ArrayList<>();
        try (SimulatedVmm vmm = SimulatedVmm.builder().vmId(VM).memoryBytes(16L << 20).workload(Workload.HOTSET)
            .pagesPerMillisecond(20).disk(dir.resolve("active-disk.img"), 2L << 20).diskEveryTicks(1)
            .packetEveryTicks(1).seed(11).build().start();
            ActiveReplicator active = ActiveReplicator.launch(new ActiveContext()
                .adapter(vmm)
                .transport(new TcpTransport())
                .standbyEndpoint(endpoint)
                .checkpointPeriodNs(Duration.ofMillis(5).toNanos())
                .reconnectWindowNs(Duration.ofSeconds(60).toNanos())
                .checkpointObserver((epoch, adapter) -> digests.put(epoch, StateDigest.of(adapter)))))
        {
            for (int kill = 1; kill <= kills; kill++)
            {
                final long from = active.lastAckedEpoch();
                // past the restarted JVM's warm-up: acks flow, so the kill lands in any step
                final Process live = standby;
                await(() -> active.lastAckedEpoch() >= from + 60, "60 acks before kill " + kill, live);
                Thread.sleep(random.nextInt(400));
                final long acked = active.lastAckedEpoch();
                standby.destroyForcibly();
                assertTrue(standby.waitFor(30, TimeUnit.SECONDS), "the killed standby ended");
                standby = start(standbyDir, endpoint, kill);
                final String[] recovered = ready(standbyDir, standby, kill);
                final long epoch = Long.parseLong(recovered[1]);
                final long digest = Long.parseLong(recovered[2]);
                seen.add("kill " + kill + ": acked " + acked + ", recovered " + epoch);
                assertTrue(epoch >= acked, "an acknowledged epoch is durable: the active saw epoch " + acked +
                    " acknowledged, the restarted standby recovered epoch " + epoch + " (" + recovered[3] + ")");
                assertEquals(digests.get(epoch), digest, "the recovered image is the active's checkpoint of epoch " +
                    epoch + " (" + recovered[3] + ")");
            }
            final long last = active.lastAckedEpoch();
            final Process running = standby;
            await(() -> active.lastAckedEpoch() >= last + 20, "protection to resume after the last restart",
                running);
            // one resumed session per kill at least (a first session cut short on a loaded machine resumes again)
            assertTrue(active.status().reconnect().reconnects() >= kills, seen + " " + active.status().reconnect());
            assertTrue(active.status().reconnect().quickResyncs() >= 1, active.status().reconnect().toString());
            System.out.println("durable standby kills: " + seen + "; " + active.status().reconnect());
        }
        finally
        {
            standby.destroyForcibly();
            standby.waitFor(30, TimeUnit.SECONDS);
        }
    }

    private Process start(final Path standbyDir, final String listen, final int life) throws IOException
    {
        final List<String> args = List.of("standby", "--dir", standbyDir.toString(), "--listen", listen,
            "--arbiter", dir.resolve("arbiter").toString(), "--vm-id", VM, "--memory", "16m", "--disk", "2m",
            "--timeout-ms", "600000", "--durability", "durable", "--image-checkpoint-ms", "100", "--digests",
            "false");
        return new ProcessBuilder(ChildJvm.command("512m", dir, FailoverNode.class, args))
            .redirectErrorStream(true)
            .redirectOutput(standbyDir.resolve("standby-" + life + ".out").toFile())
            .start();
    }

    /**
     * @return the endpoint, and (after a restart) the recovered epoch, its digest and the recovery report.
     */
    private static String[] ready(final Path standbyDir, final Process standby, final int life) throws Exception
    {
        final Path out = standbyDir.resolve("standby-" + life + ".out");
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline)
        {
            final List<String> lines = Files.exists(out) ? Files.readAllLines(out, StandardCharsets.UTF_8) : List.of();
            String[] recovered = {"", "0", "0", "nothing recovered"};
            for (final String line : lines)
            {
                if (line.startsWith("RECOVERED epoch "))
                {
                    final String[] words = line.split(" ", 8);
                    recovered = new String[] {"", words[2], words[4], words.length > 7 ? words[7] : line};
                }
                if (line.startsWith("STANDBY READY on "))
                {
                    recovered[0] = line.split(" ")[3];
                    return recovered;
                }
            }
            if (!standby.isAlive())
            {
                fail("the standby ended before it was ready: " + lines);
            }
            Thread.sleep(20);
        }
        throw new AssertionError("the standby was not ready within 60 s: " + Files.readString(out));
    }

    private static void await(final java.util.function.BooleanSupplier condition, final String what,
        final Process standby) throws InterruptedException
    {
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!condition.getAsBoolean())
        {
            if (System.nanoTime() > deadline)
            {
                fail("timed out waiting for " + what + " (standby alive: " + standby.isAlive() + ")");
            }
            Thread.sleep(5);
        }
    }
}
