package io.inf2.csd;

import io.inf2.compute.cpu.CpuBackend;
import io.inf2.kv.KvCache;
import io.inf2.kv.KvTraffic;
import io.inf2.model.Architecture;
import io.inf2.model.ModelConfig;
import io.inf2.model.RopeScaling;
import io.inf2.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.function.ToLongFunction;

/**
 * Benchmark of the storage tier on emulated devices (not a test): a decode-shaped workload (prefill a
 * batch's KV cache, then decode steps over every layer) with attention near storage and with the
 * storage baseline on the same data, against a raw direct-I/O sequential read of the same disks
 * measured in the same run. Attention only: no model weights, so tokens/s here is the ceiling the KV
 * tier allows, not end-to-end throughput. Prints one JSON object.
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -cp ... io.inf2.csd.CsdBench [--dirs D1,D2] [--devices 2]
 *     [--batch 16] [--context 1024] [--steps 8] [--layers 4] [--heads 32] [--kv-heads 8] [--head-dim 128]
 *     [--page-tokens 16] [--csd-threads 2] [--threads 2] [--warmup-rounds 1] [--rounds 3] [--out FILE]
 * </pre>
 */
public final class CsdBench {
    private final Map<String, String> args;
    private final List<Path> dirs;
    private final int batch;
    private final int context;
    private final int steps;
    private final int pageTokens;
    private final int csdThreads;
    private final int threads;
    private final ModelConfig model;

    private CsdBench(Map<String, String> args) {
        this.args = args;
        int devices = intArg("devices", 2);
        List<Path> given = new ArrayList<>();
        if (args.containsKey("dirs")) {
            for (String d : args.get("dirs").split(",")) {
                given.add(Path.of(d.trim()));
            }
        } else {
            for (int i = 0; i < devices; i++) {
                given.add(Path.of("target", "csd-bench", "dev" + i));
            }
        }
        this.dirs = given;
        this.batch = intArg("batch", 16);
        this.context = intArg("context", 1024);
        this.steps = intArg("steps", 8);
        this.pageTokens = intArg("page-tokens", 16);
        this.csdThreads = intArg("csd-threads", 2);
        this.threads = intArg("threads", 2);
        int heads = intArg("heads", 32);
        int kvHeads = intArg("kv-heads", 8);
        int headDim = intArg("head-dim", 128);
        this.model = new ModelConfig(Architecture.LLAMA, 32000, heads * headDim, heads * headDim, intArg("layers", 4), heads,
                kvHeads, headDim, 4 * heads * headDim, context + steps + 1, 1e-5, true, "silu", false, false, false, 10000,
                RopeScaling.NONE, 1, List.of(2), 0);
    }

