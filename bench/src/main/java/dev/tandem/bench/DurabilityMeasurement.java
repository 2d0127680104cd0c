package dev.tandem.bench;

import dev.tandem.core.failover.Promotion;
import dev.tandem.core.failover.PromotionListener;
import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.core.standby.Durability;
import dev.tandem.vmm.sim.SimulatedReplicaTarget;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Stream;

/**
 * What the DURABLE standby costs: ack latency (the active's ack stage, epoch end sent to ack read, over the library's
 * last-10-s window) and sustained checkpoints per second of a protected guest over loopback TCP, MEMORY against
 * DURABLE, in the same run; beside the raw capability of the disk the standby's directory is on, measured in the
 * same run: sequential write throughput with an fsync per write of 1 MiB, and the latency of a 64 KiB write plus
 * fsync (the smallest journal append). Also the disk the DURABLE directory holds at the end (the image files and
 * the journal not yet dropped behind a checkpoint), and what a retention window costs per hour at a 50 ms period.
 * <pre>
 * java -cp bench/target/benchmarks.jar dev.tandem.bench.DurabilityMeasurement [guestMiB] [seconds] [pagesPerMs...]
 * </pre>
 */
public final class DurabilityMeasurement
{
    private DurabilityMeasurement()
    {
    }

    /**
     * @param args guest MiB (default 1024), seconds per run (default 15), page writes per ms of the hotset workload
     *             (default 5 20 50).
     * @throws Exception on failure.
     */
    public static void main(final String[] args) throws Exception
    {
        final long guestMiB = args.length > 0 ? Long.parseLong(args[0]) : 1024;
        final long seconds = args.length > 1 ? Long.parseLong(args[1]) : 15;
        final int[] rates = args.length > 2 ? Arrays.stream(args, 2, args.length).mapToInt(Integer::parseInt).toArray() :
            new int[] {5, 20, 50};
        final Path probeDir = Files.createTempDirectory("tandem-disk-probe");
        final double[] disk = diskProbe(probeDir);
        Files.deleteIfExists(probeDir);
        System.out.printf(Locale.ROOT, "# DURABLE against MEMORY: %d MiB guest (hotset), 10 ms period, %d s per run " +
            "after the baseline, window of the last %d s, active and standby in one JVM over loopback TCP; JDK %s, " +
            "%d cores%n%n", guestMiB, seconds, dev.tandem.core.metrics.LatencyDistribution.WINDOW_SECONDS,
            Runtime.version(), Runtime.getRuntime().availableProcessors());
        System.out.printf(Locale.ROOT, "Raw disk of the standby's directory (%s), same run: sequential 1 MiB " +
            "writes each followed by fsync %.0f MiB/s; a 64 KiB write plus fsync p50 %.2f ms, p99 %.2f ms.%n%n",
            probeDir.getParent(), disk[0], disk[1], disk[2]);
        System.out.println("| page writes/ms | durability | checkpoints/s | ack p50 ms | ack p99 ms | " +
            "output hold p99 ms | journal MiB/s | standby directory MiB |");
        System.out.println("|---|---|---|---|---|---|---|---|");
        for (final int rate : rates)
        {
            for (final Durability durability : Durability.values())
            {
                run(guestMiB << 20, rate, durability, seconds);
            }
        }
        retention(guestMiB << 20, rates[Math.min(1, rates.length - 1)], seconds);
    }

