package dev.tandem.core.system;

import dev.tandem.core.ConfigurationException;
import dev.tandem.core.active.ActiveContext;
import dev.tandem.core.active.ActiveReplicator;
import dev.tandem.core.failover.FileArbiter;
import dev.tandem.core.failover.Promotion;
import dev.tandem.core.failover.PromotionListener;
import dev.tandem.core.metrics.ProtectionState;
import dev.tandem.core.standby.StandbyContext;
import dev.tandem.core.standby.StandbyListener;
import dev.tandem.core.standby.StandbyReplica;
import dev.tandem.core.transport.Connection;
import dev.tandem.core.transport.TcpTransport;
import dev.tandem.core.transport.ThrowawayPki;
import dev.tandem.core.transport.TlsConfig;
import dev.tandem.core.transport.TlsTransport;
import dev.tandem.core.transport.Transport;
import dev.tandem.core.wire.ProtocolException;
import dev.tandem.vmm.RecoveryPoint;
import dev.tandem.vmm.StateDigest;
import dev.tandem.vmm.sim.SimulatedDisk;
import dev.tandem.vmm.sim.SimulatedReplicaTarget;
import dev.tandem.vmm.sim.SimulatedVmm;
import dev.tandem.vmm.sim.Workload;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A real active and standby over mutual TLS on loopback: replication with verified commits, a failover, and the
 * handshake refusing peers certified for another VM, plaintext peers and TLS against plaintext, each quickly and
 * with its reason on both sides, nothing of the refused peer applied. Last, a full run's log at TRACE holds no key
 * store password.
 */
class TlsReplicationTest
{
    private static final char[] PASSWORD = "kS-pw-0d1e2f-never-logged".toCharArray();
    private static final String VM = "tls-vm";

    @TempDir
    static Path pkiDir;
    static ThrowawayPki pki;
    static Path activeStore;
    static Path standbyStore;
    static Path otherVmStore;

    @TempDir
    Path dir;

    @BeforeAll
    static void makeCertificates() throws IOException
    {
        pki = ThrowawayPki.create(pkiDir, PASSWORD);
        activeStore = pki.issue("active", VM);
        standbyStore = pki.issue("standby", VM);
        otherVmStore = pki.issue("other-vm", "another-vm");
    }

    @Test
    void mutualTlsReplicatesVerifiedEpochs() throws Exception
    {
        final Transport transport = new SplitTransport(new TlsTransport(pki.config(standbyStore)),
            new TlsTransport(pki.config(activeStore)), true);
        try (ReplicationFixture fixture = new ReplicationFixture(guest(), transport, "0", dir.resolve("standby"),
            true, (ctx, standby) -> { }))
        {
            fixture.awaitCommits(30, Duration.ofSeconds(60));
            assertEquals(List.of(), fixture.mismatches);
            assertEquals(List.of(), fixture.standbyErrors);
        }
    }

    @Test
    void aResetTlsLinkReconnectsWithAFreshHandshakeAndResyncs() throws Exception
    {
        final Transport transport = new SplitTransport(new TlsTransport(pki.config(standbyStore)),
            new TlsTransport(pki.config(activeStore)), true);
        final AtomicReference<dev.tandem.core.transport.LoopbackRelay> relay = new AtomicReference<>();
        try (ReplicationFixture fixture = new ReplicationFixture(guest(), transport, "0", dir.resolve("standby"),
            true, (ctx, standby) ->
            {
                try
                {
                    relay.set(dev.tandem.core.transport.LoopbackRelay.to(standby.endpoint()));
                }
                catch (final IOException ex)
                {
                    throw new java.io.UncheckedIOException(ex);
                }
                ctx.standbyEndpoint(relay.get().endpoint())
                    .standbySilenceTimeoutNs(Duration.ofMillis(300).toNanos())
                    .reconnectWindowNs(Duration.ofSeconds(20).toNanos());
            }, standbyCtx -> standbyCtx.failureTimeoutNs(Duration.ofSeconds(5).toNanos())))
        {
            try
            {
                fixture.awaitCommits(20, Duration.ofSeconds(60));
                // every TLS session through the relay reset, new ones refused for a while: the reconnect thread
                // makes a new TCP connection and a full handshake, bounded by the connect timeout
                relay.get().reset(Duration.ofMillis(300));
                await(() -> fixture.active.status().reconnect().reconnects() >= 1 &&
                    fixture.active.status().state() == ProtectionState.PROTECTED, "a reconnected TLS session");
                final long after = fixture.standby.lastCommittedEpoch() + 10;
                await(() -> fixture.standby.lastCommittedEpoch() >= after, "commits after the reconnect");
                assertEquals(List.of(), fixture.mismatches, "the standby differs from the active");
                assertEquals(null, fixture.standby.promotion(), "the standby did not promote");
            }
            finally
            {
                relay.get().close();
            }
        }
    }

