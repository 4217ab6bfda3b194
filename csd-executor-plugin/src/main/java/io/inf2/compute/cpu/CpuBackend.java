package io.inf2.compute.cpu;

import io.inf2.compute.Activations;
import io.inf2.compute.ComputeBackend;
import io.inf2.compute.RotaryTable;
import io.inf2.compute.WeightLayout;
import io.inf2.compute.WeightTier;
import io.inf2.tensor.DType;
import io.inf2.tensor.FloatMatrix;
import io.inf2.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;

/**
 * The CPU backend: activations are heap f32 matrices, weights are read straight from the checkpoint
 * mapping in their stored type, and work is split over a private {@link WorkerTeam}: the calling
 * thread and {@code threads − 1} workers kept between operations.
 */
public final class CpuBackend implements ComputeBackend {

    /** Work items smaller than this many multiply-adds run on the calling thread. */
    private static final long MIN_PARALLEL_WORK = 1 << 16;
    /** Element-wise passes over fewer elements than this run on the calling thread. */
    private static final int MIN_PARALLEL_ELEMENTS = 1 << 15;

    /** Rows of a weight that one thread multiplies together: a whole number of the kernels' tiles. */
    private static final int ROW_GROUP = 8;

    private final WorkerTeam team;
    private final int threads;
    private final CpuKernels kernels;

    public CpuBackend(int threads, CpuKernels kernels) {
        if (threads < 1) {
            throw new IllegalArgumentException("CPU threads must be at least 1, got " + threads);
        }
        this.threads = threads;
        this.kernels = kernels;
        this.team = new WorkerTeam(threads, "inf2-cpu");
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

    /**
     * Runs body over [0, n) across the backend's threads in ranges of at least {@code minChunk}
     * indices (the last may be shorter): each thread takes a contiguous region and the others take
     * over the back of a region whose thread falls behind ({@link WorkerTeam}), so a thread slowed
     * down by another process on a shared machine, or by costlier items, is made up for.
     */
    public void parallelFor(int n, int minChunk, RangeBody body) {
        team.run(n, Math.max(1, minChunk), body);
    }

    /** A body over a half-open index range. */
    @FunctionalInterface
    public interface RangeBody {
        void run(int from, int to);
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
            kernels.widen(table.data(), table.dtype(), (long) token * cols, o.data(), o.offset(r), cols);
        }
    }

    @Override
    public void addEmbeddingRows(int[] indices, Tensor table, Activations x) {
        FloatMatrix o = host(x);
        int cols = table.cols();
        requireCols(o, cols, "position embedding target");
        float[] row = new float[cols];
        for (int r = 0; r < indices.length; r++) {
            int idx = indices[r];
            if (idx < 0 || idx >= table.rows()) {
                throw new IllegalArgumentException("position " + idx + " outside the table of " + table.rows());
            }
            kernels.widen(table.data(), table.dtype(), (long) idx * cols, row, 0, cols);
            float[] d = o.data();
            int off = o.offset(r);
            for (int c = 0; c < cols; c++) {
                d[off + c] += row[c];
            }
        }
    }

    @Override
    public void linear(Activations x, Tensor weight, Tensor bias, Activations out) {
        products(host(x), List.of(weight), Arrays.asList(bias), List.of(host(out)), false, "linear");
    }

    /** One parallel loop over the rows of all the weights, instead of one loop each. */
    @Override
    public void linears(Activations x, List<Tensor> weights, List<Tensor> biases, List<Activations> outs) {
        ComputeBackend.requireOnePerWeight(weights, biases, outs);
        products(host(x), weights, biases, outs.stream().map(CpuBackend::host).toList(), false, "linears");
    }

    /** The products are added to {@code acc} as they are made: no temporary, no separate add. */
    @Override
    public void linearAdd(Activations x, Tensor weight, Tensor bias, Activations acc) {
        FloatMatrix in = host(x);
        FloatMatrix a = host(acc);
        if (in.data() == a.data()) {
            throw new IllegalArgumentException("linearAdd " + weight.name() + ": the input is the accumulator");
        }
        products(in, List.of(weight), Arrays.asList(bias), List.of(a), true, "linearAdd");
    }

