package io.inf2.compute.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.compute.Activations;
import io.inf2.compute.cpu.CpuBackend;
import io.inf2.kv.KvCache;
import io.inf2.kv.KvCacheFactory;
import io.inf2.kv.KvTraffic;
import io.inf2.kv.MemoryKvCache;
import io.inf2.model.Architecture;
import io.inf2.model.ModelConfig;
import io.inf2.model.RopeScaling;
import io.inf2.tensor.DType;
import io.inf2.tensor.FloatMatrix;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The GPU KV cache against the host-memory cache ({@link MemoryKvCache}, attention by
 * {@link io.inf2.compute.cpu.CpuAttention}) on random inputs: GQA and multi-head, prompts of mixed
 * lengths written as one packed batch and as a gathered subset, decode steps over changing sets of
 * slots, a released slot reused. The host cache is given the F16-rounded keys and values the GPU
 * stores, so both compute the same function and differ only by fp32 summation order: 1e-5 on
 * outputs in [−1, 1] (as the decode-attention kernel test).
 */
@RequiresCuda
class CudaKvCacheTest {
    @TempDir
    static Path kernelCache;
    private static CudaBackend gpu;
    private static CpuBackend cpu;

    @BeforeAll
    static void open() {
        gpu = CudaBackend.open(new CudaBackend.Options("", 0, kernelCache));
        cpu = new CpuBackend(2);
    }

    @AfterAll
    static void close() {
        if (gpu != null) {
            gpu.close();
        }
        if (cpu != null) {
            cpu.close();
        }
    }

    private static ModelConfig model(int layers, int heads, int kvHeads, int headDim) {
        int hidden = heads * headDim;
        return new ModelConfig(Architecture.LLAMA, 100, hidden, hidden, layers, heads, kvHeads, headDim, 64, 1024, 1e-5,
                true, "silu", false, false, false, 10000.0, RopeScaling.NONE, 1, List.of(2), -1);
    }

    @Test
    void groupedQueryAttentionMatchesTheHostCache() {
        check(model(2, 8, 2, 16));
    }

    @Test
    void multiHeadAttentionMatchesTheHostCache() {
        check(model(2, 4, 4, 32));
    }