    /**
     * Disk a retention window costs: the journal kept per hour at a 50 ms period (measured over the run, nothing
     * dropped: the window is an hour), and the base images a window holds (one per quarter of it, each a copy of the
     * image files).
     */
    private static void retention(final long guestBytes, final int rate, final long seconds) throws Exception
    {
        final Path[] directory = new Path[1];
        try (ProtectedGuest guest = ProtectedGuest.launch(SimulatedVmm.builder().vmId("retention")
            .memoryBytes(guestBytes).workload(Workload.HOTSET).pagesPerMillisecond(rate).packetEveryTicks(1),
            standby -> directory[0] = standby.durability(Durability.DURABLE)
                .retentionNs(java.util.concurrent.TimeUnit.HOURS.toNanos(1)).directory(),
            (ctx, standby) -> ctx.checkpointPeriodNs(50_000_000L)))
        {
            final long journalBefore = journalBytes(directory[0]);
            final long start = System.nanoTime();
            Thread.sleep(seconds * 1000);
            final double elapsed = (System.nanoTime() - start) / 1e9;
            final double perHour = (journalBytes(directory[0]) - journalBefore) / elapsed * 3600 / (1L << 30);
            final double image = (guestBytes + (guest.vmm.disk() == null ? 0 : guest.vmm.disk().sizeBytes())) /
                (double)(1L << 30);
            System.out.printf(Locale.ROOT, "%nRetention (hotset, %d page writes/ms, 50 ms period): the journal " +
                "grows %.1f GiB per hour of window; a window also holds 4 to 5 base images of %.2f GiB each " +
                "(memory and disks, sparse where never written), so an hour's window takes about %.0f GiB.%n", rate,
                perHour, image, perHour + 5 * image);
        }
        rewind(guestBytes, rate, seconds);
        restoreInPlace(guestBytes, rate, seconds);
    }

    /**
     * What a restore on the active's own host costs ({@code HealthProbe.restoreHere}): from the probe's complaint,
     * naming a time as far back as the rewind's, to the guest written back and about to resume, beside a plain copy of
     * the guest's memory image file in the same run. The standby materialises the earlier checkpoint from its window
     * as a rewind does, then sends only the pages and blocks that differ.
     */
    private static void restoreInPlace(final long guestBytes, final int rate, final long seconds) throws Exception
    {
        final java.util.concurrent.atomic.AtomicLong complainedAt = new java.util.concurrent.atomic.AtomicLong();
        final java.util.concurrent.atomic.AtomicReference<java.time.Instant> lastGood =
            new java.util.concurrent.atomic.AtomicReference<>();
        final java.util.concurrent.CompletableFuture<String> restored = new java.util.concurrent.CompletableFuture<>();
        final long[] took = new long[1];
        final dev.tandem.vmm.HealthProbe probe = new dev.tandem.vmm.HealthProbe()
        {
            @Override
            public String unhealthyReason()
            {
                return lastGood.get() == null || restored.isDone() ? null : "bench: restore in place";
            }

            @Override
            public java.time.Instant lastKnownGood()
            {
                return lastGood.get();
            }

            @Override
            public boolean restoreHere()
            {
                return true;
            }
        };
        final Path[] directory = new Path[1];
        try (ProtectedGuest guest = ProtectedGuest.launch(SimulatedVmm.builder().vmId("in-place")
                .memoryBytes(guestBytes).workload(Workload.HOTSET).pagesPerMillisecond(rate).packetEveryTicks(1)
                .healthProbe(probe),
            standby -> directory[0] = standby.durability(Durability.DURABLE)
                .retentionNs(java.util.concurrent.TimeUnit.HOURS.toNanos(1)).directory(),
            (ctx, standby) -> ctx.checkpointPeriodNs(50_000_000L).listener(new dev.tandem.core.active.ActiveListener()
            {
                @Override
                public void onRestoredInPlace(final long heldEpoch, final long epoch, final String report)
                {
                    took[0] = System.nanoTime() - complainedAt.get();
                    restored.complete("held at epoch " + heldEpoch + ", restored epoch " + epoch + ": " + report);
                }
            })))
        {
            Thread.sleep(seconds * 1000);
            complainedAt.set(System.nanoTime());
            lastGood.set(java.time.Instant.now().minusMillis(seconds * 1000 / 2));
            final String report = restored.get(5, java.util.concurrent.TimeUnit.MINUTES);
            final Path copy = Files.createTempFile("tandem-restore-copy", ".img");
            try
            {
                final long copyStart = System.nanoTime();
                Files.copy(directory[0].resolve("memory.img"), copy, StandardCopyOption.REPLACE_EXISTING);
                final double copyS = (System.nanoTime() - copyStart) / 1e9;
                final double restoreS = took[0] / 1e9;
                System.out.printf(Locale.ROOT, "%nRestore in place (a guest and window like the rewind's, on the active's own " +
                    "host, as of %d ms before): from the probe's complaint to the guest written back and resuming " +
                    "%.2f s, beside %.2f s for a plain copy of the %d MiB memory image file, same run (ratio %.1f); " +
                    "%s%n", seconds * 500, restoreS, copyS, guestBytes >> 20, restoreS / copyS, report);
            }
            finally
            {
                Files.deleteIfExists(copy);
            }
        }
    }

