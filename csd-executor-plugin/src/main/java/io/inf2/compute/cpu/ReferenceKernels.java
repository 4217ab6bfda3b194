package io.inf2.compute.cpu;

import io.inf2.tensor.DType;
import java.lang.foreign.MemorySegment;

/** Plain scalar kernels: the definition of what every fast path must compute. */
public final class ReferenceKernels implements CpuKernels {

    @Override
    public void linear(float[] x, int rows, int k, MemorySegment weight, DType dtype, MemorySegment bias,
                       DType biasType, int nFrom, int nTo, float[] out, int outCols) {
        for (int n = nFrom; n < nTo; n++) {
            for (int m = 0; m < rows; m++) {
                out[m * outCols + n] = 0f;
            }
        }
        linearAdd(x, rows, k, weight, dtype, bias, biasType, nFrom, nTo, out, outCols);
    }

    @Override
    public void linearAdd(float[] x, int rows, int k, MemorySegment weight, DType dtype, MemorySegment bias,
                          DType biasType, int nFrom, int nTo, float[] out, int outCols) {
        for (int n = nFrom; n < nTo; n++) {
            long base = (long) n * k;
            float b = bias == null ? 0f : biasType.getFloat(bias, n);
            for (int m = 0; m < rows; m++) {
                float sum = 0f;
                for (int kk = 0; kk < k; kk++) {
                    sum += x[m * k + kk] * dtype.getFloat(weight, base + kk);
                }
                out[m * outCols + n] += sum + b;
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

    @Override
    public void dotRows(float[] x, int xOff, float[] rows, int rowOff, int rowStride, int count, int n, float[] out, int outOff) {
        for (int t = 0; t < count; t++) {
            out[outOff + t] = dot(x, xOff, rows, rowOff + t * rowStride, n);
        }
    }

    @Override
    public void accumulateRows(float[] weights, int wOff, float[] rows, int rowOff, int rowStride, int count, int n,
                               float[] y, int yOff) {
        for (int t = 0; t < count; t++) {
            axpy(weights[wOff + t], rows, rowOff + t * rowStride, y, yOff, n);
        }
    }

    @Override
    public void scale(float[] x, int off, int n, float factor) {
        for (int i = 0; i < n; i++) {
            x[off + i] *= factor;
        }
    }

    @Override
    public float expShiftSum(float[] x, int off, int n, float shift) {
        float sum = 0f;
        for (int i = 0; i < n; i++) {
            float e = (float) Math.exp(x[off + i] - shift);
            x[off + i] = e;
            sum += e;
        }
        return sum;
    }

    @Override
    public void widen(MemorySegment src, DType dtype, long index, float[] dst, int dstOff, int n) {
        for (int i = 0; i < n; i++) {
            dst[dstOff + i] = dtype.getFloat(src, index + i);
        }
    }

    @Override
    public void siluMul(float[] gate, float[] up, int from, int to) {
        for (int i = from; i < to; i++) {
            float v = gate[i];
            gate[i] = v / (1f + (float) Math.exp(-v)) * up[i];
        }
    }

    @Override
    public void gelu(float[] x, int from, int to) {
        for (int i = from; i < to; i++) {
            double v = x[i];
            // 1 + erf(v/√2) = erfc(−v/√2): the erfc form keeps full relative accuracy for v < 0.
            x[i] = (float) (v < 0 ? 0.5 * v * erfc(-v / Math.sqrt(2)) : v * (1 - 0.5 * erfc(v / Math.sqrt(2))));
        }
    }

    /**
     * erfc(z) for z &gt;= 0 in double, to about 1e-13 relative: 1 − the Maclaurin series of erf below
     * 2.5 (where the series' alternating terms still cancel harmlessly and erfc &gt; 4e-4), the
     * continued fraction above. Slow, but it is the definition the fast GELU is measured against.
     */
    static double erfc(double z) {
        if (Double.isNaN(z)) {
            return z;
        }
        if (z < 2.5) {
            double term = z;
            double sum = z;
            double z2 = z * z;
            for (int n = 1; n < 60; n++) {
                term *= -z2 / n;
                double add = term / (2 * n + 1);
                sum += add;
                if (Math.abs(add) < 1e-17) {
                    break;
                }
            }
            return 1 - 2 / Math.sqrt(Math.PI) * sum;
        }
        double t = 0;
        for (int n = 60; n >= 1; n--) {
            t = n / 2.0 / (z + t);
        }
        return Math.exp(-z * z) / Math.sqrt(Math.PI) / (z + t);
    }
}
