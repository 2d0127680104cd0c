package dev.tandem.core.system;

import dev.tandem.core.metrics.CounterType;
import dev.tandem.core.metrics.CountersFile;
import dev.tandem.core.metrics.ProcessCounters;
import dev.tandem.core.metrics.ProtectionState;
import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.core.standby.StandbyStatus;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.sim.SimulatedVmm;
import org.agrona.concurrent.AgentInvoker;
import org.agrona.concurrent.status.CountersReader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The per-process counters file: created by the first active or standby, every counter labelled with its role and
 * VM and equal to what {@code status()} says, freed when its owner closes, and the file unmapped and deleted when
 * the last owner of the process closes.
 */
@LeakCheck
class CountersFileTest
{
    @TempDir
    Path dir;

    private ReplicationFixture fixture(final String vmId, final Path counters) throws IOException
    {
        return new ReplicationFixture(SimulatedVmm.builder().vmId(vmId).memoryBytes(8L << 20)
            .pagesPerMillisecond(20).packetEveryTicks(1).tickMicros(200), new TcpTransport(), "127.0.0.1:0",
            dir.resolve(vmId), false,
            // the active is stepped by hand: between two steps its counters stand still, so status() and the file
            // can be compared exactly
            (ctx, standby) -> ctx.useAgentInvoker(true).countersDirectory(counters),
            ctx -> ctx.countersDirectory(counters));
    }

    @Test
    void countersInTheFileAreLabelledAndEqualToStatusAfterAProtectedRun() throws Exception
    {
        final Path counters = dir.resolve("counters");
        final Path file = CountersFile.fileOf(counters, ProcessHandle.current().pid());
        try (ReplicationFixture fixture = fixture("counted-vm", counters))
        {
            assertEquals(file, fixture.active.countersFile());
            assertEquals(file, fixture.standby.countersFile(), "one file per process, shared");
            assertTrue(Files.exists(file));
            // each duty cycle stepped on a thread of the test's, so that they can be stopped: the scheduler first,
            // then the sender once every checkpoint is acknowledged (the baseline needs both at once)
            final AtomicBoolean checkpointing = new AtomicBoolean(true);
            final AtomicBoolean sending = new AtomicBoolean(true);
            final Thread scheduler = step(fixture.active.schedulerInvoker(), checkpointing);
            final Thread sender = step(fixture.active.senderInvoker(), sending);
            final long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (fixture.active.lastAckedEpoch() < 30 && System.nanoTime() < deadline)
            {
                Thread.sleep(1);
            }
            checkpointing.set(false);
            scheduler.join();
            final long checkpoint = fixture.active.lastCheckpointEpoch();
            while (fixture.active.lastAckedEpoch() < checkpoint && System.nanoTime() < deadline)
            {
                Thread.sleep(1);
            }
            sending.set(false);
            sender.join();
            assertTrue(checkpoint >= 30 && fixture.active.lastAckedEpoch() == checkpoint,
                () -> "no progress: " + fixture.active.status());
            // the standby, on its own thread, settles once the active stops sending
            assertTrue(fixture.standby.awaitCommitted(checkpoint, Duration.ofSeconds(10)));
            Thread.sleep(50);

            final ProtectionStatus active = fixture.active.status();
            final StandbyStatus standby = fixture.standby.status();
            try (CountersFile mapped = CountersFile.openReadOnly(file))
            {
                assertEquals(ProcessHandle.current().pid(), mapped.pid());
                final Map<String, Long> values = new HashMap<>();
                final Map<String, String> labels = new HashMap<>();
                final CountersReader reader = mapped.reader();
                reader.forEach((id, typeId, key, label) ->
                {
                    final CounterType type = CounterType.of(typeId);
                    assertNotNull(type, "type id " + typeId);
                    if ("counted-vm".equals(CounterType.vmIdOfKey(key)))
                    {
                        values.put(type.name(), reader.getCounterValue(id));
                        labels.put(type.name(), label);
                    }
                });
                assertEquals(CounterType.values().length, values.size(), "every counter of both sides: " + labels);
                assertEquals("active counted-vm: checkpoints", labels.get("ACTIVE_CHECKPOINTS"));
                assertEquals("standby counted-vm: commits", labels.get("STANDBY_COMMITS"));

                assertEquals(ProtectionState.PROTECTED.ordinal(), values.get("ACTIVE_STATE"));
                assertEquals(active.checkpoints(), values.get("ACTIVE_CHECKPOINTS"));
                assertEquals(active.lastCheckpointEpoch(), values.get("ACTIVE_CHECKPOINT_EPOCH"));
                assertEquals(active.lastAckedEpoch(), values.get("ACTIVE_ACKED_EPOCH"));
                assertEquals(active.bytesSent(), values.get("ACTIVE_BYTES_SENT"));
                assertEquals(active.pagesCopied(), values.get("ACTIVE_PAGES_COPIED"));
                assertEquals(active.stagingOverflows(), values.get("ACTIVE_STAGING_OVERFLOWS"));
                assertEquals(active.inFlightWaits(), values.get("ACTIVE_IN_FLIGHT_WAITS"));
                assertEquals(active.pageBytesRaw(), values.get("ACTIVE_PAGE_BYTES_RAW"));
                assertEquals(active.pageBytesEncoded(), values.get("ACTIVE_PAGE_BYTES_ENCODED"));
                assertEquals(active.pauseP50Ns(), values.get("ACTIVE_PAUSE_P50_NS"));
                assertEquals(active.pauseP99Ns(), values.get("ACTIVE_PAUSE_P99_NS"));
                assertEquals(active.pauseMaxNs(), values.get("ACTIVE_PAUSE_MAX_NS"));
                assertEquals(active.commitP99Ns(), values.get("ACTIVE_COMMIT_P99_NS"));
                assertEquals(active.outputHoldP99Ns(), values.get("ACTIVE_OUTPUT_HOLD_P99_NS"));
                assertEquals(active.generation(), values.get("ACTIVE_GENERATION"));
                assertTrue(active.checkpoints() >= 30 && active.bytesSent() > 0 && active.pauseP99Ns() > 0,
                    active.toString());
                assertTrue(values.get("ACTIVE_FRAMES_SENT") > active.checkpoints(), values.toString());

                assertEquals(1, values.get("STANDBY_CONNECTED"));
                assertEquals(standby.commits(), values.get("STANDBY_COMMITS"));
                assertEquals(standby.lastCommittedEpoch(), values.get("STANDBY_COMMITTED_EPOCH"));
                assertEquals(standby.framesReceived(), values.get("STANDBY_FRAMES_RECEIVED"));
                assertEquals(standby.bytesReceived(), values.get("STANDBY_BYTES_RECEIVED"));
                assertEquals(standby.rejectedFrames(), values.get("STANDBY_REFUSALS"));
                assertEquals(1, values.get("STANDBY_SESSIONS"));
                assertEquals(0, values.get("STANDBY_PROMOTIONS"));
                assertEquals(standby.stages().get(2).p99Ns(), values.get("STANDBY_COMMIT_P99_NS"));
                assertEquals(standby.generation(), values.get("STANDBY_GENERATION"));
            }
        }
        assertFalse(Files.exists(file), "the last owner's close deletes the file");
    }

