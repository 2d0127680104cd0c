package dev.tandem.examples.bank;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Instant;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

/**
 * The bank's client: sends transfers with consecutive sequence numbers, at most {@code window} unanswered, and
 * logs every reply it sees. When the connection breaks it moves to the next address (the standby's) and resends
 * everything unanswered from the lowest; the guest answers resends from its ledger. With a reply timeout, the
 * first address going silent counts as broken too: a partitioned active neither answers nor closes.
 * <p>
 * Log lines: {@code reply seq status balanceFrom balanceTo}, {@code silent epochMicros} (the first address went
 * silent), {@code reconnected epochMicros}, {@code first-reply epochMicros} (the first reply after a reconnect),
 * {@code done}. Instants are wall-clock microseconds, the clock the failover harness times everything with.
 */
public final class BankClient
{
    private final String[] addresses;
    private final int transfers;
    private final int accounts;
    private final int window;
    private final SplittableRandom random;
    private final PrintStream log;
    private final int replyTimeoutMs;
    private volatile long stopIssuingMillis = Long.MAX_VALUE;
    private long limit;

    /**
     * @param addresses {@code host:port} of the active's client port, then the standby's.
     * @param transfers the most transfers to make.
     * @param accounts  accounts of the bank.
     * @param window    requests in flight.
     * @param seed      seed of the transfers.
     * @param log       where replies are logged (flushed per line).
     */
    public BankClient(final String[] addresses, final int transfers, final int accounts, final int window,
        final long seed, final PrintStream log)
    {
        this(addresses, transfers, accounts, window, seed, log, 0);
    }

    /**
     * @param addresses      {@code host:port} of the active's client port, then the standby's.
     * @param transfers      the most transfers to make.
     * @param accounts       accounts of the bank.
     * @param window         requests in flight.
     * @param seed           seed of the transfers.
     * @param log            where replies are logged (flushed per line).
     * @param replyTimeoutMs silence of the first address after which the client moves on; 0 waits for ever. Later
     *                       addresses are waited for without limit: a standby answers only once it has promoted,
     *                       and leaving it early would strand requests it reads later from the abandoned connection.
     */
    public BankClient(final String[] addresses, final int transfers, final int accounts, final int window,
        final long seed, final PrintStream log, final int replyTimeoutMs)
    {
        if (replyTimeoutMs < 0)
        {
            throw new IllegalArgumentException("reply timeout must not be negative: " + replyTimeoutMs);
        }
        this.replyTimeoutMs = replyTimeoutMs;
        this.addresses = addresses;
        this.transfers = transfers;
        this.accounts = accounts;
        this.window = window;
        this.random = new SplittableRandom(seed);
        this.log = log;
    }

    /**
     * Runs until every transfer has a reply, or the deadline passes.
     *
     * @param stopIssuingMillis wall-clock time after which no new transfer starts (those in flight finish).
     * @param deadlineMillis    wall-clock deadline.
     * @return the number of transfers answered.
     * @throws InterruptedException if interrupted.
     */
    public long run(final long stopIssuingMillis, final long deadlineMillis) throws InterruptedException
    {
        // an earlier stopIssuing() stands
        this.stopIssuingMillis = Math.min(this.stopIssuingMillis, stopIssuingMillis);
        final long[][] requests = new long[transfers + 1][];
        for (int seq = 1; seq <= transfers; seq++)
        {
            final int from = random.nextInt(accounts);
            int to = random.nextInt(accounts - 1);
            to = to >= from ? to + 1 : to;
            requests[seq] = new long[] {from, to, 1 + random.nextInt(200)};
        }
        long answered = 0;
        int target = 0;
        boolean reconnected = false;
        limit = transfers;
        while (answered < limit && System.currentTimeMillis() < deadlineMillis)
        {
            try (Socket socket = connect(addresses[target], deadlineMillis))
            {
                if (socket == null)
                {
                    // a host that is gone before the client ever reached it (a client slow to start): the next
                    // address's first reply is the first after the failover all the same
                    target = (target + 1) % addresses.length;
                    reconnected = true;
                    continue;
                }
                if (reconnected)
                {
                    log.println("reconnected " + micros());
                }
                if (target == 0 && replyTimeoutMs > 0)
                {
                    socket.setSoTimeout(replyTimeoutMs);
                }
                answered = exchange(socket, requests, answered, reconnected, deadlineMillis);
            }
            catch (final SocketTimeoutException ex)
            {
                log.println("silent " + micros());
                target = (target + 1) % addresses.length;
                reconnected = true;
            }
            catch (final IOException ex)
            {
                // the host died or the connection broke: the next address is the standby
                target = (target + 1) % addresses.length;
                reconnected = true;
            }
        }
        log.println(answered == limit ? "done " + answered : "incomplete " + answered + " of " + limit);
        return answered;
    }

