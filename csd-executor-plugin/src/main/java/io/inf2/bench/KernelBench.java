package io.inf2.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.inf2.compute.Activations;
import io.inf2.compute.cpu.CpuAttention;
import io.inf2.compute.cpu.CpuBackend;
import io.inf2.compute.cpu.CpuKernels;
import io.inf2.compute.cpu.VectorKernels;
import io.inf2.tensor.DType;
import io.inf2.tensor.FloatMatrix;
import io.inf2.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Throughput of the CPU backend's kernels, printed as one JSON document: the linear kernel in GB/s of
 * weight bytes for F32, F16 and BF16 weights at batch 1 (memory-bound: compare with the memory
 * bandwidth measured in the same run) and batch 32 (compute-bound: one pass over the weights for all
 * 32 rows), plus the element-wise ops and decode attention.
 *
 * <p>Usage: {@code KernelBench [--threads N] [--bandwidth-bytes B] [--n N] [--k K] [--seconds S]}.
 * Defaults: every processor, 1 GiB, a 11008 × 4096 weight (LLaMA-7B's MLP projection, far larger
 * than any L3), and about 2 s of timed runs per figure.
 */
public final class KernelBench {

    /** One linear configuration: weight bytes per second, and the arithmetic rate it implies. */
    public record LinearResult(String dtype, int batch, int n, int k, long weightBytes, double bestGBps,
                               double medianGBps, double bestGflops, double fractionOfMemoryBandwidth) {
    }

    /** An element-wise or attention op: what was measured, and its rate in the named unit. */
    public record OpResult(String op, String shape, String unit, double best, double median) {
    }

    public record Report(String benchmark, String timestamp, String java, String cpu, int processors, int threads,
                         String kernels, int vectorLanes, MemoryBandwidth.Result memoryBandwidth,
                         List<LinearResult> linear, List<OpResult> ops) {
    }

    private record Timing(double bestSeconds, double medianSeconds) {
    }

    private KernelBench() {
    }

