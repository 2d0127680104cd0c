package dev.tandem.core.transport;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.cert.CertificateEncodingException;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;

/**
 * How a certificate names the VM it may replicate: one subject alternative name of type URI,
 * {@code urn:tandem:vm:<vmId>} (for example {@code urn:tandem:vm:payroll-db}; made with keytool's
 * {@code -ext san=uri:urn:tandem:vm:payroll-db}). The VM identity follows the prefix verbatim, percent-decoding
 * excepted, so an identity with characters a URI cannot hold ({@code %}, spaces, non-ASCII) is written
 * percent-encoded in UTF-8.
 * <p>
 * One certificate names exactly one VM: an active or standby holds the key for the guests it serves, and a key that
 * leaks exposes one guest, not a fleet. A certificate with no such name, or with two, is refused at handshake.
 */
public final class TlsIdentity
{
    /** The prefix of the subject alternative name URI that carries the VM identity. */
    public static final String VM_URI_PREFIX = "urn:tandem:vm:";

    private static final int SAN_URI = 6;

    private TlsIdentity()
    {
    }

    /**
     * @param vmId a VM identity.
     * @return the SAN URI naming it ({@code urn:tandem:vm:} and the identity, percent-encoded where a URI needs it).
     */
    public static String uriOf(final String vmId)
    {
        final StringBuilder uri = new StringBuilder(VM_URI_PREFIX);
        for (final byte b : vmId.getBytes(java.nio.charset.StandardCharsets.UTF_8))
        {
            final int c = b & 0xFF;
            if (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || "-._~:".indexOf(c) >= 0)
            {
                uri.append((char)c);
            }
            else
            {
                uri.append('%').append(HexFormat.of().withUpperCase().toHexDigits((byte)c));
            }
        }
        return uri.toString();
    }

    /**
     * @param certificate a peer's or this side's own certificate.
     * @return the VM identity it names.
     * @throws java.security.cert.CertificateException saying what is missing: no {@code urn:tandem:vm:} name, or
     *                                                 more than one.
     */
    public static String vmIdOf(final X509Certificate certificate) throws java.security.cert.CertificateException
    {
        final List<String> ids = vmIdsOf(certificate);
        if (ids.size() != 1)
        {
            throw new java.security.cert.CertificateException("certificate '" +
                certificate.getSubjectX500Principal().getName() + "' names " + (ids.isEmpty() ? "no VM identity" :
                ids.size() + " VM identities " + ids) + "; it must carry exactly one subject alternative name URI " +
                VM_URI_PREFIX + "<vmId>");
        }
        return ids.get(0);
    }

    private static List<String> vmIdsOf(final X509Certificate certificate) throws CertificateParsingException
    {
        final List<String> ids = new ArrayList<>(1);
        final Collection<List<?>> names = certificate.getSubjectAlternativeNames();
        if (names == null)
        {
            return ids;
        }
        for (final List<?> name : names)
        {
            if (name.size() >= 2 && name.get(0) instanceof Integer type && type == SAN_URI &&
                name.get(1) instanceof String uri && uri.regionMatches(true, 0, VM_URI_PREFIX, 0,
                VM_URI_PREFIX.length()))
            {
                ids.add(java.net.URLDecoder.decode(uri.substring(VM_URI_PREFIX.length()).replace("+", "%2B"),
                    java.nio.charset.StandardCharsets.UTF_8));
            }
        }
        return ids;
    }

    /**
     * @param certificate a certificate.
     * @return its SHA-256 fingerprint over the DER encoding, as upper-case hex pairs joined by colons (keytool's
     *         {@code -list -v} form).
     */
    public static String fingerprint(final X509Certificate certificate)
    {
        try
        {
            return HexFormat.ofDelimiter(":").withUpperCase()
                .formatHex(MessageDigest.getInstance("SHA-256").digest(certificate.getEncoded()));
        }
        catch (final NoSuchAlgorithmException | CertificateEncodingException ex)
        {
            throw new IllegalStateException("cannot fingerprint certificate '" +
                certificate.getSubjectX500Principal().getName() + "': " + ex.getMessage(), ex);
        }
    }

    /**
     * Normalises a configured fingerprint: hex digits with or without colons or spaces, either case.
     *
     * @param fingerprint the configured SHA-256 fingerprint.
     * @return it in {@link #fingerprint}'s form.
     * @throws IllegalArgumentException saying why it is not a SHA-256 fingerprint (the value is no secret).
     */
    public static String normaliseFingerprint(final String fingerprint)
    {
        final String hex = fingerprint.replace(":", "").replace(" ", "").toUpperCase(Locale.ROOT);
        if (hex.length() != 64 || !hex.chars().allMatch(c -> c >= '0' && c <= '9' || c >= 'A' && c <= 'F'))
        {
            throw new IllegalArgumentException("pinned fingerprint '" + fingerprint + "' is not a SHA-256 " +
                "fingerprint: expected 32 bytes as 64 hex digits (colons allowed)");
        }
        return HexFormat.ofDelimiter(":").withUpperCase().formatHex(HexFormat.of().parseHex(hex));
    }
}
