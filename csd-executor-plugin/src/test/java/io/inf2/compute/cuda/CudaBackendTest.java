package io.inf2.compute.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.compute.Activations;
import io.inf2.compute.RotaryTable;
import io.inf2.compute.WeightLayout;
import io.inf2.compute.WeightTier;
import io.inf2.compute.cpu.CpuBackend;
import io.inf2.kv.PartialAttention;
import io.inf2.model.LayerWeights;
import io.inf2.tensor.DType;
import io.inf2.tensor.FloatMatrix;
import io.inf2.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every CUDA operation against the CPU backend (or, for operations the CPU backend does not have,
 * a plain double-precision reference in this class) on random inputs. Tolerances are stated where
 * they are used, with the reason.
 */
@RequiresCuda
class CudaBackendTest {
    @TempDir
    static Path kernelCache;
    private static CudaBackend gpu;
    private static CpuBackend cpu;
    private static Arena arena;

    @BeforeAll
    static void open() {
        gpu = CudaBackend.open(new CudaBackend.Options("", 0, kernelCache));
        cpu = new CpuBackend(2);
        arena = Arena.ofShared();
    }

    @AfterAll
    static void close() {
        if (gpu != null) {
            gpu.close();
        }
        if (cpu != null) {
            cpu.close();
        }
        if (arena != null) {
            arena.close();
        }
    }

    // ---------------------------------------------------------------- helpers