    private int intArg(String name, int fallback) {
        String v = args.get(name);
        try {
            return v == null ? fallback : Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " needs an integer, got \"" + v + "\"");
        }
    }

    public static void main(String[] argv) throws IOException {
        Map<String, String> args = new LinkedHashMap<>();
        for (int i = 0; i < argv.length; i++) {
            if (!argv[i].startsWith("--") || i + 1 >= argv.length) {
                System.err.println("usage: CsdBench [--name value]... (see the class documentation); bad argument " + argv[i]);
                System.exit(2);
            }
            args.put(argv[i].substring(2), argv[++i]);
        }
        String json = new CsdBench(args).run();
        System.out.println(json);
        if (args.containsKey("out")) {
            Files.writeString(Path.of(args.get("out")), json + "\n");
        }
    }

    private String run() throws IOException {
        for (Path d : dirs) {
            Files.createDirectories(d);
        }
        long kvBytes = (long) model.layers() * batch * context * model.kvHeads() * 4L * model.headDim();
        long rawBytes = Math.max(RawReadBandwidth.IO_BYTES, kvBytes / dirs.size());
        // Both paths once at a quarter of the context first, so the JIT has compiled them before timing.
        for (int i = 0; i < intArg("warmup-rounds", 1); i++) {
            runPlacement(CsdKvCacheFactory.Placement.CSD, Math.max(pageTokens, context / 4));
            runPlacement(CsdKvCacheFactory.Placement.STORAGE, Math.max(pageTokens, context / 4));
        }
        // Rounds of (raw read, ANS, baseline), reported by median: a shared machine's disk and cores drift.
        // The two placements alternate which goes first, so neither always follows the raw read.
        int rounds = intArg("rounds", 3);
        List<Double> raws = new ArrayList<>();
        List<Result> ansRounds = new ArrayList<>();
        List<Result> storageRounds = new ArrayList<>();
        for (int round = 0; round < rounds; round++) {
            raws.add(RawReadBandwidth.measure(dirs, rawBytes));
            if (round % 2 == 0) {
                ansRounds.add(runPlacement(CsdKvCacheFactory.Placement.CSD, context));
                storageRounds.add(runPlacement(CsdKvCacheFactory.Placement.STORAGE, context));
            } else {
                storageRounds.add(runPlacement(CsdKvCacheFactory.Placement.STORAGE, context));
                ansRounds.add(runPlacement(CsdKvCacheFactory.Placement.CSD, context));
            }
        }
        double raw = median(raws);
        Result ans = medianRound(ansRounds);
        Result storage = medianRound(storageRounds);
        double maxDifference = 0;
        for (int i = 0; i < ans.lastOutput.length; i++) {
            maxDifference = Math.max(maxDifference, Math.abs(ans.lastOutput[i] - storage.lastOutput[i]));
        }

        Json j = new Json();
        j.put("benchmark", "csd-tier");
        j.put("emulated", true);
        j.put("date", Instant.now().toString());
        j.put("cores", Runtime.getRuntime().availableProcessors());
        j.put("java", System.getProperty("java.version"));
        j.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version"));
        j.put("directories", dirs.stream().map(p -> p.toAbsolutePath().toString()).toList());
        j.put("devices", dirs.size());
        j.put("batch", batch);
        j.put("context", context);
        j.put("decodeSteps", steps);
        j.put("layers", model.layers());
        j.put("heads", model.heads());
        j.put("kvHeads", model.kvHeads());
        j.put("headDim", model.headDim());
        j.put("pageTokens", pageTokens);
        j.put("csdThreadsPerDevice", csdThreads);
        j.put("hostThreads", threads);
        j.put("kvCacheMiB", kvBytes / 1048576.0);
        j.put("rounds", rounds);
        j.put("rawDirectSequentialReadGBps", raw / 1e9);
        j.put("rawReadGBpsPerRound", gbps(raws));
        j.put("ans", ans.json());
        j.put("ansKvReadGBpsPerRound", gbps(ansRounds.stream().map(Result::kvReadBandwidth).toList()));
        j.put("storage", storage.json());
        j.put("storageKvReadGBpsPerRound", gbps(storageRounds.stream().map(Result::kvReadBandwidth).toList()));
        j.put("ansPrefillWriteGBpsPerRound", gbps(ansRounds.stream().map(Result::prefillWriteBandwidth).toList()));
        j.put("storagePrefillWriteGBpsPerRound", gbps(storageRounds.stream().map(Result::prefillWriteBandwidth).toList()));
        j.put("ansOverStorageSpeedup", ans.tokensPerSecond() / storage.tokensPerSecond());
        j.put("storageOverAnsLinkBytes", (double) storage.decodeLinkBytes / ans.decodeLinkBytes);
        j.put("ansKvReadBandwidthOverRawRead", ans.kvReadBandwidth() / raw);
        j.put("maxOutputDifferenceAnsVsStorage", maxDifference);
        return j.toString();
    }

    private static double median(List<Double> values) {
        List<Double> sorted = values.stream().sorted().toList();
        return sorted.get(sorted.size() / 2);
    }

    /** The round whose decode time is the median (a real round, so its figures belong together). */
    private static Result medianRound(List<Result> results) {
        List<Result> sorted = results.stream().sorted(java.util.Comparator.comparingDouble(r -> r.decodeSeconds)).toList();
        return sorted.get(sorted.size() / 2);
    }

    private static List<Double> gbps(List<Double> bytesPerSecond) {
        return bytesPerSecond.stream().map(b -> b / 1e9).toList();
    }

    private final class Result {
        final CsdKvCacheFactory.Placement placement;
        double prefillSeconds;
        double decodeSeconds;
        long prefillWriteBytes;
        long decodeDeviceReadBytes;
        long decodeLinkBytes;
        long decodeDeviceBusyNanos;
        long decodeDeviceIoNanos;
        boolean directIo = true;
        float[] lastOutput;

        Result(CsdKvCacheFactory.Placement placement) {
            this.placement = placement;
        }

        double tokensPerSecond() {
            return batch * (double) steps / decodeSeconds;
        }

        double prefillWriteBandwidth() {
            return prefillWriteBytes / prefillSeconds;
        }

        double kvReadBandwidth() {
            return decodeDeviceReadBytes / decodeSeconds;
        }

        Json json() {
            Json j = new Json();
            j.put("placement", placement.option());
            j.put("directIo", directIo);
            j.put("prefillSeconds", prefillSeconds);
            j.put("prefillWriteGBps", prefillWriteBandwidth() / 1e9);
            j.put("decodeSeconds", decodeSeconds);
            j.put("decodeStepMillis", decodeSeconds * 1e3 / steps);
            j.put("tokensPerSecondAttentionOnly", tokensPerSecond());
            j.put("kvReadGBps", kvReadBandwidth() / 1e9);
            j.put("decodeDeviceReadMiB", decodeDeviceReadBytes / 1048576.0);
            j.put("decodeLinkMiB", decodeLinkBytes / 1048576.0);
            j.put("linkBytesPerStep", decodeLinkBytes / steps);
            j.put("deviceThreadsBusySeconds", decodeDeviceBusyNanos / 1e9);
            j.put("mediaIoWaitSeconds", decodeDeviceIoNanos / 1e9);
            return j;
        }
    }

    private Result runPlacement(CsdKvCacheFactory.Placement placement, int context) {
        Result result = new Result(placement);
        List<EmulatedCsd> devices = new ArrayList<>();
        for (int i = 0; i < dirs.size(); i++) {
            devices.add(EmulatedCsd.open("csd" + i, dirs.get(i), csdThreads));
        }
        KvTraffic traffic = new KvTraffic();
        try (CpuBackend host = new CpuBackend(threads);
             CsdKvCacheFactory factory = CsdKvCacheFactory.withDevices(placement, devices, pageTokens,
                     XCachePolicy.configured(0), host);
             KvCache kv = factory.create(model, batch, context + steps + 1, (l, x, p, k, v) -> {
                 throw new IllegalStateException("the benchmark keeps no X");
             }, traffic)) {
            CsdKvCache cache = (CsdKvCache) kv;
            int kvDim = model.kvDim();
            RandomPool pool = new RandomPool(2 * context * kvDim);
            // A few prompts, cycled, made before the clock starts: prefill time is the cache's own work
            // (fp16 conversion, submission, the devices' writes).
            FloatMatrix[][] prompts = new FloatMatrix[4][];
            for (int i = 0; i < prompts.length; i++) {
                prompts[i] = new FloatMatrix[] {pool.matrix(context, kvDim), pool.matrix(context, kvDim)};
            }
            long t0 = System.nanoTime();
            for (int layer = 0; layer < model.layers(); layer++) {
                for (int slot = 0; slot < batch; slot++) {
                    FloatMatrix[] prompt = prompts[(layer * batch + slot) % prompts.length];
                    cache.writePrompt(layer, slot, prompt[0], prompt[1], null);
                }
            }
            cache.awaitWrites();
            result.prefillSeconds = (System.nanoTime() - t0) / 1e9;
            result.prefillWriteBytes = traffic.snapshot().deviceWriteBytes();

            int[] slots = new int[batch];
            for (int i = 0; i < batch; i++) {
                slots[i] = i;
            }
            KvTraffic.Snapshot before = traffic.snapshot();
            long busyBefore = sum(factory, DeviceStatistics::busyNanos);
            long ioBefore = sum(factory, DeviceStatistics::ioNanos);
            FloatMatrix out = new FloatMatrix(batch, model.qDim());
            FloatMatrix[][] inputs = new FloatMatrix[steps * model.layers()][];
            for (int i = 0; i < inputs.length; i++) {
                inputs[i] = new FloatMatrix[] {pool.matrix(batch, model.qDim()), pool.matrix(batch, kvDim), pool.matrix(batch, kvDim)};
            }
            long d0 = System.nanoTime();
            for (int step = 0; step < steps; step++) {
                for (int layer = 0; layer < model.layers(); layer++) {
                    FloatMatrix[] in = inputs[step * model.layers() + layer];
                    cache.appendAndAttend(layer, slots, in[0], in[1], in[2], null, out);
                }
            }
            result.decodeSeconds = (System.nanoTime() - d0) / 1e9;
            cache.awaitWrites();
            KvTraffic.Snapshot after = traffic.snapshot();
            result.decodeDeviceReadBytes = after.deviceReadBytes() - before.deviceReadBytes();
            result.decodeLinkBytes = after.linkBytes() - before.linkBytes();
            result.decodeDeviceBusyNanos = sum(factory, DeviceStatistics::busyNanos) - busyBefore;
            result.decodeDeviceIoNanos = sum(factory, DeviceStatistics::ioNanos) - ioBefore;
            result.directIo = devices.stream().allMatch(EmulatedCsd::directIo);
            result.lastOutput = out.data().clone();
        }
        return result;
    }

    private static long sum(CsdKvCacheFactory factory, ToLongFunction<DeviceStatistics> counter) {
        return factory.deviceStatistics().stream().mapToLong(counter).sum();
    }

    /**
     * Gaussian values drawn once; matrices are copies from seeded random offsets, so generating the
     * workload costs little next to what it measures and both placements get the same data.
     */
    private static final class RandomPool {
        private final float[] values;
        private final Random random = new Random(42);

        RandomPool(int size) {
            values = new float[size];
            for (int i = 0; i < size; i++) {
                values[i] = (float) random.nextGaussian();
            }
        }

        FloatMatrix matrix(int rows, int cols) {
            int n = rows * cols;
            float[] data = new float[n];
            for (int done = 0; done < n; ) {
                int from = random.nextInt(values.length);
                int take = Math.min(n - done, values.length - from);
                System.arraycopy(values, from, data, done, take);
                done += take;
            }
            return new FloatMatrix(data, rows, cols);
        }
    }

    /** A flat JSON object writer for the benchmark's figures. */
    private static final class Json {
        private final StringBuilder sb = new StringBuilder("{");

        void put(String key, Object value) {
            if (sb.length() > 1) {
                sb.append(", ");
            }
            sb.append('"').append(key).append("\": ");
            value(value);
        }

        private void value(Object value) {
            switch (value) {
                case String s -> sb.append('"').append(s.replace("\\", "\\\\").replace("\"", "\\\"")).append('"');
                case Double d -> sb.append(Double.isFinite(d) ? String.format(Locale.ROOT, "%.4g", d) : "null");
                case Json nested -> sb.append(nested);
                case List<?> list -> {
                    sb.append('[');
                    for (int i = 0; i < list.size(); i++) {
                        if (i > 0) {
                            sb.append(", ");
                        }
                        value(list.get(i));
                    }
                    sb.append(']');
                }
                default -> sb.append(value);
            }
        }

        @Override
        public String toString() {
            return sb + "}";
        }
    }
}