    /**
     * Starts no new transfer from now on; those in flight finish. Callable from any thread, also before
     * {@link #run}.
     */
    public void stopIssuing()
    {
        stopIssuingMillis = Math.min(stopIssuingMillis, System.currentTimeMillis());
    }

    private long exchange(final Socket socket, final long[][] requests, final long answeredBefore,
        final boolean afterReconnect, final long deadlineMillis) throws IOException
    {
        final DataOutputStream out = new DataOutputStream(socket.getOutputStream());
        final DataInputStream in = new DataInputStream(socket.getInputStream());
        final ByteBuffer request = ByteBuffer.allocate(BankProgram.REQUEST_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        final ByteBuffer reply = ByteBuffer.allocate(BankProgram.REPLY_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        long answered = answeredBefore;
        long sent = answered;
        boolean firstReply = afterReconnect;
        while (answered < limit && System.currentTimeMillis() < deadlineMillis)
        {
            if (limit == transfers && System.currentTimeMillis() >= stopIssuingMillis)
            {
                // time is up: finish what is in flight, start nothing new
                limit = Math.max(answered, sent);
            }
            while (sent < limit && sent - answered < window)
            {
                final long seq = ++sent;
                request.clear();
                request.putInt(BankProgram.REQUEST).putInt(0).putLong(seq).putInt((int)requests[(int)seq][0])
                    .putInt((int)requests[(int)seq][1]).putLong(requests[(int)seq][2]);
                out.write(request.array());
            }
            out.flush();
            in.readFully(reply.array());
            if (firstReply)
            {
                log.println("first-reply " + micros());
                firstReply = false;
            }
            final int status = reply.getInt(4);
            final long seq = reply.getLong(8);
            if (status == BankProgram.OUT_OF_ORDER || seq != answered + 1)
            {
                throw new IllegalStateException("reply for " + seq + " (status " + status + ") while waiting for " +
                    (answered + 1));
            }
            log.println("reply " + seq + " " + status + " " + reply.getLong(16) + " " + reply.getLong(24));
            answered = seq;
        }
        return answered;
    }

    private static long micros()
    {
        final Instant now = Instant.now();
        return now.getEpochSecond() * 1_000_000L + now.getNano() / 1000;
    }

    /** Between two connect attempts to a host that refuses (its guest not running yet). */
    static final long RETRY_MS = 2;

    private static Socket connect(final String address, final long deadlineMillis) throws InterruptedException
    {
        final int colon = address.lastIndexOf(':');
        // a host that does not answer within half a second is given up for the next address
        final long giveUp = Math.min(deadlineMillis, System.currentTimeMillis() + 500);
        while (System.currentTimeMillis() < giveUp)
        {
            final Socket socket = new Socket();
            try
            {
                socket.setTcpNoDelay(true);
                socket.connect(new InetSocketAddress(address.substring(0, colon),
                    Integer.parseInt(address.substring(colon + 1))), 1000);
                return socket;
            }
            catch (final IOException ex)
            {
                try
                {
                    socket.close();
                }
                catch (final IOException ignore)
                {
                    // nothing was opened
                }
                // a refused connect on loopback costs microseconds: retrying every 2 ms (not 20) keeps the client's
                // own retry timer out of the measured recovery time (up to 20 ms of it before, 10 on average)
                Thread.sleep(RETRY_MS);
            }
        }
        return null;
    }
}
