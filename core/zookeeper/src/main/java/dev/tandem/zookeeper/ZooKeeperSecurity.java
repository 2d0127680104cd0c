package dev.tandem.zookeeper;

import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.client.ZKClientConfig;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.Id;
import org.apache.zookeeper.server.auth.DigestAuthenticationProvider;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;

/**
 * How the {@link ZooKeeperArbiter} authenticates to the ensemble and protects its znodes:
 * <ul>
 * <li>{@link #digest(String, char[])}: the client authenticates as a ZooKeeper digest user, and every znode the
 * arbiter creates (the root path's missing parents included) carries an ACL that lets only that identity change it;
 * everyone else may read it ({@link #worldReadable(boolean)}), so monitoring can show generations but nothing else
 * can move one. Give the actives and standbys of a fleet the same Tandem identity.</li>
 * <li>{@link #tls(Path, char[], Path, char[])}: the client connects with ZooKeeper's own TLS (Netty client,
 * {@code zookeeper.client.secure}) using PKCS#12 key and trust stores, through a {@link ZKClientConfig} of its own
 * (no JVM-wide system property is set). The ensemble needs a {@code secureClientPort}.</li>
 * </ul>
 * Settings are validated by {@link ZooKeeperArbiter}'s constructor: a store file that is missing, or a digest
 * identity without a password, is an {@link IllegalArgumentException} naming it, never the password.
 */
public final class ZooKeeperSecurity
{
    // ZooDefs.Ids's own constants, spelled out: its class file carries annotations this build cannot resolve
    private static final Id ANYONE = new Id("world", "anyone");

    private String digestUser;
    private char[] digestPassword;
    private boolean worldReadable = true;
    private boolean hostnameVerification = true;
    private Path keyStore;
    private char[] keyStorePassword;
    private Path trustStore;
    private char[] trustStorePassword;

    /**
     * @return no authentication, open ACLs, plaintext: what the arbiter does without security settings.
     */
    public static ZooKeeperSecurity none()
    {
        return new ZooKeeperSecurity();
    }

    /**
     * Authenticates as a digest user and restricts every znode the arbiter creates to that identity.
     *
     * @param user     the Tandem identity's user name (no colon).
     * @param password its password; copied.
     * @return this.
     */
    public ZooKeeperSecurity digest(final String user, final char[] password)
    {
        digestUser = user;
        digestPassword = password == null ? null : password.clone();
        return this;
    }

    /**
     * @param readable true (the default) lets any client read generations; false restricts reading to the identity.
     * @return this.
     */
    public ZooKeeperSecurity worldReadable(final boolean readable)
    {
        worldReadable = readable;
        return this;
    }

    /**
     * Connects with TLS.
     *
     * @param keyStore           PKCS#12 key store with the client's key (servers that require client certificates).
     * @param keyStorePassword   its password; copied.
     * @param trustStore         PKCS#12 trust store with the ensemble's CA.
     * @param trustStorePassword its password; copied.
     * @return this.
     */
    public ZooKeeperSecurity tls(final Path keyStore, final char[] keyStorePassword, final Path trustStore,
        final char[] trustStorePassword)
    {
        this.keyStore = keyStore;
        this.keyStorePassword = keyStorePassword == null ? null : keyStorePassword.clone();
        this.trustStore = trustStore;
        this.trustStorePassword = trustStorePassword == null ? null : trustStorePassword.clone();
        return this;
    }

    /**
     * @param verify true (the default) checks that a server's certificate names the host connected to, as
     *               ZooKeeper does; false trusts any certificate from the trust store's CA (a private CA for the
     *               ensemble only, whose servers move between addresses).
     * @return this.
     */
    public ZooKeeperSecurity hostnameVerification(final boolean verify)
    {
        hostnameVerification = verify;
        return this;
    }

    /**
     * @return true if the client authenticates with a digest identity.
     */
    public boolean authenticates()
    {
        return digestUser != null;
    }

    /**
     * @return true if the client connects with TLS.
     */
    public boolean secure()
    {
        return trustStore != null;
    }

