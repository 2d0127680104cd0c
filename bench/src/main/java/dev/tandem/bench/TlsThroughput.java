package dev.tandem.bench;

import dev.tandem.core.metrics.ProtectionStatus;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.core.transport.ThrowawayPki;
import dev.tandem.core.transport.TlsTransport;
import dev.tandem.core.transport.Transport;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * What the secure link costs, measured in the same run: end-to-end replication throughput (checkpointed guest page
 * bytes per second committed on the standby, with a guest that dirties pages far faster than either link carries, so
 * the link is the limit; target: TLS at 0.7 of plaintext or better) and the guest's pause at a load both links carry
 * (it must not change: encryption runs in the sender after the guest resumed, never inside the pause), over
 * plaintext TCP and over mutual TLS 1.3, rows alternating so that drift of a shared machine falls on both.
 * <pre>
 * java -cp bench/target/benchmarks.jar dev.tandem.bench.TlsThroughput [guestMiB] [seconds] [rounds]
 * </pre>
 */
public final class TlsThroughput
{
    private static final String VM = "tls-throughput";

    private TlsThroughput()
    {
    }

    /**
     * @param args guest MiB (default 256), seconds per row (default 10), rounds of both rows (default 2).
     * @throws Exception on failure.
     */
    public static void main(final String[] args) throws Exception
    {
        final long guestMiB = args.length > 0 ? Long.parseLong(args[0]) : 256;
        final long seconds = args.length > 1 ? Long.parseLong(args[1]) : 10;
        final int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 2;
        run(guestMiB << 20, seconds, rounds, System.out);
    }

    static void run(final long guestBytes, final long seconds, final int rounds, final PrintStream out)
        throws Exception
    {
        final Path dir = Files.createTempDirectory("tandem-tls-bench");
        try
        {
            final char[] password = "bench-throwaway".toCharArray();
            final ThrowawayPki pki = ThrowawayPki.create(dir, password);
            final Path standbyKeys = pki.issue("standby", VM);
            final Path activeKeys = pki.issue("active", VM);
            out.printf(Locale.ROOT, "# TLS against plaintext: %d s per row, %d rounds, JDK %s, %d cores%n", seconds,
                rounds, Runtime.version(), Runtime.getRuntime().availableProcessors());
            out.printf(Locale.ROOT, "Throughput: %d MiB guest, uniform workload at 2000 page writes/ms (more than " +
                "either link carries), 10 ms period, raw pages. Pause: 64 MiB guest, hotset workload at 50 page " +
                "writes/ms (a load both links carry, so the pause is the pause and not back-pressure), 10 ms " +
                "period.%n%n", guestBytes >> 20);
            out.println("| round | link | MB/s of guest pages | ratio to plaintext of the round | pause p50 us | " +
                "pause p99 us |");
            out.println("|---|---|---|---|---|---|");
            double plainSum = 0;
            double tlsSum = 0;
            final SimulatedVmm.Builder saturating = SimulatedVmm.builder().vmId(VM).memoryBytes(guestBytes)
                .workload(Workload.UNIFORM).pagesPerMillisecond(2000);
            final SimulatedVmm.Builder carried = SimulatedVmm.builder().vmId(VM).memoryBytes(64L << 20)
                .workload(Workload.HOTSET).pagesPerMillisecond(50);
            // one unreported round first: the first TLS session pays for loading and compiling the crypto code
            measure(carried, 2, TcpTransport.plaintext(), TcpTransport.plaintext());
            measure(saturating, 2, new TlsTransport(pki.config(standbyKeys)), new TlsTransport(pki.config(activeKeys)));
            for (int round = 1; round <= rounds; round++)
            {
                // a TlsConfig builds one transport: TLS material is loaded per row
                final Row plain = measure(saturating, seconds, TcpTransport.plaintext(), TcpTransport.plaintext());
                final Row tls = measure(saturating, seconds, new TlsTransport(pki.config(standbyKeys)),
                    new TlsTransport(pki.config(activeKeys)));
                final Row plainPause = measure(carried, seconds, TcpTransport.plaintext(),
                    TcpTransport.plaintext());
                final Row tlsPause = measure(carried, seconds, new TlsTransport(pki.config(standbyKeys)),
                    new TlsTransport(pki.config(activeKeys)));
                plainSum += plain.bytesPerSecond;
                tlsSum += tls.bytesPerSecond;
                out.printf(Locale.ROOT, "| %d | plaintext TCP | %.0f | 1.00 | %.0f | %.0f |%n", round,
                    plain.bytesPerSecond / 1e6, plainPause.pauseP50Us, plainPause.pauseP99Us);
                out.printf(Locale.ROOT, "| %d | mutual TLS 1.3 | %.0f | %.2f | %.0f | %.0f |%n", round,
                    tls.bytesPerSecond / 1e6, tls.bytesPerSecond / plain.bytesPerSecond, tlsPause.pauseP50Us,
                    tlsPause.pauseP99Us);
            }
            out.printf(Locale.ROOT, "%nTLS / plaintext throughput over all rounds: %.2f (target at least 0.70)%n",
                tlsSum / plainSum);
            // the link alone, in CPU per byte: what a loaded machine's wall-clock rows above cannot show steadily
            out.printf(Locale.ROOT, "%nThe link alone: one thread writes 1 MiB direct buffers, another reads them, " +
                "%d MiB per row; CPU is the whole process's (both ends and the JVM), so it holds on a busy machine " +
                "where MB/s does not.%n%n", LINK_BYTES >> 20);
            out.println("| round | link | MB/s | CPU ns per byte |");
            out.println("|---|---|---|---|");
            for (int round = 1; round <= rounds; round++)
            {
                final double[] plain = link(TcpTransport.plaintext(), TcpTransport.plaintext());
                final double[] tls = link(new TlsTransport(pki.config(standbyKeys)),
                    new TlsTransport(pki.config(activeKeys)));
                out.printf(Locale.ROOT, "| %d | plaintext TCP | %.0f | %.2f |%n", round, plain[0], plain[1]);
                out.printf(Locale.ROOT, "| %d | mutual TLS 1.3 | %.0f | %.2f |%n", round, tls[0], tls[1]);
            }
        }
        finally
        {
            ProtectedGuest.delete(dir);
        }
    }

