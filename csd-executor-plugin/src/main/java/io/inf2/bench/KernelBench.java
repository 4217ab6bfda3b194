package io.inf2.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.inf2.compute.Activations;
import io.inf2.compute.cpu.CpuAttention;
import io.inf2.compute.cpu.CpuBackend;
import io.inf2.compute.cpu.CpuKernels;
import io.inf2.compute.cpu.ReferenceKernels;
import io.inf2.compute.cpu.VectorKernels;
import io.inf2.tensor.DType;
import io.inf2.tensor.FloatMatrix;
import io.inf2.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Throughput of the CPU backend's kernels, printed as one JSON document: the linear kernel in GB/s of
 * weight bytes for F32, F16 and BF16 weights at batch 1 (memory-bound: compare with the memory
 * bandwidth measured in the same run) and batch 32 (compute-bound: one pass over the weights for all
 * 32 rows); the same kernel on one thread against a cache-resident weight, timed in thread CPU time
 * as a share of the measured FMA peak (its arithmetic efficiency, which a loaded machine does not
 * distort); batch 1 on one thread per weight type and f16 widening, streamed and in cache (one
 * core's decode rate, also in thread CPU time); the element-wise ops; and decode and prefill attention.
 *
 * <p>Usage: {@code KernelBench [--threads N] [--bandwidth-bytes B] [--n N] [--k K] [--batches 1,32]
 * [--seconds S] [--kernels fastest|reference]}. Defaults: every processor, 1 GiB, a 11008 × 4096
 * weight (LLaMA-7B's MLP projection, far larger than any L3), batches 1 and 32, 2 s of timed runs
 * per figure after a warm-up of at least 1 s, and the fastest kernels (reference: the scalar
 * definitions, for comparison).
 */
public final class KernelBench {

    /** One linear configuration: weight bytes per second, and the arithmetic rate it implies. */
    public record LinearResult(String dtype, int batch, int n, int k, long weightBytes, double bestGBps,
                               double medianGBps, double bestGflops, double fractionOfMemoryBandwidth) {
    }

    /**
     * The linear kernel on one thread against a cache-resident weight, timed in that thread's CPU
     * time: its arithmetic efficiency, which stays meaningful on a shared, loaded machine where wall
     * time does not.
     */
    public record ComputeResult(String dtype, int batch, int n, int k, double gflops, double fractionOfFmaPeak) {
    }

    /**
     * Batch-1 linear (decode) on one thread, in that thread's CPU time: against a weight far larger
     * than any cache ({@code streamed}: what one core's share of a decode step costs) and against one
     * that stays in L2 (the kernel's own speed). {@code variant} names the f16 widening
     * ({@link VectorKernels.HalfWidening}); both are measured whatever this processor's default is.
     */
    public record OneRowResult(String dtype, String variant, boolean streamed, int n, int k, double weightsPerNs,
                               double gbps) {
    }

    /** An element-wise or attention op: what was measured, and its rate in the named unit. */
    public record OpResult(String op, String shape, String unit, double best, double median) {
    }

    /**
     * The whole run. {@code loadAverageBefore}/{@code After} are the system's 1-minute load averages:
     * on a shared machine, a load above the processor count means the figures are contended.
     */
    public record Report(String benchmark, String timestamp, String java, String cpu, int processors, int threads,
                         double loadAverageBefore, double loadAverageAfter,
                         String kernels, int vectorLanes, MemoryBandwidth.Result memoryBandwidth,
                         List<LinearResult> linear, double fmaPeakGflopsPerThread, List<ComputeResult> linearOneThread,
                         List<OneRowResult> linearOneRowOneThread, List<OpResult> ops) {
    }

    private record Timing(double bestSeconds, double medianSeconds) {
    }

    private KernelBench() {
    }

    public static void main(String[] args) throws JsonProcessingException {
        int threads = Runtime.getRuntime().availableProcessors();
        long bandwidthBytes = MemoryBandwidth.defaultBytes();
        int n = 11008;
        int k = 4096;
        double seconds = 2;
        int[] batches = {1, 32};
        CpuKernels kernels = CpuKernels.fastest();
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
                case "--batches" -> batches = Arrays.stream(value.split(",")).mapToInt(Integer::parseInt).toArray();
                case "--kernels" -> kernels = switch (value) {
                    case "fastest" -> CpuKernels.fastest();
                    case "reference" -> new ReferenceKernels();
                    default -> throw new IllegalArgumentException("KernelBench: --kernels is fastest or reference, got " + value);
                };
                default -> throw new IllegalArgumentException("KernelBench: unknown flag " + flag
                        + " (known: --threads, --bandwidth-bytes, --n, --k, --batches, --seconds, --kernels)");
            }
        }
        double loadBefore = ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
        MemoryBandwidth.Result bandwidth = MemoryBandwidth.measure(bandwidthBytes, threads, MemoryBandwidth.DEFAULT_PASSES);
        List<LinearResult> linear = new ArrayList<>();
        List<OpResult> ops = new ArrayList<>();
        List<ComputeResult> linearOneThread = new ArrayList<>();
        List<OneRowResult> oneRow = new ArrayList<>();
        double peak = fmaPeakGflops(seconds);
        try (CpuBackend backend = new CpuBackend(threads, kernels)) {
            for (DType dtype : List.of(DType.F32, DType.F16, DType.BF16)) {
                for (int batch : batches) {
                    linear.add(linear(backend, dtype, batch, n, k, seconds, bandwidth.bestGBps()));
                }
            }
            ops.addAll(elementwise(backend, seconds));
            linearOneThread.addAll(oneThread(kernels, seconds, peak));
            if (kernels instanceof VectorKernels) {
                oneRow.addAll(oneRowOneThread(n, k, seconds));
            }
            ops.addAll(attention(backend, seconds));
        }
        Report report = new Report("cpu-kernels", Instant.now().toString(), Runtime.version().toString(), cpuName(),
                Runtime.getRuntime().availableProcessors(), threads, loadBefore,
                ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage(), kernels.getClass().getSimpleName(),
                kernels instanceof VectorKernels ? VectorKernels.lanes() : 1, bandwidth, linear, peak, linearOneThread, oneRow, ops);
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

    /**
     * Batch 1 on one thread for every weight type and both f16 widenings, streamed from an n × k weight
     * and in cache from a 64 × 1024 one. The variants alternate three times and each keeps its best
     * figure, so a load spike on a shared machine does not decide between them.
     */
    private static List<OneRowResult> oneRowOneThread(int n, int k, double seconds) {
        List<OneRowResult> results = new ArrayList<>();
        for (boolean streamed : new boolean[] {true, false}) {
            int rows = streamed ? n : 64;
            int cols = streamed ? k : 1024;
            float[] x = randomMatrix(1, cols, 17).data();
            float[] out = new float[rows];
            record Variant(DType dtype, VectorKernels kernels) {
            }
            List<Variant> variants = List.of(new Variant(DType.F32, new VectorKernels()),
                    new Variant(DType.BF16, new VectorKernels()),
                    new Variant(DType.F16, new VectorKernels(VectorKernels.HalfWidening.LANES)),
                    new Variant(DType.F16, new VectorKernels(VectorKernels.HalfWidening.HARDWARE)));
            double[] best = new double[variants.size()];
            java.util.Arrays.fill(best, Double.MAX_VALUE);
            try (Arena arena = Arena.ofShared()) {
                java.util.Map<DType, Tensor> weights = new java.util.EnumMap<>(DType.class);
                for (Variant v : variants) {
                    weights.computeIfAbsent(v.dtype(), d -> trainedLikeTensor(arena, d, rows, cols, 18));
                }
                for (int round = 0; round < 3; round++) {
                    for (int i = 0; i < variants.size(); i++) {
                        Variant v = variants.get(i);
                        MemorySegment w = weights.get(v.dtype()).data();
                        // A cache-resident pass takes microseconds, below the thread clock's resolution.
                        int repeats = streamed ? 1 : 256;
                        best[i] = Math.min(best[i], bestThreadCpuSeconds(() -> {
                            for (int r = 0; r < repeats; r++) {
                                v.kernels().linear(x, 1, cols, w, v.dtype(), null, null, 0, rows, out, rows);
                            }
                        }, seconds / 3) / repeats);
                    }
                }
            }
            for (int i = 0; i < variants.size(); i++) {
                Variant v = variants.get(i);
                double weightsPerNs = (double) rows * cols / best[i] / 1e9;
                results.add(new OneRowResult(v.dtype().name(), v.dtype() == DType.F16 ? v.kernels().halfWidening().name() : "",
                        streamed, rows, cols, weightsPerNs, weightsPerNs * v.dtype().byteSize()));
            }
        }
        return results;
    }

    /** Batch 32 (decode tiles) and 512 (prefill tiles) against a 256 × 2048 weight that fits in L2/L3. */
    private static List<ComputeResult> oneThread(CpuKernels kernels, double seconds, double peakGflops) {
        int n = 256;
        int k = 2048;
        List<ComputeResult> results = new ArrayList<>();
        try (Arena arena = Arena.ofShared()) {
            for (DType dtype : List.of(DType.F32, DType.F16, DType.BF16)) {
                Tensor weight = randomTensor(arena, "w", dtype, n, k, 15);
                for (int batch : new int[] {32, 512}) {
                    float[] x = randomMatrix(batch, k, 16).data();
                    float[] out = new float[batch * n];
                    double cpuSeconds = bestThreadCpuSeconds(
                            () -> kernels.linear(x, batch, k, weight.data(), dtype, null, null, 0, n, out, n), seconds);
                    double gflops = 2.0 * batch * n * k / cpuSeconds / 1e9;
                    results.add(new ComputeResult(dtype.name(), batch, n, k, gflops, gflops / peakGflops));
                }
            }
        }
        return results;
    }

    /**
     * One thread's peak f32 FMA rate in GFLOP/s: ten independent vector FMA chains, enough to cover
     * the FMA latency on current x86 and Arm cores, timed in thread CPU time.
     */
    private static double fmaPeakGflops(double seconds) {
        long iterations = 2_000_000;
        double best = bestThreadCpuSeconds(() -> fmaChains(iterations), seconds);
        return iterations * 10.0 * FLOATS.length() * 2 / best / 1e9;
    }

    /** A constant species: the Vector API compiles to vector instructions only for constant species. */
    private static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_PREFERRED;

    private static void fmaChains(long iterations) {
        FloatVector a = FloatVector.broadcast(FLOATS, 1e-3f);
        FloatVector b = FloatVector.broadcast(FLOATS, 0.999f);
        FloatVector c0 = a;
        FloatVector c1 = a.add(1);
        FloatVector c2 = a.add(2);
        FloatVector c3 = a.add(3);
        FloatVector c4 = a.add(4);
        FloatVector c5 = a.add(5);
        FloatVector c6 = a.add(6);
        FloatVector c7 = a.add(7);
        FloatVector c8 = a.add(8);
        FloatVector c9 = a.add(9);
        for (long i = 0; i < iterations; i++) {
            c0 = c0.fma(b, a);
            c1 = c1.fma(b, a);
            c2 = c2.fma(b, a);
            c3 = c3.fma(b, a);
            c4 = c4.fma(b, a);
            c5 = c5.fma(b, a);
            c6 = c6.fma(b, a);
            c7 = c7.fma(b, a);
            c8 = c8.fma(b, a);
            c9 = c9.fma(b, a);
        }
        sink = c0.add(c1).add(c2).add(c3).add(c4).add(c5).add(c6).add(c7).add(c8).add(c9).reduceLanes(VectorOperators.ADD);
    }

    /** Keeps benchmark results observable so the JIT cannot drop the work. */
    @SuppressWarnings("unused")
    private static volatile float sink;

    /** The fastest single run in this thread's CPU seconds, after a warm-up of one CPU second. */
    private static double bestThreadCpuSeconds(Runnable op, double seconds) {
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        long start = threads.getCurrentThreadCpuTime();
        while (threads.getCurrentThreadCpuTime() - start < 1_000_000_000L) {
            op.run();
        }
        double best = Double.MAX_VALUE;
        long end = threads.getCurrentThreadCpuTime() + (long) (seconds * 1e9);
        for (int runs = 0; runs < 5 || threads.getCurrentThreadCpuTime() < end; runs++) {
            long t0 = threads.getCurrentThreadCpuTime();
            op.run();
            best = Math.min(best, (threads.getCurrentThreadCpuTime() - t0) / 1e9);
        }
        return best;
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
        // Before each run (untimed) the input is restored, so repeated application cannot drift into
        // subnormals or overflow.
        Runnable restore = () -> System.arraycopy(gateCopy, 0, gate.data(), 0, gateCopy.length);
        Timing silu = time(restore, () -> backend.siluMul(g, u), seconds);
        results.add(rate("siluMul", shape, "elements/ns", elements / 1e9, silu));
        Timing gelu = time(restore, () -> backend.activate(g, "gelu"), seconds);
        results.add(rate("gelu", shape, "elements/ns", elements / 1e9, gelu));
        try (Arena arena = Arena.ofShared()) {
            Tensor gamma = randomTensor(arena, "gamma", DType.F32, 1, hidden, 5);
            Tensor gamma1d = new Tensor("gamma", DType.F32, new long[] {hidden}, gamma.data());
            Activations x = backend.upload(randomMatrix(rows, hidden, 6));
            Activations normed = backend.allocate(rows, hidden);
            Timing rms = time(() -> backend.rmsNorm(x, gamma1d, 1e-5f, normed), seconds);
            results.add(rate("rmsNorm", rows + "x" + hidden, "elements/ns", (double) rows * hidden / 1e9, rms));
            Timing ln = time(() -> backend.layerNorm(x, gamma1d, gamma1d, 1e-5f, normed), seconds);
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
        CpuAttention.Group attention = new CpuAttention.Group(backend.kernels(), group, headDim);
        Timing f32 = time(() -> {
            attention.begin(q, 0);
            attention.add(keys, 0, values, 0, headDim, tokens);
            attention.finish(out, 0, lse, 0);
        }, seconds);
        results.add(rate("decodeAttention f32 rows (one thread)", shape, "GB/s of K+V", 2.0 * tokens * headDim * 4 / 1e9, f32));
        try (Arena arena = Arena.ofShared()) {
            MemorySegment k16 = randomTensor(arena, "k", DType.F16, tokens, headDim, 10).data();
            MemorySegment v16 = randomTensor(arena, "v", DType.F16, tokens, headDim, 11).data();
            Timing f16 = time(() -> {
                attention.begin(q, 0);
                attention.add(k16, 0, v16, 0, DType.F16, headDim, tokens);
                attention.finish(out, 0, lse, 0);
            }, seconds);
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
                headDim, po), seconds);
        double causalFlops = 2.0 * 2 * heads * headDim * prompt * (prompt + 1) / 2.0;
        results.add(rate("causalAttention (prefill)", prompt + " tokens, " + heads + "/" + kvHeads + " heads, headDim "
                + headDim, "GFLOP/s", causalFlops / 1e9, causal));
        return results;
    }

    private static OpResult rate(String op, String shape, String unit, double workPerRun, Timing t) {
        return new OpResult(op, shape, unit, workPerRun / t.bestSeconds(), workPerRun / t.medianSeconds());
    }

    /**
     * Warms up for at least a second and 3 runs (Vector API code is only fast once C2 has compiled
     * it), then times single runs for {@code seconds} (at least 5 runs).
     */
    private static Timing time(Runnable op, double seconds) {
        return time(() -> { }, op, seconds);
    }

    /** {@link #time(Runnable, double)} with an untimed {@code setup} before every run. */
    private static Timing time(Runnable setup, Runnable op, double seconds) {
        long warmupEnd = System.nanoTime() + 1_000_000_000L;
        for (int i = 0; i < 3 || System.nanoTime() < warmupEnd; i++) {
            setup.run();
            op.run();
        }
        List<Double> runs = new ArrayList<>();
        long end = System.nanoTime() + (long) (seconds * 1e9);
        while (runs.size() < 5 || System.nanoTime() < end) {
            setup.run();
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

    /**
     * Normal weights of standard deviation 0.02, a trained LLM layer's spread: about 0.24% of them
     * are f16 subnormals, which is what decides between the f16 widenings on some processors.
     */
    private static Tensor trainedLikeTensor(Arena arena, DType dtype, int rows, int cols, long seed) {
        MemorySegment data = arena.allocate((long) rows * cols * dtype.byteSize(), 64);
        SplittableRandom random = new SplittableRandom(seed);
        for (long i = 0, count = (long) rows * cols; i < count; i++) {
            dtype.setFloat(data, i, (float) (random.nextGaussian() * 0.02));
        }
        return new Tensor("w", dtype, new long[] {rows, cols}, data);
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

    /** The processor model as the OS names it, or the JVM's architecture when it does not. */
    public static String cpuName() {
        try {
            return java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/cpuinfo")).stream()
                    .filter(l -> l.startsWith("model name")).findFirst()
                    .map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse(System.getProperty("os.arch"));
        } catch (java.io.IOException | RuntimeException e) {
            return System.getProperty("os.arch");
        }
    }
}
