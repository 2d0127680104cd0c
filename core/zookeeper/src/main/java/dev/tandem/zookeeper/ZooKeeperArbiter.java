package dev.tandem.zookeeper;

import dev.tandem.core.failover.PromotionArbiter;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.BackgroundCallback;
import org.apache.curator.framework.api.CuratorEvent;
import org.apache.curator.framework.imps.CuratorFrameworkState;
import org.apache.curator.retry.RetryUntilElapsed;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.common.PathUtils;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A {@link PromotionArbiter} for fleets: the generation of each VM lives in one ZooKeeper znode, and a claim is a
 * compare-and-set on that znode's version, so two standbys (or a standby and its active) that race for the same
 * generation are ordered by the ZooKeeper leader and exactly one of them wins.
 * <p>
 * Layout: VM {@code V} is the persistent znode {@code rootPath + "/" + escape(V)}, holding the highest claimed
 * generation as 8 bytes, a big-endian {@code long}:
 * <pre>
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                  generation, high 32 bits                     |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                  generation, low 32 bits                      |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * </pre>
 * {@code escape} keeps {@code A-Z a-z 0-9 . _ -} and writes every other UTF-8 byte as {@code %XX}, so any VM id,
 * including one with {@code /} or non-ASCII letters, is one safe znode name and two ids never share a znode.
 * <p>
 * Reachability: connection loss, session expiry, a ZooKeeper operation timeout, an interrupted caller and no answer
 * within the operation timeout all throw {@link UncheckedIOException} naming the ensemble and the VM. No call waits
 * much longer than the operation timeout. A claim returns true only when ZooKeeper confirmed this caller's write;
 * a write whose answer was lost may still have been applied: the generation then reads as claimed (by "someone")
 * on the next attempt and the caller moves on to the next generation. That costs a generation, never fencing.
 * <p>
 * Instances are thread-safe and keep no state besides the Curator client.
 */
public final class ZooKeeperArbiter implements PromotionArbiter, AutoCloseable
{
    private static final Logger LOG = LoggerFactory.getLogger(ZooKeeperArbiter.class);

    /**
     * Bytes of a generation in its znode.
     */
    public static final int GENERATION_LENGTH = Long.BYTES;

    private static final int MAX_RETRY_SLEEP_MS = 1_000;
    private static final int MIN_RETRY_SLEEP_MS = 10;

    private final CuratorFramework client;
    private final boolean ownsClient;
    private final String connectString;
    private final String rootPath;
    private final Duration operationTimeout;
    private final long operationTimeoutNs;
    private volatile boolean closed;

    /**
     * Connects to an ensemble with a Curator client of its own, closed by {@link #close()}. Returns at once: the
     * connection is made in the background, and a claim made before it is up waits for it at most the operation
     * timeout.
     *
     * @param connectString    the ensemble, {@code host:port[,host:port...]}, optionally with a chroot suffix.
     * @param rootPath         the znode under which each VM's generation is kept, e.g. {@code /tandem/generations};
     *                         created on first claim.
     * @param sessionTimeout   the ZooKeeper session timeout asked for (the servers may bound it).
     * @param operationTimeout how long one call of {@link #tryClaim} or {@link #currentGeneration} may take, retries
     *                         included, before it reports the arbiter unreachable.
     * @throws IllegalArgumentException if an argument is null, empty, not an absolute znode path or not positive.
     */
    public ZooKeeperArbiter(
        final String connectString,
        final String rootPath,
        final Duration sessionTimeout,
        final Duration operationTimeout)
    {
        this(connectString, rootPath, sessionTimeout, operationTimeout, ZooKeeperSecurity.none());
    }

