package dev.tandem.core.transport;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A throwaway certificate authority for tests, demonstrations and the failover harness: a CA, a PKCS#12 trust store
 * holding it, and PKCS#12 key stores for nodes, each certificate naming one VM ({@link TlsIdentity}). Made with the
 * JDK's own {@code keytool} (run from {@code java.home}), so nothing beyond the JDK is needed, and the files are those
 * an operator's own keytool or OpenSSL steps would make.
 * <p>
 * Not for production keys: every file shares one password, the CA's key lies beside the certificates, and the keys
 * are made on the host that uses them. The password reaches keytool through its environment, never its command line
 * (which other users of the host can read).
 */
public final class ThrowawayPki
{
    private static final String PASSWORD_ENV = "TANDEM_THROWAWAY_PKI_PASSWORD";
    private static final long KEYTOOL_TIMEOUT_S = 60;

    private final Path directory;
    private final char[] password;
    private final Path caStore;
    private final Path caCertificate;
    private final Path trustStore;

    private ThrowawayPki(final Path directory, final char[] password)
    {
        this.directory = directory;
        this.password = password.clone();
        caStore = directory.resolve("ca.p12");
        caCertificate = directory.resolve("ca.pem");
        trustStore = directory.resolve("trust.p12");
    }

    /**
     * Makes a CA valid from yesterday for 30 days, and a trust store holding its certificate.
     *
     * @param directory where the files go (created if missing).
     * @param password  the password of every store made, at least 6 characters; copied.
     * @return the CA.
     * @throws IOException if keytool fails, with its output.
     */
    public static ThrowawayPki create(final Path directory, final char[] password) throws IOException
    {
        if (password == null || password.length < 6)
        {
            // keytool's own rule for PKCS#12 passwords, said before it runs
            throw new IllegalArgumentException("a throwaway PKI's password must have at least 6 characters");
        }
        Files.createDirectories(directory);
        final ThrowawayPki pki = new ThrowawayPki(directory, password);
        pki.keytool("-genkeypair", "-alias", "ca", "-keyalg", "EC", "-groupname", "secp256r1",
            "-dname", "CN=Tandem throwaway CA " + directory.getFileName(), "-ext", "bc:c", "-startdate", "-1d",
            "-validity", "30", "-keystore", pki.caStore.toString(), "-storetype", "PKCS12");
        pki.keytool("-exportcert", "-rfc", "-alias", "ca", "-keystore", pki.caStore.toString(),
            "-file", pki.caCertificate.toString());
        pki.keytool("-importcert", "-noprompt", "-alias", "ca", "-file", pki.caCertificate.toString(),
            "-keystore", pki.trustStore.toString(), "-storetype", "PKCS12");
        return pki;
    }

    /**
     * @return the trust store holding the CA's certificate.
     */
    public Path trustStore()
    {
        return trustStore;
    }

    /**
     * @return a copy of the password of every store.
     */
    public char[] password()
    {
        return password.clone();
    }

    /**
     * Issues a key store for a node, its certificate signed by this CA, valid from yesterday for 30 days.
     *
     * @param name file name stem and common name.
     * @param vmId the VM the certificate names, or null for a certificate naming none.
     * @return the key store.
     * @throws IOException if keytool fails.
     */
    public Path issue(final String name, final String vmId) throws IOException
    {
        return issue(name, vmId, "-1d", 30);
    }

