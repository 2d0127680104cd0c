package dev.tandem.vmm.sim;

import dev.tandem.vmm.ReplicaTarget;
import dev.tandem.vmm.VmmAdapter;
import dev.tandem.vmm.tck.VmmAdapterContractTest;
import org.agrona.concurrent.UnsafeBuffer;

import java.nio.file.Path;

/**
 * The reference adapter keeps the TCK's contract.
 */
class SimulatedVmmTckTest extends VmmAdapterContractTest
{
    private static SimulatedVmm.Builder config(final Path dir)
    {
        return SimulatedVmm.builder()
            .vmId("tck-vm")
            .memoryBytes(8L << 20)
            .workload(Workload.UNIFORM)
            .pagesPerMillisecond(20)
            .disk(dir.resolve("disk.img"), 1L << 20)
            .diskEveryTicks(1)
            .packetEveryTicks(1)
            .seed(42)
            .program(BOOT_STAMP);
    }

    /**
     * Software in the guest whose boot leaves a mark no later boot repeats: a target that boots a recovered guest
     * again (instead of resuming it) changes its memory, and the TCK's equality checks see it.
     */
    private static final GuestProgram BOOT_STAMP = new GuestProgram()
    {
        private final java.util.concurrent.atomic.AtomicLong boots = new java.util.concurrent.atomic.AtomicLong();

        @Override
        public int reservedPages()
        {
            return 1;
        }

        @Override
        public void boot(final Io guest)
        {
            guest.memory().putLong(0, boots.incrementAndGet());
        }

        @Override
        public void onFrame(final Io guest, final org.agrona.DirectBuffer frame, final int index, final int length)
        {
        }
    };

    @Override
    protected VmmAdapter newAdapter(final Path dir)
    {
        return config(dir).build();
    }

    @Override
    protected void start(final VmmAdapter adapter)
    {
        ((SimulatedVmm)adapter).start();
    }

    @Override
    protected void close(final VmmAdapter adapter)
    {
        ((SimulatedVmm)adapter).close();
    }

    @Override
    protected void provokeDeviceWrites(final VmmAdapter adapter)
    {
        final UnsafeBuffer frame = new UnsafeBuffer(new byte[100]);
        for (int i = 0; i < 4; i++)
        {
            frame.putLong(0, System.nanoTime());
            ((SimulatedVmm)adapter).deliver(frame, 0, frame.capacity());
        }
    }

    @Override
    protected ReplicaTarget newReplicaTarget(final Path dir)
    {
        return new SimulatedReplicaTarget(config(dir), false);
    }
}
