package dev.tandem.vmm.tck;

import dev.tandem.vmm.DirtyBitmap;
import dev.tandem.vmm.DiskWriteSink;
import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.OutputGate;
import dev.tandem.vmm.ReplicaTarget;
import dev.tandem.vmm.StateDigest;
import dev.tandem.vmm.StatefulComponent;
import dev.tandem.vmm.VmmAdapter;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The adapter TCK: the contract every {@link VmmAdapter} must keep for Tandem to replicate its guest correctly.
 * Adapter authors extend this class (from the {@code tandem-vmm-adapter} test-jar) and implement the factory
 * methods; every test must pass.
 * <p>
 * The guest used must be busy: it writes memory, disks (if it has any) and network output on its own, at a rate
 * that changes something within {@link #activityWindowMillis()}.
 */
public abstract class VmmAdapterContractTest
{
    /** Where the adapter may keep disk images; fresh for each test. */
    @TempDir
    protected Path dir;

    private VmmAdapter adapter;
    private final AtomicLong diskWrites = new AtomicLong();
    private final AtomicLong outputFrames = new AtomicLong();

    /**
     * @param dir directory for disk images.
     * @return a new guest, not yet running.
     */
    protected abstract VmmAdapter newAdapter(Path dir);

    /**
     * Starts the guest made by {@link #newAdapter}.
     *
     * @param adapter the guest.
     */
    protected abstract void start(VmmAdapter adapter);

    /**
     * Releases everything the guest holds (threads, memory, files).
     *
     * @param adapter the guest.
     */
    protected abstract void close(VmmAdapter adapter);

    /**
     * Makes the VMM's own devices write guest memory (e.g. deliver network frames), not the vCPUs.
     *
     * @param adapter the running guest.
     */
    protected abstract void provokeDeviceWrites(VmmAdapter adapter);

    /**
     * @param dir directory for the replica's disk images.
     * @return a target that builds a stopped-or-running replica of the guest from a recovery point.
     */
    protected abstract ReplicaTarget newReplicaTarget(Path dir);

    /**
     * @return how long the guest needs to change memory, disk and output; default 20 ms.
     */
    protected long activityWindowMillis()
    {
        return 20;
    }

    @BeforeEach
    void startGuest()
    {
        adapter = newAdapter(dir);
        adapter.attach(new CountingDiskSink(), countingGate());
        adapter.dirtyLog().startTracking();
        start(adapter);
    }

    @AfterEach
    void stopGuest()
    {
        if (adapter.vcpus().isPaused())
        {
            try
            {
                adapter.vcpus().resume();
            }
            catch (final IllegalStateException fenced)
            {
                // a fenced guest stays paused; close it as it is
            }
        }
        adapter.detach();
        close(adapter);
    }

    /**
     * While paused, memory, disk writes and output stay exactly as they were.
     */
    @Test
    void pauseQuiescesMemoryDiskAndNetwork() throws InterruptedException
    {
        Thread.sleep(activityWindowMillis());
        for (int round = 0; round < 5; round++)
        {
            adapter.vcpus().pause();
            assertTrue(adapter.vcpus().isPaused(), "isPaused() after pause()");
            final long before = StateDigest.of(adapter);
            final long writesBefore = diskWrites.get();
            final long framesBefore = outputFrames.get();
            provokeDeviceWrites(adapter);
            Thread.sleep(activityWindowMillis());
            assertEquals(before, StateDigest.of(adapter), "guest state changed while paused (round " + round + ")");
            assertEquals(writesBefore, diskWrites.get(), "disk write while paused");
            assertEquals(framesBefore, outputFrames.get(), "network output while paused");
            adapter.vcpus().resume();
            assertFalse(adapter.vcpus().isPaused(), "isPaused() after resume()");
            Thread.sleep(activityWindowMillis());
        }
        adapter.vcpus().pause();
        final long paused = StateDigest.of(adapter);
        adapter.vcpus().resume();
        Thread.sleep(activityWindowMillis() * 2);
        adapter.vcpus().pause();
        assertTrue(paused != StateDigest.of(adapter), "the guest did not run after resume()");
    }

    /**
     * A restore in place writes a paused guest's disks through {@code VirtualDisk.write}: a disk that says it is
     * {@code writable()} reads back what was written, and the write is not reported to the disk-write sink (the
     * library carries it itself); one that is not refuses with UnsupportedOperationException.
     */
    @Test
    void aWritableDiskReadsBackWhatTheLibraryWroteAndDoesNotReportIt() throws InterruptedException
    {
        Thread.sleep(activityWindowMillis());
        adapter.vcpus().pause();
        for (final dev.tandem.vmm.VirtualDisk disk : adapter.disks())
        {
            final int length = disk.blockSize() * 2;
            final UnsafeBuffer written = new UnsafeBuffer(new byte[length]);
            for (int i = 0; i < length; i++)
            {
                written.putByte(i, (byte)(i * 31 + 7));
            }
            final long offset = disk.sizeBytes() - length;
            if (!disk.writable())
            {
                assertThrows(UnsupportedOperationException.class, () -> disk.write(offset, written, 0, length));
                continue;
            }
            final long writesBefore = diskWrites.get();
            disk.write(offset, written, 0, length);
            final UnsafeBuffer read = new UnsafeBuffer(new byte[length]);
            disk.read(offset, read, 0, length);
            assertEquals(0, written.compareTo(read), "disk " + disk.id() + " reads back what the library wrote");
            assertEquals(writesBefore, diskWrites.get(), "the library's write was reported as the guest's");
        }
    }

    /**
     * Fencing: once the library paused the guest and called {@code fenced(reason)} (another side owns it now), the
     * guest never runs again in this process: a later {@code resume()} is refused (or ignored) and memory, disks and
     * output stay as they were.
     */
    @Test
    void fencedGuestNeverRunsAgain() throws InterruptedException
    {
        Thread.sleep(activityWindowMillis());
        adapter.vcpus().pause();
        adapter.fenced("the standby promoted (contract test)");
        final long before = StateDigest.of(adapter);
        final long writesBefore = diskWrites.get();
        final long framesBefore = outputFrames.get();
        try
        {
            adapter.vcpus().resume();
        }
        catch (final IllegalStateException expected)
        {
            // refusing is the clearer answer; ignoring is allowed
        }
        provokeDeviceWrites(adapter);
        Thread.sleep(activityWindowMillis() * 2);
        assertEquals(before, StateDigest.of(adapter), "a fenced guest ran again");
        assertEquals(writesBefore, diskWrites.get(), "disk write from a fenced guest");
        assertEquals(framesBefore, outputFrames.get(), "network output from a fenced guest");
    }

    /**
     * A harvest takes the dirty bits and clears them: a second harvest while paused finds nothing.
     */
    @Test
    void harvestIsGetAndClear() throws InterruptedException
    {
        final DirtyBitmap first = new DirtyBitmap(adapter.memory().pageCount());
        final DirtyBitmap second = new DirtyBitmap(adapter.memory().pageCount());
        Thread.sleep(activityWindowMillis());
        adapter.vcpus().pause();
        adapter.dirtyLog().harvest(first);
        adapter.dirtyLog().harvest(second);
        assertTrue(first.cardinality() > 0, "a busy guest dirtied no page");
        assertEquals(0, second.cardinality(), "second harvest while paused reported pages again");
        adapter.vcpus().resume();
    }

    /**
     * Every page whose bytes changed between two checkpoints is in the harvest, including device writes.
     */
    @Test
    void harvestNeverMissesAWrite() throws InterruptedException
    {
        final GuestMemory memory = adapter.memory();
        final int pageSize = memory.pageSize();
        final DirtyBitmap dirty = new DirtyBitmap(memory.pageCount());
        adapter.vcpus().pause();
        adapter.dirtyLog().harvest(dirty);
        byte[] before = snapshot(memory);
        adapter.vcpus().resume();
        long changedTotal = 0;
        for (int round = 0; round < 10; round++)
        {
            provokeDeviceWrites(adapter);
            Thread.sleep(activityWindowMillis() / 2 + round % 3);
            adapter.vcpus().pause();
            dirty.clearAll();
            adapter.dirtyLog().harvest(dirty);
            final byte[] after = snapshot(memory);
            for (long page = 0; page < memory.pageCount(); page++)
            {
                if (!samePage(before, after, page, pageSize))
                {
                    changedTotal++;
                    assertTrue(dirty.isSet(page), "page " + page + " changed but was not harvested (round " + round + ")");
                }
            }
            before = after;
            adapter.vcpus().resume();
        }
        assertTrue(changedTotal > 0, "the guest changed no page in 10 rounds");
    }

    /**
     * Saving a component, restoring it into a fresh guest and saving again gives the same bytes.
     */
    @Test
    void saveRestoreRoundTrips() throws InterruptedException
    {
        Thread.sleep(activityWindowMillis());
        adapter.vcpus().pause();
        final VmmAdapter fresh = newAdapter(dir.resolve("fresh").toFile().mkdirs() ? dir.resolve("fresh") : dir);
        try
        {
            assertEquals(adapter.components().size(), fresh.components().size(), "component count");
            for (int i = 0; i < adapter.components().size(); i++)
            {
                final StatefulComponent original = adapter.components().get(i);
                final StatefulComponent copy = fresh.components().get(i);
                assertEquals(original.id(), copy.id(), "component order must be stable");
                final byte[] saved = StatefulComponent.saveToArray(original);
                copy.restore(original.version(), new UnsafeBuffer(saved), 0, saved.length);
                assertArrayEquals(saved, StatefulComponent.saveToArray(copy), original.name() + " does not round-trip");
            }
        }
        finally
        {
            close(fresh);
            adapter.vcpus().resume();
        }
    }

    /**
     * Zero-copy promotion: a target that adopts the recovery point's memory ({@code RecoveryPoint.adoptMemory()})
     * runs the new guest on that very memory: a store through the new guest's memory is in the adopted region. A
     * target that copies instead passes trivially (copying is the fallback), and the new guest must then own
     * memory of its own.
     */
    @Test
    void anAdoptingTargetRunsTheGuestOnTheRecoveryPointsMemory() throws InterruptedException
    {
        Thread.sleep(activityWindowMillis());
        adapter.vcpus().pause();
        try (SnapshotRecoveryPoint point = new SnapshotRecoveryPoint(adapter, dir))
        {
            final Path replicaDir = dir.resolve("adopting");
            assertTrue(replicaDir.toFile().mkdirs());
            final VmmAdapter replica = newReplicaTarget(replicaDir).resume(point);
            try
            {
                if (!replica.vcpus().isPaused())
                {
                    replica.vcpus().pause();
                }
                final int pageSize = replica.memory().pageSize();
                final UnsafeBuffer region = new UnsafeBuffer(point.memoryAddress(), pageSize);
                final int before = region.getInt(pageSize - 4);
                final UnsafeBuffer pattern = new UnsafeBuffer(new byte[pageSize]);
                pattern.setMemory(0, pageSize, (byte)(before == 0x5A5A5A5A ? 0xA5 : 0x5A));
                replica.memory().copyIn(0, 1, pattern, 0);
                if (point.memoryAdopted())
                {
                    assertEquals(pattern.getInt(pageSize - 4), region.getInt(pageSize - 4), "the new guest's " +
                        "memory is not the adopted region: the target copied after adopting");
                }
                else
                {
                    assertEquals(before, region.getInt(pageSize - 4), "a copying target wrote into the recovery " +
                        "point's memory");
                }
            }
            finally
            {
                close(replica);
            }
        }
        adapter.vcpus().resume();
    }

    /**
     * A target that builds in two steps ({@link ReplicaTarget#prepare}) leaves the guest paused until
     * {@code run()}: the library gives a DURABLE standby's image up in between, so while the guest waits nothing of
     * it may change the recovery point's memory (adopted or copied from) or its disk images. A guest the library
     * discards releases the memory it adopted. A one-step target has nothing to check here.
     */
    @Test
    void aPreparedGuestChangesNothingOfTheRecoveryPointUntilItRuns() throws Exception
    {
        Thread.sleep(activityWindowMillis());
        adapter.vcpus().pause();
        final long liveBefore = NativeMemory.liveAllocations();
        ReplicaTarget.PreparedGuest prepared;
        try (SnapshotRecoveryPoint point = new SnapshotRecoveryPoint(adapter, dir))
        {
            final long before = pointChecksum(point);
            final Path replicaDir = dir.resolve("prepared");
            assertTrue(replicaDir.toFile().mkdirs());
            prepared = newReplicaTarget(replicaDir).prepare(point);
            if (prepared != null)
            {
                Thread.sleep(activityWindowMillis());
                assertEquals(before, pointChecksum(point), "the prepared guest changed the recovery point's memory " +
                    "or disks before it was told to run");
                final VmmAdapter replica = prepared.run();
                assertEquals(adapter.vmId(), replica.vmId());
                close(replica);
            }
        }
        if (prepared != null)
        {
            final Path discardDir = dir.resolve("discarded");
            assertTrue(discardDir.toFile().mkdirs());
            try (SnapshotRecoveryPoint point = new SnapshotRecoveryPoint(adapter, discardDir))
            {
                newReplicaTarget(discardDir).prepare(point).discard();
            }
            assertEquals(liveBefore, NativeMemory.liveAllocations(), "a discarded guest did not release its memory");
        }
        // the guest is resumed after each test
        Assumptions.assumeTrue(prepared != null, "this adapter's ReplicaTarget builds and runs in one step");
    }

    /**
     * @return a CRC32C of the recovery point's memory region (read in place, as an adopting guest would change it)
     *         and of its disk image files.
     */
    private static long pointChecksum(final SnapshotRecoveryPoint point) throws java.io.IOException
    {
        final java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        final long bytes = point.memory().pageCount() * point.memory().pageSize();
        final byte[] chunk = new byte[1 << 20];
        for (long offset = 0; offset < bytes; offset += chunk.length)
        {
            final int length = (int)Math.min(chunk.length, bytes - offset);
            new UnsafeBuffer(point.memoryAddress() + offset, length).getBytes(0, chunk, 0, length);
            crc.update(chunk, 0, length);
        }
        for (final dev.tandem.vmm.VirtualDisk disk : point.disks())
        {
            crc.update(java.nio.file.Files.readAllBytes(point.diskImage(disk.id())));
        }
        return crc.getValue();
    }

    /**
     * The replica target builds a guest whose digest equals the guest the recovery point was taken from.
     */
    @Test
    void replicaTargetResumesAnEqualGuest() throws InterruptedException
    {
        Thread.sleep(activityWindowMillis());
        adapter.vcpus().pause();
        final long expected = StateDigest.of(adapter);
        try (SnapshotRecoveryPoint point = new SnapshotRecoveryPoint(adapter, dir))
        {
            assertEquals(expected, StateDigest.of(point), "snapshot differs from the paused guest");
            final Path replicaDir = dir.resolve("replica");
            assertTrue(replicaDir.toFile().mkdirs());
            final VmmAdapter replica = newReplicaTarget(replicaDir).resume(point);
            try
            {
                if (!replica.vcpus().isPaused())
                {
                    replica.vcpus().pause();
                }
                assertEquals(expected, StateDigest.of(replica), "replica differs from the recovery point");
            }
            finally
            {
                close(replica);
            }
        }
        adapter.vcpus().resume();
    }

    private OutputGate countingGate()
    {
        return (frame, index, length) ->
        {
            outputFrames.incrementAndGet();
            return true;
        };
    }

    private final class CountingDiskSink implements DiskWriteSink
    {
        @Override
        public void write(final int diskId, final long offset, final DirectBuffer data, final int index, final int length)
        {
            diskWrites.incrementAndGet();
        }

        @Override
        public void flush(final int diskId)
        {
            diskWrites.incrementAndGet();
        }
    }

    private static byte[] snapshot(final GuestMemory memory)
    {
        final byte[] bytes = new byte[Math.toIntExact(memory.sizeBytes())];
        memory.copyOut(0, Math.toIntExact(memory.pageCount()), new UnsafeBuffer(bytes), 0);
        return bytes;
    }

    private static boolean samePage(final byte[] a, final byte[] b, final long page, final int pageSize)
    {
        final int from = (int)(page * pageSize);
        return java.util.Arrays.equals(a, from, from + pageSize, b, from, from + pageSize);
    }
}