    private static float[] random(SplittableRandom r, int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) ((r.nextDouble() * 2 - 1) * scale);
        }
        return v;
    }

    private static FloatMatrix matrix(SplittableRandom r, int rows, int cols, double scale) {
        return new FloatMatrix(random(r, rows * cols, scale), rows, cols);
    }

    private static Tensor tensor(String name, DType type, float[] values, long... shape) {
        MemorySegment data = arena.allocate((long) values.length * type.byteSize(), 8);
        for (int i = 0; i < values.length; i++) {
            type.setFloat(data, i, values[i]);
        }
        return new Tensor(name, type, shape, data);
    }

    private static FloatMatrix copy(FloatMatrix m) {
        return new FloatMatrix(m.data().clone(), m.rows(), m.cols());
    }

    /** Runs {@code op} on both backends from the same inputs and returns {cpu result, gpu result} of output index 0. */
    private static FloatMatrix onGpu(FloatMatrix input, java.util.function.Consumer<Activations> op) {
        try (Activations a = gpu.upload(input)) {
            op.accept(a);
            return gpu.download(a);
        }
    }

    private static void assertClose(FloatMatrix expected, FloatMatrix actual, double absolute, double relative, String what) {
        assertEquals(expected.rows(), actual.rows(), what + " rows");
        assertEquals(expected.cols(), actual.cols(), what + " cols");
        for (int i = 0; i < expected.rows() * expected.cols(); i++) {
            float e = expected.data()[i];
            float a = actual.data()[i];
            double bound = absolute + relative * Math.abs(e);
            if (!(Math.abs(e - a) <= bound)) {
                throw new AssertionError(what + ": element " + i + " (row " + i / expected.cols() + ") is " + a
                        + ", expected " + e + " within " + bound);
            }
        }
    }

    // ---------------------------------------------------------------- transfers and weights

    @Test
    void uploadAndDownloadAreExact() {
        FloatMatrix m = matrix(new SplittableRandom(1), 33, 517, 100);
        try (Activations a = gpu.upload(m)) {
            assertArrayEquals(m.data(), gpu.download(a).data());
        }
        try (Activations empty = gpu.allocate(0, 16)) {
            assertEquals(0, gpu.download(empty).rows());
        }
    }

    @Test
    void closedActivationsAreReusedAndRefuseFurtherUse() {
        FloatMatrix first = matrix(new SplittableRandom(12), 16, 300, 1);
        FloatMatrix second = matrix(new SplittableRandom(13), 16, 300, 1);
        Activations a = gpu.upload(first);
        FloatMatrix sum = copy(first);
        cpu.addInPlace(cpu.upload(sum), cpu.upload(second));
        try (Activations b = gpu.upload(second)) {
            gpu.addInPlace(b, a); // queued reads of a's buffer ...
            a.close();
            a.close(); // closing twice gives the buffer back once
            // ... come before the writes of the next owner of that buffer, on the same stream.
            try (Activations c = gpu.upload(second); Activations d = gpu.upload(first)) {
                assertArrayEquals(sum.data(), gpu.download(b).data());
                assertArrayEquals(second.data(), gpu.download(c).data());
                assertArrayEquals(first.data(), gpu.download(d).data());
            }
        }
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> gpu.download(a));
        assertEquals("cuda activations 16x300 used after close", e.getMessage());
    }

    @Test
    void weightsLargerThanTheStagingBufferUploadInChunksAndOnlyOnce() {
        SplittableRandom r = new SplittableRandom(2);
        int rows = 9000;
        int cols = 1200; // 43 MB of F32: more than one 32 MiB staging chunk
        Tensor table = tensor("big.embed", DType.F32, random(r, rows * cols, 1), rows, cols);
        int[] tokens = {0, rows - 1, 4567, 7000, 7000};
        long before = gpu.weights().deviceBytes();
        FloatMatrix expected = new FloatMatrix(tokens.length, cols);
        cpu.embed(tokens, table, cpu.upload(expected));
        for (int repeat = 0; repeat < 2; repeat++) {
            try (Activations out = gpu.allocate(tokens.length, cols)) {
                gpu.embed(tokens, table, out);
                assertArrayEquals(expected.data(), gpu.download(out).data());
            }
        }
        assertEquals(before + (long) rows * cols * 4, gpu.weights().deviceBytes());
    }

    // ---------------------------------------------------------------- linear

    @Test
    void linearMatchesTheCpuForEachWeightType() {
        for (DType type : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            checkLinear(type, 5, 300, 129, true);
            checkLinear(type, 1, 64, 1000, false);
            checkLinear(type, 70, 512, 96, true);
        }
    }

    /**
     * Tolerance per output: the GPU rounds each activation to the weight's type before cuBLAS
     * (relative error at most u = 2⁻¹¹ for F16, 2⁻⁸ for BF16, 0 for F32), and both sides sum k
     * products in fp32 in different orders (at most k · 2⁻²⁴ relative each), so
     * |gpu − cpu| ≤ (u + 2k · 2⁻²⁴) · Σ|x·w| (+ the bias's one rounding).
     */
    private static void checkLinear(DType type, int m, int k, int n, boolean withBias) {
        SplittableRandom r = new SplittableRandom(31L * m + k + type.ordinal());
        float[] w = random(r, n * k, 0.5);
        Tensor weight = tensor("linear." + type + "." + m + "x" + k + "x" + n, type, w, n, k);
        Tensor bias = withBias ? tensor("bias." + type + "." + n, type, random(r, n, 1), n) : null;
        FloatMatrix x = matrix(r, m, k, 2);
        FloatMatrix expected = new FloatMatrix(m, n);
        cpu.linear(cpu.upload(x), weight, bias, cpu.upload(expected));
        FloatMatrix actual;
        try (Activations in = gpu.upload(x); Activations out = gpu.allocate(m, n)) {
            gpu.linear(in, weight, bias, out);
            actual = gpu.download(out);
        }
        assertLinearClose(x, weight, expected, actual, type + " linear " + m + "x" + k + "x" + n);
    }

    private static void assertLinearClose(FloatMatrix x, Tensor weight, FloatMatrix expected, FloatMatrix actual, String what) {
        assertLinearClose(x, weight, expected, actual, what, 1);
    }

    /** {@code lipschitz}: how much a function applied after the product can stretch its error (1 for none). */
    private static void assertLinearClose(FloatMatrix x, Tensor weight, FloatMatrix expected, FloatMatrix actual, String what,
                                          double lipschitz) {
        DType type = weight.dtype();
        int m = x.rows();
        int k = x.cols();
        int n = weight.rows();
        double inputRounding = switch (type) {
            case F16 -> Math.scalb(1.0, -11);
            case BF16 -> Math.scalb(1.0, -8);
            default -> 0;
        };
        double accumulation = 2.0 * k * Math.scalb(1.0, -24);
        for (int row = 0; row < m; row++) {
            for (int col = 0; col < n; col++) {
                double magnitude = 0;
                for (int kk = 0; kk < k; kk++) {
                    magnitude += Math.abs(x.get(row, kk) * weight.getFloat((long) col * k + kk));
                }
                double bound = lipschitz * (inputRounding + accumulation) * magnitude + Math.ulp(expected.get(row, col)) + 1e-6;
                float e = expected.get(row, col);
                float a = actual.get(row, col);
                assertTrue(Math.abs(e - a) <= bound, what + " (" + row + ", " + col + "): " + a + " vs " + e + ", bound " + bound);
            }
        }
    }

    /**
     * q, k and v of different widths (as with grouped-query attention), one without a bias: placed
     * side by side they go through one product and the column split, placed apart through one
     * product each; both must give the CPU's separate linears.
     */
    @Test
    void linearsMatchTheCpuWhetherTheWeightsAreAdjacentOrNot() {
        for (DType type : new DType[] {DType.F16, DType.BF16, DType.F32}) {
            for (boolean adjacent : new boolean[] {true, false}) {
                for (int m : new int[] {1, 7}) {
                    SplittableRandom r = new SplittableRandom(type.ordinal() * 10 + m + (adjacent ? 100 : 0));
                    int k = 256;
                    int[] widths = {256, 64, 64};
                    List<Tensor> weights = new ArrayList<>();
                    List<Tensor> biases = new ArrayList<>();
                    String prefix = "fused." + type + "." + adjacent + "." + m + ".";
                    for (int i = 0; i < widths.length; i++) {
                        weights.add(tensor(prefix + "w" + i, type, random(r, widths[i] * k, 0.5), widths[i], k));
                        biases.add(i == 1 ? null : tensor(prefix + "b" + i, type, random(r, widths[i], 1), widths[i]));
                    }
                    if (adjacent) {
                        gpu.weights().prefetchAdjacent(weights);
                    } else {
                        // In reverse, so that separate allocations cannot happen to line up.
                        weights.reversed().forEach(w -> gpu.weights().prefetch(List.of(w)));
                    }
                    assertEquals(adjacent, sideBySide(weights), prefix + " placed side by side");
                    FloatMatrix x = matrix(r, m, k, 2);
                    List<Activations> outs = new ArrayList<>();
                    try (Activations in = gpu.upload(x)) {
                        for (int width : widths) {
                            outs.add(gpu.allocate(m, width));
                        }
                        gpu.linears(in, weights, biases, outs);
                        for (int i = 0; i < widths.length; i++) {
                            FloatMatrix expected = new FloatMatrix(m, widths[i]);
                            cpu.linear(cpu.upload(x), weights.get(i), biases.get(i), cpu.upload(expected));
                            assertLinearClose(x, weights.get(i), expected, gpu.download(outs.get(i)), prefix + "out" + i);
                        }
                    } finally {
                        outs.forEach(Activations::close);
                    }
                }
            }
        }
    }

    @Test
    void linearsOfMixedTypesTakeOneProductEach() {
        SplittableRandom r = new SplittableRandom(606);
        int k = 128;
        List<Tensor> weights = List.of(tensor("mixed.f16", DType.F16, random(r, 96 * k, 0.5), 96, k),
                tensor("mixed.bf16", DType.BF16, random(r, 32 * k, 0.5), 32, k));
        FloatMatrix x = matrix(r, 2, k, 2);
        try (Activations in = gpu.upload(x); Activations a = gpu.allocate(2, 96); Activations b = gpu.allocate(2, 32)) {
            gpu.linears(in, weights, Arrays.asList(null, null), List.of(a, b));
            List<Activations> outs = List.of(a, b);
            for (int i = 0; i < 2; i++) {
                FloatMatrix expected = new FloatMatrix(2, weights.get(i).rows());
                cpu.linear(cpu.upload(x), weights.get(i), null, cpu.upload(expected));
                assertLinearClose(x, weights.get(i), expected, gpu.download(outs.get(i)), weights.get(i).name());
            }
        }
    }

    @Test
    void streamedWeightsFetchedOutsideTheScheduleMeetTheirOwnProducts() {
        // Every layer weight in host memory, copied in per use through two device slots, and nothing
        // staged by a schedule: linears over q, k and v with biases fetches six streamed tensors
        // before and between its products; two slots fetched one tensor at a time would have the
        // third copy land on the first.
        SplittableRandom r = new SplittableRandom(707);
        int k = 64;
        Tensor q = tensor("streamed.q", DType.F16, random(r, 64 * k, 0.5), 64, k);
        Tensor kw = tensor("streamed.k", DType.F16, random(r, 32 * k, 0.5), 32, k);
        Tensor v = tensor("streamed.v", DType.F16, random(r, 32 * k, 0.5), 32, k);
        Tensor qb = tensor("streamed.q.bias", DType.F16, random(r, 64, 1), 64);
        Tensor kb = tensor("streamed.k.bias", DType.F16, random(r, 32, 1), 32);
        Tensor vb = tensor("streamed.v.bias", DType.F16, random(r, 32, 1), 32);
        Tensor o = tensor("streamed.o", DType.F16, random(r, k * 64, 0.5), k, 64);
        Tensor ob = tensor("streamed.o.bias", DType.F16, random(r, k, 1), k);
        Tensor gamma = tensor("streamed.norm", DType.F16, random(r, k, 1), k);
        Tensor beta = tensor("streamed.norm.bias", DType.F16, random(r, k, 1), k);
        LayerWeights layer = new LayerWeights(gamma, beta, q, qb, kw, kb, v, vb, o, ob,
                null, null, null, null, null, null, null, null);
        Map<String, WeightTier> tiers = new HashMap<>();
        for (Tensor t : layer.tensors()) {
            tiers.put(t.name(), WeightTier.HOST);
        }
        List<Tensor> qkv = List.of(q, kw, v);
        List<Tensor> biases = Arrays.asList(qb, kb, vb);
        FloatMatrix x = matrix(r, 3, k, 1);
        try (CudaBackend streaming = CudaBackend.open(new CudaBackend.Options("", 0, kernelCache))) {
            streaming.placeWeights(new WeightLayout(List.of(layer), tiers));
            for (int round = 0; round < 2; round++) {
                try (Activations in = streaming.upload(x); Activations qOut = streaming.allocate(3, 64);
                     Activations kOut = streaming.allocate(3, 32); Activations vOut = streaming.allocate(3, 32);
                     Activations oOut = streaming.allocate(3, k)) {
                    streaming.linears(in, qkv, biases, List.of(qOut, kOut, vOut));
                    streaming.linear(qOut, o, ob, oOut);
                    List<Activations> outs = List.of(qOut, kOut, vOut);
                    for (int i = 0; i < 3; i++) {
                        FloatMatrix expected = new FloatMatrix(3, qkv.get(i).rows());
                        cpu.linear(cpu.upload(x), qkv.get(i), biases.get(i), cpu.upload(expected));
                        assertLinearClose(x, qkv.get(i), expected, streaming.download(outs.get(i)), "round " + round + " " + qkv.get(i).name());
                    }
                    FloatMatrix projected = streaming.download(qOut);
                    FloatMatrix expectedO = new FloatMatrix(3, k);
                    cpu.linear(cpu.upload(projected), o, ob, cpu.upload(expectedO));
                    assertLinearClose(projected, o, expectedO, streaming.download(oOut), "round " + round + " o");
                }
            }
        }
    }

    private static boolean sideBySide(List<Tensor> weights) {
        try (CudaStream s = gpu.context().createStream()) {
            for (int i = 1; i < weights.size(); i++) {
                DeviceTensor before = gpu.weights().onDevice(weights.get(i - 1), s);
                if (before.address() + before.byteSize() != gpu.weights().onDevice(weights.get(i), s).address()) {
                    return false;
                }
            }
            return true;
        }
    }

    @Test
    void linearActivatedMatchesTheCpu() {
        for (String activation : new String[] {"relu", "gelu"}) {
            for (boolean withBias : new boolean[] {true, false}) {
                SplittableRandom r = new SplittableRandom(activation.length() * 2 + (withBias ? 1 : 0));
                int m = 4;
                int k = 128;
                int n = 320;
                String name = "activated." + activation + "." + withBias;
                Tensor weight = tensor(name, DType.F16, random(r, n * k, 0.5), n, k);
                Tensor bias = withBias ? tensor(name + ".bias", DType.F16, random(r, n, 1), n) : null;
                FloatMatrix x = matrix(r, m, k, 2);
                FloatMatrix product = new FloatMatrix(m, n);
                cpu.linear(cpu.upload(x), weight, bias, cpu.upload(product));
                FloatMatrix actual;
                try (Activations in = gpu.upload(x); Activations out = gpu.allocate(m, n)) {
                    gpu.linearActivated(in, weight, bias, out, activation);
                    actual = gpu.download(out);
                }
                // relu moves a difference of products by at most its size, the exact gelu by at most 1.13 times.
                FloatMatrix expected = copy(product);
                cpu.activate(cpu.upload(expected), activation);
                assertLinearClose(x, weight, expected, actual, name, activation.equals("relu") ? 1 : 1.13);
            }
        }
    }

    /**
     * A product reads its input converted to the weights' type, which kernels before it (norms,
     * activations, attention merges) may have written already; whatever changed the input since, the
     * product must see the current values.
     */
    @Test
    void productsSeeTheCurrentValuesOfTheirInput() {
        checkCurrentInput(256); // the norm's vectorised path writes the narrowed copy
        checkCurrentInput(258); // its re-reading path does
    }

    private static void checkCurrentInput(int k) {
        SplittableRandom r = new SplittableRandom(2024 + k);
        int m = 3;
        int n = 96;
        Tensor weight = tensor("current.input." + k, DType.F16, random(r, n * k, 0.5), n, k);
        Tensor gamma = tensor("current.gamma." + k, DType.F16, random(r, k, 1), k);
        FloatMatrix x = matrix(r, m, k, 2);
        FloatMatrix y = matrix(r, m, k, 2);
        FloatMatrix normed = new FloatMatrix(m, k);
        cpu.rmsNorm(cpu.upload(x), gamma, 1e-5f, cpu.upload(normed));
        try (Activations gx = gpu.upload(x); Activations gn = gpu.allocate(m, k); Activations out = gpu.allocate(m, n)) {
            gpu.linear(gx, weight, null, out); // a product of F16 weights first: later kernels narrow for it
            gpu.rmsNorm(gx, gamma, 1e-5f, gn);
            FloatMatrix current = gpu.download(gn);
            assertClose(normed, current, 1e-5, 1e-5, "rmsNorm before the products");
            checkProduct(current, weight, gn, out, "after rmsNorm");
            checkProduct(current, weight, gn, out, "the same input again");
            try (Activations gy = gpu.upload(y)) {
                gpu.addInPlace(gn, gy);
            }
            checkProduct(gpu.download(gn), weight, gn, out, "after addInPlace on the input");
            gpu.activate(gn, "relu");
            checkProduct(gpu.download(gn), weight, gn, out, "after relu");
        }
        // A new matrix in the buffer the last one gave back is not mistaken for it.
        try (Activations fresh = gpu.upload(y); Activations out = gpu.allocate(m, n)) {
            checkProduct(y, weight, fresh, out, "a fresh input in a reused buffer");
        }
    }

    private static void checkProduct(FloatMatrix input, Tensor weight, Activations onGpu, Activations out, String what) {
        FloatMatrix expected = new FloatMatrix(input.rows(), weight.rows());
        cpu.linear(cpu.upload(input), weight, null, cpu.upload(expected));
        gpu.linear(onGpu, weight, null, out);
        assertLinearClose(input, weight, expected, gpu.download(out), what);
    }

    @Test
    void greedyTokensMatchTheCpu() {
        SplittableRandom r = new SplittableRandom(404);
        FloatMatrix logits = matrix(r, 5, 50272, 8);
        // Ties: the lowest id must win on both.
        logits.data()[3 * 50272 + 17] = 100;
        logits.data()[3 * 50272 + 40000] = 100;
        logits.data()[4 * 50272 + 9] = Float.NaN;
        try (Activations onGpu = gpu.upload(logits)) {
            assertArrayEquals(cpu.greedyTokens(cpu.upload(logits)), gpu.greedyTokens(onGpu));
        }
    }

    /** Few rows and k a multiple of 32 take the k-sliced product; the others one product and a bias kernel. */
    @Test
    void linearAddAccumulatesIntoTheResidual() {
        for (DType type : new DType[] {DType.F16, DType.F32}) {
            for (int[] shape : new int[][] {{3, 192}, {3, 200}, {CudaBackend.SLICED_ACCUMULATE_MAX_ROWS + 4, 192}}) {
                checkLinearAdd(type, shape[0], shape[1]);
            }
        }
    }

    private static void checkLinearAdd(DType type, int m, int k) {
        SplittableRandom r = new SplittableRandom(77 + type.ordinal() + m + k);
        int n = 160;
        String name = "residual." + type + "." + m + "x" + k;
        Tensor weight = tensor(name, type, random(r, n * k, 0.5), n, k);
        Tensor bias = tensor(name + ".bias", type, random(r, n, 1), n);
        FloatMatrix x = matrix(r, m, k, 2);
        FloatMatrix residual = matrix(r, m, n, 3);
        FloatMatrix product = new FloatMatrix(m, n);
        cpu.linear(cpu.upload(x), weight, bias, cpu.upload(product));
        FloatMatrix actual;
        try (Activations in = gpu.upload(x); Activations acc = gpu.upload(residual)) {
            gpu.linearAdd(in, weight, bias, acc);
            actual = gpu.download(acc);
            assertThrows(IllegalArgumentException.class, () -> gpu.linearAdd(acc, weight, null, acc));
        }
        // What the product added, against the CPU's product: the residual's own rounding is within one ulp.
        FloatMatrix added = new FloatMatrix(m, n);
        for (int i = 0; i < m * n; i++) {
            added.data()[i] = actual.data()[i] - residual.data()[i];
        }
        assertLinearClose(x, weight, product, added, name + " linearAdd");
    }

    @Test
    void badShapesFailWithOneLineMessages() {
        Tensor weight = tensor("proj.weight", DType.F16, new float[12], 3, 4);
        try (Activations x = gpu.allocate(2, 5); Activations out = gpu.allocate(2, 3)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> gpu.linear(x, weight, null, out));
            assertEquals("linear input for proj.weight: 2x5, expected 2x4", e.getMessage());
        }
        Activations foreign = cpu.allocate(2, 4);
        try (Activations out = gpu.allocate(2, 3)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> gpu.linear(foreign, weight, null, out));
            assertTrue(e.getMessage().startsWith("linear: ") && e.getMessage().endsWith("does not belong to this cuda backend"), e.getMessage());
        }
        Tensor table = tensor("embed", DType.F32, new float[8], 2, 4);
        try (Activations out = gpu.allocate(1, 4)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> gpu.embed(new int[] {2}, table, out));
            assertEquals("token id 2 outside embed of 2 rows", e.getMessage());
        }
    }

    // ---------------------------------------------------------------- row and element-wise kernels

    @Test
    void embeddingsAndGatherAreExact() {
        SplittableRandom r = new SplittableRandom(3);
        for (DType type : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            Tensor table = tensor("embed." + type, type, random(r, 100 * 48, 1), 100, 48);
            Tensor positions = tensor("pos." + type, type, random(r, 30 * 48, 1), 30, 48);
            int[] tokens = {5, 99, 0, 5, 42};
            int[] pos = {2, 3, 4, 0, 29};
            FloatMatrix expected = new FloatMatrix(tokens.length, 48);
            Activations e = cpu.upload(expected);
            cpu.embed(tokens, table, e);
            cpu.addEmbeddingRows(pos, positions, e);
            try (Activations out = gpu.allocate(tokens.length, 48)) {
                gpu.embed(tokens, table, out);
                gpu.addEmbeddingRows(pos, positions, out);
                // Both sides widen the same stored value and add once in fp32: bit-identical.
                assertArrayEquals(expected.data(), gpu.download(out).data(), type.toString());
            }
        }
        FloatMatrix src = matrix(r, 9, 70, 1);
        int[] rows = {8, 0, 3, 3};
        FloatMatrix expected = new FloatMatrix(rows.length, 70);
        cpu.gatherRows(cpu.upload(src), rows, cpu.upload(expected));
        try (Activations s = gpu.upload(src); Activations d = gpu.allocate(rows.length, 70)) {
            gpu.gatherRows(s, rows, d);
            assertArrayEquals(expected.data(), gpu.download(d).data());
        }
    }

    @Test
    void elementWiseKernelsMatchTheCpu() {
        SplittableRandom r = new SplittableRandom(4);
        FloatMatrix a = matrix(r, 7, 1001, 4);
        FloatMatrix b = matrix(r, 7, 1001, 4);

        FloatMatrix sum = copy(a);
        cpu.addInPlace(cpu.upload(sum), cpu.upload(b));
        try (Activations bb = gpu.upload(b)) {
            assertArrayEquals(sum.data(), onGpu(a, x -> gpu.addInPlace(x, bb)).data(), "add: one fp32 addition, exact");
        }

        FloatMatrix relu = copy(a);
        cpu.activate(cpu.upload(relu), "relu");
        assertArrayEquals(relu.data(), onGpu(a, x -> gpu.activate(x, "relu")).data(), "relu is exact");

        // erff is within 2 ulp of erf; on |x| <= 4 that is below 1e-6 absolute after 0.5·x·(1 + erf).
        FloatMatrix gelu = copy(a);
        cpu.activate(cpu.upload(gelu), "gelu");
        assertClose(gelu, onGpu(a, x -> gpu.activate(x, "gelu")), 4e-6, 1e-6, "gelu");

        // expf is within 2 ulp of exp: a few ulp of relative error in silu(g)·u.
        FloatMatrix silu = copy(a);
        cpu.siluMul(cpu.upload(silu), cpu.upload(b));
        try (Activations bb = gpu.upload(b)) {
            assertClose(silu, onGpu(a, x -> gpu.siluMul(x, bb)), 1e-6, 2e-6, "siluMul");
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> onGpu(a, x -> gpu.activate(x, "tanh")));
        assertEquals("unknown activation tanh (expected relu or gelu)", e.getMessage());
    }

    @Test
    void normsMatchTheCpu() {
        SplittableRandom r = new SplittableRandom(5);
        // 66 (not a multiple of 4) and 12288 (over 8 · 1024) take the kernels' re-reading path, the others
        // the vectorised one.
        for (DType type : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            for (int cols : new int[] {64, 66, 4096, 5120, 12288}) {
                FloatMatrix x = matrix(r, 6, cols, 3);
                for (int i = 0; i < cols; i++) {
                    x.set(0, i, x.get(0, i) + 50); // a large-mean row, where a one-pass variance would cancel
                }
                Tensor gamma = tensor("g." + cols + type, type, random(r, cols, 2), cols);
                Tensor beta = tensor("b." + cols + type, type, random(r, cols, 1), cols);
                // fp32 tree sums on the GPU against double sums on the CPU: the mean and variance
                // agree to ~1e-6 relative, so outputs (|v| up to ~10) agree to a few 1e-6.
                FloatMatrix ln = new FloatMatrix(6, cols);
                cpu.layerNorm(cpu.upload(x), gamma, beta, 1e-5f, cpu.upload(ln));
                FloatMatrix rms = new FloatMatrix(6, cols);
                cpu.rmsNorm(cpu.upload(x), gamma, 1e-6f, cpu.upload(rms));
                FloatMatrix lnNoBeta = new FloatMatrix(6, cols);
                cpu.layerNorm(cpu.upload(x), gamma, null, 1e-5f, cpu.upload(lnNoBeta));
                try (Activations in = gpu.upload(x); Activations out = gpu.allocate(6, cols)) {
                    gpu.layerNorm(in, gamma, beta, 1e-5f, out);
                    assertClose(ln, gpu.download(out), 2e-5, 2e-5, "layerNorm " + type + " " + cols);
                    gpu.layerNorm(in, gamma, null, 1e-5f, out);
                    assertClose(lnNoBeta, gpu.download(out), 2e-5, 2e-5, "layerNorm without beta " + type + " " + cols);
                    gpu.rmsNorm(in, gamma, 1e-6f, out);
                    assertClose(rms, gpu.download(out), 2e-5, 2e-5, "rmsNorm " + type + " " + cols);
                }
            }
        }
    }

    @Test
    void rotaryMatchesTheCpu() {
        SplittableRandom r = new SplittableRandom(6);
        double[] inv = new double[32];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = Math.pow(10000, -2.0 * i / 64);
        }
        RotaryTable table = new RotaryTable(inv, 4096);
        int heads = 6;
        FloatMatrix x = matrix(r, 5, heads * 64, 2);
        int[] positions = {0, 1, 17, 4095, 1000};
        FloatMatrix expected = copy(x);
        cpu.rotary(cpu.upload(expected), heads, table, positions);
        // Same table, same four products; the GPU may fuse a multiply-add (one rounding fewer).
        assertClose(expected, onGpu(x, a -> gpu.rotary(a, heads, table, positions)), 1e-6, 1e-6, "rotary");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> onGpu(x, a -> gpu.rotary(a, heads, table, new int[] {0, 1, 2, 3, 4096})));
        assertEquals("position 4096 outside the rotary table of 4096", e.getMessage());
    }

    // ---------------------------------------------------------------- attention

    @Test
    void causalPrefillAttentionMatchesTheCpu() {
        checkPrefill(8, 2, 64, new int[] {1, 37, 70});
        checkPrefill(4, 4, 128, new int[] {33, 5});
        checkPrefill(2, 1, 256, new int[] {40}); // above 48 KiB of shared memory: the opt-in path
        checkPrefill(3, 3, 80, new int[] {0, 9});
    }

    /**
     * Outputs are convex combinations of values in [−1, 1]; fp32 softmax on both sides, in a
     * different order (online on the GPU): 1e-5 absolute, far below the O(0.1) error of any
     * wrong key, head or mask.
     */
    private static void checkPrefill(int heads, int kvHeads, int headDim, int[] lengths) {
        SplittableRandom r = new SplittableRandom(heads * 1000L + headDim);
        int[] starts = new int[lengths.length];
        int total = 0;
        for (int s = 0; s < lengths.length; s++) {
            starts[s] = total;
            total += lengths[s];
        }
        FloatMatrix q = matrix(r, total, heads * headDim, 1);
        FloatMatrix k = matrix(r, total, kvHeads * headDim, 1);
        FloatMatrix v = matrix(r, total, kvHeads * headDim, 1);
        FloatMatrix expected = new FloatMatrix(total, heads * headDim);
        cpu.causalAttention(cpu.upload(q), cpu.upload(k), cpu.upload(v), starts, lengths, heads, kvHeads, headDim, cpu.upload(expected));
        try (Activations qa = gpu.upload(q); Activations ka = gpu.upload(k); Activations va = gpu.upload(v);
             Activations out = gpu.allocate(total, heads * headDim)) {
            gpu.causalAttention(qa, ka, va, starts, lengths, heads, kvHeads, headDim, out);
            assertClose(expected, gpu.download(out), 1e-5, 0, "prefill " + heads + "/" + kvHeads + "x" + headDim + " " + Arrays.toString(lengths));
        }
    }

    @Test
    void decodeAttentionOverTheKvBlockMatchesTheReference() {
        checkDecode(DType.F32, 8, 2, 128, new int[] {1, 300, 0, 777});
        checkDecode(DType.F16, 4, 4, 64, new int[] {513, 2});
        checkDecode(DType.F16, 2, 1, 80, new int[] {100, 37, 5}); // 10 threads per key in groups of 16
        checkDecode(DType.F32, 2, 2, 256, new int[] {70}); // a whole warp per key
        checkDecode(DType.F16, 64, 8, 128, new int[] {3000}); // many splits of one long sequence
    }

    /**
     * Reference in double over the values the block stores (F16-rounded for an F16 block); the GPU
     * accumulates fp32 over up to 777 keys in splits of 256 then merges: 1e-5 on outputs in [−1, 1]
     * and on the log-sum-exp (magnitude ~ log(777) + max score).
     */
    private static void checkDecode(DType cacheType, int heads, int kvHeads, int headDim, int[] lengths) {
        SplittableRandom r = new SplittableRandom(heads + headDim + cacheType.ordinal());
        int slots = lengths.length;
        int kvDim = kvHeads * headDim;
        int maxTokens = Arrays.stream(lengths).max().orElse(1) + 1;
        Map<Integer, List<float[]>> keys = new HashMap<>();
        Map<Integer, List<float[]>> values = new HashMap<>();
        try (CudaKvBlock block = gpu.createKvBlock(slots, maxTokens, kvHeads, headDim, cacheType)) {
            for (int s = 0; s < slots; s++) {
                keys.put(s, new ArrayList<>());
                values.put(s, new ArrayList<>());
                if (lengths[s] == 0) {
                    continue;
                }
                // The prompt as one append of many rows of one slot.
                FloatMatrix k = matrix(r, lengths[s], kvDim, 1);
                FloatMatrix v = matrix(r, lengths[s], kvDim, 1);
                int[] slotOfRow = new int[lengths[s]];
                Arrays.fill(slotOfRow, s);
                try (Activations ka = gpu.upload(k); Activations va = gpu.upload(v)) {
                    block.append(slotOfRow, ka, va);
                }
                for (int t = 0; t < lengths[s]; t++) {
                    keys.get(s).add(rounded(k.row(t), cacheType));
                    values.get(s).add(rounded(v.row(t), cacheType));
                }
            }
            // One decode step: every slot appends one token, then attends over its whole history.
            int[] order = new int[slots];
            for (int i = 0; i < slots; i++) {
                order[i] = slots - 1 - i;
            }
            FloatMatrix newK = matrix(r, slots, kvDim, 1);
            FloatMatrix newV = matrix(r, slots, kvDim, 1);
            FloatMatrix q = matrix(r, slots, heads * headDim, 1);
            try (Activations ka = gpu.upload(newK); Activations va = gpu.upload(newV)) {
                block.append(order, ka, va);
            }
            for (int i = 0; i < slots; i++) {
                keys.get(order[i]).add(rounded(newK.row(i), cacheType));
                values.get(order[i]).add(rounded(newV.row(i), cacheType));
                assertEquals(lengths[order[i]] + 1, block.length(order[i]));
            }
            FloatMatrix expectedOut = new FloatMatrix(slots, heads * headDim);
            FloatMatrix expectedLse = new FloatMatrix(slots, heads);
            for (int i = 0; i < slots; i++) {
                referenceAttention(q.row(i), keys.get(order[i]), values.get(order[i]), heads, kvHeads, headDim,
                        expectedOut.data(), i * heads * headDim, expectedLse.data(), i * heads);
            }
            try (Activations qa = gpu.upload(q); Activations out = gpu.allocate(slots, heads * headDim);
                 Activations lse = gpu.allocate(slots, heads)) {
                gpu.decodeAttention(qa, block, order, heads, out, lse);
                String what = "decode " + cacheType + " " + heads + "/" + kvHeads + "x" + headDim;
                assertClose(expectedOut, gpu.download(out), 1e-5, 0, what + " output");
                assertClose(expectedLse, gpu.download(lse), 1e-5, 1e-6, what + " log-sum-exp");
            }
            block.release(0);
            assertEquals(0, block.length(0));
        }
    }

    private static float[] rounded(float[] v, DType type) {
        MemorySegment tmp = MemorySegment.ofArray(new float[v.length]);
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            type.setFloat(tmp, i, v[i]);
            out[i] = type.getFloat(tmp, i);
        }
        return out;
    }

    private static void referenceAttention(float[] q, List<float[]> keys, List<float[]> values, int heads, int kvHeads,
                                           int headDim, float[] out, int outOffset, float[] lse, int lseOffset) {
        double scale = 1.0 / Math.sqrt(headDim);
        for (int h = 0; h < heads; h++) {
            int kv = h / (heads / kvHeads);
            double[] scores = new double[keys.size()];
            double max = Double.NEGATIVE_INFINITY;
            for (int t = 0; t < keys.size(); t++) {
                double dot = 0;
                for (int d = 0; d < headDim; d++) {
                    dot += (double) q[h * headDim + d] * keys.get(t)[kv * headDim + d];
                }
                scores[t] = dot * scale;
                max = Math.max(max, scores[t]);
            }
            double sum = 0;
            for (int t = 0; t < scores.length; t++) {
                scores[t] = Math.exp(scores[t] - max);
                sum += scores[t];
            }
            for (int d = 0; d < headDim; d++) {
                double acc = 0;
                for (int t = 0; t < scores.length; t++) {
                    acc += scores[t] * values.get(t)[kv * headDim + d];
                }
                out[outOffset + h * headDim + d] = (float) (acc / sum);
            }
            lse[lseOffset + h] = (float) (max + Math.log(sum));
        }
    }

    @Test
    void mergeOfPartialsMatchesPartialAttention() {
        SplittableRandom r = new SplittableRandom(8);
        int n = 3;
        int heads = 4;
        int headDim = 96;
        int parts = 3;
        List<FloatMatrix> outs = new ArrayList<>();
        List<FloatMatrix> lses = new ArrayList<>();
        for (int p = 0; p < parts; p++) {
            outs.add(matrix(r, n, heads * headDim, 1));
            FloatMatrix l = matrix(r, n, heads, 20);
            if (p == 1) {
                l.set(0, 2, PartialAttention.EMPTY_LSE); // a place holding none of row 0's keys for head 2
            }
            lses.add(l);
        }
        FloatMatrix lseAllEmpty = new FloatMatrix(n, heads);
        lseAllEmpty.fill(PartialAttention.EMPTY_LSE);
        FloatMatrix expected = new FloatMatrix(n, heads * headDim);
        float[] expectedLse = new float[n * heads];
        Arrays.fill(expectedLse, PartialAttention.EMPTY_LSE);
        for (int p = 0; p < parts; p++) {
            for (int pair = 0; pair < n * heads; pair++) {
                PartialAttention.accumulate(expected.data(), pair * headDim, expectedLse, pair, outs.get(p).data(),
                        pair * headDim, lses.get(p).data()[pair], headDim);
            }
        }
        List<Activations> gOuts = new ArrayList<>();
        List<Activations> gLses = new ArrayList<>();
        try (Activations out = gpu.allocate(n, heads * headDim); Activations lse = gpu.allocate(n, heads)) {
            for (int p = 0; p < parts; p++) {
                gOuts.add(gpu.upload(outs.get(p)));
                gLses.add(gpu.upload(lses.get(p)));
            }
            gpu.mergeAttention(gOuts, gLses, headDim, out, lse);
            // Pairwise (CPU) and all-at-once (GPU) merging round differently: a few ulp.
            assertClose(expected, gpu.download(out), 1e-6, 1e-6, "merged output");
            assertClose(new FloatMatrix(expectedLse, n, heads), gpu.download(lse), 1e-6, 1e-6, "merged log-sum-exp");

            try (Activations emptyLse = gpu.upload(lseAllEmpty)) {
                gpu.mergeAttention(List.of(gOuts.get(0)), List.of(emptyLse), headDim, out, lse);
                FloatMatrix merged = gpu.download(out);
                assertTrue(Arrays.stream(toDoubles(merged.data())).allMatch(v -> v == 0), "nothing to attend gives zeros");
                assertTrue(Arrays.stream(toDoubles(gpu.download(lse).data())).allMatch(v -> v == Double.NEGATIVE_INFINITY));
            }
        } finally {
            Stream.concat(gOuts.stream(), gLses.stream()).forEach(Activations::close);
        }
    }

    private static double[] toDoubles(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }

    // ---------------------------------------------------------------- token selection

    @Test
    void tokenSelectionMatchesTheReferenceRule() {
        SplittableRandom r = new SplittableRandom(9);
        int vocab = 5003;
        float[] temperature = {0, 0, 1, 0.7f, 1.3f, 1, 0.5f, 2, 1, 0.9f};
        int[] topK = {0, 0, 0, 50, 0, 20, 1, 0, 3, 100};
        float[] topP = {1, 1, 1, 1, 0.9f, 0.5f, 1, 0.3f, 1, 0.95f};
        int n = temperature.length;
        float[] uniform = new float[n];
        for (int i = 0; i < n; i++) {
            uniform[i] = (float) r.nextDouble();
        }
        uniform[8] = 0.9999999f; // the top of the inverse CDF
        FloatMatrix logits = matrix(r, n, vocab, 6);
        logits.set(1, 4000, 100);
        logits.set(1, 17, 100); // a tie: greedy takes the lower id
        int[] expected = new int[n];
        for (int i = 0; i < n; i++) {
            expected[i] = referenceSelect(logits.row(i), temperature[i], topK[i], topP[i], uniform[i]);
        }
        assertEquals(17, expected[1]);
        try (Activations l = gpu.upload(logits)) {
            assertArrayEquals(expected, gpu.selectTokens(l, temperature, topK, topP, uniform));
        }
    }

    /** The rule sampling.cu implements, written plainly: see {@link CudaBackend#selectTokens}. */
    static int referenceSelect(float[] logits, float temperature, int topK, float topP, float u) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        if (temperature <= 0) {
            return best;
        }
        float max = logits[best];
        float[] w = new float[logits.length];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) Math.exp((logits[i] - max) / temperature);
        }
        float[] sorted = w.clone();
        Arrays.sort(sorted);
        float threshold = 0;
        if (topK > 0 && topK < w.length) {
            threshold = sorted[sorted.length - topK]; // the k-th largest weight: ties with it survive
        }
        if (topP < 1) {
            double kept = 0;
            for (float x : w) {
                kept += x >= threshold ? x : 0;
            }
            // Survivors in descending weight; a weight survives when the mass strictly above it is below p·kept.
            double above = 0;
            float pThreshold = sorted[sorted.length - 1];
            int i = sorted.length - 1;
            while (i >= 0 && sorted[i] >= threshold) {
                int j = i;
                double tied = 0;
                while (j >= 0 && sorted[j] == sorted[i]) {
                    tied += sorted[j];
                    j--;
                }
                if (above < topP * kept) {
                    pThreshold = sorted[i];
                } else {
                    break;
                }
                above += tied;
                i = j;
            }
            threshold = Math.max(threshold, pThreshold);
        }
        double total = 0;
        int last = -1;
        for (int i = 0; i < w.length; i++) {
            if (w[i] >= threshold) {
                total += w[i];
                last = i;
            }
        }
        double target = u * total;
        double running = 0;
        for (int i = 0; i < w.length; i++) {
            if (w[i] >= threshold) {
                running += w[i];
                if (running > target) {
                    return i;
                }
            }
        }
        return last;
    }

    // ---------------------------------------------------------------- kernel cache

    @Test
    void compiledKernelsAreCachedOnDiskAndReused() throws IOException {
        gpu.loadKernels();
        List<Path> images;
        try (Stream<Path> files = Files.list(kernelCache)) {
            images = files.filter(p -> p.toString().endsWith(".cubin")).sorted().toList();
        }
        String arch = gpu.context().architecture();
        assertEquals(4, images.size(), images.toString());
        for (Path p : images) {
            assertTrue(p.getFileName().toString().contains("-" + arch + "-nvrtc13."), p.toString());
        }
        FileTime before = Files.getLastModifiedTime(images.get(0));
        try (CudaBackend second = CudaBackend.open(new CudaBackend.Options("", 0, kernelCache))) {
            second.loadKernels();
        }
        assertEquals(before, Files.getLastModifiedTime(images.get(0)), "a cached image is read, not compiled and written again");
    }

    @Test
    void aCachedKernelThatDoesNotLoadIsCompiledAgain() throws IOException {
        gpu.loadKernels();
        Path broken;
        try (Stream<Path> files = Files.list(kernelCache)) {
            broken = files.filter(p -> p.toString().endsWith(".cubin")).sorted().findFirst().orElseThrow();
        }
        Files.write(broken, new byte[] {0x7f, 'E', 'L', 'F'});
        try (CudaBackend second = CudaBackend.open(new CudaBackend.Options("", 0, kernelCache))) {
            second.loadKernels();
        }
        assertTrue(Files.size(broken) > 4, "the image that did not load was compiled and cached again");
    }
}