    @Test
    void failoverOverTlsResumesTheCommittedGuest() throws Exception
    {
        final Transport transport = new SplitTransport(new TlsTransport(pki.config(standbyStore)),
            new TlsTransport(pki.config(activeStore)), true);
        final FileArbiter arbiter = new FileArbiter(dir.resolve("arbiter"), "test");
        final AtomicReference<String> health = new AtomicReference<>();
        final AtomicReference<Promotion> promoted = new AtomicReference<>();
        final Map<Long, Long> activeDigests = new ConcurrentHashMap<>();
        try (SimulatedVmm vmm = guest().healthProbe(health::get).build();
            StandbyReplica standby = StandbyReplica.launch(standbyContext(transport, vmm, new ArrayList<>())
                .failureTimeoutNs(Duration.ofMillis(300).toNanos())
                .autoPromote(true)
                .promotionArbiter(arbiter)
                .replicaTarget(new SimulatedReplicaTarget(vmm.config().copy()
                    .diskPath(dir.resolve("promoted-disk.img")), false))
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
            try (ActiveReplicator active = ActiveReplicator.launch(new ActiveContext()
                .adapter(vmm)
                .transport(transport)
                .standbyEndpoint(standby.endpoint())
                .stagingAreaBytes(4 << 20)
                .checkpointPeriodNs(Duration.ofMillis(3).toNanos())
                .standbySilenceTimeoutNs(Duration.ofMillis(400).toNanos())
                .promotionArbiter(arbiter)
                .generationFile(dir.resolve("active-generation"))
                .checkpointObserver((epoch, adapter) -> activeDigests.put(epoch, StateDigest.of(adapter)))))
            {
                await(() -> standby.lastCommittedEpoch() >= 20, "20 commits over TLS");
                health.set("watchdog: guest stopped");
                await(() -> promoted.get() != null, "the standby promotes on the report");
                await(active::isGuestStopped, "the reporting active stops its guest");
                final Promotion promotion = promoted.get();
                try
                {
                    assertEquals(activeDigests.get(promotion.recoveryEpoch()), StateDigest.of(promotion.guest()));
                    assertEquals(ProtectionState.FENCED, active.status().state());
                }
                finally
                {
                    ((SimulatedVmm)promotion.guest()).close();
                }
            }
        }
    }

    @Test
    void aSilentPeerHoldsNoSessionSlotWhileTheActiveReplicates() throws Exception
    {
        final List<Throwable> standbyErrors = new CopyOnWriteArrayList<>();
        try (SimulatedVmm vmm = guest().build();
            StandbyReplica standby = StandbyReplica.launch(standbyContext(
                new TlsTransport(pki.config(standbyStore).handshakeTimeoutMs(30_000)), vmm, standbyErrors));
            Connection silent = TcpTransport.plaintext().connect(standby.endpoint(), 5000))
        {
            // connected first and never says a word: its handshake stays pending, it is not the standby's session
            vmm.start();
            try (ActiveReplicator active = ActiveReplicator.launch(activeContext(
                new TlsTransport(pki.config(activeStore)), vmm, standby)))
            {
                await(() -> standby.lastCommittedEpoch() >= 10, "10 commits beside a silent peer");
                assertTrue(silent.isOpen());
                assertTrue(active.isProtecting());
            }
        }
    }

    @Test
    void standbyRefusesAnActiveCertifiedForAnotherVm() throws Exception
    {
        // the active's own launch check catches the mismatch as a configuration error...
        final TlsTransport otherVm = new TlsTransport(pki.config(otherVmStore));
        final List<Throwable> standbyErrors = new CopyOnWriteArrayList<>();
        try (SimulatedVmm vmm = guest().build();
            StandbyReplica standby = StandbyReplica.launch(standbyContext(
                new TlsTransport(pki.config(standbyStore)), vmm, standbyErrors)))
        {
            vmm.start();
            final ConfigurationException config = assertThrows(ConfigurationException.class,
                () -> ActiveReplicator.launch(activeContext(otherVm, vmm, standby)));
            assertTrue(config.getMessage().contains("'another-vm'") && config.getMessage().contains("'" + VM + "'"),
                config.getMessage());
            // ...and a rogue active that skips it is refused by the standby, which applies nothing
            final Transport rogue = new SplitTransport(otherVm, otherVm, false);
            final long start = System.nanoTime();
            final ProtocolException refused = assertThrows(ProtocolException.class,
                () -> ActiveReplicator.launch(activeContext(rogue, vmm, standby)));
            assertTrue(System.nanoTime() - start < 10_000_000_000L);
            assertTrue(refused.getMessage().contains("refused") &&
                refused.getMessage().contains("certified for VM 'another-vm' but its HELLO names VM '" + VM + "'"),
                refused.getMessage());
            await(() -> standbyErrors.stream().anyMatch(e -> String.valueOf(e.getMessage())
                .contains("certified for VM 'another-vm'")), "the standby reports the refusal: " + standbyErrors);
            assertEquals(0, standby.lastCommittedEpoch(), "nothing of the refused active is applied");
        }
    }

    @Test
    void activeRefusesAStandbyCertifiedForAnotherVm() throws Exception
    {
        final TlsTransport otherVm = new TlsTransport(pki.config(otherVmStore));
        final List<Throwable> standbyErrors = new CopyOnWriteArrayList<>();
        try (SimulatedVmm vmm = guest().build();
            StandbyReplica standby = StandbyReplica.launch(standbyContext(new SplitTransport(otherVm, otherVm, false),
                vmm, standbyErrors)))
        {
            vmm.start();
            final ProtocolException refused = assertThrows(ProtocolException.class, () -> ActiveReplicator.launch(
                activeContext(new TlsTransport(pki.config(activeStore)), vmm, standby)));
            assertEquals(ProtocolException.Fault.VM_MISMATCH, refused.fault());
            assertTrue(refused.getMessage().contains("certified for VM 'another-vm' but this active protects VM '" +
                VM + "'"), refused.getMessage());
            await(() -> standbyErrors.stream().anyMatch(e -> String.valueOf(e.getMessage())
                .contains("refused this standby") && e.getMessage().contains("certified for VM 'another-vm'")),
                "the standby hears the active's reason: " + standbyErrors);
            assertEquals(0, standby.lastCommittedEpoch());
        }
    }

    @Test
    void plaintextActiveAgainstTlsStandbyIsRefusedQuicklyOnBothSides() throws Exception
    {
        final List<Throwable> standbyErrors = new CopyOnWriteArrayList<>();
        try (SimulatedVmm vmm = guest().build();
            StandbyReplica standby = StandbyReplica.launch(standbyContext(
                new TlsTransport(pki.config(standbyStore)), vmm, standbyErrors)))
        {
            vmm.start();
            final long start = System.nanoTime();
            // the standby's TLS alert reaches the plaintext active's frame decoder, which names it
            final ProtocolException refused = assertThrows(ProtocolException.class, () -> ActiveReplicator.launch(
                activeContext(TcpTransport.plaintext(), vmm, standby).connectTimeoutMs(5000)));
            assertTrue(System.nanoTime() - start < 4_000_000_000L, "refused before the connect timeout");
            assertTrue(refused.getMessage().contains("the peer speaks TLS"), refused.getMessage());
            await(() -> standbyErrors.stream().anyMatch(e -> String.valueOf(e.getMessage())
                .contains("does not speak TLS")), "the standby names the plaintext peer: " + standbyErrors);
            assertEquals(0, standby.lastCommittedEpoch());
        }
    }

    @Test
    void tlsActiveAgainstPlaintextStandbyIsRefusedQuicklyOnBothSides() throws Exception
    {
        final List<Throwable> standbyErrors = new CopyOnWriteArrayList<>();
        try (SimulatedVmm vmm = guest().build();
            StandbyReplica standby = StandbyReplica.launch(standbyContext(TcpTransport.plaintext(), vmm,
                standbyErrors)))
        {
            vmm.start();
            final long start = System.nanoTime();
            final IOException refused = assertThrows(IOException.class, () -> ActiveReplicator.launch(
                activeContext(new TlsTransport(pki.config(activeStore)), vmm, standby).connectTimeoutMs(5000)));
            assertTrue(System.nanoTime() - start < 4_000_000_000L, "refused before the connect timeout");
            assertTrue(refused.getMessage().contains("does not speak TLS"), refused.getMessage());
            await(() -> standbyErrors.stream().anyMatch(e -> String.valueOf(e.getMessage())
                .contains("speaks TLS")), "the standby names the TLS peer: " + standbyErrors);
            assertEquals(0, standby.lastCommittedEpoch());
        }
    }

    @Test
    void noKeyStorePasswordInTheLogsOfAFullRun() throws Exception
    {
        final String secret = new String(PASSWORD);
        final ByteArrayOutputStream captured = new ByteArrayOutputStream();
        final PrintStream original = System.err;
        final Map<Object, Integer> levels = traceEverything();
        final List<String> messages = new ArrayList<>();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try
        {
            final Transport transport = new SplitTransport(new TlsTransport(pki.config(standbyStore)),
                new TlsTransport(pki.config(activeStore)), true);
            try (ReplicationFixture fixture = new ReplicationFixture(guest(), transport, "0", dir.resolve("standby"),
                true, (ctx, standby) -> { }))
            {
                fixture.awaitCommits(20, Duration.ofSeconds(60));
                // a refused peer and a bad configuration on the same run: their messages too
                final Transport rogue = new SplitTransport(null, new TlsTransport(pki.config(otherVmStore)), false);
                try (Connection extra = rogue.connect(fixture.standby.endpoint(), 5000))
                {
                    messages.add(String.valueOf(extra.peerIdentity()));
                }
                catch (final IOException ex)
                {
                    messages.add(ex.getMessage());
                }
                fixture.standbyErrors.forEach(e -> messages.add(String.valueOf(e)));
            }
            for (final TlsConfig bad : List.of(
                new TlsConfig().keyStore(activeStore, "wrong".toCharArray()).trustStore(pki.trustStore(), PASSWORD),
                new TlsConfig().keyStore(activeStore, PASSWORD).trustStore(dir.resolve("none.p12"), PASSWORD)))
            {
                messages.add(assertThrows(ConfigurationException.class, () -> new TlsTransport(bad)).getMessage());
            }
        }
        finally
        {
            System.err.flush();
            System.setErr(original);
            restore(levels);
        }
        final String log = captured.toString(StandardCharsets.UTF_8);
        // the capture must have seen the run, or the scan below proves nothing
        assertTrue(log.contains("protecting VM " + VM), "the INFO lines of the run were captured:\n" + log);
        assertFalse(log.contains(secret), "the key store password is in the log");
        for (final String message : messages)
        {
            assertFalse(message.contains(secret), "the key store password is in a message: " + message);
        }
        assertFalse(pki.config(activeStore).toString().contains(secret));
    }

    /**
     * Raises every SLF4J simple logger of the library to TRACE (the build runs tests at WARN), so the scan sees every
     * line the library could write.
     */
    private static Map<Object, Integer> traceEverything() throws ReflectiveOperationException
    {
        final Map<Object, Integer> levels = new java.util.HashMap<>();
        for (final String name : List.of("dev.tandem.core.active.ActiveReplicator",
            "dev.tandem.core.standby.StandbyReplica", "dev.tandem.core.failover.Ownership",
            "dev.tandem.core.metrics.ProcessCounters", "dev.tandem.core.transport.TcpTransport"))
        {
            final Object logger = LoggerFactory.getLogger(Class.forName(name));
            final Field level = field(logger.getClass(), "currentLogLevel");
            levels.put(logger, level.getInt(logger));
            level.setInt(logger, 0);
        }
        return levels;
    }

    private static void restore(final Map<Object, Integer> levels) throws ReflectiveOperationException
    {
        for (final Map.Entry<Object, Integer> entry : levels.entrySet())
        {
            field(entry.getKey().getClass(), "currentLogLevel").setInt(entry.getKey(), entry.getValue());
        }
    }

    private static Field field(final Class<?> type, final String name) throws NoSuchFieldException
    {
        for (Class<?> c = type; c != null; c = c.getSuperclass())
        {
            try
            {
                final Field field = c.getDeclaredField(name);
                field.setAccessible(true);
                return field;
            }
            catch (final NoSuchFieldException ignore)
            {
                // look in the superclass
            }
        }
        throw new NoSuchFieldException(type + " has no " + name + ": the test binding is not slf4j-simple");
    }

    private SimulatedVmm.Builder guest()
    {
        return SimulatedVmm.builder()
            .vmId(VM)
            .memoryBytes(8L << 20)
            .workload(Workload.HOTSET)
            .pagesPerMillisecond(30)
            .disk(dir.resolve("active-disk.img"), 1L << 20)
            .diskEveryTicks(1);
    }

    private StandbyContext standbyContext(final Transport transport, final SimulatedVmm vmm,
        final List<Throwable> errors)
    {
        return new StandbyContext()
            .transport(transport)
            .listenEndpoint("0")
            .directory(dir.resolve("standby"))
            .vmId(VM)
            .memory(vmm.memory().pageSize(), vmm.memory().pageCount())
            .disk(0, SimulatedDisk.BLOCK_SIZE, vmm.disk().sizeBytes())
            .listener(new StandbyListener()
            {
                @Override
                public void onCommit(final long epoch, final RecoveryPoint point)
                {
                }

                @Override
                public void onError(final Throwable error)
                {
                    errors.add(error);
                }
            });
    }

    private static ActiveContext activeContext(final Transport transport, final SimulatedVmm vmm,
        final StandbyReplica standby)
    {
        return new ActiveContext()
            .adapter(vmm)
            .transport(transport)
            .standbyEndpoint(standby.endpoint())
            .stagingAreaBytes(4 << 20)
            .checkpointPeriodNs(Duration.ofMillis(3).toNanos());
    }

    private static void await(final java.util.function.BooleanSupplier condition, final String what)
        throws InterruptedException
    {
        final long deadline = System.nanoTime() + 20_000_000_000L;
        while (!condition.getAsBoolean())
        {
            if (System.nanoTime() > deadline)
            {
                fail("timed out waiting for " + what);
            }
            Thread.sleep(5);
        }
    }

    /**
     * The standby listens with one transport and the active connects with another: each side holds its own key.
     *
     * @param listenSide  the standby's transport.
     * @param connectSide the active's transport.
     * @param checks      false to skip the launch-time certificate check, as a rogue peer's software would.
     */
    record SplitTransport(Transport listenSide, Transport connectSide, boolean checks) implements Transport
    {
        @Override
        public Connection connect(final String endpoint, final long timeoutMillis) throws IOException
        {
            return connectSide.connect(endpoint, timeoutMillis);
        }

        @Override
        public Listener listen(final String endpoint) throws IOException
        {
            return listenSide.listen(endpoint);
        }

        @Override
        public void checkCarries(final String vmId)
        {
            if (checks)
            {
                listenSide.checkCarries(vmId);
                connectSide.checkCarries(vmId);
            }
        }
    }
}