    /**
     * As {@link #ZooKeeperArbiter(String, String, Duration, Duration)}, authenticating and protecting the znodes it
     * creates as {@code security} says: with a digest identity only that identity can change a generation.
     *
     * @param connectString    the ensemble, {@code host:port[,host:port...]} (the secure client port with TLS).
     * @param rootPath         the znode under which each VM's generation is kept; created on first claim with the
     *                         identity's ACL.
     * @param sessionTimeout   the ZooKeeper session timeout asked for.
     * @param operationTimeout how long one call may take, retries included.
     * @param security         authentication, ACLs and TLS; {@link ZooKeeperSecurity#none()} for none.
     * @throws IllegalArgumentException if an argument is invalid, naming it (never a password).
     */
    public ZooKeeperArbiter(
        final String connectString,
        final String rootPath,
        final Duration sessionTimeout,
        final Duration operationTimeout,
        final ZooKeeperSecurity security)
    {
        if (security == null)
        {
            throw new IllegalArgumentException("security must be set (ZooKeeperSecurity.none() for none)");
        }
        security.validate();
        if (connectString == null || connectString.isBlank())
        {
            throw new IllegalArgumentException("connectString must name at least one ZooKeeper server " +
                "(host:port[,host:port...]), got " + (connectString == null ? "null" : "'" + connectString + "'"));
        }
        this.rootPath = checkedRootPath(rootPath);
        final int sessionTimeoutMs = positiveMillis("sessionTimeout", sessionTimeout);
        final int operationTimeoutMs = positiveMillis("operationTimeout", operationTimeout);

        // Curator retries connection loss on its own; RetryUntilElapsed stops it at the operation timeout so that a
        // background retry does not outlive the call that started it by more than one sleep.
        final int retrySleepMs = Math.max(MIN_RETRY_SLEEP_MS, Math.min(MAX_RETRY_SLEEP_MS, operationTimeoutMs / 10));
        final java.util.List<org.apache.zookeeper.data.ACL> acls = security.acls();
        final CuratorFrameworkFactory.Builder builder = CuratorFrameworkFactory.builder()
            .connectString(connectString)
            .sessionTimeoutMs(sessionTimeoutMs)
            .connectionTimeoutMs(operationTimeoutMs)
            .retryPolicy(new RetryUntilElapsed(operationTimeoutMs, retrySleepMs))
            .zkClientConfig(security.clientConfig())
            // every znode created, the root path's missing parents included, gets the identity's ACL
            .aclProvider(new org.apache.curator.framework.api.ACLProvider()
            {
                @Override
                public java.util.List<org.apache.zookeeper.data.ACL> getDefaultAcl()
                {
                    return acls;
                }

                @Override
                public java.util.List<org.apache.zookeeper.data.ACL> getAclForPath(final String path)
                {
                    return acls;
                }
            });
        if (security.authenticates())
        {
            builder.authorization("digest", security.authBytes());
        }
        final CuratorFramework client = builder.build();
        client.start();

        this.client = client;
        this.ownsClient = true;
        this.connectString = connectString;
        this.operationTimeout = operationTimeout;
        this.operationTimeoutNs = operationTimeout.toNanos();
    }

    /**
     * Uses a Curator client the application already runs (its retry policy and timeouts apply); the arbiter never
     * closes it.
     *
     * @param client           a started Curator client.
     * @param rootPath         the znode under which each VM's generation is kept, e.g. {@code /tandem/generations};
     *                         relative to the client's namespace if it has one; created on first claim.
     * @param operationTimeout how long one call of {@link #tryClaim} or {@link #currentGeneration} may take before it
     *                         reports the arbiter unreachable.
     * @throws IllegalArgumentException if the client is null or not started, or another argument is invalid.
     */
    public ZooKeeperArbiter(final CuratorFramework client, final String rootPath, final Duration operationTimeout)
    {
        if (client == null)
        {
            throw new IllegalArgumentException("client must be a started CuratorFramework, got null");
        }
        if (client.getState() != CuratorFrameworkState.STARTED)
        {
            throw new IllegalArgumentException("client must be started (CuratorFramework.start()) before the " +
                "arbiter uses it; its state is " + client.getState());
        }
        this.rootPath = checkedRootPath(rootPath);
        positiveMillis("operationTimeout", operationTimeout);

        this.client = client;
        this.ownsClient = false;
        this.connectString = client.getZookeeperClient().getCurrentConnectionString();
        this.operationTimeout = operationTimeout;
        this.operationTimeoutNs = operationTimeout.toNanos();
    }