    @Test
    void countersAreFreedWhenTheirOwnerClosesAndTheFileGoesWithTheLastOwner() throws Exception
    {
        final Path counters = dir.resolve("counters");
        final Path file = CountersFile.fileOf(counters, ProcessHandle.current().pid());
        final int mappedBefore = ProcessCounters.mappedFiles();
        final ReplicationFixture first = fixture("first-vm", counters);
        boolean firstClosed = false;
        try (ReplicationFixture second = fixture("second-vm", counters))
        {
            assertEquals(mappedBefore + 1, ProcessCounters.mappedFiles(), "one file for both");
            assertEquals(2 * CounterType.values().length, allocated(file), "both pairs' counters");
            first.close();
            firstClosed = true;
            assertEquals(CounterType.values().length, allocated(file), "the first pair's counters freed");
            assertTrue(Files.exists(file), "the second pair still uses the file");
            assertEquals(file, second.active.countersFile());
            assertNotNull(first.active.status(), "status() after close answers from its last snapshot");
            assertNotNull(first.standby.status());
        }
        finally
        {
            if (!firstClosed)
            {
                first.close();
            }
        }
        assertEquals(mappedBefore, ProcessCounters.mappedFiles(), "unmapped with the last owner");
        assertFalse(Files.exists(file));
    }

    @Test
    void aFileThatIsNoCountersFileIsRefusedNamingIt() throws Exception
    {
        final Path bad = dir.resolve("4242.counters");
        Files.write(bad, new byte[4096]);
        final IOException zero = assertThrows(IOException.class, () -> CountersFile.openReadOnly(bad));
        assertTrue(zero.getMessage().startsWith(bad + ": not a Tandem counters file (bad magic"), zero.getMessage());

        Files.write(bad, "#!/bin/sh\necho not counters\n".repeat(10).getBytes());
        final IOException text = assertThrows(IOException.class, () -> CountersFile.openReadOnly(bad));
        assertTrue(text.getMessage().contains(bad.toString()) && text.getMessage().contains("bad magic"),
            text.getMessage());

        final IOException missing = assertThrows(IOException.class,
            () -> CountersFile.openReadOnly(dir.resolve("1.counters")));
        assertEquals(dir.resolve("1.counters") + ": no such counters file", missing.getMessage());
    }

    private static Thread step(final AgentInvoker invoker,
        final AtomicBoolean running)
    {
        final Thread thread = new Thread(() ->
        {
            while (running.get())
            {
                if (invoker.invoke() == 0)
                {
                    Thread.onSpinWait();
                }
            }
        }, "step-" + invoker.agent().roleName());
        thread.start();
        return thread;
    }

    private static int allocated(final Path file) throws IOException
    {
        try (CountersFile mapped = CountersFile.openReadOnly(file))
        {
            final int[] count = {0};
            mapped.reader().forEach((id, typeId, key, label) -> count[0]++);
            return count[0];
        }
    }
}
