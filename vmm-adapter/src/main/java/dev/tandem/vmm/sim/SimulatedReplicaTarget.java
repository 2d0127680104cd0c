package dev.tandem.vmm.sim;

import dev.tandem.vmm.DiskWriteSink;
import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.RecoveryPoint;
import dev.tandem.vmm.ReplicaTarget;
import dev.tandem.vmm.StatefulComponent;
import dev.tandem.vmm.VmmAdapter;
import dev.tandem.vmm.VmmAdapterException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Builds a running {@link SimulatedVmm} from a recovery point: the simulated VMM's side of promotion, in two steps
 * (built paused, then run).
 */
public final class SimulatedReplicaTarget implements ReplicaTarget
{
    private final SimulatedVmm.Builder template;
    private final boolean start;
    private final boolean adopt;

    /**
     * A target that adopts the recovery point: the new guest runs on the standby's memory region and disk images
     * in place, nothing copied (a recovery point that cannot hand its memory over is copied from).
     *
     * @param template configuration of the guest to build.
     * @param start    whether to start the vCPUs (false leaves the guest built but stopped, for inspection).
     */
    public SimulatedReplicaTarget(final SimulatedVmm.Builder template, final boolean start)
    {
        this(template, start, true);
    }

    /**
     * @param template configuration of the guest to build; when copying, its disk path is where the recovered image
     *                 is copied.
     * @param start    whether to start the vCPUs (false leaves the guest built but stopped, for inspection).
     * @param adopt    true to adopt the recovery point's memory and disk images (zero-copy promotion), false to copy
     *                 them (the standby's replica stays intact, e.g. to compare it afterwards).
     */
    public SimulatedReplicaTarget(final SimulatedVmm.Builder template, final boolean start, final boolean adopt)
    {
        this.template = template.copy();
        this.start = start;
        this.adopt = adopt;
    }

    @Override
    public VmmAdapter resume(final RecoveryPoint point)
    {
        return prepare(point).run();
    }

    /**
     * Builds the guest with its vCPUs stopped; {@link PreparedGuest#run()} starts them if this target starts guests.
     */
    @Override
    public PreparedGuest prepare(final RecoveryPoint point)
    {
        if (!template.vmId().equals(point.vmId()))
        {
            throw new VmmAdapterException(VmmAdapterException.Phase.RESTORE,
                "recovery point is of VM '" + point.vmId() + "' but this target builds '" + template.vmId() + "'");
        }
        final GuestMemory source = point.memory();
        if (source.sizeBytes() != template.memoryBytes())
        {
            throw new VmmAdapterException(VmmAdapterException.Phase.RESTORE, "recovery point has " +
                source.sizeBytes() + " bytes of memory, target is configured for " + template.memoryBytes());
        }
        final SimulatedVmm.Builder config = template.copy();
        if (adopt && template.diskPath() != null && point.disks().size() == 1)
        {
            // the standby's image becomes the guest's disk in place: no copy of the disk either
            config.diskPath(point.diskImage(point.disks().get(0).id()));
        }
        copyDisk(point, config.diskPath());
        final NativeMemory.Region adopted = adopt ? point.adoptMemory() : null;
        final SimulatedVmm vmm;
        try
        {
            vmm = config.build(adopted);
        }
        catch (final RuntimeException ex)
        {
            if (adopted != null)
            {
                adopted.close();
            }
            throw ex;
        }
        try
        {
            if (adopted == null)
            {
                vmm.memory().copyFrom(source);
            }
            for (final RecoveryPoint.ComponentState state : point.components())
            {
                find(vmm, state.id()).restore(state.version(), state.state(), 0, state.state().capacity());
            }
            final DiskWriteSink sinceResume = point.trackFromResume();
            if (sinceResume != null)
            {
                // before any vCPU runs: every page and block the guest changes from the checkpoint on is recorded
                vmm.dirtyLog().startTracking();
                vmm.recordDiskWrites(sinceResume);
            }
            return new PreparedGuest()
            {
                @Override
                public VmmAdapter run()
                {
                    try
                    {
                        return start ? vmm.start() : vmm;
                    }
                    catch (final RuntimeException ex)
                    {
                        vmm.close();
                        throw ex;
                    }
                }

                @Override
                public void discard()
                {
                    // closes the adopted memory with it
                    vmm.close();
                }
            };
        }
        catch (final RuntimeException ex)
        {
            vmm.close();
            throw ex;
        }
    }

    private void copyDisk(final RecoveryPoint point, final Path target)
    {
        if (target == null)
        {
            if (!point.disks().isEmpty())
            {
                throw new VmmAdapterException(VmmAdapterException.Phase.RESTORE,
                    "recovery point has " + point.disks().size() + " disk(s) but the target has no disk configured");
            }
            return;
        }
        if (point.disks().size() != 1)
        {
            throw new VmmAdapterException(VmmAdapterException.Phase.RESTORE,
                "target has one disk, recovery point has " + point.disks().size());
        }
        final Path source = point.diskImage(point.disks().get(0).id());
        try
        {
            // a target may adopt the standby's image in place; otherwise it gets its own copy
            if (!(Files.exists(target) && Files.isSameFile(source, target)))
            {
                Files.copy(source, target, StandardCopyOption.REPLACE_EXISTING);
            }
        }
        catch (final IOException ex)
        {
            throw new VmmAdapterException(VmmAdapterException.Phase.RESTORE,
                "cannot copy disk image " + source + " to " + target, ex);
        }
    }

    private static StatefulComponent find(final SimulatedVmm vmm, final int id)
    {
        for (final StatefulComponent component : vmm.components())
        {
            if (component.id() == id)
            {
                return component;
            }
        }
        throw new VmmAdapterException(VmmAdapterException.Phase.RESTORE,
            "recovery point holds state of component id 0x" + Integer.toHexString(id) + " which this VM does not have");
    }
}
