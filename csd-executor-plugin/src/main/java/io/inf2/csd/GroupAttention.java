package io.inf2.csd;

import io.inf2.compute.cpu.CpuKernels;
import io.inf2.kv.PartialAttention;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Partial attention of the query heads of one GQA group over keys and values that arrive in blocks
 * (pages read from a device, a writeback buffer, recomputed rows), in one pass: an online softmax in
 * f32 that rescales its running sum and output when a block raises the maximum score. Each block of
 * keys and values is read once for all heads of the group. Not thread-safe; one per worker thread.
 */
final class GroupAttention {
    private static final ValueLayout.OfShort FP16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final CpuKernels kernels;
    private final int groupSize;
    private final int headDim;
    private final float scale;
    private final float[] q;
    private final float[] max;
    private final float[] sum;
    private final float[] acc;
    private float[] scores = new float[64];
    private short[] halfScratch = new short[0];
    private float[] keyScratch = new float[0];
    private float[] valueScratch = new float[0];

    GroupAttention(CpuKernels kernels, int groupSize, int headDim) {
        this.kernels = kernels;
        this.groupSize = groupSize;
        this.headDim = headDim;
        this.scale = (float) (1.0 / Math.sqrt(headDim));
        this.q = new float[groupSize * headDim];
        this.max = new float[groupSize];
        this.sum = new float[groupSize];
        this.acc = new float[groupSize * headDim];
    }

    int groupSize() {
        return groupSize;
    }

    int headDim() {
        return headDim;
    }

    /** Starts a new task with the group's f32 queries at {@code query[offset...]}. */
    void begin(float[] query, int offset) {
        System.arraycopy(query, offset, q, 0, q.length);
        reset();
    }

    /** Starts a new task with fp16 queries. */
    void beginHalf(short[] query, int offset) {
        for (int i = 0; i < q.length; i++) {
            q[i] = Float.float16ToFloat(query[offset + i]);
        }
        reset();
    }

    private void reset() {
        Arrays.fill(max, Float.NEGATIVE_INFINITY);
        Arrays.fill(sum, 0f);
        Arrays.fill(acc, 0f);
    }

    /** Adds {@code tokens} f32 key and value rows at the given offsets and row strides. */
    void addRows(float[] k, int kOffset, int kStride, float[] v, int vOffset, int vStride, int tokens) {
        if (tokens == 0) {
            return;
        }
        if (scores.length < tokens) {
            scores = new float[Math.max(tokens, scores.length * 2)];
        }
        for (int g = 0; g < groupSize; g++) {
            int qOff = g * headDim;
            float blockMax = Float.NEGATIVE_INFINITY;
            for (int t = 0; t < tokens; t++) {
                float s = kernels.dot(q, qOff, k, kOffset + t * kStride, headDim) * scale;
                scores[t] = s;
                blockMax = Math.max(blockMax, s);
            }
            float newMax = Math.max(max[g], blockMax);
            int accOff = g * headDim;
            if (max[g] != Float.NEGATIVE_INFINITY && newMax > max[g]) {
                float correction = (float) Math.exp(max[g] - newMax);
                sum[g] *= correction;
                for (int i = 0; i < headDim; i++) {
                    acc[accOff + i] *= correction;
                }
            }
            max[g] = newMax;
            float s = sum[g];
            for (int t = 0; t < tokens; t++) {
                float p = (float) Math.exp(scores[t] - newMax);
                s += p;
                kernels.axpy(p, v, vOffset + t * vStride, acc, accOff, headDim);
            }
            sum[g] = s;
        }
    }

    /** Adds whole pages from an fp16 page image (layout of {@link RegionSpec}) held in a Java array. */
    void addPages(short[] image, int offset, int pages, int pageTokens) {
        int half = pageTokens * headDim;
        ensureScratch(half);
        for (int p = 0; p < pages; p++) {
            int base = offset + p * 2 * half;
            toFloat(image, base, keyScratch, half);
            toFloat(image, base + half, valueScratch, half);
            addRows(keyScratch, 0, headDim, valueScratch, 0, headDim, pageTokens);
        }
    }

    /** Adds the first {@code tokens} tokens of one fp16 page image (a partly filled writeback buffer). */
    void addPartialPage(short[] image, int offset, int tokens, int pageTokens) {
        int half = pageTokens * headDim;
        int used = tokens * headDim;
        ensureScratch(half);
        toFloat(image, offset, keyScratch, used);
        toFloat(image, offset + half, valueScratch, used);
        addRows(keyScratch, 0, headDim, valueScratch, 0, headDim, tokens);
    }

    /** Adds whole pages from native memory (a device's read buffer) starting at byte {@code byteOffset}. */
    void addPages(MemorySegment pagesSegment, long byteOffset, int pages, int pageTokens) {
        int half = pageTokens * headDim;
        ensureScratch(half);
        if (halfScratch.length < half) {
            halfScratch = new short[half];
        }
        for (int p = 0; p < pages; p++) {
            long base = byteOffset + (long) p * 4 * half;
            MemorySegment.copy(pagesSegment, FP16_LE, base, halfScratch, 0, half);
            toFloat(halfScratch, 0, keyScratch, half);
            MemorySegment.copy(pagesSegment, FP16_LE, base + 2L * half, halfScratch, 0, half);
            toFloat(halfScratch, 0, valueScratch, half);
            addRows(keyScratch, 0, headDim, valueScratch, 0, headDim, pageTokens);
        }
    }

    private void ensureScratch(int half) {
        if (keyScratch.length < half) {
            keyScratch = new float[half];
            valueScratch = new float[half];
        }
    }

    private static void toFloat(short[] src, int offset, float[] dst, int count) {
        for (int i = 0; i < count; i++) {
            dst[i] = Float.float16ToFloat(src[offset + i]);
        }
    }

    /**
     * Writes head {@code g}'s normalised output to {@code out[outOffset...]} and returns its
     * log-sum-exp ({@link PartialAttention#EMPTY_LSE} and zeros when no token was added).
     */
    float finish(int g, float[] out, int outOffset) {
        int accOff = g * headDim;
        if (sum[g] == 0f) {
            Arrays.fill(out, outOffset, outOffset + headDim, 0f);
            return PartialAttention.EMPTY_LSE;
        }
        float inv = 1f / sum[g];
        for (int i = 0; i < headDim; i++) {
            out[outOffset + i] = acc[accOff + i] * inv;
        }
        return (float) (max[g] + Math.log(sum[g]));
    }

    /** As {@link #finish(int, float[], int)}, rounding the output to fp16 (a device's wire format). */
    float finishHalf(int g, short[] out, int outOffset) {
        int accOff = g * headDim;
        if (sum[g] == 0f) {
            Arrays.fill(out, outOffset, outOffset + headDim, (short) 0);
            return PartialAttention.EMPTY_LSE;
        }
        float inv = 1f / sum[g];
        for (int i = 0; i < headDim; i++) {
            out[outOffset + i] = Float.floatToFloat16(acc[accOff + i] * inv);
        }
        return (float) (max[g] + Math.log(sum[g]));
    }
}
