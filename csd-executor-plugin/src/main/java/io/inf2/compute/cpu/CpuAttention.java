package io.inf2.compute.cpu;

import io.inf2.tensor.DType;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Decode attention on the CPU: one query token against the cached K and V rows of one KV head, as a
 * partial result that merges exactly with partials computed elsewhere (other row ranges, other
 * places): the normalised output softmax(q·Kᵀ/√d)·V over the given rows, and the log-sum-exp of the
 * scaled scores. An empty range yields zeros and {@link #EMPTY_LSE}.
 *
 * <p>The group variants serve every query head of a GQA group (the heads that read the same KV head)
 * in one pass over the rows: each K and V row is loaded once and used by all of them. Query head g
 * of a group is at {@code q[qOffset + g·headDim ..]}, its output at {@code out[outOffset + g·headDim ..]}
 * and its log-sum-exp at {@code lse[lseOffset + g]}, the layout of a [heads·headDim] row.
 *
 * <p>Rows are scored a block at a time and folded into the running result by online softmax (the
 * output is rescaled when a block raises the running maximum), so memory is bounded by the block,
 * each row is read once, and exp runs vectorised over a block. Arithmetic is fp32 throughout.
 * Thread-safe: all state is per call.
 */
public final class CpuAttention {

    /** The log-sum-exp of an empty range; the same value as {@code io.inf2.kv.PartialAttention.EMPTY_LSE}. */
    public static final float EMPTY_LSE = Float.NEGATIVE_INFINITY;

    /** Rows scored per block. */
    private static final int BLOCK = 32;

    private static final CpuKernels KERNELS = CpuKernels.fastest();

    private CpuAttention() {
    }

    /**
     * One query head over rows [0, count) of one KV head in heap f32 memory.
     *
     * @param keys      row t at {@code keys[keyOffset + t·rowStride .. + headDim)}
     * @param values    row t at {@code values[valueOffset + t·rowStride .. + headDim)}
     * @param rowStride floats from one row to the next (headDim for a head-major cache, kvHeads·headDim
     *                  for the rows of a packed [tokens, kvDim] matrix)
     * @return the log-sum-exp of the scores q·k/√headDim
     */
    public static float attend(float[] q, int qOffset, int headDim,
                               float[] keys, int keyOffset, float[] values, int valueOffset, int rowStride, int count,
                               float[] out, int outOffset) {
        float[] lse = new float[1];
        attendGroup(q, qOffset, 1, headDim, keys, keyOffset, values, valueOffset, rowStride, count, out, outOffset, lse, 0);
        return lse[0];
    }

    /** {@link #attend(float[], int, int, float[], int, float[], int, int, int, float[], int)} for the groupSize query heads of a GQA group. */
    public static void attendGroup(float[] q, int qOffset, int groupSize, int headDim,
                                   float[] keys, int keyOffset, float[] values, int valueOffset, int rowStride, int count,
                                   float[] out, int outOffset, float[] lse, int lseOffset) {
        attendGroup(KERNELS, q, qOffset, groupSize, headDim, keys, keyOffset, values, valueOffset, rowStride, count,
                out, outOffset, lse, lseOffset);
    }

    /** The heap-row group attention on given kernels (the CPU backend passes its own). */
    static void attendGroup(CpuKernels kernels, float[] q, int qOffset, int groupSize, int headDim,
                            float[] keys, int keyOffset, float[] values, int valueOffset, int rowStride, int count,
                            float[] out, int outOffset, float[] lse, int lseOffset) {
        checkShape(groupSize, headDim, count);
        State state = new State(kernels, q, qOffset, groupSize, headDim, out, outOffset, Math.min(count, BLOCK));
        for (int t0 = 0; t0 < count; t0 += BLOCK) {
            int rows = Math.min(BLOCK, count - t0);
            state.fold(keys, keyOffset + t0 * rowStride, values, valueOffset + t0 * rowStride, rowStride, rows);
        }
        state.finish(lse, lseOffset);
    }

    /**
     * One query head over rows [0, count) of one KV head stored in a memory segment (a KV page, a
     * region read from storage) as F16, BF16 or F32. Offsets and strides count elements of
     * {@code dtype}, not bytes.
     *
     * @param keys      row t at elements {@code keyIndex + t·rowStride .. + headDim)}
     * @param values    row t at elements {@code valueIndex + t·rowStride .. + headDim)}
     * @return the log-sum-exp of the scores q·k/√headDim
     */
    public static float attend(float[] q, int qOffset, int headDim, MemorySegment keys, long keyIndex,
                               MemorySegment values, long valueIndex, DType dtype, long rowStride, int count,
                               float[] out, int outOffset) {
        float[] lse = new float[1];
        attendGroup(q, qOffset, 1, headDim, keys, keyIndex, values, valueIndex, dtype, rowStride, count, out, outOffset, lse, 0);
        return lse[0];
    }

    /** {@link #attend(float[], int, int, MemorySegment, long, MemorySegment, long, DType, long, int, float[], int)} for the groupSize query heads of a GQA group. */
    public static void attendGroup(float[] q, int qOffset, int groupSize, int headDim, MemorySegment keys, long keyIndex,
                                   MemorySegment values, long valueIndex, DType dtype, long rowStride, int count,
                                   float[] out, int outOffset, float[] lse, int lseOffset) {
        checkShape(groupSize, headDim, count);
        if (!dtype.isFloatingPoint()) {
            throw new IllegalArgumentException("KV rows must be F32, F16 or BF16, got " + dtype);
        }
        int block = Math.min(count, BLOCK);
        State state = new State(KERNELS, q, qOffset, groupSize, headDim, out, outOffset, block);
        float[] k = new float[block * headDim];
        float[] v = new float[block * headDim];
        for (int t0 = 0; t0 < count; t0 += BLOCK) {
            int rows = Math.min(BLOCK, count - t0);
            if (rowStride == headDim) {
                KERNELS.widen(keys, dtype, keyIndex + t0 * rowStride, k, 0, rows * headDim);
                KERNELS.widen(values, dtype, valueIndex + t0 * rowStride, v, 0, rows * headDim);
            } else {
                for (int r = 0; r < rows; r++) {
                    long row = t0 + r;
                    KERNELS.widen(keys, dtype, keyIndex + row * rowStride, k, r * headDim, headDim);
                    KERNELS.widen(values, dtype, valueIndex + row * rowStride, v, r * headDim, headDim);
                }
            }
            state.fold(k, 0, v, 0, headDim, rows);
        }
        state.finish(lse, lseOffset);
    }

    private static void checkShape(int groupSize, int headDim, int count) {
        if (groupSize < 1 || headDim < 1 || count < 0) {
            throw new IllegalArgumentException("attention needs groupSize >= 1, headDim >= 1 and count >= 0, got "
                    + groupSize + ", " + headDim + ", " + count);
        }
    }

    /** The running (unnormalised) result of a group over the rows folded so far. */
    private static final class State {
        private final CpuKernels kernels;
        /** The group's queries times 1/√headDim, so scores come out scaled. */
        private final float[] scaledQ;
        private final int group;
        private final int headDim;
        private final float[] out;
        private final int outOffset;
        /** Per head: the largest scaled score so far, and Σ exp(score − max). */
        private final float[] max;
        private final float[] sum;
        /** [group][block] scores, then softmax numerators, of the current block. */
        private final float[] scores;
        private final int block;

        State(CpuKernels kernels, float[] q, int qOffset, int group, int headDim, float[] out, int outOffset, int block) {
            this.kernels = kernels;
            this.scaledQ = Arrays.copyOfRange(q, qOffset, qOffset + group * headDim);
            kernels.scale(scaledQ, 0, scaledQ.length, (float) (1.0 / Math.sqrt(headDim)));
            this.group = group;
            this.headDim = headDim;
            this.out = out;
            this.outOffset = outOffset;
            this.max = new float[group];
            this.sum = new float[group];
            this.block = block;
            this.scores = new float[group * block];
            Arrays.fill(max, Float.NEGATIVE_INFINITY);
            Arrays.fill(out, outOffset, outOffset + group * headDim, 0f);
        }

        void fold(float[] keys, int keyOffset, float[] values, int valueOffset, int rowStride, int rows) {
            for (int g = 0; g < group; g++) {
                kernels.dotRows(scaledQ, g * headDim, keys, keyOffset, rowStride, rows, headDim, scores, g * block);
            }
            for (int g = 0; g < group; g++) {
                int s = g * block;
                float blockMax = Float.NEGATIVE_INFINITY;
                for (int r = 0; r < rows; r++) {
                    blockMax = Math.max(blockMax, scores[s + r]);
                }
                float previous = max[g];
                if (blockMax > previous) {
                    if (previous != Float.NEGATIVE_INFINITY) {
                        float factor = (float) Math.exp(previous - blockMax);
                        kernels.scale(out, outOffset + g * headDim, headDim, factor);
                        sum[g] *= factor;
                    }
                    max[g] = blockMax;
                }
                sum[g] += kernels.expShiftSum(scores, s, rows, max[g]);
            }
            for (int g = 0; g < group; g++) {
                kernels.accumulateRows(scores, g * block, values, valueOffset, rowStride, rows, headDim, out, outOffset + g * headDim);
            }
        }

        void finish(float[] lse, int lseOffset) {
            for (int g = 0; g < group; g++) {
                if (sum[g] == 0f) {
                    lse[lseOffset + g] = EMPTY_LSE;
                    continue;
                }
                kernels.scale(out, outOffset + g * headDim, headDim, 1f / sum[g]);
                lse[lseOffset + g] = max[g] + (float) Math.log(sum[g]);
            }
        }
    }
}
