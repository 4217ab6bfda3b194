package io.inf2.csd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class ReadPlanTest {
    private static final long MIB = 1 << 20;

    private static ReadPlan plan(long[] starts, long pageBytes, int... pages) {
        long[] sizes = new long[starts.length];
        String[] names = new String[starts.length];
        for (int t = 0; t < starts.length; t++) {
            sizes[t] = pageBytes;
            names[t] = "region " + t;
        }
        return ReadPlan.plan(starts, sizes, pages, names, 4 * MIB, 4096);
    }

    @Test
    void regionsCloseTogetherShareOneReadInFileOrder() {
        // Three 512 KiB regions with 8 KiB of unused capacity between them, given out of order.
        long extent = 520 * 1024;
        ReadPlan p = plan(new long[] {4096 + 2 * extent, 4096, 4096 + extent}, 8192, 64, 64, 64);
        assertEquals(1, p.items().size());
        ReadPlan.Read read = p.items().get(0).reads().get(0);
        assertEquals(4096, read.position());
        assertEquals(2 * extent + 512 * 1024, read.bytes(), "one read from the first region to the end of the last");
        assertEquals(List.of(1, 2, 0), read.slices().stream().map(ReadPlan.Slice::task).toList());
        assertEquals(extent, read.slices().get(1).offset());
        assertTrue(read.what().startsWith("region 1 pages 0..63 and 2 more"), read.what());
    }

    @Test
    void aWideGapOrAFullReadStartsANewRead() {
        // 64 KiB used of each region, 1 MiB apart: reading the gaps would cost 16 times the data.
        ReadPlan sparse = plan(new long[] {0, MIB, 2 * MIB}, 8192, 8, 8, 8);
        assertEquals(3, sparse.items().size());
        // Eight adjacent 1 MiB regions: reads stop at 4 MiB.
        long[] starts = new long[8];
        int[] pages = new int[8];
        for (int t = 0; t < 8; t++) {
            starts[t] = t * MIB;
            pages[t] = 128;
        }
        ReadPlan full = plan(starts, 8192, pages);
        assertEquals(2, full.items().size());
        assertEquals(4 * MIB, full.largestRead());
        assertEquals(8 * MIB, full.bytes());
    }

    @Test
    void aRegionLargerThanTheLargestReadIsReadInOrderByOneWorkItem() {
        // 10 MiB of 8 KiB pages, starting off a block boundary.
        ReadPlan p = plan(new long[] {4096 + 2048}, 8192, 1280);
        assertEquals(1, p.items().size());
        List<ReadPlan.Read> reads = p.items().get(0).reads();
        assertEquals(3, reads.size());
        int next = 0;
        for (ReadPlan.Read read : reads) {
            assertTrue(read.bytes() <= 4 * MIB);
            assertEquals(0, read.position() % 4096);
            ReadPlan.Slice slice = read.slices().get(0);
            assertEquals(next, slice.firstPage(), "pages in order, none skipped");
            assertEquals(2048, slice.offset(), "the slice starts where its page does inside the aligned read");
            next += slice.pages();
        }
        assertEquals(1280, next);
    }

    @Test
    void tasksWithoutPagesReadNothing() {
        assertEquals(0, plan(new long[] {0, 8192}, 8192, 0, 0).items().size());
    }
}
