package io.inf2.compute.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.compute.Activations;
import io.inf2.compute.RotaryTable;
import io.inf2.tensor.DType;
import io.inf2.tensor.FloatMatrix;
import io.inf2.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * CpuBackend's operations against direct formulas evaluated in double. Three threads on any
 * machine, so the parallel splits (and their edges) are exercised even on two cores.
 */
class CpuBackendTest {

    private final Arena arena = Arena.ofShared();
    private final CpuBackend backend = new CpuBackend(3);
    private final SplittableRandom random = new SplittableRandom(42);

    @AfterEach
    void close() {
        backend.close();
        arena.close();
    }

    @Test
    void linearAcrossThreadsMatchesTheReferenceKernels() {
        // Wide enough that the work is split over threads, with a bias and odd sizes.
        int rows = 5;
        int k = 301;
        int n = 1037;
        Tensor w = tensor("w", DType.BF16, n, k);
        Tensor b = tensor("b", DType.F32, n);
        FloatMatrix x = matrix(rows, k);
        FloatMatrix out = backend.download(run(backend, x, w, b));
        try (CpuBackend reference = new CpuBackend(1, new ReferenceKernels())) {
            FloatMatrix expected = reference.download(run(reference, x, w, b));
            for (int i = 0; i < rows * n; i++) {
                // 2·γ_k·Σ|x·w| with |x·w| ≤ 1 per term; see VectorKernelsTest.
                assertEquals(expected.data()[i], out.data()[i], 2 * (k + 1) * 0x1p-24 * (k + 1), "element " + i);
            }
        }
    }

    /** linears and linearAdd against the plain linear they stand for: one loop over all pieces, sums added in place. */
    @Test
    void linearsAndLinearAddMatchSeparateLinears() {
        int rows = 3;
        int k = 301;
        Tensor q = tensor("q", DType.F16, 512, k);
        Tensor kw = tensor("k", DType.F16, 130, k);
        Tensor v = tensor("v", DType.F16, 130, k);
        Tensor qb = tensor("qb", DType.F32, 512);
        Tensor vb = tensor("vb", DType.F32, 130);
        FloatMatrix x = matrix(rows, k);
        Activations in = backend.upload(x);
        Activations oq = backend.allocate(rows, 512);
        Activations ok = backend.allocate(rows, 130);
        Activations ov = backend.allocate(rows, 130);
        backend.linears(in, List.of(q, kw, v), Arrays.asList(qb, null, vb), List.of(oq, ok, ov));
        Tensor[] weights = {q, kw, v};
        Tensor[] biases = {qb, null, vb};
        Activations[] outs = {oq, ok, ov};
        for (int i = 0; i < 3; i++) {
            Activations expected = backend.allocate(rows, weights[i].rows());
            backend.linear(in, weights[i], biases[i], expected);
            assertArrayEquals(backend.download(expected).data(), backend.download(outs[i]).data(), weights[i].name());
        }
        FloatMatrix residual = matrix(rows, 130);
        FloatMatrix start = new FloatMatrix(residual.data().clone(), rows, 130);
        Activations acc = backend.upload(residual);
        backend.linearAdd(in, v, vb, acc);
        FloatMatrix product = backend.download(ov);
        FloatMatrix added = backend.download(acc);
        for (int i = 0; i < rows * 130; i++) {
            // the product and the start are each within a few units; their sum rounds once more
            assertEquals(start.data()[i] + product.data()[i], added.data()[i], 1e-5, "element " + i);
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.linearAdd(acc, kw, null, acc));
        assertEquals("linearAdd k: the input is the accumulator", e.getMessage());
    }

    @Test
    void greedyTokensTakeTheLowestIdAmongEqualMaximaAndSkipNaN() {
        float nan = Float.NaN;
        FloatMatrix logits = new FloatMatrix(new float[] {
            1, 3, 3, 2,
            nan, -1, -2, -1,
            -5, -4, -3, -2}, 3, 4);
        assertArrayEquals(new int[] {1, 1, 3}, backend.greedyTokens(backend.upload(logits)));
        FloatMatrix noFinite = new FloatMatrix(new float[] {nan, Float.NEGATIVE_INFINITY, 1, Float.POSITIVE_INFINITY}, 2, 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.greedyTokens(backend.upload(noFinite)));
        assertEquals("greedyTokens: row 0 of the logits has no finite value", e.getMessage());
    }

