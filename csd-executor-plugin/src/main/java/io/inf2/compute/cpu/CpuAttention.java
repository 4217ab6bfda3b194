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
 * <p>The group forms serve every query head of a GQA group (the heads that read the same KV head)
 * in one pass over the rows: each K and V row is loaded once and used by all of them. Query head g
 * of a group is at {@code q[qOffset + g·headDim ..]}, its output at {@code out[outOffset + g·headDim ..]}
 * and its log-sum-exp at {@code lse[lseOffset + g]}, the layout of a [heads·headDim] row.
 *
 * <p>The static methods take all rows at once. {@link Group} is the same computation for rows that
 * arrive in pieces (pages read from a device, a writeback buffer): begin, add any number of row
 * ranges, finish; it is reusable and allocates nothing after construction.
 *
 * <p>Rows are scored a block at a time and folded into the running result by online softmax (the
 * output is rescaled when a block raises the running maximum), so memory is bounded by the block,
 * each row is read once, and exp runs vectorised over a block. Arithmetic is fp32 throughout.
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
        Group group = new Group(KERNELS, groupSize, headDim, Math.min(count, BLOCK));
        group.begin(q, qOffset);
        group.add(keys, keyOffset, values, valueOffset, rowStride, count);
        group.finish(out, outOffset, lse, lseOffset);
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
        Group group = new Group(KERNELS, groupSize, headDim, Math.min(count, BLOCK));
        group.begin(q, qOffset);
        group.add(keys, keyIndex, values, valueIndex, dtype, rowStride, count);
        group.finish(out, outOffset, lse, lseOffset);
    }

    /**
     * The running attention of one GQA group's query heads over rows added piece by piece. Not
     * thread-safe: keep one per worker thread. Usage: {@link #begin}, any number of {@code add}s
     * (rows in any order: softmax does not care), {@link #finish}; then begin again.
     */
    public static final class Group {
        private final CpuKernels kernels;
        private final int groupSize;
        private final int headDim;
        private final int block;
        /** The group's queries times 1/√headDim, so scores come out scaled. */
        private final float[] scaledQ;
        /** Per head: the largest score so far, Σ exp(score − max), and Σ exp(score − max)·v. */
        private final float[] max;
        private final float[] sum;
        private final float[] acc;
        /** [group][block] scores, then softmax numerators, of the current block. */
        private final float[] scores;
        /** Rows of a segment block widened to f32; allocated on the first segment add. */
        private float[] keyScratch;
        private float[] valueScratch;
        private boolean begun;

        /** A group of {@code groupSize} query heads of width {@code headDim}, on the fastest kernels. */
        public Group(int groupSize, int headDim) {
            this(KERNELS, groupSize, headDim);
        }

        /** A group on the given kernels (the CPU backend passes its own). */
        public Group(CpuKernels kernels, int groupSize, int headDim) {
            this(kernels, groupSize, headDim, BLOCK);
        }

        Group(CpuKernels kernels, int groupSize, int headDim, int block) {
            if (groupSize < 1 || headDim < 1) {
                throw new IllegalArgumentException("attention needs groupSize >= 1 and headDim >= 1, got " + groupSize + " and " + headDim);
            }
            this.kernels = kernels;
            this.groupSize = groupSize;
            this.headDim = headDim;
            this.block = Math.max(1, block);
            this.scaledQ = new float[groupSize * headDim];
            this.max = new float[groupSize];
            this.sum = new float[groupSize];
            this.acc = new float[groupSize * headDim];
            this.scores = new float[groupSize * this.block];
        }

        public int groupSize() {
            return groupSize;
        }

        public int headDim() {
            return headDim;
        }

        /** Starts a query: the group's heads at {@code q[qOffset .. + groupSize·headDim)}; forgets earlier rows. */
        public void begin(float[] q, int qOffset) {
            System.arraycopy(q, qOffset, scaledQ, 0, scaledQ.length);
            kernels.scale(scaledQ, 0, scaledQ.length, (float) (1.0 / Math.sqrt(headDim)));
            Arrays.fill(max, Float.NEGATIVE_INFINITY);
            Arrays.fill(sum, 0f);
            Arrays.fill(acc, 0f);
            begun = true;
        }

        /** Adds rows [0, count) in heap f32 memory, laid out as in {@link CpuAttention#attend(float[], int, int, float[], int, float[], int, int, int, float[], int)}. */
        public void add(float[] keys, int keyOffset, float[] values, int valueOffset, int rowStride, int count) {
            requireBegun(count);
            for (int t0 = 0; t0 < count; t0 += block) {
                fold(keys, keyOffset + t0 * rowStride, values, valueOffset + t0 * rowStride, rowStride, Math.min(block, count - t0));
            }
        }

        /** Adds rows [0, count) of a segment, laid out as in {@link CpuAttention#attend(float[], int, int, MemorySegment, long, MemorySegment, long, DType, long, int, float[], int)}. */
        public void add(MemorySegment keys, long keyIndex, MemorySegment values, long valueIndex, DType dtype,
                        long rowStride, int count) {
            requireBegun(count);
            if (!dtype.isFloatingPoint()) {
                throw new IllegalArgumentException("KV rows must be F32, F16 or BF16, got " + dtype);
            }
            if (keyScratch == null) {
                keyScratch = new float[block * headDim];
                valueScratch = new float[block * headDim];
            }
            for (int t0 = 0; t0 < count; t0 += block) {
                int rows = Math.min(block, count - t0);
                if (rowStride == headDim) {
                    // Contiguous rows widen in one call, long enough for the vector loop to pay off.
                    kernels.widen(keys, dtype, keyIndex + t0 * rowStride, keyScratch, 0, rows * headDim);
                    kernels.widen(values, dtype, valueIndex + t0 * rowStride, valueScratch, 0, rows * headDim);
                } else {
                    for (int r = 0; r < rows; r++) {
                        long row = t0 + r;
                        kernels.widen(keys, dtype, keyIndex + row * rowStride, keyScratch, r * headDim, headDim);
                        kernels.widen(values, dtype, valueIndex + row * rowStride, valueScratch, r * headDim, headDim);
                    }
                }
                fold(keyScratch, 0, valueScratch, 0, headDim, rows);
            }
        }

        /**
         * Writes each head's normalised output and log-sum-exp over every row added since
         * {@link #begin} (zeros and {@link #EMPTY_LSE} if none was).
         */
        public void finish(float[] out, int outOffset, float[] lse, int lseOffset) {
            requireBegun(0);
            for (int g = 0; g < groupSize; g++) {
                int o = outOffset + g * headDim;
                if (sum[g] == 0f) {
                    Arrays.fill(out, o, o + headDim, 0f);
                    lse[lseOffset + g] = EMPTY_LSE;
                    continue;
                }
                System.arraycopy(acc, g * headDim, out, o, headDim);
                kernels.scale(out, o, headDim, 1f / sum[g]);
                lse[lseOffset + g] = max[g] + (float) Math.log(sum[g]);
            }
        }

        private void requireBegun(int count) {
            if (!begun) {
                throw new IllegalStateException("attention group used before begin()");
            }
            if (count < 0) {
                throw new IllegalArgumentException("attention over a negative number of rows: " + count);
            }
        }

        private void fold(float[] keys, int keyOffset, float[] values, int valueOffset, int rowStride, int rows) {
            for (int g = 0; g < groupSize; g++) {
                kernels.dotRows(scaledQ, g * headDim, keys, keyOffset, rowStride, rows, headDim, scores, g * block);
            }
            for (int g = 0; g < groupSize; g++) {
                int s = g * block;
                float blockMax = Float.NEGATIVE_INFINITY;
                for (int r = 0; r < rows; r++) {
                    blockMax = Math.max(blockMax, scores[s + r]);
                }
                float previous = max[g];
                if (blockMax > previous) {
                    if (previous != Float.NEGATIVE_INFINITY) {
                        float factor = (float) Math.exp(previous - blockMax);
                        kernels.scale(acc, g * headDim, headDim, factor);
                        sum[g] *= factor;
                    }
                    max[g] = blockMax;
                }
                sum[g] += kernels.expShiftSum(scores, s, rows, max[g]);
            }
            for (int g = 0; g < groupSize; g++) {
                kernels.accumulateRows(scores, g * block, values, valueOffset, rowStride, rows, headDim, acc, g * headDim);
            }
        }
    }
}
