package io.inf2.compute.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.tensor.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * CpuAttention against a naive double-precision softmax(q·Kᵀ/√d)·V.
 *
 * <p>Tolerance: the output is a convex combination of V rows, so fp32 rounding in the scores (a
 * headDim-term dot product), in exp, in the running rescales and in the weighted sum bounds its
 * error by a few hundred u times max|v| for the sizes here; 1e-5·max|v| leaves margin while a wrong
 * row, head or weight shifts outputs by far more (values are O(1) and scores spread over several
 * units). The log-sum-exp is a sum of exp plus a log: 1e-5·(1 + |lse|).
 */
class CpuAttentionTest {

    private static final double TOLERANCE = 1e-5;

    @Test
    void oneHeadOverHeapRowsMatchesTheNaiveReference() {
        SplittableRandom random = new SplittableRandom(1);
        for (int headDim : new int[] {1, 7, 64, 128}) {
            for (int count : new int[] {1, 2, 5, 31, 32, 33, 100, 1000}) {
                int stride = headDim + 3;
                Case c = Case.random(random, 1, headDim, count, stride, 2f);
                float[] out = new float[headDim + 4];
                float lse = CpuAttention.attend(c.q, 0, headDim, c.keys, 1, c.values, 2, stride, count, out, 4);
                c.check(0, out, 4, lse, "headDim " + headDim + ", " + count + " rows");
            }
        }
    }

    @Test
    void groupOverHeapRowsMatchesEachHeadAlone() {
        SplittableRandom random = new SplittableRandom(2);
        for (int group : new int[] {1, 3, 8}) {
            int headDim = 24;
            int count = 77;
            Case c = Case.random(random, group, headDim, count, headDim, 3f);
            float[] out = new float[group * headDim];
            float[] lse = new float[group + 1];
            CpuAttention.attendGroup(c.q, 0, group, headDim, c.keys, 1, c.values, 2, headDim, count, out, 0, lse, 1);
            for (int g = 0; g < group; g++) {
                c.check(g, out, g * headDim, lse[1 + g], "group " + group + " head " + g);
            }
        }
    }

    @Test
    void growingScoresRescaleTheRunningResult() {
        // Scores rise row by row, so every block raises the running maximum and rescales the output.
        int headDim = 16;
        int count = 200;
        Case c = Case.random(new SplittableRandom(3), 2, headDim, count, headDim, 1f);
        for (int t = 0; t < count; t++) {
            for (int i = 0; i < headDim; i++) {
                c.keys[1 + t * headDim + i] = t * 0.05f * Math.signum(c.q[i] + 1e-9f);
            }
        }
        float[] out = new float[2 * headDim];
        float[] lse = new float[2];
        CpuAttention.attendGroup(c.q, 0, 2, headDim, c.keys, 1, c.values, 2, headDim, count, out, 0, lse, 0);
        c.check(0, out, 0, lse[0], "rising scores, head 0");
        c.check(1, out, headDim, lse[1], "rising scores, head 1");
    }

    @Test
    void segmentRowsOfEveryDtypeMatchTheReference() {
        SplittableRandom random = new SplittableRandom(4);
        try (Arena arena = Arena.ofConfined()) {
            for (DType dtype : new DType[] {DType.F16, DType.BF16, DType.F32}) {
                int group = 4;
                int headDim = 128;
                int count = 70;
                long stride = 2L * headDim; // K and V of a token side by side in one row
                MemorySegment kv = arena.allocate((count * stride + 5) * dtype.byteSize());
                Case c = Case.random(random, group, headDim, count, headDim, 2f);
                for (int t = 0; t < count; t++) {
                    for (int i = 0; i < headDim; i++) {
                        dtype.setFloat(kv, 5 + t * stride + i, c.keys[1 + t * headDim + i]);
                        dtype.setFloat(kv, 5 + t * stride + headDim + i, c.values[2 + t * headDim + i]);
                        // The reference sees exactly what is stored.
                        c.keys[1 + t * headDim + i] = dtype.getFloat(kv, 5 + t * stride + i);
                        c.values[2 + t * headDim + i] = dtype.getFloat(kv, 5 + t * stride + headDim + i);
                    }
                }
                float[] out = new float[group * headDim];
                float[] lse = new float[group];
                CpuAttention.attendGroup(c.q, 0, group, headDim, kv, 5, kv, 5 + headDim, dtype, stride, count, out, 0, lse, 0);
                for (int g = 0; g < group; g++) {
                    c.check(g, out, g * headDim, lse[g], dtype + " head " + g);
                }
                float[] single = new float[headDim];
                float singleLse = CpuAttention.attend(c.q, headDim, headDim, kv, 5, kv, 5 + headDim, dtype, stride, count, single, 0);
                c.check(1, single, 0, singleLse, dtype + " single head");
            }
        }
    }

    @Test
    void partialsOverSplitRangesMergeToTheWhole() {
        int headDim = 32;
        int count = 90;
        Case c = Case.random(new SplittableRandom(5), 1, headDim, count, headDim, 2f);
        float[] first = new float[headDim];
        float[] second = new float[headDim];
        int split = 37;
        float lse1 = CpuAttention.attend(c.q, 0, headDim, c.keys, 1, c.values, 2, headDim, split, first, 0);
        float lse2 = CpuAttention.attend(c.q, 0, headDim, c.keys, 1 + split * headDim, c.values, 2 + split * headDim,
                headDim, count - split, second, 0);
        double lse = Math.max(lse1, lse2) + Math.log(Math.exp(lse1 - Math.max(lse1, lse2)) + Math.exp(lse2 - Math.max(lse1, lse2)));
        float[] merged = new float[headDim];
        for (int i = 0; i < headDim; i++) {
            merged[i] = (float) (Math.exp(lse1 - lse) * first[i] + Math.exp(lse2 - lse) * second[i]);
        }
        c.check(0, merged, 0, (float) lse, "merged halves");
    }