    /**
     * What a promotion from an earlier checkpoint (a health report naming when the guest was last good) costs: the
     * operator's {@code promote(reason, lastKnownGood)} on a DURABLE standby with a window, timed from the decision to
     * the guest running on the restored files, beside a plain copy of the guest's memory image file in the same run
     * (the floor: the restore copies a base image of that size, then replays the journal from it to the epoch).
     */
    private static void rewind(final long guestBytes, final int rate, final long seconds) throws Exception
    {
        final SimulatedVmm.Builder template = SimulatedVmm.builder().vmId("rewind").memoryBytes(guestBytes)
            .workload(Workload.HOTSET).pagesPerMillisecond(rate).packetEveryTicks(1);
        final java.util.concurrent.atomic.AtomicReference<Promotion> promoted =
            new java.util.concurrent.atomic.AtomicReference<>();
        final Path[] directory = new Path[1];
        try (ProtectedGuest guest = ProtectedGuest.launch(template, standby -> directory[0] = standby
                .durability(Durability.DURABLE).retentionNs(java.util.concurrent.TimeUnit.HOURS.toNanos(1))
                .replicaTarget(new SimulatedReplicaTarget(template, false, true))
                .promotionListener(new PromotionListener()
                {
                    @Override
                    public void onPromoted(final Promotion promotion)
                    {
                        promoted.set(promotion);
                    }
                }).directory(),
            (ctx, standby) -> ctx.checkpointPeriodNs(50_000_000L)))
        {
            Thread.sleep(seconds * 1000);
            final long latest = guest.standby.lastCommittedEpoch();
            guest.standby.promote("bench: rewind", java.time.Instant.now().minusMillis(seconds * 1000 / 2));
            final long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.MINUTES.toNanos(5);
            while (promoted.get() == null && System.nanoTime() < deadline)
            {
                Thread.sleep(10);
            }
            final Promotion promotion = promoted.get();
            if (promotion == null)
            {
                throw new IllegalStateException("no promotion within 5 minutes: " + guest.standby.status());
            }
            ((SimulatedVmm)promotion.guest()).close();
            final Path copy = Files.createTempFile("tandem-rewind-copy", ".img");
            try
            {
                final long copyStart = System.nanoTime();
                Files.copy(directory[0].resolve("memory.img"), copy, StandardCopyOption.REPLACE_EXISTING);
                final double copyS = (System.nanoTime() - copyStart) / 1e9;
                final double promotionS = promotion.promotionNs() / 1e9;
                System.out.printf(Locale.ROOT, "%nRewind (hotset, %d page writes/ms, 50 ms period, a window of an " +
                    "hour, its base image taken at the first epoch, %d s of protection): a promotion asked to " +
                    "resume the newest checkpoint from %d s before resumed epoch %d (the latest was %d) in %.2f s, " +
                    "beside %.2f s for a plain copy of the %d MiB memory image file, same run (ratio %.1f). Its " +
                    "reason: %s%n", rate,
                    seconds, seconds / 2, promotion.recoveryEpoch(), latest, promotionS, copyS, guestBytes >> 20,
                    promotionS / copyS, promotion.reason());
            }
            finally
            {
                Files.deleteIfExists(copy);
            }
        }
        finally
        {
            if (directory[0] != null)
            {
                try (java.util.stream.Stream<Path> siblings = Files.list(directory[0].toAbsolutePath().getParent()))
                {
                    for (final Path restored : siblings.filter(p -> p.getFileName().toString().startsWith(
                        directory[0].getFileName() + ".restored-")).toList())
                    {
                        ProtectedGuest.delete(restored);
                    }
                }
            }
        }
    }

