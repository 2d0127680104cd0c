package dev.tandem.zookeeper;

import dev.tandem.core.transport.ThrowawayPki;
import org.apache.zookeeper.server.ServerConfig;
import org.apache.zookeeper.server.ZooKeeperServerMain;
import org.apache.zookeeper.server.quorum.QuorumPeerConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A real ZooKeeper server with only a TLS client port (Netty, client certificates required): the arbiter configured
 * with {@link ZooKeeperSecurity#tls} claims generations through it, and one without TLS cannot reach it.
 */
final class ZooKeeperTlsTest
{
    private static final char[] PASSWORD = "zk-tls-throwaway".toCharArray();

    @TempDir
    Path dir;

    @Test
    void arbiterClaimsOverZooKeepersOwnTls() throws Exception
    {
        final ThrowawayPki pki = ThrowawayPki.create(dir.resolve("pki"), PASSWORD);
        final Path serverKeys = pki.issue("zookeeper", "ensemble");
        final Path clientKeys = pki.issue("tandem", "ensemble");
        final int port;
        try (ServerSocket probe = new ServerSocket(0))
        {
            port = probe.getLocalPort();
        }
        final Properties properties = new Properties();
        properties.setProperty("dataDir", dir.resolve("data").toString());
        properties.setProperty("secureClientPort", Integer.toString(port));
        properties.setProperty("secureClientPortAddress", "127.0.0.1");
        properties.setProperty("tickTime", "200");
        final QuorumPeerConfig quorum = new QuorumPeerConfig();
        quorum.parseProperties(properties);
        final ServerConfig config = new ServerConfig();
        config.readFrom(quorum);
        // the server reads its TLS settings from system properties (ZooKeeper has no other way for a standalone
        // server); the client under test gets its own from ZooKeeperSecurity's ZKClientConfig
        System.setProperty("zookeeper.serverCnxnFactory", "org.apache.zookeeper.server.NettyServerCnxnFactory");
        System.setProperty("zookeeper.ssl.keyStore.location", serverKeys.toString());
        System.setProperty("zookeeper.ssl.keyStore.password", new String(PASSWORD));
        System.setProperty("zookeeper.ssl.trustStore.location", pki.trustStore().toString());
        System.setProperty("zookeeper.ssl.trustStore.password", new String(PASSWORD));
        System.setProperty("zookeeper.ssl.hostnameVerification", "false");
        final Server server = new Server();
        final Thread thread = new Thread(() ->
        {
            try
            {
                server.runFromConfig(config);
            }
            catch (final Exception ex)
            {
                ex.printStackTrace();
            }
        }, "zookeeper-tls");
        thread.setDaemon(true);
        thread.start();
        try
        {
            final String connect = "127.0.0.1:" + port;
            try (ZooKeeperArbiter secure = new ZooKeeperArbiter(connect, "/tls/generations",
                ZooKeeperServers.SESSION_TIMEOUT, java.time.Duration.ofSeconds(10), ZooKeeperSecurity.none()
                .tls(clientKeys, PASSWORD, pki.trustStore(), PASSWORD).hostnameVerification(false)
                .digest("tandem", PASSWORD)))
            {
                assertTrue(secure.tryClaim("vm-1", 1));
                assertEquals(1, secure.currentGeneration("vm-1"));
            }
            try (ZooKeeperArbiter plain = new ZooKeeperArbiter(connect, "/tls/generations",
                ZooKeeperServers.SESSION_TIMEOUT, java.time.Duration.ofSeconds(2)))
            {
                final UncheckedIOException unreachable = assertThrows(UncheckedIOException.class,
                    () -> plain.currentGeneration("vm-1"));
                assertTrue(unreachable.getMessage().contains("unreachable"), unreachable.getMessage());
            }
        }
        finally
        {
            server.stop();
            for (final String key : new String[] {"zookeeper.serverCnxnFactory", "zookeeper.ssl.keyStore.location",
                "zookeeper.ssl.keyStore.password", "zookeeper.ssl.trustStore.location",
                "zookeeper.ssl.trustStore.password", "zookeeper.ssl.hostnameVerification"})
            {
                System.clearProperty(key);
            }
        }
    }

    /**
     * ZooKeeper's standalone server, with its protected shutdown reachable.
     */
    private static final class Server extends ZooKeeperServerMain
    {
        void stop()
        {
            shutdown();
        }
    }
}
