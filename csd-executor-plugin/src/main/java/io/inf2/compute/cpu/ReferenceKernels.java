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
            x[i] = (float) (0.5 * v * (1 + erf(v / Math.sqrt(2))));
        }
    }

    /**
     * erf in double, accurate to about 1e-13: the Maclaurin series below 2.5 (where its alternating
     * terms still cancel harmlessly) and the continued fraction for erfc above. Slow, but it is the
     * definition the fast GELU is measured against.
     */
    static double erf(double x) {
        double ax = Math.abs(x);
        double r;
        if (ax < 2.5) {
            double term = ax;
            double sum = ax;
            double x2 = ax * ax;
            for (int n = 1; n < 60; n++) {
                term *= -x2 / n;
                double add = term / (2 * n + 1);
                sum += add;
                if (Math.abs(add) < 1e-17) {
                    break;
                }
            }
            r = 2 / Math.sqrt(Math.PI) * sum;
        } else {
            double t = 0;
            for (int n = 60; n >= 1; n--) {
                t = n / 2.0 / (ax + t);
            }
            r = 1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + t);
        }
        return x < 0 ? -r : r;
    }
}
