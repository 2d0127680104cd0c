package dev.tandem.core.transport;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedKeyManager;
import java.net.Socket;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;

/**
 * Presents this side's one key whatever CAs the peer says it accepts. The JDK's own key manager offers only keys
 * issued by a CA the peer names, and otherwise sends no certificate at all: the peer would then report "no
 * certificate" instead of the truth, "a certificate from a CA I do not trust". Presenting the key lets the peer judge
 * it and say why it refuses.
 */
final class OneKeyManager extends X509ExtendedKeyManager
{
    private final X509ExtendedKeyManager keys;
    private final String alias;
    private final String algorithm;

    /**
     * @param keys  the JDK's key manager over a key store with one key entry.
     * @param alias that entry's alias.
     */
    OneKeyManager(final X509ExtendedKeyManager keys, final String alias)
    {
        this.keys = keys;
        this.alias = alias;
        final PrivateKey key = keys.getPrivateKey(alias);
        this.algorithm = key == null ? null : key.getAlgorithm();
    }

    private String ifType(final String... keyTypes)
    {
        if (keyTypes == null)
        {
            return alias;
        }
        for (final String type : keyTypes)
        {
            if (type != null && (type.equals(algorithm) || type.startsWith(algorithm + "_") ||
                "EC".equals(algorithm) && type.startsWith("EC")))
            {
                return alias;
            }
        }
        return null;
    }

    @Override
    public String chooseEngineClientAlias(final String[] keyType, final Principal[] issuers, final SSLEngine engine)
    {
        return ifType(keyType);
    }

    @Override
    public String chooseEngineServerAlias(final String keyType, final Principal[] issuers, final SSLEngine engine)
    {
        return ifType(keyType);
    }

    @Override
    public String[] getClientAliases(final String keyType, final Principal[] issuers)
    {
        return ifType(keyType) == null ? null : new String[] {alias};
    }

    @Override
    public String chooseClientAlias(final String[] keyType, final Principal[] issuers, final Socket socket)
    {
        return ifType(keyType);
    }

    @Override
    public String[] getServerAliases(final String keyType, final Principal[] issuers)
    {
        return getClientAliases(keyType, issuers);
    }

    @Override
    public String chooseServerAlias(final String keyType, final Principal[] issuers, final Socket socket)
    {
        return ifType(keyType);
    }

    @Override
    public X509Certificate[] getCertificateChain(final String name)
    {
        return keys.getCertificateChain(name);
    }

    @Override
    public PrivateKey getPrivateKey(final String name)
    {
        return keys.getPrivateKey(name);
    }
}