    public static void main(String[] args) throws JsonProcessingException {
        int threads = Runtime.getRuntime().availableProcessors();
        long bandwidthBytes = MemoryBandwidth.DEFAULT_BYTES;
        int n = 11008;
        int k = 4096;
        double seconds = 2;
        for (int i = 0; i < args.length; i++) {
            String flag = args[i];
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException("KernelBench: " + flag + " needs a value");
            }
            String value = args[++i];
            switch (flag) {
                case "--threads" -> threads = Integer.parseInt(value);
                case "--bandwidth-bytes" -> bandwidthBytes = Long.parseLong(value);
                case "--n" -> n = Integer.parseInt(value);
                case "--k" -> k = Integer.parseInt(value);
                case "--seconds" -> seconds = Double.parseDouble(value);
                default -> throw new IllegalArgumentException("KernelBench: unknown flag " + flag
                        + " (known: --threads, --bandwidth-bytes, --n, --k, --seconds)");
            }
        }
        MemoryBandwidth.Result bandwidth = MemoryBandwidth.measure(bandwidthBytes, threads, MemoryBandwidth.DEFAULT_PASSES);
        List<LinearResult> linear = new ArrayList<>();
        List<OpResult> ops = new ArrayList<>();
        CpuKernels kernels = CpuKernels.fastest();
        try (CpuBackend backend = new CpuBackend(threads, kernels)) {
            for (DType dtype : List.of(DType.F32, DType.F16, DType.BF16)) {
                for (int batch : new int[] {1, 32}) {
                    linear.add(linear(backend, dtype, batch, n, k, seconds, bandwidth.bestGBps()));
                }
            }
            ops.addAll(elementwise(backend, seconds));
            ops.addAll(attention(backend, seconds));
        }
        Report report = new Report("cpu-kernels", Instant.now().toString(), Runtime.version().toString(), cpuName(),
                Runtime.getRuntime().availableProcessors(), threads, kernels.getClass().getSimpleName(),
                kernels instanceof VectorKernels ? VectorKernels.lanes() : 1, bandwidth, linear, ops);
        System.out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(report));
    }

    private static LinearResult linear(CpuBackend backend, DType dtype, int batch, int n, int k, double seconds,
                                       double bandwidthGBps) {
        try (Arena arena = Arena.ofShared()) {
            Tensor weight = randomTensor(arena, "w", dtype, n, k, 1);
            Activations x = backend.upload(randomMatrix(batch, k, 2));
            Activations out = backend.allocate(batch, n);
            Timing t = time(() -> backend.linear(x, weight, null, out), seconds);
            long bytes = weight.data().byteSize();
            double flops = 2.0 * batch * n * k;
            return new LinearResult(dtype.name(), batch, n, k, bytes, bytes / t.bestSeconds() / 1e9,
                    bytes / t.medianSeconds() / 1e9, flops / t.bestSeconds() / 1e9,
                    bytes / t.bestSeconds() / 1e9 / bandwidthGBps);
        }
    }

    private static List<OpResult> elementwise(CpuBackend backend, double seconds) {
        int rows = 32;
        int inner = 11008;
        int hidden = 4096;
        List<OpResult> results = new ArrayList<>();
        double elements = (double) rows * inner;
        String shape = rows + "x" + inner;
        FloatMatrix gate = randomMatrix(rows, inner, 3);
        FloatMatrix up = randomMatrix(rows, inner, 4);
        float[] gateCopy = gate.data().clone();
        Activations g = backend.upload(gate);
        Activations u = backend.upload(up);
        // Each run restores the input so values stay in range; the copy is part of the measured time.
        Timing silu = time(() -> {
            System.arraycopy(gateCopy, 0, gate.data(), 0, gateCopy.length);
            backend.siluMul(g, u);
        }, seconds / 4);
        results.add(rate("siluMul", shape, "elements/ns", elements / 1e9, silu));
        Timing gelu = time(() -> {
            System.arraycopy(gateCopy, 0, gate.data(), 0, gateCopy.length);
            backend.activate(g, "gelu");
        }, seconds / 4);
        results.add(rate("gelu", shape, "elements/ns", elements / 1e9, gelu));
        try (Arena arena = Arena.ofShared()) {
            Tensor gamma = randomTensor(arena, "gamma", DType.F32, 1, hidden, 5);
            Tensor gamma1d = new Tensor("gamma", DType.F32, new long[] {hidden}, gamma.data());
            Activations x = backend.upload(randomMatrix(rows, hidden, 6));
            Activations normed = backend.allocate(rows, hidden);
            Timing rms = time(() -> backend.rmsNorm(x, gamma1d, 1e-5f, normed), seconds / 4);
            results.add(rate("rmsNorm", rows + "x" + hidden, "elements/ns", (double) rows * hidden / 1e9, rms));
            Timing ln = time(() -> backend.layerNorm(x, gamma1d, gamma1d, 1e-5f, normed), seconds / 4);
            results.add(rate("layerNorm", rows + "x" + hidden, "elements/ns", (double) rows * hidden / 1e9, ln));
        }
        return results;
    }

    private static List<OpResult> attention(CpuBackend backend, double seconds) {
        List<OpResult> results = new ArrayList<>();
        int headDim = 128;
        int group = 4;
        int tokens = 4096;
        float[] q = randomMatrix(1, group * headDim, 7).data();
        float[] keys = randomMatrix(tokens, headDim, 8).data();
        float[] values = randomMatrix(tokens, headDim, 9).data();
        float[] out = new float[group * headDim];
        float[] lse = new float[group];
        String shape = "group " + group + ", headDim " + headDim + ", " + tokens + " tokens";
        Timing f32 = time(() -> CpuAttention.attendGroup(q, 0, group, headDim, keys, 0, values, 0, headDim, tokens,
                out, 0, lse, 0), seconds / 4);
        results.add(rate("decodeAttention f32 rows (one thread)", shape, "GB/s of K+V", 2.0 * tokens * headDim * 4 / 1e9, f32));
        try (Arena arena = Arena.ofShared()) {
            MemorySegment k16 = randomTensor(arena, "k", DType.F16, tokens, headDim, 10).data();
            MemorySegment v16 = randomTensor(arena, "v", DType.F16, tokens, headDim, 11).data();
            Timing f16 = time(() -> CpuAttention.attendGroup(q, 0, group, headDim, k16, 0, v16, 0, DType.F16, headDim,
                    tokens, out, 0, lse, 0), seconds / 4);
            results.add(rate("decodeAttention f16 rows (one thread)", shape, "GB/s of K+V", 2.0 * tokens * headDim * 2 / 1e9, f16));
        }
        int prompt = 512;
        int heads = 32;
        int kvHeads = 8;
        Activations pq = backend.upload(randomMatrix(prompt, heads * headDim, 12));
        Activations pk = backend.upload(randomMatrix(prompt, kvHeads * headDim, 13));
        Activations pv = backend.upload(randomMatrix(prompt, kvHeads * headDim, 14));
        Activations po = backend.allocate(prompt, heads * headDim);
        Timing causal = time(() -> backend.causalAttention(pq, pk, pv, new int[] {0}, new int[] {prompt}, heads, kvHeads,
                headDim, po), seconds / 4);
        double causalFlops = 2.0 * 2 * heads * headDim * prompt * (prompt + 1) / 2.0;
        results.add(rate("causalAttention (prefill)", prompt + " tokens, " + heads + "/" + kvHeads + " heads, headDim "
                + headDim, "GFLOP/s", causalFlops / 1e9, causal));
        return results;
    }

    private static OpResult rate(String op, String shape, String unit, double workPerRun, Timing t) {
        return new OpResult(op, shape, unit, workPerRun / t.bestSeconds(), workPerRun / t.medianSeconds());
    }

    /** Warms up for a quarter of the budget (and at least 3 runs), then times single runs for the rest. */
    private static Timing time(Runnable op, double seconds) {
        long warmupEnd = System.nanoTime() + (long) (seconds * 0.25e9);
        for (int i = 0; i < 3 || System.nanoTime() < warmupEnd; i++) {
            op.run();
        }
        List<Double> runs = new ArrayList<>();
        long end = System.nanoTime() + (long) (seconds * 0.75e9);
        while (runs.size() < 5 || System.nanoTime() < end) {
            long t0 = System.nanoTime();
            op.run();
            runs.add((System.nanoTime() - t0) / 1e9);
        }
        double[] sorted = runs.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return new Timing(sorted[0], sorted[sorted.length / 2]);
    }

    private static Tensor randomTensor(Arena arena, String name, DType dtype, int rows, int cols, long seed) {
        MemorySegment data = arena.allocate((long) rows * cols * dtype.byteSize(), 64);
        SplittableRandom random = new SplittableRandom(seed);
        for (long i = 0, count = (long) rows * cols; i < count; i++) {
            dtype.setFloat(data, i, (float) (random.nextDouble() * 2 - 1) * 0.05f);
        }
        return new Tensor(name, dtype, new long[] {rows, cols}, data);
    }

    private static FloatMatrix randomMatrix(int rows, int cols, long seed) {
        FloatMatrix m = new FloatMatrix(rows, cols);
        SplittableRandom random = new SplittableRandom(seed);
        float[] d = m.data();
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) (random.nextDouble() * 2 - 1);
        }
        return m;
    }

    private static String cpuName() {
        try {
            return java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/cpuinfo")).stream()
                    .filter(l -> l.startsWith("model name")).findFirst()
                    .map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse(System.getProperty("os.arch"));
        } catch (java.io.IOException | RuntimeException e) {
            return System.getProperty("os.arch");
        }
    }
}