    private static Activations run(CpuBackend b, FloatMatrix x, Tensor w, Tensor bias) {
        Activations out = b.allocate(x.rows(), w.rows());
        b.linear(b.upload(x), w, bias, out);
        return out;
    }

    @Test
    void layerNormMatchesTheFormula() {
        int rows = 7;
        int cols = 300;
        FloatMatrix x = matrix(rows, cols);
        Tensor gamma = tensor("gamma", DType.F16, cols);
        Tensor beta = tensor("beta", DType.F32, cols);
        Activations out = backend.allocate(rows, cols);
        backend.layerNorm(backend.upload(x), gamma, beta, 1e-5f, out);
        FloatMatrix o = backend.download(out);
        for (int r = 0; r < rows; r++) {
            double mean = 0;
            for (int c = 0; c < cols; c++) {
                mean += x.get(r, c);
            }
            mean /= cols;
            double var = 0;
            for (int c = 0; c < cols; c++) {
                var += (x.get(r, c) - mean) * (x.get(r, c) - mean);
            }
            var /= cols;
            for (int c = 0; c < cols; c++) {
                double expected = (x.get(r, c) - mean) / Math.sqrt(var + 1e-5) * gamma.getFloat(c) + beta.getFloat(c);
                assertEquals(expected, o.get(r, c), 1e-5, "row " + r + " column " + c);
            }
        }
    }