    private static final long LINK_BYTES = 1L << 30;

    /**
     * @return MB/s and process CPU nanoseconds per byte moving {@link #LINK_BYTES} through one connection.
     */
    private static double[] link(final Transport server, final Transport client) throws Exception
    {
        final com.sun.management.OperatingSystemMXBean os =
            (com.sun.management.OperatingSystemMXBean)java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        try (Transport.Listener listener = server.listen("0"))
        {
            final Thread reader = new Thread(() ->
            {
                try
                {
                    dev.tandem.core.transport.Connection accepted;
                    while ((accepted = listener.accept()) == null)
                    {
                        Thread.onSpinWait();
                    }
                    try (dev.tandem.core.transport.Connection in = accepted)
                    {
                        final java.nio.ByteBuffer buffer = java.nio.ByteBuffer.allocateDirect(4 << 20);
                        int n;
                        while ((n = in.read(buffer.clear())) >= 0)
                        {
                            if (n == 0)
                            {
                                Thread.yield();
                            }
                        }
                    }
                }
                catch (final java.io.IOException ex)
                {
                    throw new java.io.UncheckedIOException(ex);
                }
            }, "link-reader");
            reader.start();
            final java.nio.ByteBuffer data = java.nio.ByteBuffer.allocateDirect(1 << 20);
            new java.util.SplittableRandom(1).ints(data.capacity() / 4).forEach(data::putInt);
            final java.nio.ByteBuffer[] gather = {data};
            final long cpuBefore = os.getProcessCpuTime();
            final long start = System.nanoTime();
            long sent = 0;
            try (dev.tandem.core.transport.Connection out = client.connect(listener.endpoint(), 10_000))
            {
                while (sent < LINK_BYTES)
                {
                    data.clear();
                    while (data.hasRemaining())
                    {
                        final long written = out.write(gather, 0, 1);
                        sent += written;
                        if (written == 0)
                        {
                            Thread.yield();
                        }
                    }
                }
            }
            reader.join();
            final long elapsed = System.nanoTime() - start;
            return new double[] {sent * 1e3 / elapsed, (os.getProcessCpuTime() - cpuBefore) / (double)sent};
        }
    }

    private record Row(double bytesPerSecond, double pauseP50Us, double pauseP99Us)
    {
    }

    /**
     * As {@code ReplicationThroughput}: page bytes of acknowledged epochs per second, and the pause percentiles of
     * the same window's protected checkpoints.
     */
    private static Row measure(final SimulatedVmm.Builder builder, final long seconds,
        final Transport standbyTransport, final Transport activeTransport) throws Exception
    {
        try (ProtectedGuest guest = ProtectedGuest.launch(builder.copy(),
            standbyCtx -> standbyCtx.transport(standbyTransport),
            (ctx, standby) -> ctx.transport(activeTransport).checkpointPeriodNs(10_000_000L).pageCodec(false)))
        {
            final ProtectionStatus[] after = new ProtectionStatus[1];
            final double bytesPerSecond = ReplicationThroughput.ackedPageBytesPerSecond(guest, seconds,
                status -> after[0] = status);
            return new Row(bytesPerSecond, after[0].pauseP50Ns() / 1e3, after[0].pauseP99Ns() / 1e3);
        }
    }
}
