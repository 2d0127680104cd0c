package dev.tandem.examples.simulation;

import java.util.SplittableRandom;

/**
 * What goes wrong in one simulated run, drawn from its seed alone: at most one network fault, at most one kill at a
 * numbered point, at most one ownership fault (the arbiter unreachable or slow, an operator's promotion, a long
 * health-probe report, a lost generation file), perhaps a duplicated connection replaying the active's first bytes
 * after its connection broke, and whether the active passes output through once it owns the guest unprotected.
 */
final class FaultPlan
{
    /** Where a node dies. */
    enum Kill
    {
        /** nobody dies. */
        NONE,
        /** the active, at a random moment. */
        ACTIVE_AT_TIME,
        /** the active, right after its n-th disk write was sent. */
        ACTIVE_AFTER_DISK_WRITE,
        /** the active, right after barrier N was sent. */
        ACTIVE_AFTER_BARRIER,
        /** the active, half-way through the first page frame of delta N. */
        ACTIVE_MID_DELTA,
        /** the active, right after the end of epoch N was sent. */
        ACTIVE_AFTER_EPOCH_END,
        /** the standby, when it is about to send ack N (committed, not acknowledged). */
        STANDBY_BEFORE_ACK,
        /** the standby, in the middle of applying an epoch's disk writes. */
        STANDBY_DURING_APPLY,
        /** the active at a random moment, then the standby in the middle of its promotion. */
        STANDBY_DURING_PROMOTION,
        /** the standby, at a random moment. */
        STANDBY_AT_TIME
    }

    /** Network fault of the run. */
    enum NetworkFault
    {
        /** none. */
        NONE,
        /** the connection resets at byte k of the active's stream. */
        DROP,
        /** one bit pattern flipped in byte k of the active's stream. */
        CORRUPT,
        /** extra latency for bytes sent in a window. */
        DELAY,
        /** the standby's receive window is zero for a while: the active's writes accept nothing. */
        STALL,
        /**
         * nothing is delivered either way for a while, then the network heals; the receive windows fill and the
         * writers are refused (a partition behind small socket buffers).
         */
        PARTITION,
        /**
         * nothing is delivered either way for a while, but both sockets keep accepting writes into a window far
         * larger than anything a run sends (real TCP: the kernel buffers, autotuned, accept long after the peer is
         * gone); only the peer's silence can reveal it (invariant 8). Then the network may heal.
         */
        PARTITION_ACCEPTING
    }

    /** Fault of the run's ownership machinery (arbiter, operator, health probe, generation files). */
    enum OwnershipFault
    {
        /** none. */
        NONE,
        /** every arbiter question throws (unreachable) for a window. */
        ARBITER_DOWN,
        /**
         * the arbiter is slow for a window: a question times out (throws) unless the same side asked at least
         * {@link #arbiterSlowNs} ago without an answer; the call is synchronous, so slow is unreachable-then-answer.
         */
        ARBITER_SLOW,
        /** an operator asks the standby to promote while both sides are alive. */
        OPERATOR_PROMOTION,
        /** the guest's health probe reports a long (thousands of characters, multibyte) reason. */
        LONG_HEALTH_REASON,
        /** the standby's persisted generation file disappears. */
        LOSE_STANDBY_GENERATION_FILE,
        /** the active's persisted generation file disappears. */
        LOSE_ACTIVE_GENERATION_FILE
    }

    final NetworkFault network;
    final Kill kill;
    long dropAtByte = -1;
    long corruptByte = -1;
    int corruptMask;
    long delayFromNs = Long.MAX_VALUE;
    long delayUntilNs = Long.MAX_VALUE;
    long delayNs;
    long stallFromNs = Long.MAX_VALUE;
    long stallUntilNs = Long.MAX_VALUE;
    long partitionFromNs = Long.MAX_VALUE;
    long partitionUntilNs = Long.MAX_VALUE;
    /** the partition keeps accepting writes (see {@link NetworkFault#PARTITION_ACCEPTING}). */
    boolean partitionAccepts;
    OwnershipFault ownership = OwnershipFault.NONE;
    /**
     * With {@link OwnershipFault#LONG_HEALTH_REASON}: the probe asks for a restore on the active's host (of the latest
     * checkpoint: no time is named, as the simulation's checks forbid taking released output back); the probe goes on
     * complaining, so the guest is handed over at its next complaint.
     */
    boolean restoreHere;
    /** when the ownership fault happens (a window's start). */
    long ownershipAtNs = Long.MAX_VALUE;
    /** end of an arbiter fault's window. */
    long ownershipUntilNs = Long.MAX_VALUE;
    long arbiterSlowNs;
    /** length of the long health-probe reason, in characters. */
    int healthReasonChars;
    /** the active lets output pass unprotected once it won the next generation (a real, documented setting). */
    boolean passThrough;
    long killAtNs = Long.MAX_VALUE;
    long killEpoch;
    int killOrdinal;
    /** true: the dead node's kernel closes its sockets; false: it loses power and goes silent. */
    final boolean killCrashes;
    /** a second connection replays the active's first bytes once the active's connection has broken. */
    final boolean duplicateConnection;

