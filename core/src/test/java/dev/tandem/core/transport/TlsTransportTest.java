package dev.tandem.core.transport;

import dev.tandem.core.ConfigurationException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The TLS link on its own, over real loopback TCP: an exact byte stream under partial writes and small reads, the
 * peer's VM identity, and every way a peer is refused at handshake, each quickly and with a message naming why.
 */
class TlsTransportTest
{
    private static final char[] PASSWORD = "throwaway-secret-7f3a".toCharArray();

    @TempDir
    static Path dir;
    static ThrowawayPki pki;
    static ThrowawayPki otherPki;
    static Path active;
    static Path standby;
    static Path foreign;
    static Path expired;
    static Path unnamed;
    static Path pinnedA;
    static Path pinnedB;

    @BeforeAll
    static void makeCertificates() throws IOException
    {
        pki = ThrowawayPki.create(dir.resolve("ca"), PASSWORD);
        otherPki = ThrowawayPki.create(dir.resolve("other-ca"), PASSWORD);
        active = pki.issue("active", "vm-a");
        standby = pki.issue("standby", "vm-a");
        expired = pki.issue("expired", "vm-a", "-10d", 2);
        unnamed = pki.issue("unnamed", null);
        foreign = otherPki.issue("foreign", "vm-a");
        pinnedA = pki.selfSigned("pinned-a", "vm-a");
        pinnedB = pki.selfSigned("pinned-b", "vm-a");
    }

    @Test
    void carriesAnExactStreamBothWaysAndNamesThePeersVm() throws Exception
    {
        final TlsTransport server = new TlsTransport(pki.config(standby));
        final TlsTransport client = new TlsTransport(pki.config(active));
        final byte[] up = random(12 << 20, 1);
        final byte[] down = random(3 << 20, 2);
        try (Transport.Listener listener = server.listen("0"))
        {
            assertTrue(listener.endpoint().startsWith("127.0.0.1:"), "a bare port listens on loopback");
            final CompletableFuture<byte[]> received = CompletableFuture.supplyAsync(() ->
            {
                try (Connection accepted = acceptOne(listener))
                {
                    // small reads (less than a record) exercise the leftover plaintext, large ones the direct path
                    final byte[] got = readExactly(accepted, up.length, true);
                    assertEquals(Optional.of("vm-a"), accepted.peerIdentity());
                    writeAll(accepted, down);
                    assertEquals(-1, readEnd(accepted), "close_notify ends the stream");
                    return got;
                }
                catch (final IOException ex)
                {
                    throw new RuntimeException(ex);
                }
            });
            try (Connection connection = client.connect(listener.endpoint(), 5000))
            {
                assertEquals(Optional.of("vm-a"), connection.peerIdentity());
                writeAll(connection, up);
                assertArrayEquals(down, readExactly(connection, down.length, false));
            }
            assertArrayEquals(up, received.get(30, TimeUnit.SECONDS));
        }
    }

    @Test
    void pinnedFingerprintAcceptsThatCertificateOnly() throws Exception
    {
        final TlsTransport server = new TlsTransport(pinned(pinnedB, pki.fingerprint(pinnedA)));
        final TlsTransport client = new TlsTransport(pinned(pinnedA, pki.fingerprint(pinnedB)));
        try (Transport.Listener listener = server.listen("127.0.0.1:0"))
        {
            final CompletableFuture<String> served = serveOne(listener);
            try (Connection connection = client.connect(listener.endpoint(), 5000))
            {
                writeAll(connection, new byte[] {1, 2, 3});
                assertEquals(Optional.of("vm-a"), connection.peerIdentity());
            }
            assertEquals("read 3", served.get(10, TimeUnit.SECONDS));
        }
        // the same client against a server pinning another certificate: refused on both sides, saying which
        final TlsTransport strict = new TlsTransport(pinned(pinnedB, pki.fingerprint(pinnedB)));
        final TlsTransport client2 = new TlsTransport(pinned(pinnedA, pki.fingerprint(pinnedB)));
        try (Transport.Listener listener = strict.listen("127.0.0.1:0"))
        {
            final CompletableFuture<String> served = serveOne(listener);
            final String clientSide = failureOf(client2, listener.endpoint());
            final String serverSide = served.get(10, TimeUnit.SECONDS);
            assertTrue(serverSide.contains("not the pinned " + pki.fingerprint(pinnedB)), serverSide);
            assertTrue(serverSide.contains(pki.fingerprint(pinnedA)), serverSide);
            assertTrue(clientSide.contains("refused this side") || clientSide.contains("closed"), clientSide);
        }
    }

