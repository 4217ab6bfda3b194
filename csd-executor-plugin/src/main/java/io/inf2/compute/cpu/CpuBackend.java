package io.inf2.compute.cpu;

import io.inf2.compute.Activations;
import io.inf2.compute.ComputeBackend;
import io.inf2.compute.RotaryTable;
import io.inf2.tensor.DType;
import io.inf2.tensor.FloatMatrix;
import io.inf2.tensor.Tensor;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;

/**
 * The CPU backend: activations are heap f32 matrices, weights are read straight from the checkpoint
 * mapping in their stored type, and work is split over a private fork-join pool.
 */
public final class CpuBackend implements ComputeBackend {

    /** Work items smaller than this many multiply-adds run on the calling thread. */
    private static final long MIN_PARALLEL_WORK = 1 << 16;

    private final ForkJoinPool pool;
    private final int threads;
    private final CpuKernels kernels;

    public CpuBackend(int threads, CpuKernels kernels) {
        if (threads < 1) {
            throw new IllegalArgumentException("CPU threads must be at least 1, got " + threads);
        }
        this.threads = threads;
        this.kernels = kernels;
        this.pool = new ForkJoinPool(threads);
    }

    public CpuBackend(int threads) {
        this(threads, CpuKernels.fastest());
    }

    public CpuKernels kernels() {
        return kernels;
    }

    public int threads() {
        return threads;
    }

    /** Runs body over [0, n) split into at most {@code threads} chunks of at least {@code minChunk}. */
    public void parallelFor(int n, int minChunk, RangeBody body) {
        int chunks = Math.max(1, Math.min(threads, n / Math.max(1, minChunk)));
        if (chunks == 1) {
            body.run(0, n);
            return;
        }
        pool.invoke(new RangeTask(body, 0, n, Math.max(minChunk, (n + chunks - 1) / chunks)));
    }

    /** A body over a half-open index range. */
    @FunctionalInterface
    public interface RangeBody {
        void run(int from, int to);
    }

    private static final class RangeTask extends RecursiveAction {
        private final RangeBody body;
        private final int from;
        private final int to;
        private final int grain;

        RangeTask(RangeBody body, int from, int to, int grain) {
            this.body = body;
            this.from = from;
            this.to = to;
            this.grain = grain;
        }

        @Override
        protected void compute() {
            if (to - from <= grain) {
                body.run(from, to);
                return;
            }
            int mid = (from + to) >>> 1;
            invokeAll(new RangeTask(body, from, mid, grain), new RangeTask(body, mid, to, grain));
        }
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public String description() {
        return "cpu(" + threads + " threads, " + kernels.getClass().getSimpleName() + ")";
    }

    @Override
    public Activations allocate(int rows, int cols) {
        return new HostActivations(new FloatMatrix(rows, cols));
    }

    @Override
    public FloatMatrix download(Activations a) {
        return host(a);
    }

    @Override
    public Activations upload(FloatMatrix host) {
        return new HostActivations(host);
    }

    private static FloatMatrix host(Activations a) {
        if (a instanceof HostActivations h) {
            return h.matrix();
        }
        throw new IllegalArgumentException("the CPU backend cannot use " + a.getClass().getSimpleName());
    }

    @Override
    public void embed(int[] tokens, Tensor table, Activations out) {
        FloatMatrix o = host(out);
        int cols = table.cols();
        requireCols(o, cols, "embedding output");
        for (int r = 0; r < tokens.length; r++) {
            int token = tokens[r];
            if (token < 0 || token >= table.rows()) {
                throw new IllegalArgumentException("token id " + token + " outside the embedding table of " + table.rows());
            }
            long base = (long) token * cols;
            float[] d = o.data();
            int off = o.offset(r);
            DType t = table.dtype();
            for (int c = 0; c < cols; c++) {
                d[off + c] = t.getFloat(table.data(), base + c);
            }
        }
    }

