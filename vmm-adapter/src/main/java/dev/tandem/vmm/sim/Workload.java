package dev.tandem.vmm.sim;

/**
 * How a simulated vCPU chooses the pages it writes.
 */
public enum Workload
{
    /** Pages chosen uniformly over all of memory. */
    UNIFORM,
    /** 90 % of writes to a small hot set at the start of memory, the rest uniform. */
    HOTSET,
    /** Sweeps memory page after page. */
    SEQUENTIAL,
    /** No memory writes by the vCPU; devices may still write. */
    IDLE;

    /**
     * @param name case-insensitive name.
     * @return the workload.
     * @throws IllegalArgumentException naming the valid choices.
     */
    public static Workload parse(final String name)
    {
        for (final Workload workload : values())
        {
            if (workload.name().equalsIgnoreCase(name))
            {
                return workload;
            }
        }
        throw new IllegalArgumentException("unknown workload '" + name + "', expected one of uniform, hotset, sequential, idle");
    }
}