    @Test
    void certificateFromAnotherCaIsRefusedOnBothSides() throws Exception
    {
        final TlsTransport server = new TlsTransport(pki.config(standby));
        final TlsTransport client = new TlsTransport(otherPki.config(foreign));
        try (Transport.Listener listener = server.listen("127.0.0.1:0"))
        {
            final CompletableFuture<String> served = serveOne(listener);
            final String clientSide = failureOf(client, listener.endpoint());
            // the client checks the server first: its CA is not in the client's trust store
            assertTrue(clientSide.contains("not signed by a CA in this side's trust store"), clientSide);
            final String serverSide = served.get(10, TimeUnit.SECONDS);
            assertTrue(serverSide.contains("TLS handshake with"), serverSide);
        }
        // and the server's view when the client trusts it but carries a foreign certificate
        final TlsConfig foreignTrustingUs = new TlsConfig().keyStore(foreign, PASSWORD)
            .trustStore(pki.trustStore(), PASSWORD);
        final TlsTransport client2 = new TlsTransport(foreignTrustingUs);
        try (Transport.Listener listener = server.listen("127.0.0.1:0"))
        {
            final CompletableFuture<String> served = serveOne(listener);
            final String clientSide = failureOf(client2, listener.endpoint());
            final String serverSide = served.get(10, TimeUnit.SECONDS);
            assertTrue(serverSide.contains("not signed by a CA in this side's trust store"), serverSide);
            assertTrue(clientSide.contains("refused this side"), clientSide);
        }
    }

    @Test
    void expiredCertificateIsAConfigurationErrorAndRefusedFromAPeer() throws Exception
    {
        final ConfigurationException own = assertThrows(ConfigurationException.class,
            () -> new TlsTransport(pki.config(expired)));
        assertTrue(own.getMessage().contains(expired.toString()) && own.getMessage().contains("expired on"),
            own.getMessage());
        // a peer that presents it anyway (its own software does not check) is refused at handshake
        final TlsTransport server = new TlsTransport(pki.config(standby));
        try (Transport.Listener listener = server.listen("127.0.0.1:0"))
        {
            final CompletableFuture<String> served = serveOne(listener);
            rawClient(listener.endpoint(), expired);
            final String serverSide = served.get(10, TimeUnit.SECONDS);
            assertTrue(serverSide.contains("TLS handshake with") &&
                (serverSide.contains("expired") || serverSide.contains("validity")), serverSide);
        }
    }

    @Test
    void aDowngradeToTls12IsRefused() throws Exception
    {
        final TlsTransport server = new TlsTransport(pki.config(standby));
        try (Transport.Listener listener = server.listen("127.0.0.1:0"))
        {
            final CompletableFuture<String> served = serveOne(listener);
            // a valid certificate, but a client that offers TLS 1.2 only
            rawClient(listener.endpoint(), active, "TLSv1.2");
            final String serverSide = served.get(10, TimeUnit.SECONDS);
            assertTrue(serverSide.contains("TLS handshake with") && serverSide.contains("protocol"), serverSide);
        }
    }

    @Test
    void clientWithoutCertificateIsRefused() throws Exception
    {
        final TlsTransport server = new TlsTransport(pki.config(standby));
        try (Transport.Listener listener = server.listen("127.0.0.1:0"))
        {
            final CompletableFuture<String> served = serveOne(listener);
            rawClient(listener.endpoint(), null);
            final String serverSide = served.get(10, TimeUnit.SECONDS);
            assertTrue(serverSide.contains("presented no certificate"), serverSide);
        }
    }