    @Test
    void aReusedGroupOverPiecesInAnyOrderMatchesTheWhole() {
        int group = 2;
        int headDim = 40;
        int count = 150;
        SplittableRandom random = new SplittableRandom(6);
        CpuAttention.Group attention = new CpuAttention.Group(group, headDim);
        try (Arena arena = Arena.ofConfined()) {
            for (int query = 0; query < 3; query++) {
                Case c = Case.random(random, group, headDim, count, headDim, 2f);
                // Rows 0..59 as F16 pages after rows 60..149 from the heap: order must not matter.
                MemorySegment pages = arena.allocate(60L * headDim * 2 * 2);
                for (int t = 0; t < 60; t++) {
                    for (int i = 0; i < headDim; i++) {
                        DType.F16.setFloat(pages, (long) t * headDim + i, c.keys[1 + t * headDim + i]);
                        DType.F16.setFloat(pages, 60L * headDim + (long) t * headDim + i, c.values[2 + t * headDim + i]);
                        c.keys[1 + t * headDim + i] = DType.F16.getFloat(pages, (long) t * headDim + i);
                        c.values[2 + t * headDim + i] = DType.F16.getFloat(pages, 60L * headDim + (long) t * headDim + i);
                    }
                }
                attention.begin(c.q, 0);
                attention.add(c.keys, 1 + 60 * headDim, c.values, 2 + 60 * headDim, headDim, 50);
                attention.add(pages, 0, pages, 60L * headDim, DType.F16, headDim, 60);
                attention.add(c.keys, 1 + 110 * headDim, c.values, 2 + 110 * headDim, headDim, 40);
                attention.add(c.keys, 0, c.values, 0, headDim, 0);
                float[] out = new float[group * headDim];
                float[] lse = new float[group];
                attention.finish(out, 0, lse, 0);
                for (int g = 0; g < group; g++) {
                    c.check(g, out, g * headDim, lse[g], "query " + query + " head " + g);
                }
            }
        }
        assertThrows(IllegalStateException.class, () -> new CpuAttention.Group(1, 4).finish(new float[4], 0, new float[1], 0));
    }

    @Test
    void anEmptyRangeGivesZerosAndTheEmptyLogSumExp() {
        float[] out = {1, 2, 3, 4, 9};
        float lse = CpuAttention.attend(new float[4], 0, 4, new float[0], 0, new float[0], 0, 4, 0, out, 0);
        assertEquals(CpuAttention.EMPTY_LSE, lse);
        org.junit.jupiter.api.Assertions.assertArrayEquals(new float[] {0, 0, 0, 0, 9}, out);
    }

    @Test
    void badShapesAreRejected() {
        assertThrows(IllegalArgumentException.class,
                () -> CpuAttention.attend(new float[4], 0, 0, new float[4], 0, new float[4], 0, 4, 1, new float[4], 0));
        assertThrows(IllegalArgumentException.class,
                () -> CpuAttention.attend(new float[4], 0, 4, MemorySegment.ofArray(new int[4]), 0,
                        MemorySegment.ofArray(new int[4]), 0, DType.I32, 4, 1, new float[4], 0));
    }

    /** Random q for a group, and K, V rows at offsets 1 and 2 with the given stride. */
    private record Case(float[] q, float[] keys, float[] values, int group, int headDim, int count, int stride) {

        static Case random(SplittableRandom random, int group, int headDim, int count, int stride, float qScale) {
            float[] q = new float[group * headDim];
            for (int i = 0; i < q.length; i++) {
                q[i] = (float) random.nextDouble(-qScale, qScale);
            }
            float[] keys = new float[1 + count * stride];
            float[] values = new float[2 + count * stride];
            for (int i = 0; i < keys.length; i++) {
                keys[i] = (float) random.nextDouble(-1, 1);
            }
            for (int i = 0; i < values.length; i++) {
                values[i] = (float) random.nextDouble(-1, 1);
            }
            return new Case(q, keys, values, group, headDim, count, stride);
        }

        /** Compares head g's output at out[outOffset..] and its lse with the naive formula. */
        void check(int g, float[] out, int outOffset, float lse, String what) {
            double[] scores = new double[count];
            double max = Double.NEGATIVE_INFINITY;
            for (int t = 0; t < count; t++) {
                double s = 0;
                for (int i = 0; i < headDim; i++) {
                    s += (double) q[g * headDim + i] * keys[1 + t * stride + i];
                }
                scores[t] = s / Math.sqrt(headDim);
                max = Math.max(max, scores[t]);
            }
            double sum = 0;
            for (int t = 0; t < count; t++) {
                sum += Math.exp(scores[t] - max);
            }
            double maxV = 0;
            for (int t = 0; t < count; t++) {
                for (int i = 0; i < headDim; i++) {
                    maxV = Math.max(maxV, Math.abs(values[2 + t * stride + i]));
                }
            }
            for (int i = 0; i < headDim; i++) {
                double expected = 0;
                for (int t = 0; t < count; t++) {
                    expected += Math.exp(scores[t] - max) / sum * values[2 + t * stride + i];
                }
                double actual = out[outOffset + i];
                assertTrue(Math.abs(expected - actual) <= TOLERANCE * maxV,
                        what + ": output " + i + " is " + actual + ", expected " + expected);
            }
            double expectedLse = max + Math.log(sum);
            assertTrue(Math.abs(expectedLse - lse) <= TOLERANCE * (1 + Math.abs(expectedLse)),
                    what + ": lse " + lse + ", expected " + expectedLse);
        }
    }
}
