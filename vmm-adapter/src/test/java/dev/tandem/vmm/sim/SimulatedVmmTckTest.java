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
            .seed(42);
    }

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
