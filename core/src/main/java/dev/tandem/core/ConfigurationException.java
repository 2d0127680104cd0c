package dev.tandem.core;

/**
 * A configuration value is missing or out of range; thrown once, at start, naming the setting and its bounds.
 */
public final class ConfigurationException extends IllegalArgumentException
{
    private static final long serialVersionUID = 1L;

    /**
     * @param message the setting, its value and what it must be.
     */
    public ConfigurationException(final String message)
    {
        super(message);
    }

    /**
     * Checks a numeric setting against its bounds.
     *
     * @param name  name of the setting as its accessor is called.
     * @param value the value.
     * @param min   smallest valid value.
     * @param max   largest valid value.
     * @return the value.
     * @throws ConfigurationException naming the setting and its bounds.
     */
    public static long checkRange(final String name, final long value, final long min, final long max)
    {
        if (value < min || value > max)
        {
            throw new ConfigurationException(name + " = " + value + " is outside [" + min + ", " + max + "]");
        }
        return value;
    }

    /**
     * @param name  name of the setting.
     * @param value the value.
     * @param <T>   its type.
     * @return the value.
     * @throws ConfigurationException if null.
     */
    public static <T> T checkSet(final String name, final T value)
    {
        if (value == null)
        {
            throw new ConfigurationException(name + " must be set");
        }
        return value;
    }

    /**
     * Checks a VM identity against what the handshake carries: its UTF-8 bytes, not its characters, count.
     *
     * @param vmId the identity.
     * @return the identity.
     * @throws ConfigurationException if null, empty or over {@link dev.tandem.vmm.VmmAdapter#MAX_VM_ID_BYTES} bytes,
     *                                saying how many bytes it has.
     */
    public static String checkVmId(final String vmId)
    {
        checkSet("vmId", vmId);
        final int bytes = vmId.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
        if (bytes == 0 || bytes > dev.tandem.vmm.VmmAdapter.MAX_VM_ID_BYTES)
        {
            throw new ConfigurationException("vmId '" + (vmId.length() > 40 ? vmId.substring(0, 40) + "..." : vmId) +
                "' is " + bytes + " bytes in UTF-8 (" + vmId.length() + " chars); it must be 1 to " +
                dev.tandem.vmm.VmmAdapter.MAX_VM_ID_BYTES + " bytes");
        }
        return vmId;
    }
}