    @Override
    public void addEmbeddingRows(int[] indices, Tensor table, Activations x) {
        FloatMatrix o = host(x);
        int cols = table.cols();
        requireCols(o, cols, "position embedding target");
        for (int r = 0; r < indices.length; r++) {
            int idx = indices[r];
            if (idx < 0 || idx >= table.rows()) {
                throw new IllegalArgumentException("position " + idx + " outside the table of " + table.rows());
            }
            long base = (long) idx * cols;
            float[] d = o.data();
            int off = o.offset(r);
            for (int c = 0; c < cols; c++) {
                d[off + c] += table.dtype().getFloat(table.data(), base + c);
            }
        }
    }

    @Override
    public void linear(Activations x, Tensor weight, Tensor bias, Activations out) {
        FloatMatrix in = host(x);
        FloatMatrix o = host(out);
        int n = weight.rows();
        int k = weight.cols();
        requireCols(in, k, "linear input for " + weight.name());
        requireCols(o, n, "linear output for " + weight.name());
        if (in.rows() != o.rows()) {
            throw new IllegalArgumentException("linear " + weight.name() + ": " + in.rows() + " input rows, " + o.rows() + " output rows");
        }
        int rows = in.rows();
        long work = (long) rows * n * k;
        int minChunk = work < MIN_PARALLEL_WORK ? n : Math.max(8, n / (threads * 4));
        parallelFor(n, minChunk, (from, to) -> kernels.linear(in.data(), rows, k, weight.data(), weight.dtype(),
                bias == null ? null : bias.data(), bias == null ? null : bias.dtype(), from, to, o.data(), n));
    }

    @Override
    public void layerNorm(Activations x, Tensor gamma, Tensor beta, float eps, Activations out) {
        FloatMatrix in = host(x);
        FloatMatrix o = host(out);
        int cols = in.cols();
        for (int r = 0; r < in.rows(); r++) {
            int off = in.offset(r);
            float[] d = in.data();
            double mean = 0;
            for (int c = 0; c < cols; c++) {
                mean += d[off + c];
            }
            mean /= cols;
            double var = 0;
            for (int c = 0; c < cols; c++) {
                double diff = d[off + c] - mean;
                var += diff * diff;
            }
            var /= cols;
            float inv = (float) (1.0 / Math.sqrt(var + eps));
            float m = (float) mean;
            float[] od = o.data();
            int oo = o.offset(r);
            for (int c = 0; c < cols; c++) {
                od[oo + c] = (d[off + c] - m) * inv * gamma.getFloat(c) + (beta == null ? 0f : beta.getFloat(c));
            }
        }
    }

    @Override
    public void rmsNorm(Activations x, Tensor gamma, float eps, Activations out) {
        FloatMatrix in = host(x);
        FloatMatrix o = host(out);
        int cols = in.cols();
        for (int r = 0; r < in.rows(); r++) {
            int off = in.offset(r);
            float[] d = in.data();
            double ss = 0;
            for (int c = 0; c < cols; c++) {
                ss += (double) d[off + c] * d[off + c];
            }
            float inv = (float) (1.0 / Math.sqrt(ss / cols + eps));
            float[] od = o.data();
            int oo = o.offset(r);
            for (int c = 0; c < cols; c++) {
                od[oo + c] = gamma.getFloat(c) * (d[off + c] * inv);
            }
        }
    }

    @Override
    public void addInPlace(Activations acc, Activations x) {
        FloatMatrix a = host(acc);
        FloatMatrix b = host(x);
        if (a.rows() != b.rows() || a.cols() != b.cols()) {
            throw new IllegalArgumentException("add: shapes differ");
        }
        float[] ad = a.data();
        float[] bd = b.data();
        int n = a.rows() * a.cols();
        for (int i = 0; i < n; i++) {
            ad[i] += bd[i];
        }
    }

