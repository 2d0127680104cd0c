package dev.tandem.core.metrics;

import org.agrona.IoUtil;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.status.CountersManager;
import org.agrona.concurrent.status.CountersReader;

import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * The memory-mapped counters file of one process: Agrona counters (a {@link CountersManager}'s metadata and values
 * buffers) behind a small header, so that an outside tool ({@code tandem-examples.jar stat}) can read them while the
 * process runs, as Aeron's {@code AeronStat} reads the CnC file.
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +---------------------------------------------------------------+
 * |                  Magic "TNDMCTRS" (8 bytes, LE)               |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                           Version                             |
 * +---------------------------------------------------------------+
 * |                       Metadata Length                         |
 * +---------------------------------------------------------------+
 * |                         Values Length                         |
 * +---------------------------------------------------------------+
 * |                           Reserved                            |
 * +---------------------------------------------------------------+
 * |                          PID (8 bytes)                        |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |              Start Time (ms since the epoch, 8 bytes)         |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                  Reserved up to HEADER_LENGTH                ...
 * +---------------------------------------------------------------+
 * |                 Metadata Buffer (Metadata Length)            ...
 * +---------------------------------------------------------------+
 * |                   Values Buffer (Values Length)              ...
 * +---------------------------------------------------------------+
 * </pre>
 * Everything is little-endian. The writer fills the header and writes the magic last (release), so a reader that
 * sees the magic sees the whole header. Each counter's key ({@link CounterType#writeKey}) carries the role and VM
 * id; its label reads {@code <role> <vmId>: <what>}.
 * <p>
 * A file is named {@code <pid>.counters}; {@link #defaultDirectory()} is where processes put it unless told
 * otherwise. {@link ProcessCounters} owns the writing side; {@link #openReadOnly(Path)} is the reading side.
 */
public final class CountersFile implements AutoCloseable
{
    /** The first 8 bytes of every counters file: "TNDMCTRS" in ASCII, read as a little-endian long. */
    public static final long MAGIC = 0x535254434D444E54L;
    /** Version of this layout. */
    public static final int VERSION = 1;
    /** Bytes before the metadata buffer (two cache lines). */
    public static final int HEADER_LENGTH = 128;
    /** Offset of the version. */
    public static final int VERSION_OFFSET = 8;
    /** Offset of the metadata buffer's length. */
    public static final int METADATA_LENGTH_OFFSET = 12;
    /** Offset of the values buffer's length. */
    public static final int VALUES_LENGTH_OFFSET = 16;
    /** Offset of the writer's process id. */
    public static final int PID_OFFSET = 24;
    /** Offset of the writer's start time. */
    public static final int START_TIME_OFFSET = 32;
    /** File name suffix. */
    public static final String SUFFIX = ".counters";
    /** System property naming the directory of counters files (default {@link #defaultDirectory()}). */
    public static final String DIRECTORY_PROP_NAME = "tandem.counters.dir";
    /** Counters one file holds by default: room for about 15 actives or 30 standbys in one process. */
    public static final int CAPACITY_DEFAULT = 512;

    private final Path file;
    private final MappedByteBuffer mapped;
    private final UnsafeBuffer header;
    private final UnsafeBuffer metadata;
    private final UnsafeBuffer values;
    private boolean closed;

    private CountersFile(final Path file, final MappedByteBuffer mapped, final int metadataLength,
        final int valuesLength)
    {
        this.file = file;
        this.mapped = mapped;
        this.header = new UnsafeBuffer(mapped, 0, HEADER_LENGTH);
        this.metadata = new UnsafeBuffer(mapped, HEADER_LENGTH, metadataLength);
        this.values = new UnsafeBuffer(mapped, HEADER_LENGTH + metadataLength, valuesLength);
    }

    /**
     * @return {@code <tandem.counters.dir>} if that system property is set, else
     *         {@code <java.io.tmpdir>/tandem-<user.name>}.
     */
    public static Path defaultDirectory()
    {
        final String configured = System.getProperty(DIRECTORY_PROP_NAME);
        if (configured != null && !configured.isBlank())
        {
            return Path.of(configured);
        }
        return Path.of(System.getProperty("java.io.tmpdir"), "tandem-" + System.getProperty("user.name", "user"));
    }

    /**
     * @param directory where counters files are.
     * @param pid       a process id.
     * @return the file of that process in that directory.
     */
    public static Path fileOf(final Path directory, final long pid)
    {
        return directory.resolve(pid + SUFFIX);
    }

    /**
     * @param file a counters file.
     * @return the process id its name carries, or -1 if the name is not {@code <pid>.counters}.
     */
    public static long pidOfName(final Path file)
    {
        final String name = file.getFileName().toString();
        if (!name.endsWith(SUFFIX) || name.length() == SUFFIX.length())
        {
            return -1;
        }
        try
        {
            return Long.parseLong(name.substring(0, name.length() - SUFFIX.length()));
        }
        catch (final NumberFormatException ex)
        {
            return -1;
        }
    }

    /**
     * Creates (or replaces) a counters file and maps it read-write, zeroed, header written.
     *
     * @param file        the file to create; its directory is created if missing.
     * @param pid         the writing process.
     * @param startTimeMs when it started, ms since the epoch.
     * @param capacity    counters it can hold.
     * @return the mapped file; {@link #close()} unmaps it (it does not delete it).
     * @throws IOException if the file cannot be created or mapped, naming it.
     */
    public static CountersFile create(final Path file, final long pid, final long startTimeMs, final int capacity)
        throws IOException
    {
        if (capacity < 1)
        {
            throw new IllegalArgumentException("counters capacity must be positive: " + capacity);
        }
        final int metadataLength = capacity * CountersReader.METADATA_LENGTH;
        final int valuesLength = capacity * CountersReader.COUNTER_LENGTH;
        final MappedByteBuffer mapped;
        try
        {
            final Path parent = file.toAbsolutePath().getParent();
            if (parent != null)
            {
                Files.createDirectories(parent);
            }
            // a file of a dead process that had this pid: start from nothing, never from its counters
            Files.deleteIfExists(file);
            mapped = IoUtil.mapNewFile(file.toFile(), (long)HEADER_LENGTH + metadataLength + valuesLength, true);
        }
        catch (final IOException | RuntimeException ex)
        {
            throw new IOException("cannot create the counters file " + file + ": " + ex.getMessage(), ex);
        }
        final CountersFile created = new CountersFile(file, mapped, metadataLength, valuesLength);
        final UnsafeBuffer header = created.header;
        header.putInt(VERSION_OFFSET, VERSION, ByteOrder.LITTLE_ENDIAN);
        header.putInt(METADATA_LENGTH_OFFSET, metadataLength, ByteOrder.LITTLE_ENDIAN);
        header.putInt(VALUES_LENGTH_OFFSET, valuesLength, ByteOrder.LITTLE_ENDIAN);
        header.putLong(PID_OFFSET, pid, ByteOrder.LITTLE_ENDIAN);
        header.putLong(START_TIME_OFFSET, startTimeMs, ByteOrder.LITTLE_ENDIAN);
        // last, and ordered: a reader that sees the magic sees the lengths
        header.putLongRelease(0, ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN ? MAGIC : Long.reverseBytes(MAGIC));
        return created;
    }

    /**
     * Maps an existing counters file for reading and checks its header.
     *
     * @param file the file, e.g. {@code /tmp/tandem-alice/4711.counters}.
     * @return the mapped file; close it to unmap.
     * @throws IOException if the file is missing, unreadable, not a counters file (bad magic), of another version,
     *                     or shorter than its header says; the message names the file.
     */
    public static CountersFile openReadOnly(final Path file) throws IOException
    {
        final long size;
        try
        {
            size = Files.size(file);
        }
        catch (final NoSuchFileException ex)
        {
            throw new IOException(file + ": no such counters file", ex);
        }
        if (size < HEADER_LENGTH)
        {
            throw new IOException(file + ": not a Tandem counters file (" + size + " bytes, shorter than the " +
                HEADER_LENGTH + "-byte header)");
        }
        final MappedByteBuffer mapped;
        try
        {
            mapped = IoUtil.mapExistingFile(file.toFile(), FileChannel.MapMode.READ_ONLY, "counters file " + file);
        }
        catch (final RuntimeException ex)
        {
            throw new IOException(file + ": cannot map the counters file: " + ex.getMessage(), ex);
        }
        try
        {
            final UnsafeBuffer header = new UnsafeBuffer(mapped, 0, HEADER_LENGTH);
            final long magic = header.getLongVolatile(0);
            final long expected = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN ? MAGIC : Long.reverseBytes(MAGIC);
            if (magic != expected)
            {
                throw new IOException(file + ": not a Tandem counters file (bad magic 0x" + Long.toHexString(magic) +
                    (magic == 0 ? ", or still being created" : "") + ")");
            }
            final int version = header.getInt(VERSION_OFFSET, ByteOrder.LITTLE_ENDIAN);
            if (version != VERSION)
            {
                throw new IOException(file + ": counters file version " + version + ", this reader knows " +
                    VERSION);
            }
            final int metadataLength = header.getInt(METADATA_LENGTH_OFFSET, ByteOrder.LITTLE_ENDIAN);
            final int valuesLength = header.getInt(VALUES_LENGTH_OFFSET, ByteOrder.LITTLE_ENDIAN);
            if (metadataLength <= 0 || valuesLength <= 0 ||
                metadataLength % CountersReader.METADATA_LENGTH != 0 ||
                (long)metadataLength / CountersReader.METADATA_LENGTH * CountersReader.COUNTER_LENGTH != valuesLength ||
                (long)HEADER_LENGTH + metadataLength + valuesLength > size)
            {
                throw new IOException(file + ": corrupt counters file header (metadata " + metadataLength +
                    " bytes, values " + valuesLength + " bytes, file " + size + " bytes)");
            }
            return new CountersFile(file, mapped, metadataLength, valuesLength);
        }
        catch (final IOException | RuntimeException ex)
        {
            IoUtil.unmap(mapped);
            throw ex;
        }
    }

    /**
     * @return the file.
     */
    public Path file()
    {
        return file;
    }

    /**
     * @return the process id of the writer, from the header.
     */
    public long pid()
    {
        return header.getLong(PID_OFFSET, ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * @return when the writer created the file, ms since the epoch.
     */
    public long startTimeMs()
    {
        return header.getLong(START_TIME_OFFSET, ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * @return a reader of the counters (valid until {@link #close()}).
     */
    public CountersReader reader()
    {
        return new CountersReader(metadata, values, StandardCharsets.UTF_8);
    }

    /**
     * @return a manager allocating counters in this file; single-threaded, as Agrona's is (for the writer).
     */
    CountersManager manager()
    {
        return new CountersManager(metadata, values, StandardCharsets.UTF_8);
    }

    /**
     * Unmaps the file; idempotent. Nothing read from it may be used afterwards.
     */
    @Override
    public void close()
    {
        if (!closed)
        {
            closed = true;
            IoUtil.unmap(mapped);
        }
    }

    /**
     * @return whether {@link #close()} unmapped the file.
     */
    public boolean isClosed()
    {
        return closed;
    }
}