    @Test
    void rmsNormMatchesTheFormula() {
        int rows = 9;
        int cols = 128;
        FloatMatrix x = matrix(rows, cols);
        Tensor gamma = tensor("gamma", DType.BF16, cols);
        Activations out = backend.allocate(rows, cols);
        backend.rmsNorm(backend.upload(x), gamma, 1e-6f, out);
        FloatMatrix o = backend.download(out);
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int c = 0; c < cols; c++) {
                ss += x.get(r, c) * (double) x.get(r, c);
            }
            double inv = 1 / Math.sqrt(ss / cols + 1e-6);
            for (int c = 0; c < cols; c++) {
                assertEquals(x.get(r, c) * inv * gamma.getFloat(c), o.get(r, c), 1e-5, "row " + r + " column " + c);
            }
        }
    }

    @Test
    void normsRejectAParameterOfTheWrongLength() {
        Activations x = backend.upload(matrix(2, 8));
        assertThrows(IllegalArgumentException.class, () -> backend.rmsNorm(x, tensor("g", DType.F32, 7), 1e-5f, backend.allocate(2, 8)));
    }

    @Test
    void rotaryMatchesTheRotateHalfFormula() {
        int heads = 3;
        int headDim = 16;
        double[] inverseFrequencies = new double[headDim / 2];
        for (int i = 0; i < inverseFrequencies.length; i++) {
            inverseFrequencies[i] = Math.pow(10000, -2.0 * i / headDim);
        }
        RotaryTable table = new RotaryTable(inverseFrequencies, 64);
        int[] positions = {0, 1, 5, 63, 17};
        FloatMatrix x = matrix(positions.length, heads * headDim);
        FloatMatrix original = x.rows(0, x.rows());
        backend.rotary(backend.upload(x), heads, table, positions);
        for (int r = 0; r < positions.length; r++) {
            for (int h = 0; h < heads; h++) {
                int base = h * headDim;
                for (int i = 0; i < headDim / 2; i++) {
                    // Hugging Face rounds the angle to f32 before cos and sin; so does the table.
                    double angle = (float) positions[r] * (float) inverseFrequencies[i];
                    double a = original.get(r, base + i);
                    double b = original.get(r, base + i + headDim / 2);
                    assertEquals(a * Math.cos(angle) - b * Math.sin(angle), x.get(r, base + i), 1e-6, "row " + r + " head " + h + " pair " + i);
                    assertEquals(b * Math.cos(angle) + a * Math.sin(angle), x.get(r, base + i + headDim / 2), 1e-6,
                            "row " + r + " head " + h + " pair " + i);
                }
            }
        }
    }

    @Test
    void causalAttentionMatchesANaivePerSequenceReferenceWithGqa() {
        int heads = 6;
        int kvHeads = 2;
        for (int headDim : new int[] {13, 32}) {
            int[] starts = {0, 1, 41, 60};
            int[] lengths = {1, 40, 19, 70};
            int total = 130;
            FloatMatrix q = matrix(total, heads * headDim);
            FloatMatrix k = matrix(total, kvHeads * headDim);
            FloatMatrix v = matrix(total, kvHeads * headDim);
            Activations out = backend.allocate(total, heads * headDim);
            backend.causalAttention(backend.upload(q), backend.upload(k), backend.upload(v), starts, lengths, heads, kvHeads, headDim, out);
            FloatMatrix o = backend.download(out);
            for (int s = 0; s < starts.length; s++) {
                for (int i = 0; i < lengths[s]; i++) {
                    int row = starts[s] + i;
                    for (int h = 0; h < heads; h++) {
                        double[] expected = naiveAttention(q, k, v, starts[s], i, h, h / (heads / kvHeads), headDim);
                        for (int d = 0; d < headDim; d++) {
                            assertEquals(expected[d], o.get(row, h * headDim + d), 1e-5,
                                    "headDim " + headDim + " sequence " + s + " row " + i + " head " + h + " dim " + d);
                        }
                    }
                }
            }
        }
    }

    /** softmax(q·Kᵀ/√d)·V of query row start+i, head h, over rows start..start+i of KV head kvh. */
    private static double[] naiveAttention(FloatMatrix q, FloatMatrix k, FloatMatrix v, int start, int i, int h, int kvh, int headDim) {
        double[] scores = new double[i + 1];
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j <= i; j++) {
            double s = 0;
            for (int d = 0; d < headDim; d++) {
                s += (double) q.get(start + i, h * headDim + d) * k.get(start + j, kvh * headDim + d);
            }
            scores[j] = s / Math.sqrt(headDim);
            max = Math.max(max, scores[j]);
        }
        double sum = 0;
        for (int j = 0; j <= i; j++) {
            scores[j] = Math.exp(scores[j] - max);
            sum += scores[j];
        }
        double[] out = new double[headDim];
        for (int j = 0; j <= i; j++) {
            for (int d = 0; d < headDim; d++) {
                out[d] += scores[j] / sum * v.get(start + j, kvh * headDim + d);
            }
        }
        return out;
    }

    @Test
    void causalAttentionRejectsSequencesOutsideTheBatch() {
        Activations q = backend.allocate(4, 8);
        Activations kv = backend.allocate(4, 8);
        assertThrows(IllegalArgumentException.class, () -> backend.causalAttention(q, kv, kv, new int[] {2}, new int[] {3}, 1, 1, 8, backend.allocate(4, 8)));
        assertThrows(IllegalArgumentException.class, () -> backend.causalAttention(q, kv, kv, new int[] {0}, new int[] {4}, 3, 2, 8, backend.allocate(4, 8)));
    }

    /** gelu(x) = x·Φ(x), from Python's math.erfc in double precision. */
    @Test
    void geluMatchesAKnownValueTable() {
        double[][] table = {
            {-5, -1.4332578593959731e-06},
            {-3, -0.004049694094890287},
            {-2, -0.04550026389635844},
            {-1, -0.15865525393145707},
            {-0.5, -0.15426876936299344},
            {-0.1, -0.0460172162722971},
            {0, 0},
            {0.1, 0.053982783727702904},
            {0.5, 0.34573123063700656},
            {1, 0.8413447460685429},
            {2, 1.9544997361036416},
            {3, 2.99595030590511},
            {5, 4.99999856674214},
            {10, 10},
        };
        for (CpuKernels kernels : new CpuKernels[] {new VectorKernels(), new ReferenceKernels()}) {
            try (CpuBackend b = new CpuBackend(2, kernels)) {
                // Repeat the table past one vector so both the vector body and the scalar tail see it.
                int copies = 3;
                FloatMatrix x = new FloatMatrix(copies, table.length);
                for (int c = 0; c < copies; c++) {
                    for (int i = 0; i < table.length; i++) {
                        x.set(c, i, (float) table[i][0]);
                    }
                }
                b.activate(b.upload(x), "gelu");
                for (int c = 0; c < copies; c++) {
                    for (int i = 0; i < table.length; i++) {
                        double expected = table[i][1];
                        // fp32 result: the fast path's documented bound (VectorKernelsTest), about 4e-6 relative at x = -5.
                        assertEquals(expected, x.get(c, i), 4e-6 * Math.abs(expected) + 1e-30,
                                kernels.getClass().getSimpleName() + " gelu(" + table[i][0] + ")");
                    }
                }
            }
        }
    }

    @Test
    void reluSiluMulAndAddAreElementWise() {
        int rows = 40;
        int cols = 1001; // over the element-parallel threshold, not a lane multiple
        FloatMatrix a = matrix(rows, cols);
        FloatMatrix b = matrix(rows, cols);
        FloatMatrix relu = a.rows(0, rows);
        backend.activate(backend.upload(relu), "relu");
        FloatMatrix silu = a.rows(0, rows);
        backend.siluMul(backend.upload(silu), backend.upload(b));
        FloatMatrix sum = a.rows(0, rows);
        backend.addInPlace(backend.upload(sum), backend.upload(b));
        for (int i = 0; i < rows * cols; i++) {
            float x = a.data()[i];
            float y = b.data()[i];
            assertEquals(Math.max(0f, x), relu.data()[i]);
            assertEquals(x / (1 + Math.exp(-x)) * y, silu.data()[i], 1e-6);
            assertEquals(x + y, sum.data()[i]);
        }
        assertThrows(IllegalArgumentException.class, () -> backend.activate(backend.upload(a), "swish"));
        assertThrows(IllegalArgumentException.class, () -> backend.addInPlace(backend.upload(a), backend.allocate(rows, cols + 1)));
    }

    @Test
    void embeddingsWidenTheTableRows() {
        Tensor table = tensor("embed", DType.F16, 10, 12);
        Tensor positions = tensor("pos", DType.BF16, 20, 12);
        int[] tokens = {3, 0, 9};
        Activations x = backend.allocate(tokens.length, 12);
        backend.embed(tokens, table, x);
        backend.addEmbeddingRows(new int[] {19, 2, 0}, positions, x);
        FloatMatrix h = backend.download(x);
        int[] pos = {19, 2, 0};
        for (int r = 0; r < tokens.length; r++) {
            for (int c = 0; c < 12; c++) {
                assertEquals(table.getFloat(tokens[r] * 12L + c) + positions.getFloat(pos[r] * 12L + c), h.get(r, c));
            }
        }
        assertThrows(IllegalArgumentException.class, () -> backend.embed(new int[] {10}, table, backend.allocate(1, 12)));
    }

    @Test
    void gatherRowsCopiesRows() {
        FloatMatrix src = matrix(5, 9);
        Activations dst = backend.allocate(3, 9);
        backend.gatherRows(backend.upload(src), new int[] {4, 0, 4}, dst);
        FloatMatrix d = backend.download(dst);
        assertArrayEquals(src.row(4), d.row(0));
        assertArrayEquals(src.row(0), d.row(1));
        assertArrayEquals(src.row(4), d.row(2));
    }

    @Test
    void describesItsThreadsAndKernels() {
        assertTrue(backend.description().contains("3 threads"), backend.description());
        assertTrue(backend.description().contains(CpuKernels.fastest().getClass().getSimpleName()), backend.description());
    }

    private FloatMatrix matrix(int rows, int cols) {
        FloatMatrix m = new FloatMatrix(rows, cols);
        for (int i = 0; i < rows * cols; i++) {
            m.data()[i] = (float) random.nextDouble(-1, 1);
        }
        return m;
    }

    private Tensor tensor(String name, DType dtype, long... shape) {
        long count = Tensor.elementCount(shape);
        MemorySegment data = arena.allocate(count * dtype.byteSize());
        for (long i = 0; i < count; i++) {
            dtype.setFloat(data, i, (float) random.nextDouble(-1, 1));
        }
        return new Tensor(name, dtype, shape, data);
    }
}
