package dev.tandem.bench;

import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.failover.FileArbiter;
import dev.tandem.core.failover.Promotion;
import dev.tandem.core.failover.PromotionListener;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.vmm.sim.SimulatedReplicaTarget;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicReference;

/**
 * How short the standby's failure timeout can be before a healthy but loaded active is taken for dead. For each
 * timeout, a guest dirtying memory as fast as one vCPU writes is protected (active and standby in one JVM on two
 * cores, so both compete for the CPUs with the guest) for a fixed time with auto-promotion on; a promotion is a
 * false failover. The heartbeat is a quarter of the timeout.
 * <pre>
 * java -cp bench/target/benchmarks.jar dev.tandem.bench.DetectionTimeoutStudy [guestMiB] [seconds] [timeoutMs...]
 * </pre>
 */
public final class DetectionTimeoutStudy
{
    private DetectionTimeoutStudy()
    {
    }

    /**
     * @param args guest MiB (default 256), seconds per timeout (default 20), timeouts in ms (default 10 20 50 100 200).
     * @throws Exception on failure.
     */
    public static void main(final String[] args) throws Exception
    {
        final long guestMiB = args.length > 0 ? Long.parseLong(args[0]) : 256;
        final long seconds = args.length > 1 ? Long.parseLong(args[1]) : 20;
        final long[] timeouts = args.length > 2 ? new long[args.length - 2] : new long[] {10, 20, 50, 100, 200};
        for (int i = 2; i < args.length; i++)
        {
            timeouts[i - 2] = Long.parseLong(args[i]);
        }
        System.out.printf(Locale.ROOT, "# False failovers under load: %d MiB uniform guest at 2000 page writes/ms, " +
            "10 ms period, %d s per timeout, heartbeat = timeout / 4, JDK %s, %d cores%n", guestMiB, seconds,
            Runtime.version(), Runtime.getRuntime().availableProcessors());
        System.out.println("| failure timeout ms | heartbeat ms | false failover | after s | reason |");
        System.out.println("|---|---|---|---|---|");
        for (final long timeoutMs : timeouts)
        {
            run(guestMiB << 20, timeoutMs, seconds);
        }
    }

    private static void run(final long guestBytes, final long timeoutMs, final long seconds) throws Exception
    {
        final Path dir = Files.createTempDirectory("tandem-detection");
        final AtomicReference<Promotion> promoted = new AtomicReference<>();
        final SimulatedVmm.Builder guest = SimulatedVmm.builder()
            .vmId("detection")
            .memoryBytes(guestBytes)
            .workload(Workload.UNIFORM)
            .pagesPerMillisecond(2000);
        final SimulatedVmm vmm = guest.build();
        try (StandbyReplica standby = StandbyReplica.launch(new StandbyContext()
            .transport(new TcpTransport())
            .listenEndpoint("127.0.0.1:0")
            .directory(dir.resolve("standby"))
            .vmId("detection")
            .memory(4096, guestBytes / 4096)
            .failureTimeoutNs(timeoutMs * 1_000_000L)
            .autoPromote(true)
            .promotionArbiter(new FileArbiter(dir.resolve("arbiter"), "study"))
            .replicaTarget(new SimulatedReplicaTarget(guest, false))
            .promotionListener(new PromotionListener()
            {
                @Override
                public void onPromoted(final Promotion promotion)
                {
                    promoted.set(promotion);
                }
            })))
        {
            vmm.start();
            final long start;
            try (ActiveReplicator active = ActiveReplicator.launch(new ActiveContext()
                .adapter(vmm)
                .transport(new TcpTransport())
                .standbyEndpoint(standby.endpoint())
                .checkpointPeriodNs(10_000_000L)
                .heartbeatIntervalNs(Math.max(1_000_000L, timeoutMs * 250_000L))))
            {
                while (active.lastAckedEpoch() < 1 && promoted.get() == null)
                {
                    Thread.sleep(5);
                }
                start = System.nanoTime();
                while (System.nanoTime() - start < seconds * 1_000_000_000L && promoted.get() == null)
                {
                    Thread.sleep(10);
                }
            }
            final Promotion promotion = promoted.get();
            System.out.printf(Locale.ROOT, "| %d | %.1f | %s | %s | %s |%n", timeoutMs, timeoutMs / 4.0,
                promotion == null ? "no" : "YES", promotion == null ? "-" :
                String.format(Locale.ROOT, "%.1f", (System.nanoTime() - start) / 1e9),
                promotion == null ? "" : promotion.reason());
            if (promotion != null)
            {
                ((SimulatedVmm)promotion.guest()).close();
            }
        }
        finally
        {
            vmm.close();
            ProtectedGuest.delete(dir);
        }
    }
}
