package dev.tandem.vmm;

/**
 * An adapter failed in one phase of the checkpoint cycle; the message says what failed and what to do.
 */
public class VmmAdapterException extends RuntimeException
{
    private static final long serialVersionUID = 1L;

    /**
     * The phase of the cycle that failed.
     */
    public enum Phase
    {
        /** pausing or resuming the guest. */
        PAUSE,
        /** harvesting the dirty log. */
        DIRTY_LOG,
        /** saving component state or reading memory. */
        SNAPSHOT,
        /** building a guest from a recovery point. */
        RESTORE,
        /** disk or network I/O of the guest. */
        IO
    }

    private final Phase phase;

    /**
     * @param phase   the phase that failed.
     * @param message what failed and what to do.
     */
    public VmmAdapterException(final Phase phase, final String message)
    {
        super(phase + ": " + message);
        this.phase = phase;
    }

    /**
     * @param phase   the phase that failed.
     * @param message what failed and what to do.
     * @param cause   the underlying failure.
     */
    public VmmAdapterException(final Phase phase, final String message, final Throwable cause)
    {
        super(phase + ": " + message, cause);
        this.phase = phase;
    }

    /**
     * @return the phase that failed.
     */
    public Phase phase()
    {
        return phase;
    }
}
