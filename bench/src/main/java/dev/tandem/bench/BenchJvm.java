package dev.tandem.bench;

/**
 * The JVM access flags of the README, as constants for JMH's {@code @Fork(jvmArgsAppend = ...)}: forked benchmark
 * JVMs run from the class path, so the jar manifest's {@code Add-Opens}/{@code Add-Exports} do not reach them. The
 * JDK 24+ flags are added by {@code bench/run.sh} on those JDKs (JDK 17 refuses them).
 */
final class BenchJvm
{
    static final String EXPORT_MISC = "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED";
    static final String EXPORT_REF = "--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED";
    static final String OPEN_REFLECT = "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED";
    static final String OPEN_NIO_CH = "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED";
    static final String OPEN_LANG = "--add-opens=java.base/java.lang=ALL-UNNAMED";
    static final String OPEN_NIO = "--add-opens=java.base/java.nio=ALL-UNNAMED";

    private BenchJvm()
    {
    }
}
