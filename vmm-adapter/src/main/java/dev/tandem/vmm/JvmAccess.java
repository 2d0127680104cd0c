package dev.tandem.vmm;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Checks at start that the JVM grants the access Agrona and Chronicle Bytes need, and fails with the exact flags
 * to add when it does not, instead of an {@code IllegalAccessError} deep inside Agrona.
 * <p>
 * It lives here, in the SPI module that depends on Agrona alone, so that the one implementation serves every entry
 * point: the reference adapter ({@code SimulatedVmm.builder()}, its memory and disk) and {@code tandem-core}'s
 * {@code ActiveReplicator.launch} and {@code StandbyReplica.launch}. An adapter of a real VMM may call
 * {@link #check()} from its own entry points too.
 */
public final class JvmAccess
{
    /** Packages of java.base that must be exported to the unnamed module. */
    public static final List<String> EXPORTS = List.of("jdk.internal.misc", "jdk.internal.ref");
    /** Packages of java.base that must be opened to the unnamed module. */
    public static final List<String> OPENS = List.of("java.lang.reflect", "sun.nio.ch", "java.lang", "java.nio");

    private static volatile boolean granted;

    private JvmAccess()
    {
    }

    /**
     * @return the flags whose absence makes Agrona or Chronicle fail, empty when everything is granted.
     */
    public static List<String> missingFlags()
    {
        final Module base = Object.class.getModule();
        final Module self = JvmAccess.class.getModule();
        final List<String> missing = new ArrayList<>();
        for (final String pkg : EXPORTS)
        {
            if (!base.isExported(pkg, self))
            {
                missing.add("--add-exports=java.base/" + pkg + "=ALL-UNNAMED");
            }
        }
        for (final String pkg : OPENS)
        {
            if (!base.isOpen(pkg, self))
            {
                missing.add("--add-opens=java.base/" + pkg + "=ALL-UNNAMED");
            }
        }
        return missing;
    }

    /**
     * On JDK 24 and later the JVM only warns (for now) when these are missing; a jar manifest cannot carry
     * {@code --sun-misc-unsafe-memory-access}, so they are reported rather than enforced.
     *
     * @return the JDK 24+ flags missing from this JVM.
     */
    public static List<String> missingRecommendedFlags()
    {
        final List<String> missing = new ArrayList<>();
        final Module self = JvmAccess.class.getModule();
        if (Runtime.version().feature() >= 24)
        {
            if (!nativeAccessEnabled(self))
            {
                missing.add("--enable-native-access=ALL-UNNAMED");
            }
            final List<String> args = ManagementFactory.getRuntimeMXBean().getInputArguments();
            if (!args.contains("--sun-misc-unsafe-memory-access=allow"))
            {
                missing.add("--sun-misc-unsafe-memory-access=allow");
            }
        }
        return missing;
    }

    /**
     * Fails when a required flag is missing; silent about the JDK 24+ flags (see {@link #check(Consumer)}).
     *
     * @throws IllegalStateException listing every missing required flag.
     */
    public static void check()
    {
        check(null);
    }

    /**
     * Fails when a required flag is missing, and hands a warning naming any missing JDK 24+ flag to
     * {@code warning} (this module has no logging API: the caller logs it where its operators look).
     *
     * @param warning receives one line when JDK 24+ flags are missing; may be null to ignore them.
     * @throws IllegalStateException listing every missing required flag.
     */
    public static void check(final Consumer<String> warning)
    {
        if (warning != null)
        {
            final List<String> recommended = missingRecommendedFlags();
            if (!recommended.isEmpty())
            {
                warning.accept("JDK " + Runtime.version().feature() + " warns about Agrona's and Chronicle's use " +
                    "of Unsafe and native access; add: " + String.join(" ", recommended));
            }
        }
        if (granted)
        {
            return;
        }
        final List<String> missing = missingFlags();
        if (!missing.isEmpty())
        {
            throw new IllegalStateException("Tandem needs these JVM flags (Agrona and Chronicle Bytes use internal " +
                "JDK APIs); add them to the java command line, MAVEN_OPTS, surefire's argLine or the jar manifest: " +
                String.join(" ", missing));
        }
        // module access cannot be taken away once granted: ask once, then every entry point passes for free
        granted = true;
    }

    private static boolean nativeAccessEnabled(final Module module)
    {
        try
        {
            // Module.isNativeAccessEnabled() exists from JDK 22; this build targets 17
            return (Boolean)Module.class.getMethod("isNativeAccessEnabled").invoke(module);
        }
        catch (final ReflectiveOperationException ex)
        {
            return true;
        }
    }
}