    private FaultPlan(final NetworkFault network, final Kill kill, final boolean killCrashes,
        final boolean duplicateConnection)
    {
        this.network = network;
        this.kill = kill;
        this.killCrashes = killCrashes;
        this.duplicateConnection = duplicateConnection;
    }

    /**
     * @param random  the run's generator, positioned where the plan is drawn.
     * @param startNs simulated time the run starts at.
     * @param runNs   how long the run lasts before any failover.
     * @return the plan.
     */
    static FaultPlan draw(final SplittableRandom random, final long startNs, final long runNs)
    {
        final NetworkFault network = random.nextInt(10) < 4 ? NetworkFault.NONE :
            NetworkFault.values()[1 + random.nextInt(NetworkFault.values().length - 1)];
        final Kill kill = random.nextInt(10) < 3 ? Kill.NONE :
            Kill.values()[1 + random.nextInt(Kill.values().length - 1)];
        final FaultPlan plan = new FaultPlan(network, kill, random.nextBoolean(), random.nextInt(10) < 3);
        final long from = startNs + random.nextLong(runNs);
        switch (network)
        {
            case DROP:
                plan.dropAtByte = random.nextLong(4L << 20);
                break;
            case CORRUPT:
                plan.corruptByte = random.nextLong(4L << 20);
                plan.corruptMask = 1 + random.nextInt(255);
                break;
            case DELAY:
                plan.delayFromNs = from;
                plan.delayUntilNs = from + ms(random, 1, 300);
                plan.delayNs = ms(random, 1, 300);
                break;
            case STALL:
                plan.stallFromNs = from;
                plan.stallUntilNs = from + ms(random, 1, 300);
                break;
            case PARTITION:
                plan.partitionFromNs = from;
                plan.partitionUntilNs = from + ms(random, 5, 400);
                break;
            case PARTITION_ACCEPTING:
                plan.partitionAccepts = true;
                plan.partitionFromNs = from;
                // a third never heal within the run: only the replies' silence can end protection then
                plan.partitionUntilNs = random.nextInt(3) == 0 ? Long.MAX_VALUE : from + ms(random, 5, 1500);
                break;
            default:
                break;
        }
        plan.killAtNs = startNs + random.nextLong(runNs);
        plan.killEpoch = 1 + random.nextInt(40);
        plan.killOrdinal = 1 + random.nextInt(200);
        plan.ownership = random.nextInt(10) < 5 ? OwnershipFault.NONE :
            OwnershipFault.values()[1 + random.nextInt(OwnershipFault.values().length - 1)];
        plan.ownershipAtNs = startNs + random.nextLong(runNs);
        switch (plan.ownership)
        {
            case ARBITER_DOWN:
                plan.ownershipUntilNs = plan.ownershipAtNs + ms(random, 5, 2000);
                break;
            case ARBITER_SLOW:
                plan.ownershipUntilNs = plan.ownershipAtNs + ms(random, 50, 2000);
                plan.arbiterSlowNs = ms(random, 1, 300);
                break;
            case LONG_HEALTH_REASON:
                plan.healthReasonChars = 1000 + random.nextInt(9000);
                // drawn from what was drawn already, so every seed's plan stays what it was before this choice
                plan.restoreHere = (plan.healthReasonChars & 1) == 1;
                break;
            default:
                break;
        }
        plan.passThrough = random.nextInt(5) == 0;
        return plan;
    }

    private static long ms(final SplittableRandom random, final int from, final int to)
    {
        return (from + random.nextInt(to - from + 1)) * 1_000_000L;
    }

