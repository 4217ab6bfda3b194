package io.inf2.csd;

import io.inf2.compute.cpu.CpuAttention;
import io.inf2.kv.PartialAttention;
import io.inf2.tensor.DType;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * The attention of one GQA group's query heads over keys and values that come in spans from several
 * places (chunks of pages read from a device, pages in flight, the writeback buffer, recomputed rows):
 * each span is attended with {@link CpuAttention} (one pass over its rows for all heads of the group)
 * and folded into the running result by log-sum-exp ({@link PartialAttention}). Not thread-safe; one
 * per thread.
 */
final class GroupPartials {
    private final int group;
    private final int headDim;
    private final float[] query;
    private final float[] out;
    private final float[] lse;
    private final float[] spanOut;
    private final float[] spanLse;

    GroupPartials(int group, int headDim) {
        this.group = group;
        this.headDim = headDim;
        this.query = new float[group * headDim];
        this.out = new float[group * headDim];
        this.lse = new float[group];
        this.spanOut = new float[group * headDim];
        this.spanLse = new float[group];
        reset();
    }

    int group() {
        return group;
    }

    int headDim() {
        return headDim;
    }

    /** Starts a task with the group's f32 queries at {@code q[offset...]}. */
    void begin(float[] q, int offset) {
        System.arraycopy(q, offset, query, 0, query.length);
        reset();
    }

    /** Starts a task with fp16 queries (as they arrive at a device). */
    void beginHalf(short[] q, int offset) {
        for (int i = 0; i < query.length; i++) {
            query[i] = Float.float16ToFloat(q[offset + i]);
        }
        reset();
    }

    private void reset() {
        Arrays.fill(out, 0f);
        Arrays.fill(lse, PartialAttention.EMPTY_LSE);
    }

    /**
     * Adds {@code tokens} tokens stored as pages ({@link RegionSpec}: per token its key then its value,
     * fp16) starting at element {@code firstElement} of {@code pages}.
     */
    void addPageTokens(MemorySegment pages, long firstElement, int tokens) {
        if (tokens == 0) {
            return;
        }
        CpuAttention.attendGroup(query, 0, group, headDim, pages, firstElement, pages, firstElement + headDim, DType.F16,
                2L * headDim, tokens, spanOut, 0, spanLse, 0);
        fold();
    }

    /** Adds f32 key and value rows at the given offsets and row stride. */
    void addRows(float[] keys, int keyOffset, float[] values, int valueOffset, int rowStride, int tokens) {
        if (tokens == 0) {
            return;
        }
        CpuAttention.attendGroup(query, 0, group, headDim, keys, keyOffset, values, valueOffset, rowStride, tokens,
                spanOut, 0, spanLse, 0);
        fold();
    }

    private void fold() {
        for (int g = 0; g < group; g++) {
            PartialAttention.accumulate(out, g * headDim, lse, g, spanOut, g * headDim, spanLse[g], headDim);
        }
    }

    /** Copies head {@code g}'s output (zeros when nothing was added) and returns its log-sum-exp. */
    float finish(int g, float[] target, int targetOffset) {
        System.arraycopy(out, g * headDim, target, targetOffset, headDim);
        return lse[g];
    }

    /** As {@link #finish(int, float[], int)}, rounding the output to fp16 (a device's wire format). */
    float finishHalf(int g, short[] target, int targetOffset) {
        for (int i = 0; i < headDim; i++) {
            target[targetOffset + i] = Float.floatToFloat16(out[g * headDim + i]);
        }
        return lse[g];
    }
}