    /**
     * Claims a generation by compare-and-set on the VM's znode: read it with its version, refuse if it holds this
     * generation or a higher one, else write the new one on condition that the version is unchanged (or create the
     * znode if the VM has none yet). A lost race is answered by reading again, never by assuming a win.
     *
     * @param vmId       the guest; any non-empty string.
     * @param generation the generation wanted, at least 1.
     * @return true if ZooKeeper confirmed that this caller wrote {@code generation}; false if it or a higher one was
     * claimed already.
     * @throws UncheckedIOException     if ZooKeeper cannot be reached or does not answer within the operation
     *                                  timeout, or the VM's znode does not hold a generation.
     * @throws IllegalArgumentException if {@code vmId} is null or empty or {@code generation} is below 1.
     * @throws IllegalStateException    if the arbiter is closed.
     */
    @Override
    public boolean tryClaim(final String vmId, final long generation)
    {
        final String path = vmPath(vmId);
        if (generation < 1)
        {
            throw new IllegalArgumentException("generation must be at least 1 (generations start at 1 and only " +
                "grow), got " + generation + " for VM '" + vmId + "'");
        }
        checkOpen();
        final long deadlineNs = System.nanoTime() + operationTimeoutNs;
        final byte[] wanted = encode(generation);
        final String what = "claiming generation " + generation;

        // Every pass either returns or follows a write that lost to another claimant's; the deadline bounds it.
        while (true)
        {
            final CuratorEvent read = call(cb -> client.getData().inBackground(cb).forPath(path),
                deadlineNs, vmId, path, what);
            final KeeperException.Code readCode = resultOf(read);
            if (readCode == KeeperException.Code.OK)
            {
                final long stored = decode(read.getData(), vmId, path);
                if (stored >= generation)
                {
                    // A stale read (from a lagging follower) can only show a lower generation than the true one,
                    // so refusing on it is always right.
                    return false;
                }
                final int version = read.getStat().getVersion();
                final CuratorEvent write = call(
                    cb -> client.setData().withVersion(version).inBackground(cb).forPath(path, wanted),
                    deadlineNs, vmId, path, what);
                final KeeperException.Code writeCode = resultOf(write);
                if (writeCode == KeeperException.Code.OK)
                {
                    return true;
                }
                if (writeCode != KeeperException.Code.BADVERSION && writeCode != KeeperException.Code.NONODE)
                {
                    throw unreachable(what, vmId, path, writeCode);
                }
                // BADVERSION: another claim landed between our read and write (or our own earlier write whose answer
                // was lost); NONODE: an operator removed the znode. Either way, decide again on fresh data.
                LOG.debug("claim of generation {} of VM {} raced ({}), reading again", generation, vmId, writeCode);
            }
            else if (readCode == KeeperException.Code.NONODE)
            {
                final CuratorEvent create = call(
                    cb -> client.create().creatingParentsIfNeeded().withMode(CreateMode.PERSISTENT)
                        .inBackground(cb).forPath(path, wanted),
                    deadlineNs, vmId, path, what);
                final KeeperException.Code createCode = resultOf(create);
                if (createCode == KeeperException.Code.OK)
                {
                    return true;
                }
                if (createCode != KeeperException.Code.NODEEXISTS)
                {
                    throw unreachable(what, vmId, path, createCode);
                }
                LOG.debug("first claim of VM {} raced (NODEEXISTS), reading again", vmId);
            }
            else
            {
                throw unreachable(what, vmId, path, readCode);
            }
        }
    }

    /**
     * Reads the VM's generation after a ZooKeeper {@code sync}, so that the answer is at least as new as every claim
     * confirmed before this call started, even when the session is served by a lagging follower: an active learns
     * that it was fenced from this.
     *
     * @param vmId the guest; any non-empty string.
     * @return the highest generation claimed for the VM, 0 if none.
     * @throws UncheckedIOException     if ZooKeeper cannot be reached or does not answer within the operation
     *                                  timeout, or the VM's znode does not hold a generation.
     * @throws IllegalArgumentException if {@code vmId} is null or empty.
     * @throws IllegalStateException    if the arbiter is closed.
     */
    @Override
    public long currentGeneration(final String vmId)
    {
        final String path = vmPath(vmId);
        checkOpen();
        final long deadlineNs = System.nanoTime() + operationTimeoutNs;
        final String what = "reading the generation";

        final CuratorEvent sync = call(cb -> client.sync().inBackground(cb).forPath(path),
            deadlineNs, vmId, path, what);
        final KeeperException.Code syncCode = resultOf(sync);
        // sync of a missing znode is answered NONODE by some server versions: the read below says the same
        if (syncCode != KeeperException.Code.OK && syncCode != KeeperException.Code.NONODE)
        {
            throw unreachable(what, vmId, path, syncCode);
        }

        final CuratorEvent read = call(cb -> client.getData().inBackground(cb).forPath(path),
            deadlineNs, vmId, path, what);
        final KeeperException.Code readCode = resultOf(read);
        if (readCode == KeeperException.Code.OK)
        {
            return decode(read.getData(), vmId, path);
        }
        if (readCode == KeeperException.Code.NONODE)
        {
            return 0;
        }
        throw unreachable(what, vmId, path, readCode);
    }

    /**
     * @param vmId the guest; any non-empty string.
     * @return the znode that holds the VM's generation.
     * @throws IllegalArgumentException if {@code vmId} is null or empty or not well-formed UTF-16.
     */
    public String vmPath(final String vmId)
    {
        return rootPath + "/" + znodeName(vmId);
    }

