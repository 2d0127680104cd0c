package dev.tandem.zookeeper;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryOneTime;
import org.apache.curator.test.TestingServer;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.data.ACL;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A real ZooKeeper server: with a digest identity the arbiter's znodes carry an ACL that lets only that identity
 * change a generation; anyone else (no credentials, a wrong password, an arbiter without security) can read it and
 * is refused with NOAUTH when it tries to claim, saying so and never the password.
 */
final class ZooKeeperSecurityTest
{
    private static final char[] PASSWORD = "zk-tandem-secret-91".toCharArray();
    private static TestingServer server;

    @BeforeAll
    static void startServer() throws Exception
    {
        server = ZooKeeperServers.standalone();
    }

    @AfterAll
    static void stopServer() throws Exception
    {
        server.close();
    }

    @Test
    void onlyTandemsIdentityChangesAGeneration() throws Exception
    {
        final String root = "/secure/generations";
        try (ZooKeeperArbiter tandem = arbiter(root, ZooKeeperSecurity.none().digest("tandem", PASSWORD));
            CuratorFramework anonymous = CuratorFrameworkFactory.newClient(server.getConnectString(),
                new RetryOneTime(100)))
        {
            assertTrue(tandem.tryClaim("vm-1", 1));
            anonymous.start();
            final String path = tandem.vmPath("vm-1");
            for (final String znode : List.of(path, root, "/secure"))
            {
                final List<ACL> acl = anonymous.getACL().forPath(znode);
                assertTrue(acl.stream().anyMatch(a -> "digest".equals(a.getId().getScheme()) &&
                    a.getId().getId().startsWith("tandem:") && a.getPerms() == ZooDefs.Perms.ALL), znode + " " + acl);
                assertTrue(acl.stream().noneMatch(a -> "world".equals(a.getId().getScheme()) &&
                    (a.getPerms() & ZooDefs.Perms.WRITE) != 0), "nobody else may write " + znode + ": " + acl);
            }
            // anyone may read; no one else may write or delete
            assertEquals(8, anonymous.getData().forPath(path).length);
            assertThrows(KeeperException.NoAuthException.class,
                () -> anonymous.setData().forPath(path, new byte[8]));
            assertThrows(KeeperException.NoAuthException.class, () -> anonymous.delete().forPath(path));
            assertThrows(KeeperException.NoAuthException.class,
                () -> anonymous.create().forPath(root + "/forged", new byte[8]));

            try (ZooKeeperArbiter wrong = arbiter(root, ZooKeeperSecurity.none().digest("tandem",
                "not-the-password".toCharArray()));
                ZooKeeperArbiter open = arbiter(root, ZooKeeperSecurity.none()))
            {
                for (final ZooKeeperArbiter other : List.of(wrong, open))
                {
                    assertEquals(1, other.currentGeneration("vm-1"), "generations stay readable");
                    final UncheckedIOException refused = assertThrows(UncheckedIOException.class,
                        () -> other.tryClaim("vm-1", 2));
                    assertTrue(refused.getMessage().contains("NOAUTH") &&
                        refused.getMessage().contains("vm-1"), refused.getMessage());
                    assertFalse(refused.getMessage().contains("not-the-password"), refused.getMessage());
                    assertFalse(refused.getMessage().contains(new String(PASSWORD)), refused.getMessage());
                    // a new VM under the protected root is refused too: creating a child needs the identity
                    assertThrows(UncheckedIOException.class, () -> other.tryClaim("vm-2", 1));
                }
            }
            assertEquals(1, tandem.currentGeneration("vm-1"));
            assertTrue(tandem.tryClaim("vm-1", 2), "Tandem's identity still moves it");
        }
    }

    @Test
    void badSecuritySettingsAreNamedWithoutThePassword()
    {
        final IllegalArgumentException noPassword = assertThrows(IllegalArgumentException.class,
            () -> arbiter("/x", ZooKeeperSecurity.none().digest("tandem", new char[0])));
        assertTrue(noPassword.getMessage().contains("has no password"), noPassword.getMessage());
        final IllegalArgumentException colon = assertThrows(IllegalArgumentException.class,
            () -> arbiter("/x", ZooKeeperSecurity.none().digest("tan:dem", PASSWORD)));
        assertTrue(colon.getMessage().contains("'tan:dem'"), colon.getMessage());
        final Path missing = Path.of("/nonexistent/trust.p12");
        final IllegalArgumentException noStore = assertThrows(IllegalArgumentException.class,
            () -> arbiter("/x", ZooKeeperSecurity.none().tls(null, null, missing, PASSWORD)));
        assertTrue(noStore.getMessage().contains(missing.toString()), noStore.getMessage());
        assertFalse(ZooKeeperSecurity.none().digest("tandem", PASSWORD).toString().contains(new String(PASSWORD)));
    }

    private static ZooKeeperArbiter arbiter(final String root, final ZooKeeperSecurity security)
    {
        return new ZooKeeperArbiter(server.getConnectString(), root, ZooKeeperServers.SESSION_TIMEOUT,
            ZooKeeperServers.OPERATION_TIMEOUT, security);
    }
}
