package dev.tandem.vmm.sim;

import dev.tandem.vmm.StateDigest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A guest stepped from the caller's thread: deterministic, paused guests do nothing, and it refuses to be stepped
 * beside its own vCPU threads.
 */
class SimulatedVmmStepTest
{
    @TempDir
    Path dir;

    private SimulatedVmm.Builder guest(final String name)
    {
        return SimulatedVmm.builder().vmId("step").memoryBytes(1 << 20).workload(Workload.UNIFORM)
            .pagesPerMillisecond(8).disk(dir.resolve(name), 64 << 10).diskEveryTicks(2).packetEveryTicks(1).seed(9);
    }

    @Test
    void theSameStepsGiveTheSameGuest()
    {
        try (SimulatedVmm a = guest("a.img").build(); SimulatedVmm b = guest("b.img").build())
        {
            final long before = StateDigest.of(a);
            for (int i = 0; i < 50; i++)
            {
                assertTrue(a.step());
                assertTrue(b.step());
            }
            assertEquals(50 * 8, a.pageWrites());
            assertEquals(25, a.diskWrites());
            assertEquals(50, a.txFrames());
            assertNotEquals(before, StateDigest.of(a));
            assertEquals(StateDigest.of(a), StateDigest.of(b));
        }
    }

    @Test
    void aPausedGuestDoesNothingAndAStartedOneCannotBeStepped()
    {
        try (SimulatedVmm vmm = guest("c.img").build())
        {
            vmm.pause();
            final long digest = StateDigest.of(vmm);
            assertFalse(vmm.step());
            assertEquals(digest, StateDigest.of(vmm));
            vmm.resume();
            vmm.start();
            final IllegalStateException ex = assertThrows(IllegalStateException.class, vmm::step);
            assertTrue(ex.getMessage().contains("own vCPU threads"), ex.getMessage());
        }
    }
}
