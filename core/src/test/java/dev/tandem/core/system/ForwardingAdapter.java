package dev.tandem.core.system;

import dev.tandem.vmm.DirtyBitmap;
import dev.tandem.vmm.DirtyLog;
import dev.tandem.vmm.DiskWriteSink;
import dev.tandem.vmm.GuestMemory;
import dev.tandem.vmm.OutputGate;
import dev.tandem.vmm.PacketSink;
import dev.tandem.vmm.StatefulComponent;
import dev.tandem.vmm.VcpuControl;
import dev.tandem.vmm.VirtualDisk;
import dev.tandem.vmm.VmmAdapter;

import java.util.List;

/**
 * A guest that forwards every call to another; a test overrides the one part it wants to watch or break.
 */
public class ForwardingAdapter implements VmmAdapter
{
    final VmmAdapter guest;

    /**
     * @param guest the guest every call goes to.
     */
    public ForwardingAdapter(final VmmAdapter guest)
    {
        this.guest = guest;
    }

    /**
     * A dirty log forwarding to the guest's, for a test to override one of its calls.
     */
    class ForwardingDirtyLog implements DirtyLog
    {
        final DirtyLog log = guest.dirtyLog();

        @Override
        public void startTracking()
        {
            log.startTracking();
        }

        @Override
        public void stopTracking()
        {
            log.stopTracking();
        }

        @Override
        public void harvest(final DirtyBitmap into)
        {
            log.harvest(into);
        }
    }

    @Override
    public String vmId()
    {
        return guest.vmId();
    }

    @Override
    public GuestMemory memory()
    {
        return guest.memory();
    }

    @Override
    public DirtyLog dirtyLog()
    {
        return guest.dirtyLog();
    }

    @Override
    public VcpuControl vcpus()
    {
        return guest.vcpus();
    }

    @Override
    public List<StatefulComponent> components()
    {
        return guest.components();
    }

    @Override
    public List<VirtualDisk> disks()
    {
        return guest.disks();
    }

    @Override
    public PacketSink packetSink()
    {
        return guest.packetSink();
    }

    @Override
    public void attach(final DiskWriteSink diskWrites, final OutputGate output)
    {
        guest.attach(diskWrites, output);
    }

    @Override
    public void detach()
    {
        guest.detach();
    }

    @Override
    public dev.tandem.vmm.HealthProbe healthProbe()
    {
        return guest.healthProbe();
    }

    @Override
    public void fenced(final String reason)
    {
        guest.fenced(reason);
    }
}
