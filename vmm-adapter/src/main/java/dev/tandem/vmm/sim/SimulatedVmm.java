package dev.tandem.vmm.sim;

import dev.tandem.vmm.DirtyLog;
import dev.tandem.vmm.DiskWriteSink;
import dev.tandem.vmm.HealthProbe;
import dev.tandem.vmm.JvmAccess;
import dev.tandem.vmm.NativeMemory;
import dev.tandem.vmm.OutputGate;
import dev.tandem.vmm.PacketSink;
import dev.tandem.vmm.StatefulComponent;
import dev.tandem.vmm.VcpuControl;
import dev.tandem.vmm.VirtualDisk;
import dev.tandem.vmm.VmmAdapter;
import dev.tandem.vmm.VmmAdapterException;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.ringbuffer.ManyToOneRingBuffer;
import org.agrona.concurrent.ringbuffer.RingBufferDescriptor;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * The reference adapter: a complete simulated VMM whose guest is a seeded workload.
 * <p>
 * One or more vCPU threads write guest memory through the tracked path at a configured rate, append blocks to a
 * file-backed virtual disk through the {@link DiskWriteSink}, and send frames through the {@link OutputGate}. A
 * virtual NIC DMAs received frames into guest memory. vCPU, disk-controller and NIC state are
 * {@link StatefulComponent}s. {@link dev.tandem.vmm.StateDigest} compares two replicas.
 * <p>
 * Pausing is a Dekker handshake: a vCPU publishes RUNNING and then re-reads the pause flag; {@link #pause()}
 * publishes the flag and then waits for every vCPU to leave RUNNING. vCPUs look at the flag between single page
 * writes, so a pause costs about one write's latency plus a cache-line transfer.
 */
public final class SimulatedVmm implements VmmAdapter, VcpuControl, AutoCloseable
{
    /** Component id of vCPU 0; vCPU i has {@code VCPU_COMPONENT_ID + i}. */
    public static final int VCPU_COMPONENT_ID = 0x100;
    /** Component id of the disk controller. */
    public static final int DISK_COMPONENT_ID = 0x200;
    /** Component id of the NIC. */
    public static final int NIC_COMPONENT_ID = 0x300;
    /** Default page size of simulated guests. */
    public static final int PAGE_SIZE = 4096;
    /** Size of the frames the workload sends. */
    public static final int TX_FRAME_BYTES = 64;

    private static final int STATE_IDLE = 0;
    private static final int STATE_RUNNING = 1;
    private static final int RX_SLOT_BYTES = 2048;
    private static final int DISK_BLOCK_BYTES = 4096;

    private final Builder config;
    private final SimulatedGuestMemory memory;
    private final SimulatedDisk disk;
    private final Vcpu[] vcpus;
    private final List<StatefulComponent> components = new ArrayList<>();
    private final List<VirtualDisk> disks = new ArrayList<>();
    private final NativeMemory.Region rxRegion;
    private final ManyToOneRingBuffer rxQueue;
    private final AtomicLong ledgerOffset = new AtomicLong();
    private final AtomicLong diskWrites = new AtomicLong();
    private final AtomicLong txFrames = new AtomicLong();
    private final AtomicLong rxFrames = new AtomicLong();
    private final AtomicLong txDropped = new AtomicLong();
    private final AtomicLong framesOnWire = new AtomicLong();
    private final PacketSink wire;
    private final long rxAreaAddress;
    private final int rxSlots;

    private final GuestProgram.Io io = new ProgramIo();
    private final long firstWorkloadPage;
    private volatile boolean pauseRequested;
    private volatile boolean stopRequested;
    private volatile DiskWriteSink diskWriteSink;
    private volatile OutputGate outputGate;
    private boolean started;
    private boolean closed;
    /** True while {@link #step()} runs a tick: a vCPU is mid-instruction and a pause would wait for it forever. */
    private boolean stepping;

    private SimulatedVmm(final Builder config, final NativeMemory.Region adoptedMemory)
    {
        this.config = config;
        final PacketSink configured = config.packetSink;
        this.wire = (frame, index, length) ->
        {
            framesOnWire.incrementAndGet();
            if (configured != null)
            {
                configured.send(frame, index, length);
            }
        };
        this.memory = adoptedMemory != null ? new SimulatedGuestMemory(adoptedMemory, config.pageSize) :
            new SimulatedGuestMemory(config.memoryBytes, config.pageSize);
        // the last pages of memory are the NIC's receive area, written only by device DMA
        this.rxSlots = (int)Math.min(64, Math.max(1, (memory.sizeBytes() / 8) / RX_SLOT_BYTES));
        this.rxAreaAddress = memory.sizeBytes() - (long)rxSlots * RX_SLOT_BYTES;
        this.rxRegion = NativeMemory.allocateDirect(64 * 1024 + RingBufferDescriptor.TRAILER_LENGTH, 64);
        this.rxQueue = new ManyToOneRingBuffer(new UnsafeBuffer(rxRegion.byteBuffer()));
        this.disk = config.diskPath == null ? null :
            new SimulatedDisk(0, config.diskPath, config.diskBlockSize, config.diskBytes);
        this.vcpus = new Vcpu[config.vcpuCount];
        for (int i = 0; i < vcpus.length; i++)
        {
            vcpus[i] = new Vcpu(i, config.seed * 0x9E3779B97F4A7C15L + i + 1);
            components.add(vcpus[i]);
        }
        components.add(new DiskController());
        components.add(new NicState());
        if (disk != null)
        {
            disks.add(disk);
        }
        this.firstWorkloadPage = config.program == null ? 0 : config.program.reservedPages();
        if (firstWorkloadPage >= rxAreaAddress / config.pageSize)
        {
            throw new IllegalArgumentException("the guest program reserves " + firstWorkloadPage +
                " pages; the guest has only " + rxAreaAddress / config.pageSize + " usable pages");
        }
        if (config.program != null && adoptedMemory == null)
        {
            // adopted memory is a recovered guest, already booted: booting again would overwrite its state
            config.program.boot(io);
        }
    }

    /**
     * @return a builder with defaults: 64 MiB, 4 KiB pages, one vCPU, hotset workload at 200 pages/ms, no disk.
     * @throws IllegalStateException listing the JVM flags Agrona needs, when any is missing.
     */
    public static Builder builder()
    {
        // before anything touches Agrona: its IllegalAccessError would not say which flags to add
        JvmAccess.check();
        return new Builder();
    }

    /**
     * Starts the vCPU threads.
     *
     * @return this.
     */
    public synchronized SimulatedVmm start()
    {
        if (started)
        {
            throw new IllegalStateException("simulated VMM " + config.vmId + " already started");
        }
        started = true;
        for (final Vcpu vcpu : vcpus)
        {
            vcpu.thread = new Thread(vcpu, config.vmId + "-vcpu" + vcpu.index);
            vcpu.thread.setDaemon(true);
            vcpu.thread.start();
        }
        return this;
    }

    /**
     * Instead of {@link #start()}: runs one tick of every vCPU, in index order, on the calling thread, so that one
     * thread can step the guest beside the duty cycles that protect it (deterministic simulation). Does nothing
     * while the guest is paused.
     *
     * @return true if the guest ran, false if it is paused.
     * @throws IllegalStateException if the vCPU threads were started or the VMM is closed.
     */
    public boolean step()
    {
        if (started || closed)
        {
            throw new IllegalStateException("simulated VMM " + config.vmId + " is " + (closed ? "closed" :
                "running on its own vCPU threads") + "; step() drives a guest that was built and not started");
        }
        if (pauseRequested)
        {
            return false;
        }
        stepping = true;
        try
        {
            for (final Vcpu vcpu : vcpus)
            {
                vcpu.runTick();
            }
        }
        finally
        {
            stepping = false;
        }
        return true;
    }

    /**
     * @return the configuration this VMM was built from.
     */
    public Builder config()
    {
        return config;
    }

    @Override
    public String vmId()
    {
        return config.vmId;
    }

    @Override
    public SimulatedGuestMemory memory()
    {
        return memory;
    }

    @Override
    public DirtyLog dirtyLog()
    {
        return memory;
    }

    @Override
    public VcpuControl vcpus()
    {
        return this;
    }

    @Override
    public List<StatefulComponent> components()
    {
        return components;
    }

    @Override
    public List<VirtualDisk> disks()
    {
        return disks;
    }

    @Override
    public PacketSink packetSink()
    {
        return wire;
    }

    /**
     * @return frames that reached the wire (released by the gate, or sent while detached).
     */
    public long framesOnWire()
    {
        return framesOnWire.get();
    }

    @Override
    public HealthProbe healthProbe()
    {
        return config.healthProbe;
    }

    @Override
    public void attach(final DiskWriteSink diskWrites, final OutputGate output)
    {
        this.diskWriteSink = Objects.requireNonNull(diskWrites, "diskWrites");
        this.outputGate = Objects.requireNonNull(output, "output");
    }

    /**
     * Passes every disk write to {@code sink} as well, output unchanged (it leaves unprotected), until
     * {@link #attach} replaces it: the record a quick failback needs, kept from before the resumed guest runs
     * ({@link dev.tandem.vmm.RecoveryPoint#trackFromResume()}).
     *
     * @param sink where the writes go too.
     */
    void recordDiskWrites(final DiskWriteSink sink)
    {
        this.diskWriteSink = Objects.requireNonNull(sink, "sink");
    }

    @Override
    public void detach()
    {
        this.diskWriteSink = null;
        this.outputGate = null;
    }

    /**
     * @return the disk, or null if configured without one.
     */
    public SimulatedDisk disk()
    {
        return disk;
    }

    /**
     * @return frames the guest sent (offered to the gate or the sink).
     */
    public long txFrames()
    {
        return txFrames.get();
    }

    /**
     * @return frames the gate refused.
     */
    public long txDropped()
    {
        return txDropped.get();
    }

    /**
     * @return disk writes the guest issued.
     */
    public long diskWrites()
    {
        return diskWrites.get();
    }

    /**
     * @return page writes by all vCPUs so far.
     */
    public long pageWrites()
    {
        long total = 0;
        for (final Vcpu vcpu : vcpus)
        {
            total += vcpu.pageWrites;
        }
        return total;
    }

    /**
     * The NIC receives a frame; it is DMA'd into guest memory by the device at the vCPU's next safe point.
     *
     * @param frame  bytes.
     * @param index  offset.
     * @param length length, at most {@code 2044}.
     * @return false if the receive queue is full (the frame is dropped, as a NIC would).
     */
    public boolean deliver(final DirectBuffer frame, final int index, final int length)
    {
        if (length > RX_SLOT_BYTES - 4)
        {
            throw new IllegalArgumentException("frame of " + length + " bytes exceeds the NIC's " + (RX_SLOT_BYTES - 4));
        }
        return rxQueue.write(1, frame, index, length);
    }

    private volatile String fencedReason;

    @Override
    public void pause()
    {
        if (pauseRequested)
        {
            throw new IllegalStateException("guest " + config.vmId + " is already paused");
        }
        if (stepping)
        {
            throw new IllegalStateException("guest " + config.vmId + " was asked to pause from inside step() on the " +
                "stepping thread: its vCPU is mid-tick and could never stop");
        }
        pauseRequested = true;
        for (final Vcpu vcpu : vcpus)
        {
            while (vcpu.state == STATE_RUNNING)
            {
                Thread.onSpinWait();
            }
            if (vcpu.crash != null)
            {
                throw new VmmAdapterException(VmmAdapterException.Phase.PAUSE,
                    "vcpu" + vcpu.index + " of " + config.vmId + " crashed: " + vcpu.crash, vcpu.crash);
            }
        }
    }

    @Override
    public void fenced(final String reason)
    {
        fencedReason = reason == null ? "fenced" : reason;
    }

    /**
     * @return why this guest was fenced (another side owns it; it never runs again), or null.
     */
    public String fencedReason()
    {
        return fencedReason;
    }

    @Override
    public void resume()
    {
        if (fencedReason != null)
        {
            throw new IllegalStateException("guest " + config.vmId + " was fenced (" + fencedReason + "); another " +
                "side owns it and it must never run here again");
        }
        if (!pauseRequested)
        {
            throw new IllegalStateException("guest " + config.vmId + " is not paused");
        }
        pauseRequested = false;
        for (final Vcpu vcpu : vcpus)
        {
            if (vcpu.thread != null)
            {
                LockSupport.unpark(vcpu.thread);
            }
        }
    }

    @Override
    public boolean isPaused()
    {
        return pauseRequested;
    }

    /**
     * Stops the vCPUs and frees memory. Idempotent.
     */
    @Override
    public synchronized void close()
    {
        if (closed)
        {
            return;
        }
        closed = true;
        stopRequested = true;
        for (final Vcpu vcpu : vcpus)
        {
            if (vcpu.thread != null)
            {
                LockSupport.unpark(vcpu.thread);
                try
                {
                    vcpu.thread.join(TimeUnit.SECONDS.toMillis(10));
                }
                catch (final InterruptedException ex)
                {
                    Thread.currentThread().interrupt();
                }
            }
        }
        memory.close();
        rxRegion.close();
        if (disk != null)
        {
            disk.close();
        }
    }

    private void transmit(final DirectBuffer frame, final int index, final int length)
    {
        final OutputGate gate = outputGate;
        if (gate != null)
        {
            if (!gate.offer(frame, index, length))
            {
                txDropped.incrementAndGet();
            }
        }
        else
        {
            wire.send(frame, index, length);
        }
    }

    /**
     * The devices as a guest program sees them.
     */
    private final class ProgramIo implements GuestProgram.Io
    {
        private final ByteBuffer block = ByteBuffer.allocateDirect(64 * 1024);
        private final UnsafeBuffer blockView = new UnsafeBuffer(block);

        @Override
        public SimulatedGuestMemory memory()
        {
            return memory;
        }

        @Override
        public void writeDisk(final long offset, final DirectBuffer data, final int index, final int length)
        {
            if (disk == null || length > block.capacity())
            {
                throw new IllegalArgumentException("no disk, or a write of " + length + " bytes over 64 KiB");
            }
            blockView.putBytes(0, data, index, length);
            block.clear().limit(length);
            disk.guestWrite(offset, block);
            diskWrites.incrementAndGet();
            final DiskWriteSink sink = diskWriteSink;
            if (sink != null)
            {
                sink.write(disk.id(), offset, blockView, 0, length);
            }
        }

        @Override
        public void readDisk(final long offset, final MutableDirectBuffer dst, final int index, final int length)
        {
            disk.read(offset, dst, index, length);
        }

        @Override
        public long diskBytes()
        {
            return disk == null ? 0 : disk.sizeBytes();
        }

        @Override
        public void send(final DirectBuffer frame, final int index, final int length)
        {
            txFrames.incrementAndGet();
            transmit(frame, index, length);
        }
    }

    private void drainReceiveQueue()
    {
        rxQueue.read(this::dmaFrame, 16);
    }

    private void dmaFrame(final int msgType, final MutableDirectBuffer buffer, final int index, final int length)
    {
        final NicState nic = (NicState)components.get(vcpus.length + 1);
        final long slot = nic.rxCursor++ % rxSlots;
        final long address = rxAreaAddress + slot * RX_SLOT_BYTES;
        nic.lengthScratch.putInt(0, length);
        memory.deviceWrite(address, nic.lengthScratch, 0, 4);
        memory.deviceWrite(address + 4, buffer, index, length);
        rxFrames.incrementAndGet();
        if (config.program != null)
        {
            // the guest's interrupt handler runs on the vCPU, inside the guest's execution
            config.program.onFrame(io, buffer, index, length);
        }
    }

    /**
     * One simulated vCPU: its registers are the workload's position (random state, tick, phase).
     */
    private final class Vcpu implements Runnable, StatefulComponent
    {
        private static final int PHASE_PAGES = 0;
        private static final int PHASE_DISK = 1;
        private static final int PHASE_NET = 2;
        private static final int PHASE_DEVICES = 3;
        private static final int STATE_BYTES = 48;

        final int index;
        volatile int state = STATE_IDLE;
        volatile Throwable crash;
        Thread thread;

        long random;
        long tick;
        int phase;
        int pendingWrites;
        long sequentialCursor;
        long pageWrites;

        /** One write of the workload: 4 KiB, or one block of a disk with larger blocks. */
        private final int diskWriteBytes = Math.max(DISK_BLOCK_BYTES, config.diskBlockSize);
        private final ByteBuffer diskBlock = ByteBuffer.allocateDirect(diskWriteBytes);
        private final UnsafeBuffer diskBlockView = new UnsafeBuffer(diskBlock);
        private final UnsafeBuffer txFrame = new UnsafeBuffer(ByteBuffer.allocateDirect(TX_FRAME_BYTES));

        Vcpu(final int index, final long seed)
        {
            this.index = index;
            this.random = seed;
            this.pendingWrites = config.pagesPerMillisecond;
        }

        @Override
        public void run()
        {
            try
            {
                runLoop();
            }
            catch (final RuntimeException | Error ex)
            {
                // a crashed vCPU must not leave pause() waiting for it forever
                crash = ex;
                state = STATE_IDLE;
                throw ex;
            }
        }

        private void runLoop()
        {
            final long tickNs = TimeUnit.MICROSECONDS.toNanos(config.tickMicros);
            long deadline = System.nanoTime();
            while (!stopRequested)
            {
                if (pauseRequested)
                {
                    LockSupport.park(this);
                    continue;
                }
                state = STATE_RUNNING;
                if (pauseRequested)
                {
                    state = STATE_IDLE;
                    continue;
                }
                final boolean tickDone = runTick();
                state = STATE_IDLE;
                if (tickDone)
                {
                    deadline = Math.max(deadline + tickNs, System.nanoTime() - tickNs);
                    final long wait = deadline - System.nanoTime();
                    if (wait > 0)
                    {
                        LockSupport.parkNanos(this, wait);
                    }
                }
            }
        }

        /**
         * @return true when the tick finished, false when a pause interrupted it.
         */
        private boolean runTick()
        {
            if (phase == PHASE_PAGES)
            {
                while (pendingWrites > 0)
                {
                    if (pauseRequested)
                    {
                        return false;
                    }
                    writePage();
                    pendingWrites--;
                }
                phase = PHASE_DISK;
            }
            if (phase == PHASE_DISK)
            {
                if (disk != null && config.diskEveryTicks > 0 && tick % config.diskEveryTicks == 0)
                {
                    writeDiskBlock();
                }
                phase = PHASE_NET;
            }
            if (phase == PHASE_NET)
            {
                if (config.packetEveryTicks > 0 && tick % config.packetEveryTicks == 0)
                {
                    sendFrame();
                }
                phase = PHASE_DEVICES;
            }
            if (index == 0)
            {
                // the NIC's receive queue has one consumer: vCPU 0 takes its interrupts
                drainReceiveQueue();
            }
            tick++;
            phase = PHASE_PAGES;
            pendingWrites = config.workload == Workload.IDLE ? 0 : config.pagesPerMillisecond;
            return true;
        }

        private long nextRandom()
        {
            // splitmix64: the whole generator state is one long, so it travels in the vCPU state
            long z = (random += 0x9E3779B97F4A7C15L);
            z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
            z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
            return z ^ (z >>> 31);
        }

        private void writePage()
        {
            final long usablePages = rxAreaAddress / config.pageSize - firstWorkloadPage;
            final long r = nextRandom();
            final long page;
            switch (config.workload)
            {
                case UNIFORM:
                    page = firstWorkloadPage + Long.remainderUnsigned(r, usablePages);
                    break;
                case HOTSET:
                    final long hot = Math.min(usablePages, config.hotsetPages);
                    page = firstWorkloadPage + ((r & 0xFF) < 230 ? Long.remainderUnsigned(r >>> 8, hot) :
                        Long.remainderUnsigned(r >>> 8, usablePages));
                    break;
                case SEQUENTIAL:
                    page = firstWorkloadPage + sequentialCursor++ % usablePages;
                    break;
                default:
                    return;
            }
            // a 64-byte record at a random cache line of the page
            final long base = page * config.pageSize + ((r >>> 40) % (config.pageSize / 64)) * 64;
            for (int i = 0; i < 8; i++)
            {
                memory.putLong(base + i * 8L, r + i);
            }
            pageWrites++;
        }

        private void writeDiskBlock()
        {
            final int block = disk.blockSize();
            final long offset = ledgerOffset.getAndAdd(diskWriteBytes) % (disk.sizeBytes() - diskWriteBytes + 1)
                / block * block;
            for (int i = 0; i < diskWriteBytes; i += 8)
            {
                diskBlockView.putLong(i, tick * 31 + i + index);
            }
            diskBlock.clear();
            disk.guestWrite(offset, diskBlock);
            diskWrites.incrementAndGet();
            final DiskWriteSink sink = diskWriteSink;
            if (sink != null)
            {
                sink.write(disk.id(), offset, diskBlockView, 0, diskWriteBytes);
            }
        }

        private void sendFrame()
        {
            final long sequence = txFrames.incrementAndGet();
            txFrame.putLong(0, sequence);
            txFrame.putLong(8, tick);
            txFrame.putLong(16, index);
            transmit(txFrame, 0, TX_FRAME_BYTES);
        }

        @Override
        public int id()
        {
            return VCPU_COMPONENT_ID + index;
        }

        @Override
        public int version()
        {
            return 1;
        }

        @Override
        public String name()
        {
            return "vcpu" + index;
        }

        @Override
        public int save(final MutableDirectBuffer buffer, final int offset, final int maxLength)
        {
            if (maxLength < STATE_BYTES)
            {
                return -STATE_BYTES;
            }
            buffer.putLong(offset, random);
            buffer.putLong(offset + 8, tick);
            buffer.putInt(offset + 16, phase);
            buffer.putInt(offset + 20, pendingWrites);
            buffer.putLong(offset + 24, sequentialCursor);
            buffer.putLong(offset + 32, pageWrites);
            buffer.putLong(offset + 40, 0L);
            return STATE_BYTES;
        }

        @Override
        public void restore(final int version, final DirectBuffer buffer, final int offset, final int length)
        {
            checkState(name(), version, length, STATE_BYTES);
            random = buffer.getLong(offset);
            tick = buffer.getLong(offset + 8);
            phase = buffer.getInt(offset + 16);
            pendingWrites = buffer.getInt(offset + 20);
            sequentialCursor = buffer.getLong(offset + 24);
            pageWrites = buffer.getLong(offset + 32);
        }
    }

    private final class DiskController implements StatefulComponent
    {
        @Override
        public int id()
        {
            return DISK_COMPONENT_ID;
        }

        @Override
        public int version()
        {
            return 1;
        }

        @Override
        public String name()
        {
            return "disk-controller";
        }

        @Override
        public int save(final MutableDirectBuffer buffer, final int index, final int maxLength)
        {
            if (maxLength < 16)
            {
                return -16;
            }
            buffer.putLong(index, ledgerOffset.get());
            buffer.putLong(index + 8, diskWrites.get());
            return 16;
        }

        @Override
        public void restore(final int version, final DirectBuffer buffer, final int index, final int length)
        {
            checkState(name(), version, length, 16);
            ledgerOffset.set(buffer.getLong(index));
            diskWrites.set(buffer.getLong(index + 8));
        }
    }

    private final class NicState implements StatefulComponent
    {
        final UnsafeBuffer lengthScratch = new UnsafeBuffer(new byte[4]);
        long rxCursor;

        @Override
        public int id()
        {
            return NIC_COMPONENT_ID;
        }

        @Override
        public int version()
        {
            return 1;
        }

        @Override
        public String name()
        {
            return "nic";
        }

        @Override
        public int save(final MutableDirectBuffer buffer, final int index, final int maxLength)
        {
            if (maxLength < 24)
            {
                return -24;
            }
            buffer.putLong(index, txFrames.get());
            buffer.putLong(index + 8, rxFrames.get());
            buffer.putLong(index + 16, rxCursor);
            return 24;
        }

        @Override
        public void restore(final int version, final DirectBuffer buffer, final int index, final int length)
        {
            checkState(name(), version, length, 24);
            txFrames.set(buffer.getLong(index));
            rxFrames.set(buffer.getLong(index + 8));
            rxCursor = buffer.getLong(index + 16);
        }
    }

    private static void checkState(final String name, final int version, final int length, final int expected)
    {
        if (version != 1)
        {
            throw new VmmAdapterException(VmmAdapterException.Phase.RESTORE,
                name + " state version " + version + " is unknown; this VMM reads version 1");
        }
        if (length != expected)
        {
            throw new VmmAdapterException(VmmAdapterException.Phase.RESTORE,
                name + " state is " + length + " bytes, expected " + expected);
        }
    }

    /**
     * Configuration of a simulated VMM; every setter validates its value.
     */
    public static final class Builder
    {
        private String vmId = "sim-vm";
        private long memoryBytes = 64L << 20;
        private int pageSize = PAGE_SIZE;
        private int vcpuCount = 1;
        private Workload workload = Workload.HOTSET;
        private int pagesPerMillisecond = 200;
        private long hotsetPages = 2048;
        private long seed = 1;
        private Path diskPath;
        private long diskBytes = 16L << 20;
        private int diskBlockSize = SimulatedDisk.BLOCK_SIZE;
        private int diskEveryTicks = 4;
        private int packetEveryTicks = 2;
        private int tickMicros = 1000;
        private PacketSink packetSink;
        private HealthProbe healthProbe = HealthProbe.ALWAYS_HEALTHY;
        private GuestProgram program;

        private Builder()
        {
        }

        /**
         * @param vmId identity of the guest, 1 to {@link dev.tandem.vmm.VmmAdapter#MAX_VM_ID_BYTES} bytes in UTF-8.
         * @return this.
         * @throws IllegalArgumentException if empty or too long, saying how many bytes it has.
         */
        public Builder vmId(final String vmId)
        {
            Objects.requireNonNull(vmId, "vmId");
            final int bytes = vmId.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
            if (bytes == 0 || bytes > dev.tandem.vmm.VmmAdapter.MAX_VM_ID_BYTES)
            {
                throw new IllegalArgumentException("vmId is " + bytes + " bytes in UTF-8 (" + vmId.length() +
                    " chars); it must be 1 to " + dev.tandem.vmm.VmmAdapter.MAX_VM_ID_BYTES + " bytes");
            }
            this.vmId = vmId;
            return this;
        }

        /**
         * @param bytes guest memory size, a multiple of the page size, from 1 MiB.
         * @return this.
         */
        public Builder memoryBytes(final long bytes)
        {
            if (bytes < (1L << 20))
            {
                throw new IllegalArgumentException("guest memory must be at least 1 MiB: " + bytes);
            }
            this.memoryBytes = bytes;
            return this;
        }

        /**
         * @param pageSize page size, a power of two >= 512.
         * @return this.
         */
        public Builder pageSize(final int pageSize)
        {
            this.pageSize = pageSize;
            return this;
        }

        /**
         * @param count number of vCPU threads, 1 to 64.
         * @return this.
         */
        public Builder vcpus(final int count)
        {
            if (count < 1 || count > 64)
            {
                throw new IllegalArgumentException("vcpus must be in [1, 64]: " + count);
            }
            this.vcpuCount = count;
            return this;
        }

        /**
         * @param workload how pages are chosen.
         * @return this.
         */
        public Builder workload(final Workload workload)
        {
            this.workload = Objects.requireNonNull(workload, "workload");
            return this;
        }

        /**
         * @param pages page writes per vCPU per millisecond tick (the dirty rate), >= 0.
         * @return this.
         */
        public Builder pagesPerMillisecond(final int pages)
        {
            if (pages < 0)
            {
                throw new IllegalArgumentException("pagesPerMillisecond must be >= 0: " + pages);
            }
            this.pagesPerMillisecond = pages;
            return this;
        }

        /**
         * @param pages size of the hot set of the {@link Workload#HOTSET} workload, >= 1.
         * @return this.
         */
        public Builder hotsetPages(final long pages)
        {
            if (pages < 1)
            {
                throw new IllegalArgumentException("hotsetPages must be >= 1: " + pages);
            }
            this.hotsetPages = pages;
            return this;
        }

        /**
         * @param seed seed of the workload.
         * @return this.
         */
        public Builder seed(final long seed)
        {
            this.seed = seed;
            return this;
        }

        /**
         * @param path  image file of the guest's disk (created if missing), or null for no disk.
         * @param bytes disk size, a positive multiple of 512 of at least 4 KiB; with {@link #diskBlockSize(int)}
         *              larger than 512, a multiple of the block size (checked by {@link #build()}).
         * @return this.
         */
        public Builder disk(final Path path, final long bytes)
        {
            if (path != null && (bytes < DISK_BLOCK_BYTES || bytes % SimulatedDisk.BLOCK_SIZE != 0))
            {
                throw new IllegalArgumentException("disk size must be a multiple of 512 of at least 4096: " + bytes);
            }
            this.diskPath = path;
            this.diskBytes = bytes;
            return this;
        }

        /**
         * @param blockSize block size of the guest's disk, a power of two from 512 to
         *                  {@link SimulatedDisk#MAX_BLOCK_SIZE}; default {@link SimulatedDisk#BLOCK_SIZE}. The
         *                  workload writes 4 KiB, or one block if blocks are larger.
         * @return this.
         */
        public Builder diskBlockSize(final int blockSize)
        {
            if (blockSize < 512 || blockSize > SimulatedDisk.MAX_BLOCK_SIZE || Integer.bitCount(blockSize) != 1)
            {
                throw new IllegalArgumentException("disk block size must be a power of two from 512 to " +
                    SimulatedDisk.MAX_BLOCK_SIZE + ": " + blockSize);
            }
            this.diskBlockSize = blockSize;
            return this;
        }

        /**
         * @return the configured block size of the disk.
         */
        public int diskBlockSize()
        {
            return diskBlockSize;
        }

        /**
         * @param ticks a 4 KiB (or one-block, if larger) disk write every this many ticks (0 for none).
         * @return this.
         */
        public Builder diskEveryTicks(final int ticks)
        {
            this.diskEveryTicks = Math.max(0, ticks);
            return this;
        }

        /**
         * @param ticks a network frame every this many ticks (0 for none).
         * @return this.
         */
        public Builder packetEveryTicks(final int ticks)
        {
            this.packetEveryTicks = Math.max(0, ticks);
            return this;
        }

        /**
         * @param micros length of a workload tick in microseconds (default 1000).
         * @return this.
         */
        public Builder tickMicros(final int micros)
        {
            if (micros < 1)
            {
                throw new IllegalArgumentException("tickMicros must be >= 1: " + micros);
            }
            this.tickMicros = micros;
            return this;
        }

        /**
         * @param sink where released output goes (the real NIC); every frame is also counted by
         *             {@link SimulatedVmm#framesOnWire()}.
         * @return this.
         */
        public Builder packetSink(final PacketSink sink)
        {
            this.packetSink = sink;
            return this;
        }

        /**
         * @param probe what the guest's health probe answers (e.g. a test's switch); default always healthy.
         * @return this.
         */
        public Builder healthProbe(final HealthProbe probe)
        {
            this.healthProbe = Objects.requireNonNull(probe, "probe");
            return this;
        }

        /**
         * @param program software inside the guest that handles received frames (e.g. a bank), or null.
         * @return this.
         */
        public Builder program(final GuestProgram program)
        {
            this.program = program;
            return this;
        }

        /**
         * @return a copy of this configuration, e.g. for the replica of a guest.
         */
        public Builder copy()
        {
            final Builder copy = new Builder();
            copy.vmId = vmId;
            copy.memoryBytes = memoryBytes;
            copy.pageSize = pageSize;
            copy.vcpuCount = vcpuCount;
            copy.workload = workload;
            copy.pagesPerMillisecond = pagesPerMillisecond;
            copy.hotsetPages = hotsetPages;
            copy.seed = seed;
            copy.diskPath = diskPath;
            copy.diskBytes = diskBytes;
            copy.diskBlockSize = diskBlockSize;
            copy.diskEveryTicks = diskEveryTicks;
            copy.packetEveryTicks = packetEveryTicks;
            copy.tickMicros = tickMicros;
            copy.packetSink = packetSink;
            copy.healthProbe = healthProbe;
            copy.program = program;
            return copy;
        }

        /**
         * @return the configured identity.
         */
        public String vmId()
        {
            return vmId;
        }

        /**
         * @return the configured memory size.
         */
        public long memoryBytes()
        {
            return memoryBytes;
        }

        /**
         * @param path where a copy of this configuration keeps its disk image (e.g. a replica on another host).
         * @return this.
         */
        public Builder diskPath(final Path path)
        {
            this.diskPath = path;
            return this;
        }

        /**
         * @return the configured disk size.
         */
        public long diskBytes()
        {
            return diskBytes;
        }

        /**
         * @return the configured disk path, or null.
         */
        public Path diskPath()
        {
            return diskPath;
        }

        /**
         * Builds the VMM; call {@link SimulatedVmm#start()} to run the guest.
         *
         * @return a stopped simulated VMM.
         */
        public SimulatedVmm build()
        {
            return build(null);
        }

        /**
         * Builds the VMM on memory handed over by a recovery point (zero-copy promotion): the guest's pages are the
         * region's, and the VMM owns it from now on (freed by {@link SimulatedVmm#close()}).
         *
         * @param adoptedMemory the region from {@link dev.tandem.vmm.RecoveryPoint#adoptMemory()}, or null to
         *                      allocate fresh memory.
         * @return a stopped simulated VMM.
         * @throws IllegalArgumentException if the region's size is not this guest's memory size.
         */
        public SimulatedVmm build(final NativeMemory.Region adoptedMemory)
        {
            if (memoryBytes % pageSize != 0)
            {
                throw new IllegalArgumentException(
                    "guest memory " + memoryBytes + " is not a multiple of the page size " + pageSize);
            }
            if (diskPath != null && (diskBytes % diskBlockSize != 0 || diskBytes < Math.max(DISK_BLOCK_BYTES,
                diskBlockSize)))
            {
                throw new IllegalArgumentException("disk size " + diskBytes + " is not a multiple of the disk block " +
                    "size " + diskBlockSize + " of at least " + Math.max(DISK_BLOCK_BYTES, diskBlockSize));
            }
            if (adoptedMemory != null && adoptedMemory.length() != memoryBytes)
            {
                throw new IllegalArgumentException("adopted memory of " + adoptedMemory.length() + " bytes for a " +
                    "guest of " + memoryBytes + " bytes");
            }
            return new SimulatedVmm(copy(), adoptedMemory);
        }
    }
}