    /**
     * outs[i] (=, or += with {@code accumulate}) in · weights[i]ᵀ (+ biases[i]) in one parallel loop
     * over the weights' rows laid end to end in groups of {@link #ROW_GROUP}, so the kernels' tiles
     * never split and a thread's share of consecutive weights is one stream.
     */
    private void products(FloatMatrix in, List<Tensor> weights, List<Tensor> biases, List<FloatMatrix> outs, boolean accumulate,
                          String op) {
        int rows = in.rows();
        int[] firstGroup = new int[weights.size() + 1];
        long work = 0;
        for (int i = 0; i < weights.size(); i++) {
            Tensor weight = weights.get(i);
            FloatMatrix o = outs.get(i);
            int n = weight.rows();
            int k = weight.cols();
            requireCols(in, k, op + " input for " + weight.name());
            requireCols(o, n, op + " output for " + weight.name());
            if (rows != o.rows()) {
                throw new IllegalArgumentException(op + " " + weight.name() + ": " + rows + " input rows, " + o.rows() + " output rows");
            }
            work += (long) rows * n * k;
            firstGroup[i + 1] = firstGroup[i] + (n + ROW_GROUP - 1) / ROW_GROUP;
        }
        int groups = firstGroup[weights.size()];
        CpuKernels.OneRow[] oneRow = rows == 1 ? prepareOneRow(in.data(), in.cols(), weights) : null;
        parallelFor(groups, work < MIN_PARALLEL_WORK ? groups : 1, (from, to) -> {
            for (int i = 0; i < weights.size(); i++) {
                int first = Math.max(from, firstGroup[i]);
                int end = Math.min(to, firstGroup[i + 1]);
                if (first >= end) {
                    continue;
                }
                Tensor weight = weights.get(i);
                Tensor bias = biases.get(i);
                FloatMatrix o = outs.get(i);
                MemorySegment b = bias == null ? null : bias.data();
                DType bt = bias == null ? null : bias.dtype();
                int nFrom = (first - firstGroup[i]) * ROW_GROUP;
                int nTo = Math.min(weight.rows(), (end - firstGroup[i]) * ROW_GROUP);
                if (oneRow != null) {
                    kernels.linearOneRow(oneRow[i], weight.data(), b, bt, nFrom, nTo, o.data(), accumulate);
                } else if (accumulate) {
                    kernels.linearAdd(in.data(), rows, weight.cols(), weight.data(), weight.dtype(), b, bt, nFrom, nTo,
                            o.data(), weight.rows());
                } else {
                    kernels.linear(in.data(), rows, weight.cols(), weight.data(), weight.dtype(), b, bt, nFrom, nTo,
                            o.data(), weight.rows());
                }
            }
        });
    }

    /** The input row prepared once for each weight's type (weights of one type share it). */
    private CpuKernels.OneRow[] prepareOneRow(float[] x, int k, List<Tensor> weights) {
        CpuKernels.OneRow[] prepared = new CpuKernels.OneRow[weights.size()];
        for (int i = 0; i < prepared.length; i++) {
            DType dtype = weights.get(i).dtype();
            prepared[i] = i > 0 && prepared[i - 1].dtype() == dtype ? prepared[i - 1] : kernels.prepareOneRow(x, k, dtype);
        }
        return prepared;
    }

    @Override
    public void layerNorm(Activations x, Tensor gamma, Tensor beta, float eps, Activations out) {
        FloatMatrix in = host(x);
        FloatMatrix o = host(out);
        int cols = in.cols();
        requireCols(o, cols, "layer norm output");
        float[] g = widen(gamma, cols);
        float[] b = beta == null ? new float[cols] : widen(beta, cols);
        parallelFor(in.rows(), rowsPerChunk(cols), (from, to) -> {
            float[] d = in.data();
            float[] od = o.data();
            for (int r = from; r < to; r++) {
                int off = in.offset(r);
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
                int oo = o.offset(r);
                for (int c = 0; c < cols; c++) {
                    od[oo + c] = (d[off + c] - m) * inv * g[c] + b[c];
                }
            }
        });
    }

