package dev.tandem.core.active;

import dev.tandem.core.system.LeakCheck;
import dev.tandem.vmm.VirtualDisk;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.YieldingIdleStrategy;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@LeakCheck
class DiskWriteStreamTest
{
    private static final VirtualDisk DISK = new VirtualDisk()
    {
        @Override
        public int id()
        {
            return 2;
        }

        @Override
        public long sizeBytes()
        {
            return 1 << 20;
        }

        @Override
        public int blockSize()
        {
            return 512;
        }

        @Override
        public void read(final long offset, final MutableDirectBuffer dst, final int dstIndex, final int length)
        {
        }
    };

    @Test
    void misuseIsNamed()
    {
        try (DiskWriteStream stream = new DiskWriteStream(64 * 1024, List.of(DISK), 1 << 20, YieldingIdleStrategy::new))
        {
            final UnsafeBuffer data = new UnsafeBuffer(new byte[4096]);
            assertTrue(assertThrows(IllegalArgumentException.class, () -> stream.write(3, 0, data, 0, 512))
                .getMessage().contains("unknown disk id 3"));
            assertThrows(IllegalArgumentException.class, () -> stream.write(2, 100, data, 0, 512));
            assertThrows(IllegalArgumentException.class, () -> stream.write(2, 0, data, 0, 0));
            assertThrows(IllegalArgumentException.class, () -> stream.write(2, (1 << 20) - 512, data, 0, 1024));
        }
    }

    @Test
    void largeWritesAreChunkedAndKeepTheirOrderWithBarriers()
    {
        try (DiskWriteStream stream = new DiskWriteStream(256 * 1024, List.of(DISK), 16384, YieldingIdleStrategy::new))
        {
            final UnsafeBuffer data = new UnsafeBuffer(new byte[20480]);
            stream.write(2, 4096, data, 0, 20480);
            stream.appendCheckpoint(9, 1);
            stream.flush(2);
            final List<String> records = new ArrayList<>();
            stream.read((type, buffer, index, length) -> records.add(type == DiskWriteStream.DISK_WRITE ?
                "write@" + buffer.getLong(index + 8) + "+" + buffer.getInt(index + 4) :
                type == DiskWriteStream.CHECKPOINT ? "barrier" + buffer.getLong(index) : "flush"), 100);
            assertEquals(List.of("write@4096+16384", "write@20480+4096", "barrier9", "flush"), records);
        }
    }

    /**
     * A write larger than a record is split at a multiple of the disk's block size, not of 4 KiB: a 40 KiB limit
     * once gave a 16 KiB-block disk a 40 KiB record, which the standby refused as misaligned.
     */
    @Test
    void largeWritesAreChunkedAtAMultipleOfTheDisksBlockSize()
    {
        final VirtualDisk largeBlocks = new VirtualDisk()
        {
            @Override
            public int id()
            {
                return 0;
            }

            @Override
            public long sizeBytes()
            {
                return 1 << 20;
            }

            @Override
            public int blockSize()
            {
                return 16384;
            }

            @Override
            public void read(final long offset, final MutableDirectBuffer dst, final int dstIndex, final int length)
            {
            }
        };
        try (DiskWriteStream stream = new DiskWriteStream(1 << 20, List.of(largeBlocks, DISK), 40 * 1024,
            YieldingIdleStrategy::new))
        {
            final UnsafeBuffer data = new UnsafeBuffer(new byte[65536]);
            stream.write(0, 16384, data, 0, 65536);
            stream.write(2, 512, data, 0, 45056);
            final List<String> records = new ArrayList<>();
            stream.read((type, buffer, index, length) -> records.add(buffer.getInt(index) + "@" +
                buffer.getLong(index + 8) + "+" + buffer.getInt(index + 4)), 100);
            assertEquals(List.of("0@16384+32768", "0@49152+32768", "2@512+40960", "2@41472+4096"), records);
        }
    }
}