    @Override
    public void activate(Activations x, String kind) {
        FloatMatrix a = host(x);
        float[] d = a.data();
        int n = a.rows() * a.cols();
        switch (kind) {
            case "relu" -> {
                for (int i = 0; i < n; i++) {
                    d[i] = Math.max(0f, d[i]);
                }
            }
            case "gelu" -> {
                for (int i = 0; i < n; i++) {
                    double v = d[i];
                    d[i] = (float) (0.5 * v * (1 + erf(v / Math.sqrt(2))));
                }
            }
            default -> throw new IllegalArgumentException("unknown activation " + kind);
        }
    }

    /** Abramowitz–Stegun 7.1.26 is too coarse for 1e-4 agreement; use a series/continued fraction pair. */
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

    @Override
    public void siluMul(Activations gate, Activations up) {
        FloatMatrix g = host(gate);
        FloatMatrix u = host(up);
        float[] gd = g.data();
        float[] ud = u.data();
        int n = g.rows() * g.cols();
        for (int i = 0; i < n; i++) {
            float v = gd[i];
            gd[i] = v / (1f + (float) Math.exp(-v)) * ud[i];
        }
    }

    @Override
    public void rotary(Activations x, int heads, RotaryTable table, int[] positions) {
        FloatMatrix a = host(x);
        int hd = table.headDim();
        requireCols(a, heads * hd, "rotary input");
        for (int r = 0; r < a.rows(); r++) {
            for (int h = 0; h < heads; h++) {
                table.apply(a.data(), a.offset(r) + h * hd, positions[r]);
            }
        }
    }

    @Override
    public void causalAttention(Activations q, Activations k, Activations v, int[] starts, int[] lengths,
                                int heads, int kvHeads, int headDim, Activations out) {
        FloatMatrix qm = host(q);
        FloatMatrix km = host(k);
        FloatMatrix vm = host(v);
        FloatMatrix om = host(out);
        int group = heads / kvHeads;
        float scale = (float) (1.0 / Math.sqrt(headDim));
        int tasks = starts.length * heads;
        parallelFor(tasks, 1, (from, to) -> {
            float[] scores = new float[0];
            for (int t = from; t < to; t++) {
                int s = t / heads;
                int h = t % heads;
                int kvh = h / group;
                int start = starts[s];
                int len = lengths[s];
                if (scores.length < len) {
                    scores = new float[len];
                }
                for (int i = 0; i < len; i++) {
                    int qOff = qm.offset(start + i) + h * headDim;
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = 0; j <= i; j++) {
                        float sc = kernels.dot(qm.data(), qOff, km.data(), km.offset(start + j) + kvh * headDim, headDim) * scale;
                        scores[j] = sc;
                        max = Math.max(max, sc);
                    }
                    float sum = 0f;
                    for (int j = 0; j <= i; j++) {
                        scores[j] = (float) Math.exp(scores[j] - max);
                        sum += scores[j];
                    }
                    int oOff = om.offset(start + i) + h * headDim;
                    java.util.Arrays.fill(om.data(), oOff, oOff + headDim, 0f);
                    float inv = 1f / sum;
                    for (int j = 0; j <= i; j++) {
                        kernels.axpy(scores[j] * inv, vm.data(), vm.offset(start + j) + kvh * headDim, om.data(), oOff, headDim);
                    }
                }
            }
        });
    }

    @Override
    public void gatherRows(Activations src, int[] rows, Activations dst) {
        FloatMatrix s = host(src);
        FloatMatrix d = host(dst);
        requireCols(d, s.cols(), "gather output");
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(s.data(), s.offset(rows[i]), d.data(), d.offset(i), s.cols());
        }
    }

    private static void requireCols(FloatMatrix m, int cols, String what) {
        if (m.cols() != cols) {
            throw new IllegalArgumentException(what + ": " + m.cols() + " columns, expected " + cols);
        }
    }

    @Override
    public void close() {
        pool.shutdownNow();
    }

    /** The CPU backend's activations: a heap matrix. */
    record HostActivations(FloatMatrix matrix) implements Activations {
        @Override
        public int rows() {
            return matrix.rows();
        }

        @Override
        public int cols() {
            return matrix.cols();
        }

        @Override
        public void close() {
        }
    }
}
