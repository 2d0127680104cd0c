package dev.tandem.examples.bank;

import dev.tandem.vmm.sim.SimulatedVmm;
import org.agrona.concurrent.UnsafeBuffer;

import java.util.ArrayList;
import java.util.List;

/**
 * The bank's state read out of a stopped guest: balances from memory, the ledger from disk.
 *
 * @param balances balance of each account.
 * @param ledger   one record per handled request, by sequence number from 1: {seq, from, to, amount, status,
 *                 balanceFrom, balanceTo}.
 */
public record BankState(long[] balances, List<long[]> ledger)
{
    /**
     * @param vmm  a paused guest running the bank.
     * @param bank the program.
     * @return its state.
     */
    public static BankState read(final SimulatedVmm vmm, final BankProgram bank)
    {
        final long[] balances = new long[bank.accounts()];
        for (int account = 0; account < balances.length; account++)
        {
            balances[account] = vmm.memory().getLong(BankProgram.balanceAddress(account));
        }
        final long lastSeq = BankProgram.lastSeq(vmm.memory());
        final long records = vmm.disk().sizeBytes() / BankProgram.LEDGER_RECORD;
        final UnsafeBuffer record = new UnsafeBuffer(new byte[BankProgram.LEDGER_RECORD]);
        final List<long[]> ledger = new ArrayList<>();
        for (long seq = Math.max(1, lastSeq - records + 1); seq <= lastSeq; seq++)
        {
            vmm.disk().read(((seq - 1) % records) * BankProgram.LEDGER_RECORD, record, 0, BankProgram.LEDGER_RECORD);
            ledger.add(new long[] {record.getLong(0), record.getInt(8), record.getInt(12), record.getLong(16),
                record.getInt(28), record.getLong(32), record.getLong(40)});
        }
        return new BankState(balances, ledger);
    }

    /**
     * @return a line per account ("balance i value") and per ledger record ("ledger seq from to amount status bf bt").
     */
    public String toText()
    {
        final StringBuilder text = new StringBuilder();
        for (int i = 0; i < balances.length; i++)
        {
            text.append("balance ").append(i).append(' ').append(balances[i]).append('\n');
        }
        for (final long[] record : ledger)
        {
            text.append("ledger");
            for (final long field : record)
            {
                text.append(' ').append(field);
            }
            text.append('\n');
        }
        return text.toString();
    }

    /**
     * @param text what {@link #toText()} wrote.
     * @param accounts number of accounts.
     * @return the state.
     */
    public static BankState parse(final String text, final int accounts)
    {
        final long[] balances = new long[accounts];
        final List<long[]> ledger = new ArrayList<>();
        for (final String line : text.split("\n"))
        {
            final String[] parts = line.trim().split(" ");
            if ("balance".equals(parts[0]))
            {
                balances[Integer.parseInt(parts[1])] = Long.parseLong(parts[2]);
            }
            else if ("ledger".equals(parts[0]))
            {
                final long[] record = new long[parts.length - 1];
                for (int i = 1; i < parts.length; i++)
                {
                    record[i - 1] = Long.parseLong(parts[i]);
                }
                ledger.add(record);
            }
        }
        return new BankState(balances, ledger);
    }
}
