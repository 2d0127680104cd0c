package dev.tandem.core.transport;

import dev.tandem.core.ConfigurationException;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.SecureRandom;
import java.security.UnrecoverableKeyException;
import java.security.cert.Certificate;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * What a {@link TlsTransport} authenticates with: this side's key and certificate (a PKCS#12 key store), and how it
 * authenticates the peer: a PKCS#12 trust store of CA certificates, or the SHA-256 fingerprint of the one peer
 * certificate it accepts (pinning, for two hosts without a CA). Both sides present certificates (mutual TLS), and
 * every certificate names the VM it may replicate (see {@link TlsIdentity}).
 * <p>
 * Validated once, when the transport is built ({@link TlsTransport#TlsTransport(TlsConfig)}): a missing or unreadable
 * file, a wrong password, a key store without exactly one key entry, an own certificate that is expired, not yet
 * valid or names no VM, a trust store without CA certificates: each is a {@link ConfigurationException} naming the
 * file and what is wrong. Passwords never appear in a message, a log line or {@link #toString()}; this object keeps
 * its own copies and wipes them once the transport is built, so a config builds one transport.
 * <p>
 * The key entry's password must be the key store's (as keytool and {@code openssl pkcs12} make them).
 */
public final class TlsConfig
{
    /** Default for {@link #handshakeTimeoutMs(long)}: how long an accepted peer may take to finish its handshake. */
    public static final long HANDSHAKE_TIMEOUT_MS_DEFAULT = 10_000;

    private Path keyStore;
    private char[] keyStorePassword;
    private Path trustStore;
    private char[] trustStorePassword;
    private String pinnedPeerFingerprint;
    private String vmId;
    private long handshakeTimeoutMs = HANDSHAKE_TIMEOUT_MS_DEFAULT;
    private boolean used;

    /**
     * @param path     PKCS#12 file holding this side's private key and certificate chain (one key entry).
     * @param password its password; copied, so the caller may wipe its array at once.
     * @return this.
     */
    public TlsConfig keyStore(final Path path, final char[] password)
    {
        keyStore = path;
        keyStorePassword = password == null ? null : password.clone();
        return this;
    }

    /**
     * @return the key store's path, or null.
     */
    public Path keyStore()
    {
        return keyStore;
    }

    /**
     * Authenticates the peer by CA: its certificate must chain to one of the trust store's certificates and be within
     * its validity. Exclusive with {@link #pinnedPeerFingerprint(String)}.
     *
     * @param path     PKCS#12 file holding the CA certificates to trust.
     * @param password its password; copied.
     * @return this.
     */
    public TlsConfig trustStore(final Path path, final char[] password)
    {
        trustStore = path;
        trustStorePassword = password == null ? null : password.clone();
        return this;
    }

    /**
     * @return the trust store's path, or null.
     */
    public Path trustStore()
    {
        return trustStore;
    }

    /**
     * Authenticates the peer by pinning: only the certificate with this SHA-256 fingerprint is accepted (still within
     * its validity and naming a VM). Exclusive with {@link #trustStore(Path, char[])}.
     *
     * @param fingerprint 32 bytes in hex, with or without colons ({@code keytool -list -v} prints it so); see
     *                    {@link TlsIdentity#fingerprint}.
     * @return this.
     */
    public TlsConfig pinnedPeerFingerprint(final String fingerprint)
    {
        pinnedPeerFingerprint = fingerprint;
        return this;
    }

    /**
     * @return the pinned fingerprint as configured, or null.
     */
    public String pinnedPeerFingerprint()
    {
        return pinnedPeerFingerprint;
    }

    /**
     * The VM this side replicates. Optional: when set, the own certificate must name it, so that a key store for
     * another VM is caught at start rather than refused by the peer.
     *
     * @param vmId the VM identity.
     * @return this.
     */
    public TlsConfig vmId(final String vmId)
    {
        this.vmId = vmId;
        return this;
    }

    /**
     * @return the configured VM identity, or null.
     */
    public String vmId()
    {
        return vmId;
    }

    /**
     * How long a peer the standby accepted may take to finish its TLS handshake before it is dropped: a peer that
     * connects and stays silent must not hold the standby's one session slot. The active's side is bounded by its
     * connect timeout instead.
     *
     * @param millis at least 1.
     * @return this.
     */
    public TlsConfig handshakeTimeoutMs(final long millis)
    {
        handshakeTimeoutMs = millis;
        return this;
    }

    /**
     * @return the accept-side handshake timeout.
     */
    public long handshakeTimeoutMs()
    {
        return handshakeTimeoutMs;
    }

    /**
     * Names the files, never the passwords.
     */
    @Override
    public String toString()
    {
        return "TlsConfig{keyStore=" + keyStore + ", " + (trustStore != null ? "trustStore=" + trustStore :
            "pinnedPeerFingerprint=" + pinnedPeerFingerprint) + ", vmId=" + vmId + "}";
    }

    /**
     * What the validated configuration yields.
     *
     * @param context        the TLS 1.3 context with this side's key and the peer check.
     * @param vmId           the VM identity this side's certificate names.
     * @param ownFingerprint the SHA-256 fingerprint of this side's certificate.
     */
    record Material(SSLContext context, String vmId, String ownFingerprint)
    {
    }

    /**
     * Validates everything and builds the TLS context, then wipes the passwords.
     *
     * @return the material a transport runs on.
     * @throws ConfigurationException naming the setting or file and what is wrong.
     */
    Material conclude()
    {
        if (used)
        {
            throw new ConfigurationException("TlsConfig already built a transport (its passwords were wiped); " +
                "use a new one per transport");
        }
        used = true;
        try
        {
            ConfigurationException.checkRange("handshakeTimeoutMs", handshakeTimeoutMs, 1, 3_600_000);
            ConfigurationException.checkSet("keyStore", keyStore);
            ConfigurationException.checkSet("keyStore password", keyStorePassword);
            if (trustStore != null && pinnedPeerFingerprint != null)
            {
                throw new ConfigurationException("TLS: set a trustStore or a pinnedPeerFingerprint to authenticate " +
                    "the peer, not both");
            }
            if (trustStore == null && pinnedPeerFingerprint == null)
            {
                throw new ConfigurationException("TLS: set a trustStore (CA certificates) or a pinnedPeerFingerprint " +
                    "(the peer's certificate) to authenticate the peer");
            }
            final KeyStore keys = load("key store", keyStore, keyStorePassword);
            final X509Certificate own = ownCertificate(keys);
            final String ownAlias = keyAlias(keys);
            final String ownVmId;
            try
            {
                ownVmId = TlsIdentity.vmIdOf(own);
            }
            catch (final java.security.cert.CertificateException ex)
            {
                throw new ConfigurationException("TLS key store '" + keyStore + "': " + ex.getMessage());
            }
            if (vmId != null && !vmId.equals(ownVmId))
            {
                throw new ConfigurationException("TLS key store '" + keyStore + "': its certificate names VM '" +
                    ownVmId + "' but this side is configured for VM '" + vmId + "'");
            }
            final KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            try
            {
                kmf.init(keys, keyStorePassword);
            }
            catch (final UnrecoverableKeyException ex)
            {
                throw new ConfigurationException("TLS key store '" + keyStore + "': its key cannot be read with the " +
                    "key store's password (the key entry must have the same password as the store)");
            }
            final X509ExtendedTrustManager pkix;
            final String pinned;
            if (trustStore != null)
            {
                ConfigurationException.checkSet("trustStore password", trustStorePassword);
                final KeyStore trusted = load("trust store", trustStore, trustStorePassword);
                requireCaCertificates(trusted);
                final TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
                tmf.init(trusted);
                pkix = firstX509(tmf.getTrustManagers());
                pinned = null;
            }
            else
            {
                try
                {
                    pinned = TlsIdentity.normaliseFingerprint(pinnedPeerFingerprint);
                }
                catch (final IllegalArgumentException ex)
                {
                    throw new ConfigurationException("TLS " + ex.getMessage());
                }
                pkix = null;
            }
            final SSLContext context = SSLContext.getInstance("TLSv1.3");
            context.init(new javax.net.ssl.KeyManager[] {new OneKeyManager(
                (javax.net.ssl.X509ExtendedKeyManager)kmf.getKeyManagers()[0], ownAlias)}, new TrustManager[] {new PeerTrustManager(pkix, pinned)},
                new SecureRandom());
            return new Material(context, ownVmId, TlsIdentity.fingerprint(own));
        }
        catch (final GeneralSecurityException ex)
        {
            // no password is in a JDK security message; the file is named for the reader
            throw new ConfigurationException("TLS setup with key store '" + keyStore + "' failed: " + ex);
        }
        finally
        {
            wipe(keyStorePassword);
            wipe(trustStorePassword);
        }
    }

    private static void wipe(final char[] password)
    {
        if (password != null)
        {
            Arrays.fill(password, '\0');
        }
    }

    private static KeyStore load(final String what, final Path path, final char[] password)
        throws GeneralSecurityException
    {
        if (!Files.isRegularFile(path))
        {
            throw new ConfigurationException("TLS " + what + " '" + path + "' does not exist or is not a file");
        }
        if (!Files.isReadable(path))
        {
            throw new ConfigurationException("TLS " + what + " '" + path + "' cannot be read by this process");
        }
        final KeyStore store = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(path))
        {
            store.load(in, password);
        }
        catch (final IOException ex)
        {
            if (ex.getCause() instanceof UnrecoverableKeyException || String.valueOf(ex.getMessage())
                .contains("password"))
            {
                throw new ConfigurationException("TLS " + what + " '" + path + "': wrong password (or the file " +
                    "is damaged)");
            }
            throw new ConfigurationException("TLS " + what + " '" + path + "' is not a readable PKCS#12 file: " +
                ex.getMessage());
        }
        return store;
    }

    private static String keyAlias(final KeyStore keys) throws GeneralSecurityException
    {
        for (final String alias : Collections.list(keys.aliases()))
        {
            if (keys.isKeyEntry(alias))
            {
                return alias;
            }
        }
        throw new IllegalStateException("no key entry");
    }

    private X509Certificate ownCertificate(final KeyStore keys) throws GeneralSecurityException
    {
        final List<String> keyAliases = new ArrayList<>();
        for (final String alias : Collections.list(keys.aliases()))
        {
            if (keys.isKeyEntry(alias))
            {
                keyAliases.add(alias);
            }
        }
        if (keyAliases.size() != 1)
        {
            throw new ConfigurationException("TLS key store '" + keyStore + "' holds " + (keyAliases.isEmpty() ?
                "no private key entry (keytool -genkeypair makes one)" : keyAliases.size() + " key entries " +
                keyAliases + "; keep one key per side"));
        }
        final Certificate[] chain = keys.getCertificateChain(keyAliases.get(0));
        if (chain == null || chain.length == 0 || !(chain[0] instanceof X509Certificate own))
        {
            throw new ConfigurationException("TLS key store '" + keyStore + "': key entry '" + keyAliases.get(0) +
                "' has no X.509 certificate");
        }
        try
        {
            own.checkValidity();
        }
        catch (final CertificateExpiredException ex)
        {
            throw new ConfigurationException("TLS key store '" + keyStore + "': this side's certificate '" +
                own.getSubjectX500Principal().getName() + "' expired on " + own.getNotAfter().toInstant());
        }
        catch (final CertificateNotYetValidException ex)
        {
            throw new ConfigurationException("TLS key store '" + keyStore + "': this side's certificate '" +
                own.getSubjectX500Principal().getName() + "' is not valid before " +
                own.getNotBefore().toInstant());
        }
        return own;
    }

    private void requireCaCertificates(final KeyStore trusted) throws GeneralSecurityException
    {
        for (final String alias : Collections.list(trusted.aliases()))
        {
            if (trusted.isCertificateEntry(alias))
            {
                return;
            }
        }
        throw new ConfigurationException("TLS trust store '" + trustStore + "' holds no trusted certificate entry " +
            "(keytool -importcert adds the CA's certificate)");
    }

    private static X509ExtendedTrustManager firstX509(final TrustManager[] managers)
    {
        for (final TrustManager manager : managers)
        {
            if (manager instanceof X509ExtendedTrustManager x509)
            {
                return x509;
            }
        }
        throw new IllegalStateException("the JDK's PKIX TrustManagerFactory made no X509ExtendedTrustManager");
    }
}