    @Override
    public void rmsNorm(Activations x, Tensor gamma, float eps, Activations out) {
        FloatMatrix in = host(x);
        FloatMatrix o = host(out);
        int cols = in.cols();
        requireCols(o, cols, "RMS norm output");
        float[] g = widen(gamma, cols);
        parallelFor(in.rows(), rowsPerChunk(cols), (from, to) -> {
            float[] d = in.data();
            float[] od = o.data();
            for (int r = from; r < to; r++) {
                int off = in.offset(r);
                double ss = 0;
                for (int c = 0; c < cols; c++) {
                    ss += (double) d[off + c] * d[off + c];
                }
                float inv = (float) (1.0 / Math.sqrt(ss / cols + eps));
                int oo = o.offset(r);
                for (int c = 0; c < cols; c++) {
                    od[oo + c] = g[c] * (d[off + c] * inv);
                }
            }
        });
    }

    /** A norm weight of {@code cols} elements as f32, so the per-element loops need no type dispatch. */
    private float[] widen(Tensor t, int cols) {
        if (t.elementCount() != cols) {
            throw new IllegalArgumentException("norm parameter " + t + " has " + t.elementCount() + " elements, rows have " + cols);
        }
        float[] f = new float[cols];
        kernels.widen(t.data(), t.dtype(), 0, f, 0, cols);
        return f;
    }

    /** Rows per parallel chunk for a per-row pass over {@code cols} columns. */
    private static int rowsPerChunk(int cols) {
        return Math.max(1, MIN_PARALLEL_ELEMENTS / Math.max(1, cols));
    }

    @Override
    public void addInPlace(Activations acc, Activations x) {
        FloatMatrix a = host(acc);
        FloatMatrix b = host(x);
        if (a.rows() != b.rows() || a.cols() != b.cols()) {
            throw new IllegalArgumentException("add: shapes differ, " + a.rows() + "x" + a.cols() + " += " + b.rows() + "x" + b.cols());
        }
        float[] ad = a.data();
        float[] bd = b.data();
        parallelFor(a.rows() * a.cols(), MIN_PARALLEL_ELEMENTS, (from, to) -> {
            for (int i = from; i < to; i++) {
                ad[i] += bd[i];
            }
        });
    }

    @Override
    public void activate(Activations x, String kind) {
        FloatMatrix a = host(x);
        float[] d = a.data();
        int n = a.rows() * a.cols();
        switch (kind) {
            case "relu" -> parallelFor(n, MIN_PARALLEL_ELEMENTS, (from, to) -> {
                for (int i = from; i < to; i++) {
                    d[i] = Math.max(0f, d[i]);
                }
            });
            // gelu costs tens of times more per element than relu: split it finer.
            case "gelu" -> parallelFor(n, MIN_PARALLEL_ELEMENTS / 16, (from, to) -> kernels.gelu(d, from, to));
            default -> throw new IllegalArgumentException("unknown activation " + kind);
        }
    }

    @Override
    public void siluMul(Activations gate, Activations up) {
        FloatMatrix g = host(gate);
        FloatMatrix u = host(up);
        if (g.rows() != u.rows() || g.cols() != u.cols()) {
            throw new IllegalArgumentException("siluMul: gate is " + g.rows() + "x" + g.cols() + ", up is " + u.rows() + "x" + u.cols());
        }
        float[] gd = g.data();
        float[] ud = u.data();
        parallelFor(g.rows() * g.cols(), MIN_PARALLEL_ELEMENTS / 16, (from, to) -> kernels.siluMul(gd, ud, from, to));
    }