    private static void check(ModelConfig c) {
        SplittableRandom r = new SplittableRandom(c.heads() * 31 + c.kvHeads());
        int slots = 4;
        int maxTokens = 160;
        int[] promptSlots = {2, 0, 3}; // slot 1 stays empty
        int[] promptLengths = {37, 1, 130};
        long tokenBytes = 2L * c.kvDim() * DType.F16.byteSize();
        KvTraffic deviceTraffic = new KvTraffic();
        KvTraffic hostTraffic = new KvTraffic();
        long storedTokens = 0;
        long readTokens = 0;
        long hostLinkFloats = 0;
        try (MemoryKvCache expected = new MemoryKvCache(c, slots, cpu, new KvTraffic());
             CudaKvCache onDevice = new CudaKvCache(gpu, c, slots, maxTokens, deviceTraffic);
             CudaKvCache throughHost = new CudaKvCache(gpu, c, slots, maxTokens, hostTraffic)) {
            for (int layer = 0; layer < c.layers(); layer++) {
                // Layer 0: the prompts packed in order, all rows (one store). Layer 1: three rows of
                // padding first and the prompts in reverse order (a gathered subset).
                int padding = layer == 0 ? 0 : 3;
                int total = padding + promptLengths[0] + promptLengths[1] + promptLengths[2];
                int[] starts = new int[3];
                int next = padding;
                for (int i = 0; i < 3; i++) {
                    int s = layer == 0 ? i : 2 - i;
                    starts[s] = next;
                    next += promptLengths[s];
                }
                FloatMatrix k = matrix(r, total, c.kvDim());
                FloatMatrix v = matrix(r, total, c.kvDim());
                FloatMatrix x = matrix(r, total, c.hidden());
                try (Activations ka = gpu.upload(k); Activations va = gpu.upload(v); Activations xa = gpu.upload(x)) {
                    onDevice.writePrompts(layer, promptSlots, starts, promptLengths, ka, va, xa);
                }
                for (int s = 0; s < 3; s++) {
                    int from = starts[s];
                    int to = from + promptLengths[s];
                    throughHost.writePrompt(layer, promptSlots[s], k.rows(from, to), v.rows(from, to), x.rows(from, to));
                    expected.writePrompt(layer, promptSlots[s], f16(k.rows(from, to)), f16(v.rows(from, to)), x.rows(from, to));
                    storedTokens += promptLengths[s];
                    hostLinkFloats += 2L * promptLengths[s] * c.kvDim();
                }
            }
            assertLengths(slots, expected, onDevice, throughHost);

            for (int step = 0; step < 7; step++) {
                int[] active;
                if (step < 3) {
                    active = new int[] {2, 0, 3};
                } else if (step < 5) {
                    if (step == 3) {
                        for (KvCache cache : List.of(expected, onDevice, throughHost)) {
                            cache.release(0);
                        }
                        assertEquals(0, onDevice.length(0));
                    }
                    active = new int[] {3, 2};
                } else {
                    if (step == 5) {
                        // The released slot takes a new sequence.
                        for (int layer = 0; layer < c.layers(); layer++) {
                            FloatMatrix k = matrix(r, 5, c.kvDim());
                            FloatMatrix v = matrix(r, 5, c.kvDim());
                            FloatMatrix x = matrix(r, 5, c.hidden());
                            try (Activations ka = gpu.upload(k); Activations va = gpu.upload(v); Activations xa = gpu.upload(x)) {
                                onDevice.writePrompts(layer, new int[] {0}, new int[] {0}, new int[] {5}, ka, va, xa);
                            }
                            throughHost.writePrompt(layer, 0, k, v, x);
                            expected.writePrompt(layer, 0, f16(k), f16(v), x);
                            storedTokens += 5;
                            hostLinkFloats += 2L * 5 * c.kvDim();
                        }
                    }
                    active = new int[] {3, 0, 2};
                }
                int n = active.length;
                for (int layer = 0; layer < c.layers(); layer++) {
                    FloatMatrix q = matrix(r, n, c.qDim());
                    FloatMatrix k = matrix(r, n, c.kvDim());
                    FloatMatrix v = matrix(r, n, c.kvDim());
                    FloatMatrix x = matrix(r, n, c.hidden());
                    FloatMatrix want = new FloatMatrix(n, c.qDim());
                    expected.appendAndAttend(layer, active, q, f16(k), f16(v), x, want);
                    FloatMatrix viaHost = new FloatMatrix(n, c.qDim());
                    throughHost.appendAndAttend(layer, active, q, k, v, x, viaHost);
                    FloatMatrix onGpu;
                    try (Activations qa = gpu.upload(q); Activations ka = gpu.upload(k); Activations va = gpu.upload(v);
                         Activations xa = gpu.upload(x); Activations out = gpu.allocate(n, c.qDim())) {
                        onDevice.appendAndAttend(layer, active, qa, ka, va, xa, out);
                        onGpu = gpu.download(out);
                    }
                    String what = c.heads() + "/" + c.kvHeads() + " heads, step " + step + ", layer " + layer;
                    assertClose(want, onGpu, 1e-5, what + " (device activations)");
                    assertClose(want, viaHost, 1e-5, what + " (host matrices)");
                    storedTokens += n;
                    hostLinkFloats += (long) n * (2L * c.qDim() + 2L * c.kvDim());
                }
                assertLengths(slots, expected, onDevice, throughHost);
                for (int slot : active) {
                    readTokens += (long) c.layers() * onDevice.length(slot);
                }
            }
        }
        KvTraffic.Snapshot device = deviceTraffic.snapshot();
        assertEquals(0, device.linkBytes(), "the device path moves nothing over PCIe");
        assertEquals(storedTokens * tokenBytes, device.deviceWriteBytes());
        assertEquals(readTokens * tokenBytes, device.deviceReadBytes());
        KvTraffic.Snapshot host = hostTraffic.snapshot();
        assertEquals(hostLinkFloats * Float.BYTES, host.linkBytes());
        assertEquals(device.deviceWriteBytes(), host.deviceWriteBytes());
        assertEquals(device.deviceReadBytes(), host.deviceReadBytes());
    }

