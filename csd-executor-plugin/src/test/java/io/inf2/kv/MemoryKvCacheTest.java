package io.inf2.kv;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.inf2.compute.cpu.CpuBackend;
import io.inf2.model.Architecture;
import io.inf2.model.ModelConfig;
import io.inf2.model.RopeScaling;
import io.inf2.tensor.DType;
import io.inf2.tensor.FloatMatrix;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The host-memory cache in each stored type: a half-precision cache must answer exactly as an F32
 * cache fed the same K and V already rounded to that type (the rounding is the only difference),
 * across prompts, decode appends, growth past the first capacity and slot reuse.
 */
class MemoryKvCacheTest {
    private static final int HEADS = 4;
    private static final int KV_HEADS = 2;
    private static final int HEAD_DIM = 16;
    private static CpuBackend host;

    @BeforeAll
    static void start() {
        host = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        host.close();
    }

    private static ModelConfig model() {
        return new ModelConfig(Architecture.LLAMA, 32, HEADS * HEAD_DIM, HEADS * HEAD_DIM, 2, HEADS, KV_HEADS, HEAD_DIM, 16,
                4096, 1e-5, true, "silu", false, false, false, 10000, RopeScaling.NONE, 1, List.of(2), 0);
    }

    private static FloatMatrix random(SplittableRandom r, int rows, int cols) {
        FloatMatrix m = new FloatMatrix(rows, cols);
        for (int i = 0; i < m.data().length; i++) {
            m.data()[i] = (float) (r.nextDouble() * 4 - 2);
        }
        return m;
    }

    /** {@code m} as it reads back after being stored in {@code type}. */
    private static FloatMatrix rounded(FloatMatrix m, DType type) {
        FloatMatrix out = new FloatMatrix(m.rows(), m.cols());
        MemorySegment one = MemorySegment.ofArray(new long[1]);
        for (int i = 0; i < m.data().length; i++) {
            type.setFloat(one, 0, m.data()[i]);
            out.data()[i] = type.getFloat(one, 0);
        }
        return out;
    }

    @Test
    void halfPrecisionCachesAnswerAsF32CachesOfRoundedValues() {
        for (DType type : new DType[] {DType.F16, DType.BF16}) {
            ModelConfig c = model();
            SplittableRandom r = new SplittableRandom(type.ordinal());
            // maxTokens 4 with a 6-token prompt and 20 appends: the slots grow twice.
            try (MemoryKvCache half = new MemoryKvCache(c, 2, 4, type, host, new KvTraffic());
                 MemoryKvCache exact = new MemoryKvCache(c, 2, 4, DType.F32, host, new KvTraffic())) {
                assertEquals(type, half.storedType());
                for (int round = 0; round < 2; round++) { // the second round reuses released slots
                    for (int layer = 0; layer < c.layers(); layer++) {
                        for (int slot = 0; slot < 2; slot++) {
                            FloatMatrix k = random(r, 6 + slot, c.kvDim());
                            FloatMatrix v = random(r, 6 + slot, c.kvDim());
                            half.writePrompt(layer, slot, k, v, null);
                            exact.writePrompt(layer, slot, rounded(k, type), rounded(v, type), null);
                        }
                    }
                    for (int step = 0; step < 20; step++) {
                        for (int layer = 0; layer < c.layers(); layer++) {
                            int[] slots = {1, 0};
                            FloatMatrix q = random(r, 2, c.qDim());
                            FloatMatrix k = random(r, 2, c.kvDim());
                            FloatMatrix v = random(r, 2, c.kvDim());
                            FloatMatrix got = new FloatMatrix(2, c.qDim());
                            FloatMatrix want = new FloatMatrix(2, c.qDim());
                            half.appendAndAttend(layer, slots, q, k, v, null, got);
                            exact.appendAndAttend(layer, slots, q, rounded(k, type), rounded(v, type), null, want);
                            for (int i = 0; i < want.data().length; i++) {
                                assertEquals(want.data()[i], got.data()[i], 1e-5 * (1 + Math.abs(want.data()[i])),
                                        type + " round " + round + " step " + step + " layer " + layer + " element " + i);
                            }
                        }
                    }
                    assertEquals(26, half.length(0));
                    assertEquals(27, half.length(1));
                    half.release(0);
                    half.release(1);
                    exact.release(0);
                    exact.release(1);
                    assertEquals(0, half.length(0));
                }
            }
        }
    }

    @Test
    void onlyFloatingPointTypesAreKept() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new MemoryKvCache(model(), 1, 0, DType.I32, host, new KvTraffic()));
        assertEquals("the memory KV cache keeps F32, F16 or BF16, not I32", e.getMessage());
    }
}