    /**
     * Names the identity and files, never a password.
     */
    @Override
    public String toString()
    {
        return "ZooKeeperSecurity{digestUser=" + digestUser + ", worldReadable=" + worldReadable + ", keyStore=" +
            keyStore + ", trustStore=" + trustStore + "}";
    }

    void validate()
    {
        if (digestUser != null)
        {
            if (digestUser.isEmpty() || digestUser.indexOf(':') >= 0)
            {
                throw new IllegalArgumentException("ZooKeeper digest user '" + digestUser + "' must be non-empty " +
                    "and hold no ':'");
            }
            if (digestPassword == null || digestPassword.length == 0)
            {
                throw new IllegalArgumentException("ZooKeeper digest user '" + digestUser + "' has no password");
            }
        }
        if (trustStore != null || keyStore != null)
        {
            requireReadable("trust store", trustStore, trustStorePassword);
            if (keyStore != null)
            {
                requireReadable("key store", keyStore, keyStorePassword);
            }
        }
    }

    private static void requireReadable(final String what, final Path path, final char[] password)
    {
        if (path == null)
        {
            throw new IllegalArgumentException("ZooKeeper TLS needs a " + what);
        }
        if (!Files.isRegularFile(path) || !Files.isReadable(path))
        {
            throw new IllegalArgumentException("ZooKeeper TLS " + what + " '" + path + "' does not exist or cannot " +
                "be read");
        }
        if (password == null)
        {
            throw new IllegalArgumentException("ZooKeeper TLS " + what + " '" + path + "' has no password");
        }
    }

    /**
     * @return the bytes Curator sends with the {@code digest} scheme, or null without an identity.
     */
    byte[] authBytes()
    {
        return digestUser == null ? null :
            (digestUser + ":" + new String(digestPassword)).getBytes(StandardCharsets.UTF_8);
    }

    /**
     * @return the ACL of every znode the arbiter creates: all rights for the identity (and reading for everyone if
     *         {@link #worldReadable}), or the open ACL without an identity.
     */
    List<ACL> acls()
    {
        if (digestUser == null)
        {
            return new ArrayList<>(List.of(new ACL(ZooDefs.Perms.ALL, ANYONE)));
        }
        final String digest;
        try
        {
            digest = DigestAuthenticationProvider.generateDigest(digestUser + ":" + new String(digestPassword));
        }
        catch (final NoSuchAlgorithmException ex)
        {
            throw new IllegalStateException("this JDK has no SHA-1 for ZooKeeper's digest ACLs", ex);
        }
        final List<ACL> acls = new ArrayList<>(2);
        acls.add(new ACL(ZooDefs.Perms.ALL, new Id("digest", digest)));
        if (worldReadable)
        {
            acls.add(new ACL(ZooDefs.Perms.READ, ANYONE));
        }
        // a mutable list: ZooKeeper's validateACL asks contains(null), which List.of answers with an exception
        return acls;
    }

    /**
     * @return the ZooKeeper client's own configuration: TLS over the Netty client socket when set.
     */
    ZKClientConfig clientConfig()
    {
        final ZKClientConfig config = new ZKClientConfig();
        if (trustStore != null)
        {
            config.setProperty(ZKClientConfig.SECURE_CLIENT, "true");
            config.setProperty(ZKClientConfig.ZOOKEEPER_CLIENT_CNXN_SOCKET,
                "org.apache.zookeeper.ClientCnxnSocketNetty");
            config.setProperty("zookeeper.ssl.trustStore.location", trustStore.toString());
            config.setProperty("zookeeper.ssl.trustStore.password", new String(trustStorePassword));
            config.setProperty("zookeeper.ssl.trustStore.type", "PKCS12");
            if (keyStore != null)
            {
                config.setProperty("zookeeper.ssl.keyStore.location", keyStore.toString());
                config.setProperty("zookeeper.ssl.keyStore.password", new String(keyStorePassword));
                config.setProperty("zookeeper.ssl.keyStore.type", "PKCS12");
            }
            config.setProperty("zookeeper.ssl.hostnameVerification", Boolean.toString(hostnameVerification));
        }
        return config;
    }
}