    @Test
    void misuseFailsWithTheReason() {
        ModelConfig c = model(2, 4, 2, 16);
        KvCache created;
        try (KvCacheFactory factory = CudaKvCache.factory(gpu)) {
            assertEquals(List.of("gpu-memory"), factory.deviceNames());
            assertTrue(factory.describe().startsWith("kv-cache=gpu (F16 in the memory of cuda:"), factory.describe());
            created = factory.create(c, 2, 4, null, new KvTraffic());
        }
        CudaKvCache cache = assertInstanceOf(CudaKvCache.class, created);
        SplittableRandom r = new SplittableRandom(4);
        FloatMatrix k = matrix(r, 3, c.kvDim());
        FloatMatrix x = matrix(r, 3, c.hidden());
        FloatMatrix q1 = matrix(r, 1, c.qDim());
        FloatMatrix k1 = matrix(r, 1, c.kvDim());
        FloatMatrix out = new FloatMatrix(1, c.qDim());
        try (cache) {
            cache.writePrompt(0, 1, k, k, x);
            IllegalStateException twice = assertThrows(IllegalStateException.class, () -> cache.writePrompt(0, 1, k, k, x));
            assertEquals("slot 1 of layer 0 already holds a prompt", twice.getMessage());
            cache.appendAndAttend(0, new int[] {1}, q1, k1, k1, x.rows(0, 1), out);
            IllegalStateException full = assertThrows(IllegalStateException.class,
                    () -> cache.appendAndAttend(0, new int[] {1}, q1, k1, k1, x.rows(0, 1), out));
            assertEquals("KV block slot 1 is full (4 tokens)", full.getMessage());
            try (Activations hostQ = cpu.upload(q1); Activations hostK = cpu.upload(k1); Activations dev = gpu.allocate(1, c.qDim())) {
                IllegalArgumentException foreign = assertThrows(IllegalArgumentException.class,
                        () -> cache.appendAndAttend(0, new int[] {0}, hostQ, hostK, hostK, null, dev));
                assertTrue(foreign.getMessage().contains("does not belong to this cuda backend"), foreign.getMessage());
            }
            cache.writePrompt(0, 0, k, k, x); // a refused step stored nothing: slot 0 still takes a prompt
            assertThrows(IndexOutOfBoundsException.class, () -> cache.writePrompt(2, 0, k, k, x));
            assertThrows(IndexOutOfBoundsException.class, () -> cache.writePrompt(0, 2, k, k, x));
        }
        IllegalStateException closed = assertThrows(IllegalStateException.class, () -> cache.length(0));
        assertEquals("kvCache=gpu: the cache is closed", closed.getMessage());
        cache.close();
    }

    @Test
    void aCacheThatDoesNotFitFailsInOneLine() {
        ModelConfig c = model(2, 8, 8, 128);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> new CudaKvCache(gpu, c, 1 << 16, 1 << 16, new KvTraffic()));
        assertTrue(e.getMessage().startsWith("kvCache=gpu: cannot place the KV cache of 65536 sequences x 65536 tokens x 2 "
                + "layers (33554432 MiB of F16 K and V) on cuda:"), e.getMessage());
        assertTrue(e.getMessage().contains("CUDA_ERROR_OUT_OF_MEMORY"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line");
        try (CudaKvCache small = new CudaKvCache(gpu, c, 2, 16, new KvTraffic())) {
            assertEquals(0, small.length(1));
        }
    }

    private static void assertLengths(int slots, KvCache expected, KvCache... actual) {
        for (int s = 0; s < slots; s++) {
            for (KvCache a : actual) {
                assertEquals(expected.length(s), a.length(s), "length of slot " + s);
            }
        }
    }

    private static FloatMatrix matrix(SplittableRandom r, int rows, int cols) {
        FloatMatrix m = new FloatMatrix(rows, cols);
        for (int i = 0; i < rows * cols; i++) {
            m.data()[i] = (float) (r.nextDouble() * 2 - 1);
        }
        return m;
    }

    /** The values as the GPU stores them: rounded to F16. */
    private static FloatMatrix f16(FloatMatrix m) {
        FloatMatrix out = new FloatMatrix(m.rows(), m.cols());
        MemorySegment half = MemorySegment.ofArray(new short[1]);
        for (int i = 0; i < m.rows() * m.cols(); i++) {
            DType.F16.setFloat(half, 0, m.data()[i]);
            out.data()[i] = DType.F16.getFloat(half, 0);
        }
        return out;
    }

    private static void assertClose(FloatMatrix expected, FloatMatrix actual, double absolute, String what) {
        assertEquals(expected.rows(), actual.rows(), what);
        assertEquals(expected.cols(), actual.cols(), what);
        for (int i = 0; i < expected.rows() * expected.cols(); i++) {
            float e = expected.data()[i];
            float a = actual.data()[i];
            if (!(Math.abs(e - a) <= absolute)) {
                throw new AssertionError(what + ": element " + i + " (row " + i / expected.cols() + ") is " + a
                        + ", expected " + e + " within " + absolute);
            }
        }
    }
}
