package dev.tandem.core.transport;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedTrustManager;
import java.net.Socket;
import java.security.cert.CertificateException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.X509Certificate;

/**
 * Decides whether a peer's certificate is acceptable, for both ends of the link: either the JDK's PKIX check against
 * the trust store (chain, signatures, validity) or a pinned fingerprint (and validity), and in both cases the
 * certificate must name exactly one VM ({@link TlsIdentity}). Which VM is checked later, by the replication handshake,
 * against the identity the HELLO carries.
 * <p>
 * No host name is verified: a Tandem peer is identified by the VM its certificate names, not by its address, which
 * moves with failovers.
 */
final class PeerTrustManager extends X509ExtendedTrustManager
{
    private static final X509Certificate[] NONE = new X509Certificate[0];

    private final X509ExtendedTrustManager pkix;
    private final String pinnedFingerprint;

    /**
     * @param pkix              the trust store's manager, or null when pinning.
     * @param pinnedFingerprint the pinned fingerprint in {@link TlsIdentity#fingerprint}'s form, or null.
     */
    PeerTrustManager(final X509ExtendedTrustManager pkix, final String pinnedFingerprint)
    {
        this.pkix = pkix;
        this.pinnedFingerprint = pinnedFingerprint;
    }

    @Override
    public void checkClientTrusted(final X509Certificate[] chain, final String authType, final SSLEngine engine)
        throws CertificateException
    {
        if (pkix != null)
        {
            requireChain(chain);
            pkix.checkClientTrusted(chain, authType, engine);
        }
        checkPinnedAndNamed(chain);
    }

    @Override
    public void checkServerTrusted(final X509Certificate[] chain, final String authType, final SSLEngine engine)
        throws CertificateException
    {
        if (pkix != null)
        {
            requireChain(chain);
            pkix.checkServerTrusted(chain, authType, engine);
        }
        checkPinnedAndNamed(chain);
    }

    @Override
    public void checkClientTrusted(final X509Certificate[] chain, final String authType, final Socket socket)
        throws CertificateException
    {
        if (pkix != null)
        {
            requireChain(chain);
            pkix.checkClientTrusted(chain, authType, socket);
        }
        checkPinnedAndNamed(chain);
    }

    @Override
    public void checkServerTrusted(final X509Certificate[] chain, final String authType, final Socket socket)
        throws CertificateException
    {
        if (pkix != null)
        {
            requireChain(chain);
            pkix.checkServerTrusted(chain, authType, socket);
        }
        checkPinnedAndNamed(chain);
    }

    @Override
    public void checkClientTrusted(final X509Certificate[] chain, final String authType) throws CertificateException
    {
        if (pkix != null)
        {
            requireChain(chain);
            pkix.checkClientTrusted(chain, authType);
        }
        checkPinnedAndNamed(chain);
    }

    @Override
    public void checkServerTrusted(final X509Certificate[] chain, final String authType) throws CertificateException
    {
        if (pkix != null)
        {
            requireChain(chain);
            pkix.checkServerTrusted(chain, authType);
        }
        checkPinnedAndNamed(chain);
    }

    @Override
    public X509Certificate[] getAcceptedIssuers()
    {
        return pkix != null ? pkix.getAcceptedIssuers() : NONE;
    }

    private static void requireChain(final X509Certificate[] chain) throws CertificateException
    {
        if (chain == null || chain.length == 0)
        {
            throw new CertificateException("the peer presented no certificate");
        }
    }

    private void checkPinnedAndNamed(final X509Certificate[] chain) throws CertificateException
    {
        requireChain(chain);
        final X509Certificate leaf = chain[0];
        if (pinnedFingerprint != null)
        {
            final String actual = TlsIdentity.fingerprint(leaf);
            if (!actual.equals(pinnedFingerprint))
            {
                throw new CertificateException("the peer's certificate '" + leaf.getSubjectX500Principal().getName() +
                    "' has SHA-256 fingerprint " + actual + ", not the pinned " + pinnedFingerprint);
            }
            try
            {
                leaf.checkValidity();
            }
            catch (final CertificateExpiredException ex)
            {
                throw new CertificateException("the peer's pinned certificate '" +
                    leaf.getSubjectX500Principal().getName() + "' expired on " + leaf.getNotAfter().toInstant(), ex);
            }
            catch (final CertificateNotYetValidException ex)
            {
                throw new CertificateException("the peer's pinned certificate '" +
                    leaf.getSubjectX500Principal().getName() + "' is not valid before " +
                    leaf.getNotBefore().toInstant(), ex);
            }
        }
        TlsIdentity.vmIdOf(leaf);
    }
}