    /**
     * @param startNs the run's start, to print times relative to it.
     * @return the plan in one line.
     */
    String describe(final long startNs)
    {
        final StringBuilder text = new StringBuilder();
        switch (network)
        {
            case DROP:
                text.append("drop at byte ").append(dropAtByte);
                break;
            case CORRUPT:
                text.append("corrupt byte ").append(corruptByte).append(" xor 0x")
                    .append(Integer.toHexString(corruptMask));
                break;
            case DELAY:
                text.append("delay +").append(delayNs / 1_000_000).append(" ms for bytes sent ")
                    .append(window(delayFromNs, delayUntilNs, startNs));
                break;
            case STALL:
                text.append("stall ").append(window(stallFromNs, stallUntilNs, startNs));
                break;
            case PARTITION:
                text.append("partition ").append(window(partitionFromNs, partitionUntilNs, startNs)).append(", heal");
                break;
            case PARTITION_ACCEPTING:
                text.append("partition accepting writes ").append(partitionUntilNs == Long.MAX_VALUE ?
                    (partitionFromNs - startNs) / 1_000_000 + " ms.., never heals" :
                    window(partitionFromNs, partitionUntilNs, startNs) + ", heal");
                break;
            default:
                text.append("no network fault");
                break;
        }
        text.append("; ");
        final String at = "(" + (killAtNs - startNs) / 1_000_000 + " ms)";
        switch (kill)
        {
            case ACTIVE_AT_TIME:
                text.append("kill active at ").append(at);
                break;
            case STANDBY_AT_TIME:
                text.append("kill standby at ").append(at);
                break;
            case STANDBY_DURING_PROMOTION:
                text.append("kill active then standby during promotion ").append(at);
                break;
            case ACTIVE_AFTER_DISK_WRITE:
                text.append("kill active after disk write #").append(killOrdinal);
                break;
            case ACTIVE_AFTER_BARRIER:
                text.append("kill active after barrier ").append(killEpoch);
                break;
            case ACTIVE_MID_DELTA:
                text.append("kill active mid-delta ").append(killEpoch);
                break;
            case ACTIVE_AFTER_EPOCH_END:
                text.append("kill active after epoch end ").append(killEpoch);
                break;
            case STANDBY_BEFORE_ACK:
                text.append("kill standby before ack ").append(killEpoch);
                break;
            case STANDBY_DURING_APPLY:
                text.append("kill standby during apply, disk write #").append(killOrdinal);
                break;
            default:
                text.append("no kill");
                break;
        }
        if (kill != Kill.NONE)
        {
            text.append(killCrashes ? " (crash)" : " (power loss)");
        }
        if (duplicateConnection)
        {
            text.append("; duplicated connection");
        }
        final String ownershipAt = "(" + (ownershipAtNs - startNs) / 1_000_000 + " ms)";
        switch (ownership)
        {
            case ARBITER_DOWN:
                text.append("; arbiter down ").append(window(ownershipAtNs, ownershipUntilNs, startNs));
                break;
            case ARBITER_SLOW:
                text.append("; arbiter slow ").append(window(ownershipAtNs, ownershipUntilNs, startNs))
                    .append(", answers after ").append(arbiterSlowNs / 1_000_000).append(" ms");
                break;
            case OPERATOR_PROMOTION:
                text.append("; operator promotion ").append(ownershipAt);
                break;
            case LONG_HEALTH_REASON:
                text.append("; long health reason (").append(healthReasonChars).append(" chars) ")
                    .append(ownershipAt).append(restoreHere ? ", restore here first" : "");
                break;
            case LOSE_STANDBY_GENERATION_FILE:
                text.append("; lose standby generation file ").append(ownershipAt);
                break;
            case LOSE_ACTIVE_GENERATION_FILE:
                text.append("; lose active generation file ").append(ownershipAt);
                break;
            default:
                break;
        }
        if (passThrough)
        {
            text.append("; pass-through output");
        }
        return text.toString();
    }

    /**
     * @param now simulated time.
     * @return true while the arbiter's fault window is open.
     */
    boolean arbiterFaulty(final long now)
    {
        return (ownership == OwnershipFault.ARBITER_DOWN || ownership == OwnershipFault.ARBITER_SLOW) &&
            now >= ownershipAtNs && now < ownershipUntilNs;
    }

    private static String window(final long from, final long until, final long startNs)
    {
        return (from - startNs) / 1_000_000 + ".." + (until - startNs) / 1_000_000 + " ms";
    }
}