    /**
     * @return the ensemble this arbiter talks to, as given or as the supplied client reported it.
     */
    public String connectString()
    {
        return connectString;
    }

    /**
     * @return the znode under which the VMs' generations are kept.
     */
    public String rootPath()
    {
        return rootPath;
    }

    /**
     * @return how long one call may take before it reports the arbiter unreachable.
     */
    public Duration operationTimeout()
    {
        return operationTimeout;
    }

    /**
     * Closes the Curator client if this arbiter created it; a supplied client stays open. Idempotent. Claims
     * confirmed before are kept by ZooKeeper: the znodes are persistent.
     */
    @Override
    public void close()
    {
        if (closed)
        {
            return;
        }
        closed = true;
        if (ownsClient)
        {
            client.close();
        }
    }

    /**
     * The znode name of a VM: {@code A-Z a-z 0-9 . _ -} kept, every other UTF-8 byte (including {@code %} and
     * {@code /}) as {@code %XX}; {@code "."} and {@code ".."}, which ZooKeeper refuses as names, get their dots
     * escaped. Percent-escaping decodes back to the id, so two ids never share a name.
     *
     * @param vmId the guest.
     * @return its znode name.
     * @throws IllegalArgumentException if {@code vmId} is null or empty or not well-formed UTF-16.
     */
    static String znodeName(final String vmId)
    {
        if (vmId == null || vmId.isEmpty())
        {
            throw new IllegalArgumentException("vmId must be a non-empty string, got " +
                (vmId == null ? "null" : "''"));
        }
        final ByteBuffer utf8;
        try
        {
            // a lone surrogate would silently become '?' with String.getBytes and could collide with a real '?'
            utf8 = StandardCharsets.UTF_8.newEncoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .encode(CharBuffer.wrap(vmId));
        }
        catch (final CharacterCodingException ex)
        {
            throw new IllegalArgumentException("vmId must be well-formed UTF-16 (it has an unpaired surrogate): " +
                vmId.codePoints().mapToObj(Integer::toHexString).toList(), ex);
        }
        final boolean dotsOnly = vmId.equals(".") || vmId.equals("..");
        final StringBuilder name = new StringBuilder(utf8.remaining() * 3);
        while (utf8.hasRemaining())
        {
            final int b = utf8.get() & 0xFF;
            if (isPlain(b) && !(dotsOnly && b == '.'))
            {
                name.append((char)b);
            }
            else
            {
                name.append('%')
                    .append(Character.toUpperCase(Character.forDigit(b >>> 4, 16)))
                    .append(Character.toUpperCase(Character.forDigit(b & 0xF, 16)));
            }
        }
        return name.toString();
    }

