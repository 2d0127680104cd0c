package dev.tandem.examples.bank;

import dev.tandem.vmm.sim.GuestProgram;
import dev.tandem.vmm.sim.SimulatedGuestMemory;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * The failover harness's guest: a small bank. Balances live in guest memory, every transfer (applied or refused)
 * is appended to a ledger on the guest's disk, and the reply goes out through the NIC, so it leaves the host only
 * once the checkpoint holding the transfer is committed on the standby.
 * <p>
 * Requests carry consecutive sequence numbers; a request already handled (the client resends after a failover) is
 * answered again from the ledger with its original outcome, so no transfer is applied twice and no reply is ever
 * contradicted. All state is in guest memory and on disk.
 * <pre>
 *  memory page 0: magic, accounts, lastSeq, applied, refused       pages 1..: balance[account] (int64)
 *  disk block seq-1 (512 bytes): seq, from, to, amount, status, balanceFrom, balanceTo
 *  request (32 bytes): type=1:int32 0:int32 seq:int64 from:int32 to:int32 amount:int64
 *  reply   (40 bytes): type=2:int32 status:int32 seq:int64 balanceFrom:int64 balanceTo:int64 0:int64
 * </pre>
 */
public final class BankProgram implements GuestProgram
{
    /** Request frame type. */
    public static final int REQUEST = 1;
    /** Reply frame type. */
    public static final int REPLY = 2;
    /** Request length. */
    public static final int REQUEST_BYTES = 32;
    /** Reply length. */
    public static final int REPLY_BYTES = 40;
    /** The transfer was applied. */
    public static final int APPLIED = 1;
    /** The transfer was refused (insufficient funds or unknown account). */
    public static final int REFUSED = 2;
    /** The request's sequence number skipped ahead; nothing was done. */
    public static final int OUT_OF_ORDER = 3;
    /** Ledger record size. */
    public static final int LEDGER_RECORD = 512;

    private static final long MAGIC = 0x4B4E41424D444E54L;
    private static final int PAGE = 4096;

    private final int accounts;
    private final long initialBalance;
    private final UnsafeBuffer record = new UnsafeBuffer(new byte[LEDGER_RECORD]);
    private final UnsafeBuffer reply = new UnsafeBuffer(new byte[REPLY_BYTES]);

    /**
     * @param accounts       number of accounts.
     * @param initialBalance balance of each account at boot.
     */
    public BankProgram(final int accounts, final long initialBalance)
    {
        this.accounts = accounts;
        this.initialBalance = initialBalance;
    }

    /**
     * @return number of accounts.
     */
    public int accounts()
    {
        return accounts;
    }

    /**
     * @return the sum of all balances, which transfers never change.
     */
    public long totalBalance()
    {
        return accounts * initialBalance;
    }

    @Override
    public int reservedPages()
    {
        return 1 + (accounts * 8 + PAGE - 1) / PAGE;
    }

    @Override
    public void boot(final Io guest)
    {
        final SimulatedGuestMemory memory = guest.memory();
        memory.putLong(0, MAGIC);
        memory.putLong(8, accounts);
        memory.putLong(16, 0);
        for (int account = 0; account < accounts; account++)
        {
            memory.putLong(balanceAddress(account), initialBalance);
        }
    }

    @Override
    public void onFrame(final Io guest, final DirectBuffer frame, final int index, final int length)
    {
        if (length != REQUEST_BYTES || frame.getInt(index) != REQUEST)
        {
            return; // not for the bank: a NIC drops what no one listens to
        }
        final SimulatedGuestMemory memory = guest.memory();
        final long seq = frame.getLong(index + 8);
        final long lastSeq = memory.getLong(16);
        if (seq <= lastSeq)
        {
            // handled before (a resend after failover): answer from the ledger, exactly as the first time
            guest.readDisk(ledgerOffset(guest, seq), record, 0, LEDGER_RECORD);
            reply(guest, record.getInt(28), seq, record.getLong(32), record.getLong(40));
            return;
        }
        if (seq != lastSeq + 1)
        {
            reply(guest, OUT_OF_ORDER, seq, 0, 0);
            return;
        }
        final int from = frame.getInt(index + 16);
        final int to = frame.getInt(index + 20);
        final long amount = frame.getLong(index + 24);
        int status = REFUSED;
        long balanceFrom = 0;
        long balanceTo = 0;
        if (from >= 0 && from < accounts && to >= 0 && to < accounts && from != to && amount > 0)
        {
            balanceFrom = memory.getLong(balanceAddress(from));
            balanceTo = memory.getLong(balanceAddress(to));
            if (balanceFrom >= amount)
            {
                balanceFrom -= amount;
                balanceTo += amount;
                memory.putLong(balanceAddress(from), balanceFrom);
                memory.putLong(balanceAddress(to), balanceTo);
                status = APPLIED;
            }
        }
        record.setMemory(0, LEDGER_RECORD, (byte)0);
        record.putLong(0, seq);
        record.putInt(8, from);
        record.putInt(12, to);
        record.putLong(16, amount);
        record.putInt(28, status);
        record.putLong(32, balanceFrom);
        record.putLong(40, balanceTo);
        guest.writeDisk(ledgerOffset(guest, seq), record, 0, LEDGER_RECORD);
        memory.putLong(16, seq);
        memory.putLong(status == APPLIED ? 24 : 32, memory.getLong(status == APPLIED ? 24 : 32) + 1);
        reply(guest, status, seq, balanceFrom, balanceTo);
    }

    private void reply(final Io guest, final int status, final long seq, final long balanceFrom, final long balanceTo)
    {
        reply.putInt(0, REPLY);
        reply.putInt(4, status);
        reply.putLong(8, seq);
        reply.putLong(16, balanceFrom);
        reply.putLong(24, balanceTo);
        reply.putLong(32, 0);
        guest.send(reply, 0, REPLY_BYTES);
    }

    /**
     * @param account an account.
     * @return the guest address of its balance.
     */
    public static long balanceAddress(final int account)
    {
        return PAGE + account * 8L;
    }

    /**
     * @param guest the guest.
     * @param seq   a transfer's sequence number, from 1.
     * @return where its ledger record lives on disk.
     */
    public static long ledgerOffset(final Io guest, final long seq)
    {
        final long records = guest.diskBytes() / LEDGER_RECORD;
        return ((seq - 1) % records) * LEDGER_RECORD;
    }

    /**
     * @param memory the guest's memory.
     * @return the last request handled.
     */
    public static long lastSeq(final SimulatedGuestMemory memory)
    {
        return memory.getLong(16);
    }
}
