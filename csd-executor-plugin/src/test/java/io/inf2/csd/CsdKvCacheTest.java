package io.inf2.csd;

import static io.inf2.csd.CsdTestSupport.freshDirectory;
import static io.inf2.csd.CsdTestSupport.gaussian;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.compute.cpu.CpuBackend;
import io.inf2.csd.CsdKvCacheFactory.Placement;
import io.inf2.kv.KvCache;
import io.inf2.kv.KvProjector;
import io.inf2.kv.KvTraffic;
import io.inf2.kv.MemoryKvCache;
import io.inf2.model.ModelConfig;
import io.inf2.tensor.FloatMatrix;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The CSD cache against the host-memory reference cache: same calls, same outputs within fp16
 * rounding of K, V, X, queries and device outputs.
 */
class CsdKvCacheTest {
    private static final double TOLERANCE = 5e-3;
    private static CpuBackend host;

    @BeforeAll
    static void startHost() {
        host = new CpuBackend(2);
    }

    @AfterAll
    static void stopHost() {
        host.close();
    }

    /** A layer's K and V projections: K = X·Wkᵀ, V = X·Wvᵀ (no rotary), as the engine's projector does. */
    private static final class Projection implements KvProjector {
        final int hidden;
        final int kvDim;
        final float[][] wk;
        final float[][] wv;

        Projection(ModelConfig model, Random random) {
            hidden = model.hidden();
            kvDim = model.kvDim();
            wk = new float[model.layers()][];
            wv = new float[model.layers()][];
            for (int l = 0; l < model.layers(); l++) {
                wk[l] = scaled(gaussian(random, kvDim * hidden), 1 / Math.sqrt(hidden));
                wv[l] = scaled(gaussian(random, kvDim * hidden), 1 / Math.sqrt(hidden));
            }
        }

        private static float[] scaled(float[] v, double s) {
            for (int i = 0; i < v.length; i++) {
                v[i] *= (float) s;
            }
            return v;
        }

        @Override
        public void project(int layer, FloatMatrix x, int firstPosition, FloatMatrix k, FloatMatrix v) {
            for (int r = 0; r < x.rows(); r++) {
                for (int o = 0; o < kvDim; o++) {
                    float sk = 0;
                    float sv = 0;
                    for (int i = 0; i < hidden; i++) {
                        float xi = x.get(r, i);
                        sk += xi * wk[layer][o * hidden + i];
                        sv += xi * wv[layer][o * hidden + i];
                    }
                    k.set(r, o, sk);
                    v.set(r, o, sv);
                }
            }
        }
    }

    /** Drives a cache under test and the reference with identical calls and compares every output. */
    private static final class Twin {
        final ModelConfig model;
        final KvCache cache;
        final KvCache reference;
        final Projection projection;
        final Random random;
        double maxError;

        Twin(ModelConfig model, KvCache cache, KvCache reference, Projection projection, Random random) {
            this.model = model;
            this.cache = cache;
            this.reference = reference;
            this.projection = projection;
            this.random = random;
        }

        void prompt(int slot, int tokens) {
            for (int layer = 0; layer < model.layers(); layer++) {
                FloatMatrix x = new FloatMatrix(gaussian(random, tokens * model.hidden()), tokens, model.hidden());
                FloatMatrix k = new FloatMatrix(tokens, model.kvDim());
                FloatMatrix v = new FloatMatrix(tokens, model.kvDim());
                projection.project(layer, x, 0, k, v);
                cache.writePrompt(layer, slot, k, v, x);
                reference.writePrompt(layer, slot, k, v, x);
            }
        }

        void step(int[] slots) {
            int n = slots.length;
            for (int layer = 0; layer < model.layers(); layer++) {
                FloatMatrix x = new FloatMatrix(gaussian(random, n * model.hidden()), n, model.hidden());
                FloatMatrix k = new FloatMatrix(n, model.kvDim());
                FloatMatrix v = new FloatMatrix(n, model.kvDim());
                projection.project(layer, x, 0, k, v);
                FloatMatrix q = new FloatMatrix(gaussian(random, n * model.qDim()), n, model.qDim());
                FloatMatrix out = new FloatMatrix(n, model.qDim());
                FloatMatrix expected = new FloatMatrix(n, model.qDim());
                cache.appendAndAttend(layer, slots, q, k, v, x, out);
                reference.appendAndAttend(layer, slots, q, k, v, x, expected);
                for (int i = 0; i < out.data().length; i++) {
                    double err = Math.abs(out.data()[i] - expected.data()[i]);
                    assertTrue(err <= TOLERANCE, "layer " + layer + " element " + i + ": " + out.data()[i] + " vs "
                            + expected.data()[i]);
                    maxError = Math.max(maxError, err);
                }
            }
            for (int s : slots) {
                assertEquals(reference.length(s), cache.length(s));
            }
        }

