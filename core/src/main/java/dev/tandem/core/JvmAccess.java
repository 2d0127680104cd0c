package dev.tandem.core;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;

/**
 * Checks at start that the JVM grants the access Agrona and Chronicle Bytes need, and fails with the exact flags
 * to add when it does not, instead of an {@code IllegalAccessError} deep inside a checkpoint.
 */
public final class JvmAccess
{
    /** Packages of java.base that must be exported to the unnamed module. */
    public static final List<String> EXPORTS = List.of("jdk.internal.misc", "jdk.internal.ref");
    /** Packages of java.base that must be opened to the unnamed module. */
    public static final List<String> OPENS = List.of("java.lang.reflect", "sun.nio.ch", "java.lang", "java.nio");

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
     * Fails when a required flag is missing and logs a warning naming any missing JDK 24+ flag.
     *
     * @throws IllegalStateException listing every missing required flag.
     */
    public static void check()
    {
        final List<String> recommended = missingRecommendedFlags();
        if (!recommended.isEmpty())
        {
            org.slf4j.LoggerFactory.getLogger(JvmAccess.class).warn(
                "JDK {} warns about Agrona's and Chronicle's use of Unsafe and native access; add: {}",
                Runtime.version().feature(), String.join(" ", recommended));
        }
        final List<String> missing = missingFlags();
        if (!missing.isEmpty())
        {
            throw new IllegalStateException("Tandem needs these JVM flags (Agrona and Chronicle Bytes use internal " +
                "JDK APIs); add them to the java command line or the jar manifest: " + String.join(" ", missing));
        }
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