    private static void run(final long guestBytes, final int rate, final Durability durability, final long seconds)
        throws Exception
    {
        final Path[] directory = new Path[1];
        try (ProtectedGuest guest = ProtectedGuest.launch(SimulatedVmm.builder().vmId("durability")
            .memoryBytes(guestBytes).workload(Workload.HOTSET).pagesPerMillisecond(rate).packetEveryTicks(1),
            standby -> directory[0] = standby.durability(durability).directory(),
            (ctx, standby) -> ctx.checkpointPeriodNs(10_000_000L)))
        {
            final ProtectionStatus before = guest.active.status();
            final long journalBefore = journalBytes(directory[0]);
            final long start = System.nanoTime();
            Thread.sleep(seconds * 1000);
            final ProtectionStatus after = guest.active.status();
            final double elapsed = (System.nanoTime() - start) / 1e9;
            final long journal = journalBytes(directory[0]) - journalBefore;
            System.out.printf(Locale.ROOT, "| %d | %s | %.0f | %.1f | %.1f | %.1f | %s | %.0f |%n", rate,
                durability.name().toLowerCase(Locale.ROOT), (after.checkpoints() - before.checkpoints()) / elapsed,
                after.stage("ack").windowP50Ns() / 1e6, after.stage("ack").windowP99Ns() / 1e6,
                after.outputHoldWindowP99Ns() / 1e6, durability == Durability.DURABLE ?
                String.format(Locale.ROOT, "%.0f (at least)", Math.max(0, journal) / 1048576.0 / elapsed) : "-",
                allocated(directory[0]) / 1048576.0);
        }
    }

    /**
     * @return bytes of journal segments in the directory now (segments deleted meanwhile make the difference an
     *         underestimate, said in the table).
     */
    private static long journalBytes(final Path dir) throws IOException
    {
        try (Stream<Path> files = Files.list(dir))
        {
            return files.filter(p -> p.getFileName().toString().startsWith("journal-"))
                .mapToLong(p -> p.toFile().length()).sum();
        }
    }

    /**
     * @return bytes the directory's files take on disk (sparse files count what is allocated), via {@code du}'s
     *         notion: the files' sizes where the file system does not say.
     */
    private static long allocated(final Path dir) throws IOException
    {
        try (Stream<Path> files = Files.list(dir))
        {
            return files.filter(Files::isRegularFile).mapToLong(p ->
            {
                try
                {
                    final Object blocks = Files.getAttribute(p, "unix:blocks");
                    return blocks instanceof Long count ? count * 512 : p.toFile().length();
                }
                catch (final IOException | UnsupportedOperationException | IllegalArgumentException ex)
                {
                    return p.toFile().length();
                }
            }).sum();
        }
    }

    /**
     * @return sequential MiB/s of 1 MiB writes each forced, and p50 and p99 ms of a 64 KiB write plus fsync.
     */
    private static double[] diskProbe(final Path dir) throws IOException
    {
        final Path file = dir.resolve("probe.bin");
        final ByteBuffer mib = ByteBuffer.allocateDirect(1 << 20);
        final ByteBuffer small = ByteBuffer.allocateDirect(64 << 10);
        final long[] latencies = new long[200];
        final double throughput;
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE))
        {
            long position = 0;
            final long start = System.nanoTime();
            for (int i = 0; i < 256; i++)
            {
                mib.clear();
                while (mib.hasRemaining())
                {
                    position += channel.write(mib, position);
                }
                channel.force(false);
            }
            throughput = 256 / ((System.nanoTime() - start) / 1e9);
            for (int i = 0; i < latencies.length; i++)
            {
                small.clear();
                final long t = System.nanoTime();
                while (small.hasRemaining())
                {
                    position += channel.write(small, position);
                }
                channel.force(false);
                latencies[i] = System.nanoTime() - t;
            }
        }
        finally
        {
            Files.deleteIfExists(file);
        }
        Arrays.sort(latencies);
        return new double[] {throughput, latencies[latencies.length / 2] / 1e6, latencies[latencies.length * 99 / 100] / 1e6};
    }
}