        void release(int slot) {
            cache.release(slot);
            reference.release(slot);
        }
    }

    private static List<EmulatedCsd> devices(String name, int count) {
        List<EmulatedCsd> devices = new ArrayList<>();
        for (int d = 0; d < count; d++) {
            devices.add(EmulatedCsd.open("csd" + d, freshDirectory(name + "-" + d), 2));
        }
        return devices;
    }

    private static void runScenario(String name, Placement placement, int deviceCount, int pageTokens, double alpha,
                                    int kvHeads, List<? extends ComputationalStorageDevice> devices) {
        ModelConfig model = CsdTestSupport.model(2, 4, kvHeads, 32, 64);
        Random random = new Random(name.hashCode());
        Projection projection = new Projection(model, random);
        int slots = 4;
        int maxTokens = 140;
        try (CsdKvCacheFactory factory = CsdKvCacheFactory.withDevices(placement, devices, pageTokens,
                XCachePolicy.configured(alpha), host);
             KvCache cache = factory.create(model, slots, maxTokens, projection, new KvTraffic());
             KvCache reference = new MemoryKvCache(model, slots, host, new KvTraffic())) {
            assertEquals(deviceCount, factory.deviceNames().size());
            Twin twin = new Twin(model, cache, reference, projection, random);
            int[] promptLengths = {5, 33, 1, 70};
            for (int s = 0; s < slots; s++) {
                twin.prompt(s, promptLengths[s]);
            }
            for (int step = 0; step < 24; step++) {
                twin.step(new int[] {0, 1, 2, 3});
            }
            // A sequence finishes; its slot takes a new prompt while the others go on.
            twin.release(2);
            twin.step(new int[] {0, 1, 3});
            twin.prompt(2, 20);
            for (int step = 0; step < 20; step++) {
                twin.step(step % 3 == 0 ? new int[] {3, 0, 2} : new int[] {0, 1, 2, 3});
            }
            assertTrue(twin.maxError > 0, "fp16 storage must differ from f32 somewhere; identical outputs mean the "
                    + "comparison saw the same cache twice");
            for (DeviceStatistics stats : factory.deviceStatistics()) {
                assertTrue(stats.health().ok(), stats.describe());
            }
        }
    }

    @ParameterizedTest(name = "{0}: {1}, {2} device(s), page {3}, X-cache {4}, {5} KV heads")
    @CsvSource({
            "ans-1dev-c16-a0-mha, CSD, 1, 16, 0, 4",
            "ans-2dev-c1-a05-gqa, CSD, 2, 1, 0.5, 2",
            "ans-3dev-c64-a1-gqa, CSD, 3, 64, 1, 2",
            "ans-4dev-c16-a05-mha, CSD, 4, 16, 0.5, 4",
            "ans-2dev-c16-a0-gqa1, CSD, 2, 16, 0, 1",
            "storage-2dev-c16-gqa, STORAGE, 2, 16, 0, 2",
            "storage-1dev-c1-mha, STORAGE, 1, 1, 0, 4"})
    void matchesTheHostMemoryReference(String name, Placement placement, int deviceCount, int pageTokens, double alpha,
                                       int kvHeads) {
        runScenario(name, placement, deviceCount, pageTokens, alpha, kvHeads, devices(name, deviceCount));
    }

    /**
     * A device whose writes stay queued until the test lets them through: steps must serve pages that are
     * not durable yet from their host copies (the device itself would refuse to read them).
     */
    private static final class HeldWrites implements ComputationalStorageDevice {
        final ComputationalStorageDevice device;
        final List<Runnable> held = new ArrayList<>();
        boolean holding = true;

        HeldWrites(ComputationalStorageDevice device) {
            this.device = device;
        }

        synchronized void letThrough() {
            holding = false;
            held.forEach(Runnable::run);
            held.clear();
        }

        @Override
        public synchronized CompletableFuture<IoReport> append(DeviceRegion region, int firstPage, MemorySegment pages,
                                                               int pageCount) {
            if (!holding) {
                return device.append(region, firstPage, pages, pageCount);
            }
            CompletableFuture<IoReport> later = new CompletableFuture<>();
            held.add(() -> device.append(region, firstPage, pages, pageCount).whenComplete((r, e) -> {
                if (e != null) {
                    later.completeExceptionally(e);
                } else {
                    later.complete(r);
                }
            }));
            return later;
        }