    @Test
    void certificateNamingNoVmIsRefused() throws Exception
    {
        final ConfigurationException own = assertThrows(ConfigurationException.class,
            () -> new TlsTransport(pki.config(unnamed)));
        assertTrue(own.getMessage().contains("names no VM identity") && own.getMessage().contains("urn:tandem:vm:"),
            own.getMessage());
        final TlsTransport server = new TlsTransport(pki.config(standby));
        try (Transport.Listener listener = server.listen("127.0.0.1:0"))
        {
            final CompletableFuture<String> served = serveOne(listener);
            rawClient(listener.endpoint(), unnamed);
            final String serverSide = served.get(10, TimeUnit.SECONDS);
            assertTrue(serverSide.contains("names no VM identity"), serverSide);
        }
    }

    @Test
    void plaintextPeerAgainstTlsListenerIsRefusedQuickly() throws Exception
    {
        final TlsTransport server = new TlsTransport(pki.config(standby));
        try (Transport.Listener listener = server.listen("127.0.0.1:0"))
        {
            final CompletableFuture<String> served = serveOne(listener);
            final long start = System.nanoTime();
            try (Connection plain = TcpTransport.plaintext().connect(listener.endpoint(), 5000))
            {
                writeAll(plain, "TNDM and the rest of a plaintext HELLO, long enough to be a record".getBytes());
                final String serverSide = served.get(10, TimeUnit.SECONDS);
                assertTrue(serverSide.contains("does not speak TLS"), serverSide);
                // the plaintext side hears a TLS alert or the end of the stream, not silence
                final ByteBuffer reply = ByteBuffer.allocate(64);
                int n;
                while ((n = plain.read(reply)) == 0 && System.nanoTime() - start < 5_000_000_000L)
                {
                    Thread.sleep(1);
                }
                assertTrue(n == -1 || reply.get(0) == 21, "alert or end of stream, got " + n);
            }
            catch (final IOException reset)
            {
                // a reset is an answer too
            }
            assertTrue(System.nanoTime() - start < 5_000_000_000L, "refused within seconds");
        }
    }

