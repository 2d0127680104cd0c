package dev.tandem.examples;

import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.util.concurrent.Callable;

/**
 * {@code embed}: runs {@link EmbeddingExample}, the README's complete embedding program, from the jar.
 */
@Command(name = "embed", sortOptions = false, usageHelpWidth = 110,
    description = "Run the README's embedding program: a guest, a standby and an active over loopback TCP, five " +
        "committed epochs, a clean close.",
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {TandemExamples.EXIT_OK, TandemExamples.EXIT_FAILED, TandemExamples.EXIT_USAGE},
    mixinStandardHelpOptions = false)
final class EmbedCommand implements Callable<Integer>
{
    @Parameters(arity = "0..1", paramLabel = "DIR", defaultValue = "tandem-embedding",
        description = "where the guest's disk and the standby's files go (default ${DEFAULT-VALUE})")
    String dir;

    @picocli.CommandLine.Option(names = {"-h", "--help"}, usageHelp = true, description = "show this help")
    boolean help;

    @Override
    public Integer call() throws Exception
    {
        EmbeddingExample.main(new String[] {dir});
        return TandemExamples.OK;
    }
}