        @Override
        public String name() {
            return device.name();
        }

        @Override
        public String describe() {
            return device.describe();
        }

        @Override
        public DeviceRegion allocate(RegionSpec spec) {
            return device.allocate(spec);
        }

        @Override
        public void free(DeviceRegion region) {
            device.free(region);
        }

        @Override
        public CompletableFuture<IoReport> attend(AttentionBatch batch) {
            return device.attend(batch);
        }

        @Override
        public ReadPlan planReads(List<? extends DeviceRegion> regions, int[] pages) {
            return device.planReads(regions, pages);
        }

        @Override
        public IoReport read(ReadPlan.Read read, MemorySegment destination) {
            return device.read(read, destination);
        }

        @Override
        public double probeReadBandwidth(long bytes) {
            return device.probeReadBandwidth(bytes);
        }

        @Override
        public DeviceStatistics statistics() {
            return device.statistics();
        }

        @Override
        public DeviceHealth health() {
            return device.health();
        }

        @Override
        public void close() {
            letThrough();
            device.close();
        }
    }

    @Test
    void pagesNotYetDurableAreServedFromTheirHostCopy() {
        for (Placement placement : Placement.values()) {
            ModelConfig model = CsdTestSupport.model(1, 4, 2, 32, 64);
            Random random = new Random(99);
            Projection projection = new Projection(model, random);
            HeldWrites slow = new HeldWrites(EmulatedCsd.open("csd0", freshDirectory("held-" + placement), 2));
            KvTraffic traffic = new KvTraffic();
            try (CsdKvCacheFactory factory = CsdKvCacheFactory.withDevices(placement, List.of(slow), 4,
                    XCachePolicy.configured(0), host);
                 KvCache cache = factory.create(model, 2, 64, projection, traffic);
                 KvCache reference = new MemoryKvCache(model, 2, host, new KvTraffic())) {
                Twin twin = new Twin(model, cache, reference, projection, random);
                twin.prompt(0, 10);
                twin.prompt(1, 3);
                for (int step = 0; step < 9; step++) {
                    twin.step(new int[] {0, 1});
                }
                assertEquals(0, slow.statistics().pagesWritten(), "no write reached the device yet");
                assertTrue(traffic.snapshot().writebackBufferedBytes() > 0);
                slow.letThrough();
                ((CsdKvCache) cache).awaitWrites();
                for (int step = 0; step < 9; step++) {
                    twin.step(new int[] {0, 1});
                }
                assertTrue(slow.statistics().pagesWritten() > 0);
            }
        }
    }

    @Test
    void delayedWritebackWritesOnlyFullPagesAndDropsTheBufferAtRelease() {
        ModelConfig model = CsdTestSupport.model(1, 2, 2, 32, 64);
        Random random = new Random(3);
        Projection projection = new Projection(model, random);
        KvTraffic traffic = new KvTraffic();
        List<EmulatedCsd> devices = devices("writeback", 2);
        try (CsdKvCacheFactory factory = CsdKvCacheFactory.withDevices(Placement.CSD, devices, 16,
                XCachePolicy.configured(0), host);
             KvCache cache = factory.create(model, 1, 80, projection, traffic);
             KvCache reference = new MemoryKvCache(model, 1, host, new KvTraffic())) {
            CsdKvCache csd = (CsdKvCache) cache;
            Twin twin = new Twin(model, cache, reference, projection, random);
            long tokenBytes = 4L * 32; // K and V of one KV head, fp16
            twin.prompt(0, 37);
            csd.awaitWrites();
            assertEquals(2 * 2, traffic.snapshot().pagesWritten(), "37 tokens: two full pages per KV head");
            assertEquals(5 * 2 * tokenBytes, traffic.snapshot().writebackBufferedBytes(), "5 tokens wait per KV head");
            for (int step = 0; step < 11; step++) {
                twin.step(new int[] {0});
            }
            csd.awaitWrites();
            assertEquals(3 * 2, traffic.snapshot().pagesWritten(), "48 tokens: three pages per KV head");
            assertEquals(0, traffic.snapshot().writebackBufferedBytes());
            for (int step = 0; step < 5; step++) {
                twin.step(new int[] {0});
            }
            assertEquals(5 * 2 * tokenBytes, traffic.snapshot().writebackBufferedBytes());
            cache.release(0);
            csd.awaitWrites();
            assertEquals(0, traffic.snapshot().writebackBufferedBytes(), "the buffer is dropped at release");
            assertEquals(3 * 2, traffic.snapshot().pagesWritten(), "and never written");
            long devicePages = factory.deviceStatistics().stream().mapToLong(DeviceStatistics::pagesWritten).sum();
            assertEquals(6, devicePages);
            assertEquals(traffic.snapshot().deviceWriteBytes(),
                    factory.deviceStatistics().stream().mapToLong(DeviceStatistics::bytesWritten).sum());
        }
    }

