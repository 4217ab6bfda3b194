package io.inf2.compute.cpu;

import io.inf2.tensor.DType;
import java.lang.foreign.MemorySegment;

/**
 * The inner loops of the CPU backend. {@link ReferenceKernels} is the plain definition every fast
 * path is tested against; {@link VectorKernels} is the Vector API implementation used in production.
 * The backend splits work across threads; kernels are single-threaded and keep no state between
 * calls (VectorKernels reuses a per-thread scratch panel instead of allocating).
 *
 * <p>Fast paths may sum in a different order than the reference (fp32 throughout, reassociated),
 * so they agree with it to rounding, not bit for bit.
 */
public interface CpuKernels {

    /**
     * For weight rows n in [nFrom, nTo) and every input row m in [0, rows):
     * out[m * outCols + n] = Σ_k x[m * k + kk] · w[n, kk] (+ bias[n]).
     *
     * @param weight  [N, k] row-major in {@code dtype} (F32, F16 or BF16, little-endian)
     * @param bias    [N] in {@code biasType}, or null
     */
    void linear(float[] x, int rows, int k, MemorySegment weight, DType dtype, MemorySegment bias, DType biasType,
                int nFrom, int nTo, float[] out, int outCols);

    /** As {@link #linear}, added to what {@code out} holds: out[m * outCols + n] += Σ_k x · w[n, kk] (+ bias[n]). */
    void linearAdd(float[] x, int rows, int k, MemorySegment weight, DType dtype, MemorySegment bias, DType biasType,
                   int nFrom, int nTo, float[] out, int outCols);

    /**
     * x (one row of k) made ready once for every {@link #linearOneRow} call of one operation over
     * {@code dtype} weights. A decode step at batch 1 splits each weight's rows into many ranges over
     * the threads, so kernels that rearrange the input row do it here once, not in every range.
     */
    default OneRow prepareOneRow(float[] x, int k, DType dtype) {
        return new OneRow(x, k, dtype, null);
    }

    /** An input row from {@link #prepareOneRow}: x, and x as the kernels rearranged it (null when they did not). */
    record OneRow(float[] x, int k, DType dtype, float[] rearranged) {
    }

    /**
     * {@link #linear} with rows = 1 (or {@link #linearAdd} with {@code accumulate}) over rows [nFrom, nTo)
     * of a {@code row.dtype()} weight, on an input from {@link #prepareOneRow}.
     */
    default void linearOneRow(OneRow row, MemorySegment weight, MemorySegment bias, DType biasType, int nFrom, int nTo,
                              float[] out, boolean accumulate) {
        if (accumulate) {
            linearAdd(row.x(), 1, row.k(), weight, row.dtype(), bias, biasType, nFrom, nTo, out, out.length);
        } else {
            linear(row.x(), 1, row.k(), weight, row.dtype(), bias, biasType, nFrom, nTo, out, out.length);
        }
    }

    /** Σ a[aOff + i] · b[bOff + i] for i in [0, n). */
    float dot(float[] a, int aOff, float[] b, int bOff, int n);

    /** y[yOff + i] += alpha · x[xOff + i] for i in [0, n). */
    void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n);

    /**
     * out[outOff + t] = Σ_i x[xOff + i] · rows[rowOff + t·rowStride + i] for t in [0, count), i in
     * [0, n): one vector against a block of rows (attention scores of one query against K rows).
     */
    void dotRows(float[] x, int xOff, float[] rows, int rowOff, int rowStride, int count, int n, float[] out, int outOff);

    /**
     * y[yOff + i] += Σ_t weights[wOff + t] · rows[rowOff + t·rowStride + i] for i in [0, n), t in
     * [0, count): a weighted sum of a block of rows (attention probabilities times V rows).
     */
    void accumulateRows(float[] weights, int wOff, float[] rows, int rowOff, int rowStride, int count, int n,
                        float[] y, int yOff);

    /** x[off + i] *= factor for i in [0, n). */
    void scale(float[] x, int off, int n, float factor);

    /**
     * x[off + i] = exp(x[off + i] − shift) for i in [0, n); returns the sum of the new values. The
     * numerator and denominator of a softmax whose maximum is {@code shift}.
     */
    float expShiftSum(float[] x, int off, int n, float shift);

    /**
     * dst[dstOff + i] = element {@code index + i} of {@code src} (F32, F16 or BF16) widened to f32,
     * for i in [0, n).
     */
    void widen(MemorySegment src, DType dtype, long index, float[] dst, int dstOff, int n);

    /** gate[i] = silu(gate[i]) · up[i] = gate[i] / (1 + exp(−gate[i])) · up[i] for i in [from, to). */
    void siluMul(float[] gate, float[] up, int from, int to);

    /** x[i] = gelu(x[i]) = x[i] / 2 · (1 + erf(x[i] / √2)) (the exact, not the tanh, form) for i in [from, to). */
    void gelu(float[] x, int from, int to);

    /**
     * The fastest kernels available on this JVM: {@link VectorKernels} when the
     * {@code jdk.incubator.vector} module is present, else {@link ReferenceKernels} (logged once).
     */
    static CpuKernels fastest() {
        return KernelSelection.FASTEST;
    }
}
