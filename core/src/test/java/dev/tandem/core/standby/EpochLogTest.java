package dev.tandem.core.standby;

import dev.tandem.core.system.LeakCheck;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * An epoch larger than the memory tier spills to the file and replays in arrival order, byte for byte.
 */
@LeakCheck
class EpochLogTest
{
    @TempDir
    Path dir;

    @Test
    void replaysInOrderAcrossTheSpill() throws Exception
    {
        try (EpochLog log = new EpochLog(1 << 20, 64 * 1024, dir.resolve("spill")))
        {
            for (int round = 0; round < 2; round++)
            {
                final List<long[]> sent = new ArrayList<>();
                for (int i = 0; i < 100; i++)
                {
                    final int length = 1 + (i * 977) % 60_000;
                    final ByteBuffer data = ByteBuffer.allocateDirect(length);
                    for (int j = 0; j < length; j++)
                    {
                        data.put(j, (byte)(i + j));
                    }
                    log.append(i % 3, i, length, data);
                    sent.add(new long[] {i % 3, i, length});
                }
                assertEquals(true, log.bytes() > (1 << 20), "the epoch spilled");
                final List<long[]> replayed = new ArrayList<>();
                log.replay((type, a, b, buffer, data, index, length) ->
                {
                    for (int j = 0; j < length; j++)
                    {
                        if (buffer.getByte(index + j) != (byte)(a + j) || data.get(data.position() + j) != (byte)(a + j))
                        {
                            throw new AssertionError("record " + a + " byte " + j + " differs");
                        }
                    }
                    replayed.add(new long[] {type, a, b});
                });
                assertEquals(sent.size(), replayed.size());
                for (int i = 0; i < sent.size(); i++)
                {
                    assertEquals(sent.get(i)[0], replayed.get(i)[0]);
                    assertEquals(sent.get(i)[1], replayed.get(i)[1]);
                    assertEquals(sent.get(i)[2], replayed.get(i)[2]);
                }
                log.reset();
                assertEquals(0, log.bytes());
            }
        }
    }
}
