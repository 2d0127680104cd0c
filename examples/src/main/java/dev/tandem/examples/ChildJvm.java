package dev.tandem.examples;

import dev.tandem.vmm.JvmAccess;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Command lines for child JVMs running a class of this module with the JVM access the library needs.
 */
public final class ChildJvm
{
    private ChildJvm()
    {
    }

    /**
     * @param heap      {@code -Xmx} value, e.g. {@code "512m"}.
     * @param mainClass class to run.
     * @param args      its arguments.
     * @return the command line, with this JVM's java binary and class path.
     */
    public static List<String> command(final String heap, final Class<?> mainClass, final List<String> args)
    {
        return command(heap, null, mainClass, args);
    }

    /**
     * @param heap      {@code -Xmx} value, e.g. {@code "512m"}.
     * @param tmpDir    the child's {@code java.io.tmpdir}, or null for the default. Native libraries the child
     *                  extracts (lz4-java's {@code liblz4-java-*.so}) land there: a killed child never deletes its
     *                  copy, so a directory the caller removes is the only place they do not pile up.
     * @param mainClass class to run.
     * @param args      its arguments.
     * @return the command line, with this JVM's java binary and class path.
     */
    public static List<String> command(final String heap, final Path tmpDir, final Class<?> mainClass,
        final List<String> args)
    {
        final List<String> command = new ArrayList<>();
        command.add(ProcessHandle.current().info().command().orElse("java"));
        command.add("-Xmx" + heap);
        for (final String pkg : JvmAccess.EXPORTS)
        {
            command.add("--add-exports=java.base/" + pkg + "=ALL-UNNAMED");
        }
        for (final String pkg : JvmAccess.OPENS)
        {
            command.add("--add-opens=java.base/" + pkg + "=ALL-UNNAMED");
        }
        if (Runtime.version().feature() >= 24)
        {
            command.add("--enable-native-access=ALL-UNNAMED");
            command.add("--sun-misc-unsafe-memory-access=allow");
        }
        if (tmpDir != null)
        {
            command.add("-Djava.io.tmpdir=" + tmpDir);
        }
        command.add("-Dorg.slf4j.simpleLogger.showDateTime=true");
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(mainClass.getName());
        command.addAll(args);
        return command;
    }
}
