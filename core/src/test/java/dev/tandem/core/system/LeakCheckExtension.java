package dev.tandem.core.system;

import dev.tandem.core.metrics.ProcessCounters;
import dev.tandem.vmm.NativeMemory;
import net.openhft.chronicle.core.io.AbstractReferenceCounted;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Fails a test that left native memory, a mapped counters file or Chronicle resources behind.
 */
public final class LeakCheckExtension implements BeforeEachCallback, AfterEachCallback
{
    private static final ExtensionContext.Namespace NS = ExtensionContext.Namespace.create(LeakCheckExtension.class);

    @Override
    public void beforeEach(final ExtensionContext context)
    {
        AbstractReferenceCounted.enableReferenceTracing();
        context.getStore(NS).put("allocations", NativeMemory.liveAllocations());
        context.getStore(NS).put("bytes", NativeMemory.liveBytes());
        context.getStore(NS).put("countersFiles", ProcessCounters.mappedFiles());
    }

    @Override
    public void afterEach(final ExtensionContext context)
    {
        final long allocations = context.getStore(NS).get("allocations", Long.class);
        final long bytes = context.getStore(NS).get("bytes", Long.class);
        assertEquals(allocations, NativeMemory.liveAllocations(), "native allocations leaked by the test");
        assertEquals(bytes, NativeMemory.liveBytes(), "native bytes leaked by the test");
        assertEquals(context.getStore(NS).get("countersFiles", Integer.class), ProcessCounters.mappedFiles(),
            "counters files left mapped by the test (an active or standby not closed)");
        AbstractReferenceCounted.assertReferencesReleased();
    }
}