    @Test
    void tlsAgainstPlaintextListenerFailsQuicklyWithAMessage() throws Exception
    {
        final TlsTransport client = new TlsTransport(pki.config(active));
        try (Transport.Listener listener = TcpTransport.plaintext().listen("127.0.0.1:0"))
        {
            // a plaintext standby answers bytes it cannot parse with a REFUSE frame: any non-TLS reply will do
            final CompletableFuture<Void> answer = CompletableFuture.runAsync(() ->
            {
                try (Connection accepted = acceptOne(listener))
                {
                    final ByteBuffer in = ByteBuffer.allocate(4096);
                    while (accepted.read(in) == 0)
                    {
                        Thread.onSpinWait();
                    }
                    writeAll(accepted, "TNDM refused: bad magic".getBytes());
                    Thread.sleep(200);
                }
                catch (final IOException | InterruptedException ex)
                {
                    throw new RuntimeException(ex);
                }
            });
            final long start = System.nanoTime();
            final String message = failureOf(client, listener.endpoint());
            assertTrue(message.contains("does not speak TLS"), message);
            assertTrue(System.nanoTime() - start < 5_000_000_000L);
            answer.get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void silentPeerIsDroppedAfterTheHandshakeTimeout() throws Exception
    {
        final TlsTransport server = new TlsTransport(pki.config(standby).handshakeTimeoutMs(300));
        try (Transport.Listener listener = server.listen("127.0.0.1:0");
            Connection silent = TcpTransport.plaintext().connect(listener.endpoint(), 5000))
        {
            final CompletableFuture<String> served = serveOne(listener);
            final String serverSide = served.get(10, TimeUnit.SECONDS);
            assertTrue(serverSide.contains("did not finish within 300 ms"), serverSide);
            assertTrue(silent.isOpen());
        }
    }

    @Test
    void badConfigurationIsNamedWithoutThePassword() throws IOException
    {
        final Path missing = dir.resolve("missing.p12");
        assertConfig(new TlsConfig().keyStore(missing, PASSWORD).trustStore(pki.trustStore(), PASSWORD),
            missing + "' does not exist");
        assertConfig(new TlsConfig().keyStore(active, "wrong-password".toCharArray())
            .trustStore(pki.trustStore(), PASSWORD), active + "': wrong password");
        assertConfig(new TlsConfig().keyStore(pki.trustStore(), PASSWORD).trustStore(pki.trustStore(), PASSWORD),
            "holds no private key entry");
        final Path garbage = Files.writeString(dir.resolve("garbage.p12"), "not a key store");
        assertConfig(new TlsConfig().keyStore(garbage, PASSWORD).trustStore(pki.trustStore(), PASSWORD),
            garbage + "' is not a readable PKCS#12 file");
        assertConfig(new TlsConfig().keyStore(active, PASSWORD), "set a trustStore");
        assertConfig(new TlsConfig().keyStore(active, PASSWORD).trustStore(pki.trustStore(), PASSWORD)
            .pinnedPeerFingerprint("AB"), "not both");
        assertConfig(new TlsConfig().keyStore(active, PASSWORD).pinnedPeerFingerprint("AB:CD"),
            "is not a SHA-256 fingerprint");
        assertConfig(new TlsConfig().keyStore(active, PASSWORD).trustStore(pinnedA, PASSWORD),
            "holds no trusted certificate entry");
        assertConfig(pki.config(active).vmId("vm-b"), "names VM 'vm-a' but this side is configured for VM 'vm-b'");
        final TlsTransport transport = new TlsTransport(pki.config(active));
        final ConfigurationException other = assertThrows(ConfigurationException.class,
            () -> transport.checkCarries("vm-b"));
        assertTrue(other.getMessage().contains("'vm-a'") && other.getMessage().contains("'vm-b'"));
        transport.checkCarries("vm-a");
        assertFalse(pki.config(active).toString().contains(new String(PASSWORD)));
    }

    private static void assertConfig(final TlsConfig config, final String expected)
    {
        final ConfigurationException ex = assertThrows(ConfigurationException.class, () -> new TlsTransport(config));
        assertTrue(ex.getMessage().contains(expected), ex.getMessage());
        assertFalse(ex.getMessage().contains(new String(PASSWORD)), "the password leaked: " + ex.getMessage());
        assertFalse(ex.getMessage().contains("wrong-password"), "the password leaked: " + ex.getMessage());
    }

    private static TlsConfig pinned(final Path keyStore, final String peerFingerprint)
    {
        return new TlsConfig().keyStore(keyStore, PASSWORD).pinnedPeerFingerprint(peerFingerprint);
    }

    /**
     * Accepts one connection and reads until it fails or ends; the future holds the failure's message, or
     * "read N" for a stream that ended after N bytes.
     */
    private static CompletableFuture<String> serveOne(final Transport.Listener listener)
    {
        return CompletableFuture.supplyAsync(() ->
        {
            try (Connection accepted = acceptOne(listener))
            {
                final ByteBuffer in = ByteBuffer.allocateDirect(64 << 10);
                final long deadline = System.nanoTime() + 8_000_000_000L;
                int total = 0;
                while (System.nanoTime() < deadline)
                {
                    final int n = accepted.read(in);
                    if (n < 0)
                    {
                        return "read " + total;
                    }
                    total += n;
                    in.clear();
                    if (n == 0)
                    {
                        Thread.sleep(1);
                    }
                }
                return "still open after 8 s";
            }
            catch (final IOException ex)
            {
                return ex.getMessage();
            }
            catch (final InterruptedException ex)
            {
                throw new RuntimeException(ex);
            }
        });
    }

    private static String failureOf(final TlsTransport client, final String endpoint)
    {
        // the client may finish its side before the server refuses it: then the first read hears the alert
        final IOException ex = assertThrows(IOException.class, () ->
        {
            try (Connection connection = client.connect(endpoint, 5000))
            {
                final ByteBuffer in = ByteBuffer.allocate(1024);
                final long deadline = System.nanoTime() + 5_000_000_000L;
                while (System.nanoTime() < deadline)
                {
                    if (connection.read(in) < 0)
                    {
                        throw new IOException("closed without a reason");
                    }
                    Thread.sleep(1);
                }
            }
        });
        return ex.getMessage();
    }

    /**
     * A client with the JDK's blocking SSLSocket, presenting the given key store (or none) and trusting the CA: what a
     * peer that skips Tandem's own checks would send.
     */
    private static void rawClient(final String endpoint, final Path keyStore) throws Exception
    {
        rawClient(endpoint, keyStore, "TLSv1.3");
    }

    private static void rawClient(final String endpoint, final Path keyStore, final String protocol) throws Exception
    {
        final SSLContext context = SSLContext.getInstance(protocol);
        KeyManagerFactory kmf = null;
        if (keyStore != null)
        {
            final KeyStore keys = KeyStore.getInstance("PKCS12");
            try (InputStream in = Files.newInputStream(keyStore))
            {
                keys.load(in, PASSWORD);
            }
            kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(keys, PASSWORD);
        }
        final KeyStore trust = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(pki.trustStore()))
        {
            trust.load(in, PASSWORD);
        }
        final TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
        tmf.init(trust);
        context.init(kmf == null ? null : kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        final var address = TcpTransport.parse(endpoint);
        try (SSLSocket socket = (SSLSocket)context.getSocketFactory().createSocket(address.getHostString(),
            address.getPort()))
        {
            socket.setSoTimeout(5000);
            socket.setEnabledProtocols(new String[] {protocol});
            socket.startHandshake();
            socket.getOutputStream().write(new byte[] {1, 2, 3});
            final int read = socket.getInputStream().read();
            assertEquals(-1, read, "the server must not answer a refused client");
        }
        catch (final IOException expected)
        {
            // the server's alert
        }
    }

    private static Connection acceptOne(final Transport.Listener listener) throws IOException
    {
        final long deadline = System.nanoTime() + 10_000_000_000L;
        Connection accepted;
        while ((accepted = listener.accept()) == null)
        {
            if (System.nanoTime() > deadline)
            {
                throw new IOException("nothing connected");
            }
            Thread.onSpinWait();
        }
        return accepted;
    }

    private static byte[] random(final int length, final int seed)
    {
        final byte[] data = new byte[length];
        new SplittableRandom(seed).nextBytes(data);
        return data;
    }

    private static void writeAll(final Connection connection, final byte[] data) throws IOException
    {
        // uneven gathering writes: a small direct head and a heap tail, as the sender's frames are
        final SplittableRandom random = new SplittableRandom(data.length);
        int offset = 0;
        while (offset < data.length)
        {
            final int headLength = Math.min(data.length - offset, 1 + random.nextInt(100));
            final int tailLength = Math.min(data.length - offset - headLength, random.nextInt(200_000));
            final ByteBuffer head = ByteBuffer.allocateDirect(headLength).put(data, offset, headLength).flip();
            final ByteBuffer tail = ByteBuffer.wrap(data, offset + headLength, tailLength);
            final ByteBuffer[] gather = {head, tail};
            final long deadline = System.nanoTime() + 20_000_000_000L;
            while (head.hasRemaining() || tail.hasRemaining())
            {
                final long written = connection.write(gather, 0, 2);
                offset += (int)written;
                if (written == 0)
                {
                    assertTrue(System.nanoTime() < deadline, "write made no progress for 20 s");
                    // reading is how pending ciphertext also leaves when the writer stops writing
                    Thread.onSpinWait();
                }
            }
        }
    }

    private static byte[] readExactly(final Connection connection, final int length, final boolean smallReads)
        throws IOException
    {
        final byte[] data = new byte[length];
        final ByteBuffer small = ByteBuffer.allocateDirect(1000);
        final ByteBuffer large = ByteBuffer.allocateDirect(1 << 20);
        final SplittableRandom random = new SplittableRandom(7);
        int offset = 0;
        final long deadline = System.nanoTime() + 30_000_000_000L;
        while (offset < length)
        {
            final ByteBuffer in = smallReads && random.nextBoolean() ? small : large;
            in.clear().limit(Math.min(in.capacity(), length - offset));
            final int n = connection.read(in);
            assertTrue(n >= 0, "stream ended after " + offset + " of " + length + " bytes");
            in.flip().get(data, offset, n);
            offset += n;
            assertTrue(System.nanoTime() < deadline, "read made no progress");
        }
        return data;
    }

    private static int readEnd(final Connection connection) throws IOException
    {
        final ByteBuffer in = ByteBuffer.allocate(16);
        final long deadline = System.nanoTime() + 10_000_000_000L;
        int n;
        while ((n = connection.read(in)) == 0 && System.nanoTime() < deadline)
        {
            Thread.onSpinWait();
        }
        return n;
    }
}
