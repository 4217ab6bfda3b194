package io.inf2.compute.cpu;

import io.inf2.tensor.DType;
import java.lang.foreign.MemorySegment;

/** Plain scalar kernels: the definition of what every fast path must compute. */
public final class ReferenceKernels implements CpuKernels {

    @Override
    public void linear(float[] x, int rows, int k, MemorySegment weight, DType dtype, MemorySegment bias,
                       DType biasType, int nFrom, int nTo, float[] out, int outCols) {
        for (int n = nFrom; n < nTo; n++) {
            long base = (long) n * k;
            float b = bias == null ? 0f : biasType.getFloat(bias, n);
            for (int m = 0; m < rows; m++) {
                float sum = 0f;
                for (int kk = 0; kk < k; kk++) {
                    sum += x[m * k + kk] * dtype.getFloat(weight, base + kk);
                }
                out[m * outCols + n] = sum + b;
            }
        }
    }

    @Override
    public float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        float sum = 0f;
        for (int i = 0; i < n; i++) {
            sum += a[aOff + i] * b[bOff + i];
        }
        return sum;
    }

    @Override
    public void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        for (int i = 0; i < n; i++) {
            y[yOff + i] += alpha * x[xOff + i];
        }
    }
}