    /** Link bytes of one decode step at context {@code context} for a one-layer MHA model with c = 1. */
    private static long linkBytesOfOneStep(Placement placement, int context) {
        ModelConfig model = CsdTestSupport.model(1, 4, 4, 64, 256);
        Random random = new Random(8);
        Projection projection = new Projection(model, random);
        KvTraffic traffic = new KvTraffic();
        try (CsdKvCacheFactory factory = CsdKvCacheFactory.withDevices(placement, devices("traffic-" + placement, 2), 1,
                XCachePolicy.configured(0), host);
             KvCache cache = factory.create(model, 2, context + 4, projection, traffic);
             KvCache reference = new MemoryKvCache(model, 2, host, new KvTraffic())) {
            Twin twin = new Twin(model, cache, reference, projection, random);
            twin.prompt(0, context);
            twin.prompt(1, context);
            ((CsdKvCache) cache).awaitWrites();
            long before = traffic.snapshot().linkBytes();
            twin.step(new int[] {0, 1});
            ((CsdKvCache) cache).awaitWrites();
            return traffic.snapshot().linkBytes() - before;
        }
    }

    @Test
    void attentionNearStorageMovesAboutHalfTheContextTimesFewerBytesOverTheLink() {
        int context = 255;
        long ans = linkBytesOfOneStep(Placement.CSD, context);
        long baseline = linkBytesOfOneStep(Placement.STORAGE, context);
        double ratio = (double) baseline / ans;
        double paper = (context + 1) / 2.0;
        assertTrue(Math.abs(ratio - paper) / paper < 0.05, "baseline/ANS link bytes " + ratio + ", expected about " + paper);
        // Per KV head and sequence: q and output (fp16), log-sum-exps, and the new token's page.
        long perHead = 64 * 2 * 2 + 4 + 4 * 64;
        assertEquals(2 * 4 * perHead, ans);
    }

    @Test
    void xcacheSlotsKeepXAndRecomputeInsteadOfUsingDevices() {
        ModelConfig model = CsdTestSupport.model(1, 4, 4, 32, 64);
        Random random = new Random(4);
        Projection projection = new Projection(model, random);
        KvTraffic traffic = new KvTraffic();
        try (CsdKvCacheFactory factory = CsdKvCacheFactory.withDevices(Placement.CSD, devices("xcache", 1), 16,
                XCachePolicy.configured(0.5), host);
             KvCache cache = factory.create(model, 4, 64, projection, traffic);
             KvCache reference = new MemoryKvCache(model, 4, host, new KvTraffic())) {
            CsdKvCache csd = (CsdKvCache) cache;
            assertFalse(csd.keepsX(0));
            assertTrue(csd.keepsX(1));
            assertFalse(csd.keepsX(2));
            assertTrue(csd.keepsX(3));
            Twin twin = new Twin(model, cache, reference, projection, random);
            for (int s = 0; s < 4; s++) {
                twin.prompt(s, 20);
            }
            assertEquals(2 * 4, factory.deviceStatistics().get(0).liveRegions(), "regions only for the two K,V slots");
            twin.step(new int[] {0, 1, 2, 3});
            assertEquals(2L * 20 * 64 * 2, traffic.snapshot().recomputedXBytes(), "two slots recomputed 20 tokens of X");
        }
    }

    @Test
    void xcacheSlotsAreSpreadEvenly() {
        assertEquals(0, count(CsdKvCache.assignXSlots(16, 0)));
        assertEquals(4, count(CsdKvCache.assignXSlots(16, 0.25)));
        assertEquals(8, count(CsdKvCache.assignXSlots(16, 0.5)));
        assertEquals(16, count(CsdKvCache.assignXSlots(16, 1)));
        boolean[] quarter = CsdKvCache.assignXSlots(8, 0.25);
        assertTrue(quarter[3] && quarter[7] && !quarter[0] && !quarter[4]);
    }

    private static int count(boolean[] flags) {
        int n = 0;
        for (boolean f : flags) {
            n += f ? 1 : 0;
        }
        return n;
    }
}
