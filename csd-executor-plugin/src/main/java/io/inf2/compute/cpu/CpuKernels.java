package io.inf2.compute.cpu;

import io.inf2.tensor.DType;
import java.lang.foreign.MemorySegment;

/**
 * The inner loops of the CPU backend. {@link ReferenceKernels} is the plain definition every fast
 * path is tested against; {@link VectorKernels} is the Vector API implementation used in production.
 * The backend splits work across threads; kernels are single-threaded and allocation-free.
 */
public interface CpuKernels {

    /**
     * For weight rows n in [nFrom, nTo) and every input row m in [0, rows):
     * out[m * outCols + n] = Σ_k x[m * k + kk] · w[n, kk] (+ bias[n]).
     *
     * @param weight  [N, k] row-major in {@code dtype}
     * @param bias    [N] in {@code biasType}, or null
     */
    void linear(float[] x, int rows, int k, MemorySegment weight, DType dtype, MemorySegment bias, DType biasType,
                int nFrom, int nTo, float[] out, int outCols);

    /** Σ a[aOff + i] · b[bOff + i] for i in [0, n). */
    float dot(float[] a, int aOff, float[] b, int bOff, int n);

    /** y[yOff + i] += alpha · x[xOff + i] for i in [0, n). */
    void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n);

    /** The fastest kernels available on this JVM. */
    static CpuKernels fastest() {
        return new ReferenceKernels();
    }
}