    /**
     * Issues a key store for a node with a chosen validity (a start date in the past and a short validity make an
     * expired certificate).
     *
     * @param name         file name stem and common name.
     * @param vmId         the VM the certificate names, or null for none.
     * @param startDate    keytool's {@code -startdate}, e.g. {@code -10d}.
     * @param validityDays days from the start date.
     * @return the key store.
     * @throws IOException if keytool fails.
     */
    public Path issue(final String name, final String vmId, final String startDate, final int validityDays)
        throws IOException
    {
        final Path store = directory.resolve(name + ".p12");
        final Path request = directory.resolve(name + ".csr");
        final Path signed = directory.resolve(name + ".pem");
        Files.deleteIfExists(store);
        keytool("-genkeypair", "-alias", "node", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=" + name,
            "-keystore", store.toString(), "-storetype", "PKCS12");
        keytool("-certreq", "-alias", "node", "-keystore", store.toString(), "-file", request.toString());
        final List<String> gencert = new ArrayList<>(List.of("-gencert", "-rfc", "-alias", "ca", "-keystore",
            caStore.toString(), "-infile", request.toString(), "-outfile", signed.toString(), "-startdate", startDate,
            "-validity", Integer.toString(validityDays)));
        if (vmId != null)
        {
            gencert.addAll(List.of("-ext", "san=uri:" + TlsIdentity.uriOf(vmId)));
        }
        keytool(gencert.toArray(new String[0]));
        // the CA in the key store lets keytool link the signed reply to it (a chain of two)
        keytool("-importcert", "-noprompt", "-alias", "ca", "-file", caCertificate.toString(), "-keystore",
            store.toString());
        keytool("-importcert", "-alias", "node", "-file", signed.toString(), "-keystore", store.toString());
        return store;
    }

    /**
     * Makes a self-signed key store, for pinning its fingerprint instead of trusting a CA.
     *
     * @param name file name stem and common name.
     * @param vmId the VM the certificate names.
     * @return the key store.
     * @throws IOException if keytool fails.
     */
    public Path selfSigned(final String name, final String vmId) throws IOException
    {
        final Path store = directory.resolve(name + ".p12");
        Files.deleteIfExists(store);
        keytool("-genkeypair", "-alias", "node", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=" + name,
            "-ext", "san=uri:" + TlsIdentity.uriOf(vmId), "-startdate", "-1d", "-validity", "30",
            "-keystore", store.toString(), "-storetype", "PKCS12");
        return store;
    }

    /**
     * @param keyStore a key store this CA made.
     * @return a config presenting it and trusting this CA.
     */
    public TlsConfig config(final Path keyStore)
    {
        final char[] copy = password();
        try
        {
            return new TlsConfig().keyStore(keyStore, copy).trustStore(trustStore, copy);
        }
        finally
        {
            java.util.Arrays.fill(copy, '\0');
        }
    }

    /**
     * @param keyStore a key store this CA made.
     * @return the SHA-256 fingerprint of its key entry's certificate, for a peer that pins it.
     * @throws IOException if it cannot be read.
     */
    public String fingerprint(final Path keyStore) throws IOException
    {
        try (var in = Files.newInputStream(keyStore))
        {
            final KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(in, password);
            for (final String alias : Collections.list(store.aliases()))
            {
                if (store.isKeyEntry(alias))
                {
                    return TlsIdentity.fingerprint((X509Certificate)store.getCertificate(alias));
                }
            }
            throw new IOException("key store " + keyStore + " holds no key entry");
        }
        catch (final java.security.GeneralSecurityException ex)
        {
            throw new IOException("cannot read key store " + keyStore + ": " + ex.getMessage(), ex);
        }
    }

    private void keytool(final String... args) throws IOException
    {
        final List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "keytool").toString());
        command.addAll(List.of(args));
        command.addAll(List.of("-storepass:env", PASSWORD_ENV));
        if (List.of(args).contains("-genkeypair"))
        {
            command.addAll(List.of("-keypass:env", PASSWORD_ENV));
        }
        final ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.environment().put(PASSWORD_ENV, new String(password));
        final Process process = builder.start();
        final String output;
        try
        {
            output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!process.waitFor(KEYTOOL_TIMEOUT_S, TimeUnit.SECONDS))
            {
                process.destroyForcibly();
                throw new IOException("keytool " + args[0] + " did not finish within " + KEYTOOL_TIMEOUT_S + " s");
            }
        }
        catch (final InterruptedException ex)
        {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while keytool " + args[0] + " ran", ex);
        }
        if (process.exitValue() != 0)
        {
            throw new IOException("keytool " + String.join(" ", args) + " failed (exit " + process.exitValue() +
                "): " + output.strip());
        }
    }
}