    private static boolean isPlain(final int b)
    {
        return (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') ||
            b == '.' || b == '_' || b == '-';
    }

    private static byte[] encode(final long generation)
    {
        return ByteBuffer.allocate(GENERATION_LENGTH).putLong(generation).array();
    }

    private long decode(final byte[] data, final String vmId, final String path)
    {
        if (data == null || data.length != GENERATION_LENGTH)
        {
            // Not ours to interpret: guessing could hand out a generation that was already claimed.
            throw new UncheckedIOException(new IOException("znode " + path + " of VM '" + vmId + "' at " +
                connectString + " holds " + (data == null ? "no data" : data.length + " bytes") + ", not an " +
                GENERATION_LENGTH + "-byte generation; no claim is made until an operator restores it"));
        }
        return ByteBuffer.wrap(data).getLong();
    }

    /**
     * One ZooKeeper operation, started in the background and waited for until the deadline: a synchronous Curator
     * call could block for the ZooKeeper client's own read timeout (2/3 of the session timeout), past ours.
     */
    private CuratorEvent call(
        final Operation operation,
        final long deadlineNs,
        final String vmId,
        final String path,
        final String what)
    {
        final long remainingNs = deadlineNs - System.nanoTime();
        if (remainingNs <= 0)
        {
            throw timedOut(what, vmId, path, null);
        }
        final CompletableFuture<CuratorEvent> answer = new CompletableFuture<>();
        try
        {
            operation.start((ignore, event) -> answer.complete(event));
        }
        catch (final Exception ex)
        {
            if (closed)
            {
                throw new IllegalStateException("ZooKeeper arbiter at " + connectString + " is closed", ex);
            }
            throw new UncheckedIOException(message(what, vmId, path, "could not start the operation: " + ex),
                ex instanceof IOException ? (IOException)ex : new IOException(ex));
        }
        try
        {
            return answer.get(remainingNs, TimeUnit.NANOSECONDS);
        }
        catch (final TimeoutException ex)
        {
            throw timedOut(what, vmId, path, ex);
        }
        catch (final InterruptedException ex)
        {
            // keep the interrupt for the caller's own loop; the write, if sent, is not known to have happened
            Thread.currentThread().interrupt();
            final InterruptedIOException cause = new InterruptedIOException("interrupted");
            cause.initCause(ex);
            throw new UncheckedIOException(message(what, vmId, path, "interrupted while waiting for ZooKeeper"),
                cause);
        }
        catch (final ExecutionException ex)
        {
            throw new UncheckedIOException(message(what, vmId, path, "failed: " + ex.getCause()),
                new IOException(ex.getCause()));
        }
    }

    /**
     * The event's result; a code this ZooKeeper client does not know (a newer server's) counts as a system error,
     * which every caller treats as "unreachable".
     */
    private static KeeperException.Code resultOf(final CuratorEvent event)
    {
        final KeeperException.Code code = KeeperException.Code.get(event.getResultCode());
        return code != null ? code : KeeperException.Code.SYSTEMERROR;
    }

    private UncheckedIOException timedOut(
        final String what, final String vmId, final String path, final TimeoutException cause)
    {
        final IOException io = new IOException("no answer within " + operationTimeout.toMillis() + " ms");
        if (cause != null)
        {
            io.initCause(cause);
        }
        return new UncheckedIOException(message(what, vmId, path,
            "no answer within the operation timeout of " + operationTimeout.toMillis() + " ms (ZooKeeper " +
            "unreachable, or the znode contended past the timeout)"), io);
    }

    private UncheckedIOException unreachable(
        final String what, final String vmId, final String path, final KeeperException.Code code)
    {
        if (code == KeeperException.Code.NOAUTH)
        {
            // reachable, but this identity may not change the znode: a misconfiguration, not an outage
            return new UncheckedIOException("ZooKeeper arbiter at " + connectString + " refused " + what + " of VM '" +
                vmId + "' (" + path + "): NOAUTH, the znode's ACL does not let this client's identity change it " +
                "(configure ZooKeeperSecurity.digest with Tandem's identity); nothing was claimed",
                new IOException(KeeperException.create(code, path)));
        }
        final KeeperException cause = KeeperException.create(code, path);
        return new UncheckedIOException(message(what, vmId, path, "ZooKeeper answered " + code), new IOException(
            cause));
    }

    private String message(final String what, final String vmId, final String path, final String detail)
    {
        return "ZooKeeper arbiter at " + connectString + " unreachable while " + what + " of VM '" + vmId + "' (" +
            path + "): " + detail + "; nothing was claimed by this call unless a later read shows it";
    }

    private void checkOpen()
    {
        if (closed)
        {
            throw new IllegalStateException("ZooKeeper arbiter at " + connectString + " is closed");
        }
    }

    private static String checkedRootPath(final String rootPath)
    {
        if (rootPath == null || !rootPath.startsWith("/"))
        {
            throw new IllegalArgumentException("rootPath must be an absolute znode path starting with '/', e.g. " +
                "/tandem/generations, got " + (rootPath == null ? "null" : "'" + rootPath + "'"));
        }
        if (rootPath.equals("/"))
        {
            throw new IllegalArgumentException("rootPath must not be '/': give the arbiter a znode of its own, " +
                "e.g. /tandem/generations");
        }
        try
        {
            PathUtils.validatePath(rootPath);
        }
        catch (final IllegalArgumentException ex)
        {
            throw new IllegalArgumentException("rootPath '" + rootPath + "' is not a valid znode path: " +
                ex.getMessage(), ex);
        }
        return rootPath;
    }

    private static int positiveMillis(final String name, final Duration duration)
    {
        if (duration == null || duration.isNegative() || duration.isZero())
        {
            throw new IllegalArgumentException(name + " must be a positive duration, got " + duration);
        }
        // Curator takes int milliseconds; compared as Durations so that a huge one cannot overflow toMillis()
        if (duration.compareTo(Duration.ofMillis(1)) < 0 ||
            duration.compareTo(Duration.ofMillis(Integer.MAX_VALUE)) > 0)
        {
            throw new IllegalArgumentException(name + " must be between 1 ms and " + Integer.MAX_VALUE +
                " ms, got " + duration);
        }
        return (int)duration.toMillis();
    }

    @FunctionalInterface
    private interface Operation
    {
        void start(BackgroundCallback callback) throws Exception;
    }
}
