package dev.tandem.core.system;

import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.core.wire.ProtocolException;
import dev.tandem.vmm.DirtyLog;
import dev.tandem.vmm.DiskWriteSink;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.OutputGate;
import dev.tandem.vmm.VmmAdapter;
import dev.tandem.vmm.sim.SimulatedVmm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A launch that throws leaves no Tandem thread running and no off-heap memory allocated; the standby it talked to
 * keeps serving, and once it and the guest are closed nothing of Tandem is left in the JVM (so the JVM can exit).
 */
@LeakCheck
class FailedLaunchTest
{
    @TempDir
    Path dir;

    private static List<String> tandemThreads()
    {
        return Thread.getAllStackTraces().keySet().stream().filter(Thread::isAlive).map(Thread::getName)
            .filter(name -> name.startsWith("tandem-")).sorted().toList();
    }

    private static void awaitNoTandemThreads() throws InterruptedException
    {
        // a thread that has been told to stop may still be leaving run() for a moment after close() returned
        final long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (!tandemThreads().isEmpty() && System.nanoTime() < deadline)
        {
            Thread.sleep(5);
        }
        assertEquals(List.of(), tandemThreads());
    }

    private StandbyReplica standby(final SimulatedVmm guest, final long pageCount) throws Exception
    {
        return StandbyReplica.launch(new StandbyContext()
            .transport(new TcpTransport())
            .listenEndpoint("127.0.0.1:0")
            .directory(dir)
            .vmId(guest.vmId())
            .memory(SimulatedVmm.PAGE_SIZE, pageCount));
    }

    private static ActiveContext protect(final VmmAdapter guest, final StandbyReplica standby)
    {
        return new ActiveContext()
            .adapter(guest)
            .transport(new TcpTransport())
            .standbyEndpoint(standby.endpoint())
            .stagingAreaBytes(1 << 20)
            .checkpointPeriodNs(Duration.ofMillis(5).toNanos());
    }

    @Test
    void aGeometryMismatchFailsTheLaunchAndLeavesOnlyTheStandbyRunning() throws Exception
    {
        awaitNoTandemThreads();
        try (SimulatedVmm guest = SimulatedVmm.builder().vmId("geometry").memoryBytes(4L << 20).build().start();
            StandbyReplica standby = standby(guest, guest.memory().pageCount() * 2))
        {
            final List<String> standbyThreads = tandemThreads();
            final long bytes = NativeMemory.liveBytes();
            final long allocations = NativeMemory.liveAllocations();
            final ProtocolException refused = assertThrows(ProtocolException.class,
                () -> ActiveReplicator.launch(protect(guest, standby)));
            assertTrue(refused.getMessage().contains("refused"), refused.getMessage());
            assertTrue(refused.getMessage().contains(String.valueOf(guest.memory().pageCount())),
                "names the page count: " + refused.getMessage());
            assertEquals(standbyThreads, tandemThreads(), "only the standby's receiver and applier run on");
            assertEquals(List.of("tandem-standby-applier", "tandem-standby-receiver"), standbyThreads);
            assertEquals(bytes, NativeMemory.liveBytes(), "off-heap bytes after the failed launch");
            assertEquals(allocations, NativeMemory.liveAllocations(), "off-heap allocations after the failed launch");
            assertFalse(guest.isPaused(), "the guest runs on, unprotected");
        }
        awaitNoTandemThreads();
    }

    @Test
    void aLaunchThatFailsAfterTheHandshakeUndoesEverythingItStarted() throws Exception
    {
        awaitNoTandemThreads();
        final AtomicBoolean attached = new AtomicBoolean();
        final AtomicBoolean pausedAtDetach = new AtomicBoolean();
        try (SimulatedVmm guest = SimulatedVmm.builder().vmId("fails-to-track").memoryBytes(4L << 20).build().start();
            StandbyReplica standby = standby(guest, guest.memory().pageCount()))
        {
            final List<String> standbyThreads = tandemThreads();
            final long bytes = NativeMemory.liveBytes();
            final long allocations = NativeMemory.liveAllocations();
            final VmmAdapter failing = new FailingToTrack(guest, attached, pausedAtDetach);
            final IllegalStateException failed = assertThrows(IllegalStateException.class,
                () -> ActiveReplicator.launch(protect(failing, standby)));
            assertEquals("dirty log unavailable", failed.getMessage());
            assertFalse(attached.get(), "the guest's I/O no longer passes through the library");
            // a vCPU inside the gate while its memory is freed would crash the JVM: the detach happens paused
            assertTrue(pausedAtDetach.get(), "the guest was paused while the library detached");
            assertFalse(guest.isPaused(), "and runs on after the failed launch");
            assertEquals(standbyThreads, tandemThreads(), "only the standby's receiver and applier run on");
            assertEquals(bytes, NativeMemory.liveBytes(), "off-heap bytes after the failed launch");
            assertEquals(allocations, NativeMemory.liveAllocations(), "off-heap allocations after the failed launch");
            // the standby saw the connection end and serves the next active
            final long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (standby.status().connected() && System.nanoTime() < deadline)
            {
                Thread.sleep(5);
            }
            assertFalse(standby.status().connected(), standby.status().toString());
        }
        awaitNoTandemThreads();
    }

    /**
     * A guest whose dirty log cannot start: the launch fails after the handshake, with the library attached.
     */
    private static final class FailingToTrack extends ForwardingAdapter
    {
        private final SimulatedVmm guest;
        private final AtomicBoolean attached;
        private final AtomicBoolean pausedAtDetach;

        FailingToTrack(final SimulatedVmm guest, final AtomicBoolean attached, final AtomicBoolean pausedAtDetach)
        {
            super(guest);
            this.guest = guest;
            this.attached = attached;
            this.pausedAtDetach = pausedAtDetach;
        }

        @Override
        public DirtyLog dirtyLog()
        {
            return new ForwardingDirtyLog()
            {
                @Override
                public void startTracking()
                {
                    throw new IllegalStateException("dirty log unavailable");
                }
            };
        }

        @Override
        public void attach(final DiskWriteSink diskWrites, final OutputGate output)
        {
            super.attach(diskWrites, output);
            attached.set(true);
        }

        @Override
        public void detach()
        {
            pausedAtDetach.set(guest.isPaused());
            super.detach();
            attached.set(false);
        }
    }
}
