package io.inf2.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The bandwidth probe: its passes, its pooling and statistics, and that closing it ends its threads. */
class MemoryBandwidthTest {
    private static final long SMALL = 64L << 20;

    @Test
    void samplesRunAtLeastTheAskedPassesAndTime() {
        try (MemoryBandwidth probe = MemoryBandwidth.open(SMALL, 2)) {
            assertEquals(2, probe.threads());
            assertEquals(SMALL, probe.bytes());
            MemoryBandwidth.Result three = probe.sample(3, 0);
            assertEquals(3, three.passes());
            for (double gbps : three.passGBps()) {
                assertTrue(gbps > 0 && Double.isFinite(gbps), "pass " + gbps);
            }
            long start = System.nanoTime();
            MemoryBandwidth.Result timed = probe.sample(1, 0.2);
            assertTrue(System.nanoTime() - start >= 200_000_000L);
            assertTrue(timed.passes() >= 1);
            MemoryBandwidth.Result pooled = three.with(timed);
            assertEquals(3 + timed.passes(), pooled.passes());
            assertEquals(Math.max(three.bestGBps(), timed.bestGBps()), pooled.bestGBps(), 0.0);
        }
    }

    @Test
    void bestAndMedianOfThePasses() {
        MemoryBandwidth.Result odd = new MemoryBandwidth.Result(1, 1, new double[] {5, 1, 3});
        assertEquals(5, odd.bestGBps());
        assertEquals(3, odd.medianGBps());
        MemoryBandwidth.Result even = new MemoryBandwidth.Result(1, 1, new double[] {4, 1, 2, 8});
        assertEquals(3, even.medianGBps());
        assertThrows(IllegalArgumentException.class, () -> odd.with(new MemoryBandwidth.Result(2, 1, new double[] {1})));
        assertThrows(IllegalArgumentException.class, () -> new MemoryBandwidth.Result(1, 1, new double[0]));
    }

    @Test
    void closingEndsTheThreadsAndRefusesFurtherSamples() {
        MemoryBandwidth probe = MemoryBandwidth.open(SMALL, 3);
        probe.sample(1, 0);
        assertEquals(3, bandwidthThreads());
        probe.close();
        assertEquals(0, bandwidthThreads());
        assertThrows(IllegalStateException.class, () -> probe.sample(1, 0));
        probe.close();
    }

    @Test
    void badArgumentsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> MemoryBandwidth.open(SMALL, 0));
        assertThrows(IllegalArgumentException.class, () -> MemoryBandwidth.open(3 * MemoryBandwidth.CHUNK_BYTES, 4));
        try (MemoryBandwidth probe = MemoryBandwidth.open(SMALL, 1)) {
            assertThrows(IllegalArgumentException.class, () -> probe.sample(0, 1));
            assertThrows(IllegalArgumentException.class, () -> probe.sample(1, Double.NaN));
        }
    }

    @Test
    void cacheSizesAsLinuxWritesThem() {
        assertEquals(32L << 20, MemoryBandwidth.parseCacheSize("32768K"));
        assertEquals(300L << 20, MemoryBandwidth.parseCacheSize("300M"));
        assertEquals(1L << 30, MemoryBandwidth.parseCacheSize("1G"));
        assertEquals(512, MemoryBandwidth.parseCacheSize("512"));
        assertEquals(0, MemoryBandwidth.parseCacheSize("lots"));
        assertEquals(0, MemoryBandwidth.parseCacheSize(""));
        assertEquals(0, MemoryBandwidth.parseCacheSize("-1K"));
        assertTrue(MemoryBandwidth.defaultBytes() >= MemoryBandwidth.MIN_BYTES);
        assertTrue(MemoryBandwidth.defaultBytes() >= MemoryBandwidth.CACHE_MULTIPLE * MemoryBandwidth.lastLevelCacheBytes());
        assertFalse(MemoryBandwidth.lastLevelCacheBytes() < 0);
    }

    private static long bandwidthThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith("inf2-bandwidth-") && t.isAlive()).count();
    }
}