    @Override
    public void rotary(Activations x, int heads, RotaryTable table, int[] positions) {
        FloatMatrix a = host(x);
        int hd = table.headDim();
        requireCols(a, heads * hd, "rotary input");
        if (positions.length < a.rows()) {
            throw new IllegalArgumentException("rotary: " + positions.length + " positions for " + a.rows() + " rows");
        }
        parallelFor(a.rows(), rowsPerChunk(a.cols()), (from, to) -> {
            for (int r = from; r < to; r++) {
                for (int h = 0; h < heads; h++) {
                    table.apply(a.data(), a.offset(r) + h * hd, positions[r]);
                }
            }
        });
    }

    /**
     * Each (query row, KV head) is one task: the group's query heads attend over the rows of their
     * sequence up to and including their own, in one pass ({@link CpuAttention}). Task cost grows
     * with the row's position; the team's threads take over the back of a region whose thread falls behind.
     */
    @Override
    public void causalAttention(Activations q, Activations k, Activations v, int[] starts, int[] lengths,
                                int heads, int kvHeads, int headDim, Activations out) {
        FloatMatrix qm = host(q);
        FloatMatrix km = host(k);
        FloatMatrix vm = host(v);
        FloatMatrix om = host(out);
        if (kvHeads < 1 || heads % kvHeads != 0) {
            throw new IllegalArgumentException("causal attention: " + heads + " query heads cannot share " + kvHeads + " KV heads");
        }
        requireCols(qm, heads * headDim, "attention queries");
        requireCols(km, kvHeads * headDim, "attention keys");
        requireCols(vm, kvHeads * headDim, "attention values");
        requireCols(om, heads * headDim, "attention output");
        int group = heads / kvHeads;
        long totalRows = 0;
        for (int s = 0; s < starts.length; s++) {
            if (starts[s] < 0 || lengths[s] < 0 || (long) starts[s] + lengths[s] > qm.rows()) {
                throw new IllegalArgumentException("causal attention: sequence " + s + " spans rows [" + starts[s] + ", "
                        + ((long) starts[s] + lengths[s]) + ") of " + qm.rows());
            }
            totalRows += lengths[s];
        }
        if (totalRows > qm.rows()) {
            throw new IllegalArgumentException("causal attention: sequences overlap (" + totalRows + " rows in " + qm.rows() + ")");
        }
        // Task t: query row taskRow[t] / kvHeads of the sequence starting at taskStart[t], KV head taskRow[t] % kvHeads.
        int tasks = (int) totalRows * kvHeads;
        int[] taskRow = new int[tasks];
        int[] taskStart = new int[tasks];
        int t = 0;
        for (int s = 0; s < starts.length; s++) {
            for (int i = 0; i < lengths[s]; i++) {
                for (int kvh = 0; kvh < kvHeads; kvh++) {
                    taskRow[t] = (starts[s] + i) * kvHeads + kvh;
                    taskStart[t] = starts[s];
                    t++;
                }
            }
        }
        parallelFor(tasks, 1, (from, to) -> {
            CpuAttention.Group attention = new CpuAttention.Group(kernels, group, headDim);
            float[] lse = new float[group];
            for (int task = from; task < to; task++) {
                int row = taskRow[task] / kvHeads;
                int kvh = taskRow[task] % kvHeads;
                int start = taskStart[task];
                int kvCol = kvh * headDim;
                int qCol = kvh * group * headDim;
                attention.begin(qm.data(), qm.offset(row) + qCol);
                attention.add(km.data(), km.offset(start) + kvCol, vm.data(), vm.offset(start) + kvCol, km.cols(), row - start + 1);
                attention.finish(om.data(), om.offset(row) + qCol, lse, 0);
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

    /** Weights are read where the engine's store holds them; there is no device memory to keep any in. */
    @Override
    public void placeWeights(WeightLayout layout) {
        for (var e : layout.tiers().entrySet()) {
            if (e.getValue() == WeightTier.DEVICE) {
                throw new IllegalArgumentException("weight " + e.getKey() + " is placed in device memory, but the cpu backend has none"
                        + " (give the GPU share of weights as 0 with backend cpu)");
            }
        }
    }

    @Override
    public void close() {
        team.close();
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
