package io.inf2.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.inf2.compute.ComputeBackend;
import io.inf2.compute.WeightLayout;
import io.inf2.compute.WeightTier;
import io.inf2.compute.cpu.CpuBackend;
import io.inf2.compute.cuda.CopyBandwidth;
import io.inf2.compute.cuda.CudaBackend;
import io.inf2.compute.cuda.CudaContext;
import io.inf2.compute.cuda.LayerStreamingWeights;
import io.inf2.config.Inf2Config;
import io.inf2.config.Setting;
import io.inf2.config.Settings;
import io.inf2.csd.RawReadBandwidth;
import io.inf2.engine.Backends;
import io.inf2.engine.EngineOptions;
import io.inf2.engine.EngineStatistics;
import io.inf2.engine.FinishReason;
import io.inf2.engine.GenerationRequest;
import io.inf2.engine.GenerationResult;
import io.inf2.engine.InferenceEngine;
import io.inf2.engine.Placement;
import io.inf2.engine.ProgressListener;
import io.inf2.engine.SamplingParams;
import io.inf2.kv.KvTraffic;
import io.inf2.model.LayerWeights;
import io.inf2.model.ModelConfig;
import io.inf2.model.ModelWeights;
import io.inf2.model.checkpoint.Checkpoint;
import io.inf2.model.checkpoint.InMemoryCheckpoint;
import io.inf2.model.presets.ModelPreset;
import io.inf2.model.presets.RandomWeights;
import io.inf2.nativeio.CudaLibraryLocator;
import io.inf2.tensor.DType;
import io.inf2.tensor.Tensor;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.math.MathContext;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * {@code inf2 bench-engine}: end-to-end throughput of the real engine on a real-shaped model with
 * random weights built in memory, next to the physical bounds measured in the same run.
 *
 * <p>Every engine setting is given as {@code --set key=value} (the names of {@link Settings}), so the
 * bench runs whatever placement the engine offers without knowing it. Several variants (named sets of
 * settings over the base) run over the same weights, each at every batch size of {@code --batches};
 * each run opens its own engine on a borrowed view of the one checkpoint. A run first generates a few
 * warm-up steps (the JIT compiles the host path; the cuda backend uploads what it keeps resident), then
 * one timed engine batch of random prompts, greedy, with no EOS or stop token, so every sequence
 * generates exactly {@code --new-tokens} tokens (the first from the prefill, the rest one per decode step).
 *
 * <p>The bounds: weight bytes per decode step over host memory bandwidth (CPU backend); over
 * device-to-device copy bandwidth for the weights resident on the GPU and over pinned host-to-device
 * bandwidth for the rest (cuda backend); the storage tier's KV read rate against a raw direct-I/O read of
 * its directories, measured just before each run that uses them.
 *
 * <p>The JSON document goes to stdout and, rewritten after every run so that a run cut short still leaves
 * the finished ones, to {@code --out}. A run that fails is recorded with its error and the others go on;
 * the command then fails.
 */
public final class EngineBench {
    private static final String GROUP = "bench-engine";
    /** Bench-controlled engine settings: a --set of one of these would contradict the bench's own options. */
    private static final Map<String, String> RESERVED = Map.of(
            "model", "the model is made in memory from --preset",
            "batchSize", "engine batch sizes come from --batches",
            "maxNewTokens", "use --new-tokens",
            "temperature", "the bench decodes greedily",
            "stopTokenIds", "the bench generates exactly --new-tokens tokens");
    /** Warm-up prompts are short: they exist to compile and upload, not to measure. */
    private static final int WARMUP_PROMPT_TOKENS = 16;
    /** The GPU KV cache stores K and V in fp16. */
    private static final int GPU_KV_BYTES_PER_ELEMENT = 2;

    public static final Setting<String> PRESET = new Setting<>(GROUP, "preset", "name", "opt-6.7b",
            "Model shape (inf2 init-model --help lists the presets); random weights made in memory.",
            s -> s, s -> !s.isBlank(), "a preset name");
    public static final Setting<String> DTYPE = Settings.choice(GROUP, "dtype", "preset",
            "Weight type; preset means the type the real checkpoint ships in.", "preset", "f32", "f16", "bf16");
    public static final Setting<Integer> PROMPT_TOKENS = Settings.integer(GROUP, "promptTokens", "512",
            "Prompt length of every sequence (random token ids).", 1, 1 << 20);
    public static final Setting<Integer> NEW_TOKENS = Settings.integer(GROUP, "newTokens", "32",
            "Tokens generated per sequence: the first from the prefill, the rest one per timed decode step.", 2, 1 << 20);
    public static final Setting<List<Integer>> BATCHES = new Setting<>(GROUP, "batches", "comma-separated ints", "1,8,32",
            "Engine batch sizes to sweep; each is one timed engine batch of that many sequences.",
            EngineBench::positiveInts, v -> !v.isEmpty() && v.stream().allMatch(b -> b >= 1), "positive integers");
    public static final Setting<Integer> GPU_BATCH_SIZE = Settings.integer(GROUP, "gpuBatchSize", null,
            "Shorthand for --set gpuBatchSize=N (the block schedule's GPU batch).", 0, 65536);
    public static final Setting<Integer> WARMUP_STEPS = Settings.integer(GROUP, "warmupSteps", "4",
            "Decode steps of each untimed warm-up round (16-token prompts, the run's batch); 0: no warm-up.", 0, 1 << 20);
    public static final Setting<Double> WARMUP_SECONDS = Settings.decimal(GROUP, "warmupSeconds", "3",
            "Warm-up rounds repeat until this much time has passed (at least one round), so that the JIT has "
                    + "compiled the host path of a step before it is timed.", 0, 3600);
    public static final Setting<Long> SEED = new Setting<>(GROUP, "seed", "long", "1",
            "Seed of the random weights and prompts.", Long::parseLong, v -> true, "a 64-bit integer");
    public static final Setting<Path> OUT = new Setting<>(GROUP, "out", "path", null,
            "Also write the JSON document to this file (rewritten after every run).", Path::of, p -> true, "a file path");
    public static final Setting<String> SET = new Setting<>(GROUP, "set", "key=value (repeatable)", null,
            "An engine setting by its name in docs/configuration.md, e.g. --set backend=cuda --set kvCache=csd.",
            s -> s, s -> s.contains("="), "key=value");
    public static final Setting<String> VARIANTS = new Setting<>(GROUP, "variants", "NAME:k=v,k=v;NAME:...", null,
            "Named sets of engine settings over the --set ones, each run at every batch size over the same weights. "
                    + "A piece without '=' continues the previous value (csd=/d0,/d1).",
            s -> s, s -> !s.isBlank(), "NAME:key=value,...;NAME:...");
    public static final Setting<Integer> MEMORY_PROBE_MIB = Settings.integer(GROUP, "memoryProbeMib", "0",
            "Buffer size of the host memory bandwidth probe; 0 means eight times the last-level cache, at least 1 GiB.",
            0, 1 << 20);
    public static final Setting<Integer> RAW_READ_MIB = Settings.integer(GROUP, "rawReadMib", "512",
            "MiB per device directory of the raw direct-I/O read measured before each storage run.", 4, 1 << 20);

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final Inf2Config bench;
    private final ModelPreset preset;
    private final DType dtype;
    private final ModelConfig model;
    private final int promptTokens;
    private final int newTokens;
    private final Map<String, String> base;
    private final List<Variant> variants;
    private final PrintStream err;

    /** A named set of engine settings, applied over the --set ones. */
    record Variant(String name, Map<String, String> settings) {
    }

    /**
     * Bandwidths measured before the runs, in bytes per second; NaN where not measured (no GPU run).
     *
     * @param deviceToDevice bytes read plus bytes written per second of a device-to-device copy
     */
    private record Bandwidths(double hostMemory, double deviceToDevice, double pinnedHostToDevice) {
    }

    private EngineBench(Inf2Config bench, Map<String, String> base, List<Variant> variants, PrintStream err) {
        this.bench = bench;
        this.preset = ModelPreset.named(bench.get(PRESET));
        this.dtype = dtype(bench.get(DTYPE), preset);
        // No EOS: a sequence that sampled it would stop early and change the work measured.
        this.model = preset.config().withEosTokenIds(List.of());
        this.promptTokens = bench.get(PROMPT_TOKENS);
        this.newTokens = bench.get(NEW_TOKENS);
        this.base = base;
        this.variants = variants;
        this.err = err;
        if (promptTokens + newTokens > model.maxPositions()) {
            throw new IllegalArgumentException("--prompt-tokens " + promptTokens + " plus --new-tokens " + newTokens
                    + " exceed " + preset.name() + "'s context window of " + model.maxPositions());
        }
    }

    /** Every option of {@code inf2 bench-engine}, for parsing and help. */
    public static List<Setting<?>> settings() {
        return List.of(PRESET, DTYPE, PROMPT_TOKENS, NEW_TOKENS, BATCHES, GPU_BATCH_SIZE, WARMUP_STEPS, WARMUP_SECONDS, SEED,
                OUT, SET,
                VARIANTS, MEMORY_PROBE_MIB, RAW_READ_MIB);
    }

    /** Runs the command line {@code args} (options only); JSON on {@code out}, progress on {@code err}. */
    public static void run(String[] args, PrintStream out, PrintStream err) {
        List<String> rest = new ArrayList<>();
        Map<String, String> base = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String pair;
            if (args[i].equals(SET.cliFlag())) {
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException("option --set needs a value (key=value)");
                }
                pair = args[++i];
            } else if (args[i].startsWith(SET.cliFlag() + "=")) {
                pair = args[i].substring(SET.cliFlag().length() + 1);
            } else {
                rest.add(args[i]);
                continue;
            }
            putSetting(base, pair, "--set " + pair);
        }
        Inf2Config.Parsed parsed = Inf2Config.fromArgs(rest.toArray(String[]::new), settings());
        if (!parsed.positional().isEmpty()) {
            throw new IllegalArgumentException("unexpected argument \"" + parsed.positional().get(0)
                    + "\" (options are --name value)");
        }
        Inf2Config bench = parsed.config();
        if (bench.isSet(GPU_BATCH_SIZE)) {
            if (base.containsKey("gpuBatchSize")) {
                throw new IllegalArgumentException("--gpu-batch-size and --set gpuBatchSize both given; give one");
            }
            base.put("gpuBatchSize", Integer.toString(bench.get(GPU_BATCH_SIZE)));
        }
        List<Variant> variants = bench.isSet(VARIANTS) ? parseVariants(bench.get(VARIANTS))
                : List.of(new Variant("base", Map.of()));
        new EngineBench(bench, base, variants, err).run(out);
    }

    /** Parses {@code NAME:k=v,k=v;NAME:...}; a piece without '=' continues the previous value (lists). */
    static List<Variant> parseVariants(String text) {
        List<Variant> variants = new ArrayList<>();
        Set<String> names = new LinkedHashSet<>();
        for (String part : text.split(";")) {
            if (part.isBlank()) {
                continue;
            }
            int colon = part.indexOf(':');
            String name = colon < 0 ? "" : part.substring(0, colon).strip();
            if (name.isEmpty()) {
                throw new IllegalArgumentException("--variants: \"" + part.strip() + "\" needs a name first (NAME:key=value,...)");
            }
            if (!names.add(name)) {
                throw new IllegalArgumentException("--variants: variant " + name + " given twice");
            }
            Map<String, String> settings = new LinkedHashMap<>();
            String lastKey = null;
            for (String piece : part.substring(colon + 1).split(",")) {
                if (piece.isBlank()) {
                    continue;
                }
                if (!piece.contains("=")) {
                    if (lastKey == null) {
                        throw new IllegalArgumentException("--variants: variant " + name + ": \"" + piece.strip()
                                + "\" is not key=value");
                    }
                    settings.put(lastKey, settings.get(lastKey) + "," + piece.strip());
                    continue;
                }
                lastKey = putSetting(settings, piece, "--variants " + name);
            }
            variants.add(new Variant(name, settings));
        }
        if (variants.isEmpty()) {
            throw new IllegalArgumentException("--variants: no variant given (NAME:key=value,...;NAME:...)");
        }
        return variants;
    }

    /** Adds {@code key=value} to {@code settings} after checking the key; returns the key. */
    private static String putSetting(Map<String, String> settings, String pair, String where) {
        int eq = pair.indexOf('=');
        if (eq <= 0) {
            throw new IllegalArgumentException(where + ": expected key=value");
        }
        String key = pair.substring(0, eq).strip();
        if (RESERVED.containsKey(key)) {
            throw new IllegalArgumentException(where + ": " + key + " is set by the bench (" + RESERVED.get(key) + ")");
        }
        settings.put(key, pair.substring(eq + 1).strip());
        return key;
    }

    /** The engine configuration of one run: base settings, the variant's over them, then the bench's own. */
    private Inf2Config engineConfig(Variant variant, int batch) {
        Map<String, String> given = new LinkedHashMap<>(base);
        given.putAll(variant.settings());
        given.put("model", "in-memory/" + preset.name());
        given.put("batchSize", Integer.toString(batch));
        given.put("maxNewTokens", Integer.toString(newTokens));
        return Inf2Config.fromNames(given, Settings.all(), variant.settings().isEmpty() ? "--set " : "variant " + variant.name() + ": ");
    }

    private void run(PrintStream out) {
        List<Integer> batches = bench.get(BATCHES);
        // Every run's settings are checked before minutes go into making the weights.
        Map<Variant, EngineOptions> firstOptions = new LinkedHashMap<>();
        engineConfig(new Variant("base", Map.of()), batches.get(0));
        for (Variant v : variants) {
            for (int batch : batches) {
                EngineOptions options = EngineOptions.from(engineConfig(v, batch));
                firstOptions.putIfAbsent(v, options);
            }
        }
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("benchmark", "engine");
        report.put("date", Instant.now().toString());
        report.put("machine", machine());
        report.put("preset", preset.name());
        report.put("dtype", dtype.name());
        report.put("model", modelShape());
        report.put("promptTokens", promptTokens);
        report.put("newTokens", newTokens);
        report.put("decodeStepsPerSequence", newTokens - 1);
        report.put("warmupStepsPerRound", bench.get(WARMUP_STEPS));
        report.put("warmupSeconds", bench.get(WARMUP_SECONDS));
        report.put("seed", bench.get(SEED));
        report.put("set", base);
        report.put("variants", variants);
        Map<String, Object> bounds = new LinkedHashMap<>();
        Bandwidths bandwidths = measureBandwidths(firstOptions.values(), bounds);
        report.put("bounds", bounds);

        err.println("inf2 bench-engine: " + preset.name() + " " + dtype + ": making random weights in memory ...");
        long started = System.nanoTime();
        List<Map<String, Object>> runs = new ArrayList<>();
        List<String> failures = new ArrayList<>();
        try (InMemoryCheckpoint weights = RandomWeights.of(preset, bench.get(SEED), dtype).inMemory()) {
            report.put("hostWeightGenerationSeconds", round((System.nanoTime() - started) / 1e9));
            report.put("weightBytes", weights.byteSize());
            ModelWeights bound = ModelWeights.bind(model, weights);
            long perStep = weightBytesPerDecodeStep(bound);
            report.put("weightBytesPerDecodeStep", perStep);
            report.put("runs", runs);
            for (Variant v : variants) {
                for (int batch : batches) {
                    Map<String, Object> run;
                    try {
                        run = measure(v, batch, weights, bound, perStep, bandwidths);
                    } catch (RuntimeException e) {
                        String message = oneLine(e);
                        failures.add(v.name() + " batch " + batch + ": " + message);
                        err.println("inf2 bench-engine: " + v.name() + " batch " + batch + " FAILED: " + message);
                        run = new LinkedHashMap<>();
                        run.put("variant", v.name());
                        run.put("batch", batch);
                        run.put("error", message);
                    }
                    runs.add(run);
                    writeOut(report);
                }
            }
        }
        writeOut(report);
        out.println(toJson(report));
        if (!failures.isEmpty()) {
            throw new IllegalStateException(failures.size() + " of " + runs.size() + " runs failed; first: " + failures.get(0));
        }
    }

    /** One timed engine batch of {@code batch} sequences in its own engine. */
    private Map<String, Object> measure(Variant variant, int batch, InMemoryCheckpoint weights, ModelWeights bound,
                                        long weightBytesPerStep, Bandwidths bandwidths) {
        Inf2Config config = engineConfig(variant, batch);
        EngineOptions options = EngineOptions.from(config);
        Map<String, Object> run = new LinkedHashMap<>();
        run.put("variant", variant.name());
        run.put("batch", batch);
        Double rawRead = null;
        if (usesStorage(options)) {
            err.println("inf2 bench-engine: raw direct-I/O read of " + options.csdDirectories() + " ...");
            rawRead = RawReadBandwidth.measure(options.csdDirectories(), (long) bench.get(RAW_READ_MIB) << 20);
        }
        CpuBackend host = new CpuBackend(options.threads());
        ComputeBackend backend = null;
        Checkpoint view = Checkpoint.borrowed(weights);
        try {
            backend = Backends.select(options, host);
            options = InferenceEngine.resolvePlacement(options, model, view, backend);
        } catch (RuntimeException e) {
            if (backend != null && backend != host) {
                backend.close();
            }
            host.close();
            throw e;
        }
        try (InferenceEngine engine = InferenceEngine.assemble(options, model, view, null, backend, host,
                InferenceEngine.kvPlacement(options, model))) {
            run.put("engine", engine.describe());
            run.put("placement", engine.placement());
            SplittableRandom random = new SplittableRandom(bench.get(SEED) * 31 + batch);
            int warmupSteps = bench.get(WARMUP_STEPS);
            if (warmupSteps > 0) {
                err.println("inf2 bench-engine: " + variant.name() + " batch " + batch + ": warming up ...");
                long warmupStart = System.nanoTime();
                long warmupNanos = (long) (bench.get(WARMUP_SECONDS) * 1e9);
                int rounds = 0;
                do {
                    check(engine.generate(requests(random, batch, Math.min(promptTokens, WARMUP_PROMPT_TOKENS),
                            warmupSteps + 1), ProgressListener.NONE), warmupSteps + 1);
                    rounds++;
                } while (System.nanoTime() - warmupStart < warmupNanos);
                run.put("warmupRounds", rounds);
                run.put("warmupSeconds", round((System.nanoTime() - warmupStart) / 1e9));
            }
            EngineStatistics before = engine.statistics();
            long streamedBefore = bytesStreamed(backend);
            List<GenerationRequest> requests = requests(random, batch, promptTokens, newTokens);
            err.println("inf2 bench-engine: " + variant.name() + " batch " + batch + ": timed run ...");
            long t0 = System.nanoTime();
            List<GenerationResult> results = engine.generate(requests, ProgressListener.NONE);
            double wallSeconds = (System.nanoTime() - t0) / 1e9;
            check(results, newTokens);
            EngineStatistics after = engine.statistics();

            double prefillSeconds = (after.prefillNanos() - before.prefillNanos()) / 1e9;
            double decodeSeconds = (after.decodeNanos() - before.decodeNanos()) / 1e9;
            int steps = newTokens - 1;
            long decodeTokens = (long) batch * steps;
            double stepMs = decodeSeconds * 1e3 / steps;
            run.put("generatedTokens", (long) batch * newTokens);
            run.put("decodeSteps", steps);
            run.put("wallSeconds", round(wallSeconds));
            run.put("prefillSeconds", round(prefillSeconds));
            run.put("decodeSeconds", round(decodeSeconds));
            run.put("prefillTokensPerSecond", round((double) batch * promptTokens / prefillSeconds));
            run.put("decodeTokensPerSecond", round(decodeTokens / decodeSeconds));
            run.put("generatedTokensPerSecond", round((double) batch * newTokens / (prefillSeconds + decodeSeconds)));
            run.put("decodeStepMs", round(stepMs));
            run.put("decodeLayerMs", round(stepMs / model.layers()));

            KvTraffic.Snapshot kv0 = before.kv();
            KvTraffic.Snapshot kv1 = after.kv();
            Map<String, Object> kv = new LinkedHashMap<>();
            kv.put("linkBytes", kv1.linkBytes() - kv0.linkBytes());
            kv.put("deviceReadBytes", kv1.deviceReadBytes() - kv0.deviceReadBytes());
            kv.put("deviceWriteBytes", kv1.deviceWriteBytes() - kv0.deviceWriteBytes());
            kv.put("pagesWritten", kv1.pagesWritten() - kv0.pagesWritten());
            kv.put("recomputedXBytes", kv1.recomputedXBytes() - kv0.recomputedXBytes());
            // A level, not a counter: the peak since the engine opened (the warm-up's batch is the smaller).
            kv.put("writebackBufferedPeakBytesSinceOpen", kv1.writebackBufferedPeakBytes());
            run.put("kvTraffic", kv);
            run.put("weightBytesReadFromStorage", after.weightBytesRead() - before.weightBytesRead());
            if (rawRead != null) {
                double kvRead = (kv1.deviceReadBytes() - kv0.deviceReadBytes()) / decodeSeconds;
                run.put("rawDirectReadGBps", round(rawRead / 1e9));
                run.put("kvDeviceReadGBpsDuringDecode", round(kvRead / 1e9));
                run.put("kvReadOverRawRead", round(kvRead / rawRead));
            }
            run.put("bounds", runBounds(backend, engine.placement(), bound, weightBytesPerStep, batch, stepMs, bandwidths));
            if (backend instanceof CudaBackend gpu) {
                run.put("gpuWeightMemoryBytes", gpu.weights().deviceBytes());
            }
            long streamed = bytesStreamed(backend) - streamedBefore;
            if (streamed > 0) {
                // The prefill is one more pass over the layers than the decode steps.
                run.put("weightBytesStreamedPerPass", streamed / (steps + 1));
            }
            // Every counter the engine keeps, as it reports them: cumulative, warm-up included.
            run.put("engineStatisticsAfterWarmup", before);
            run.put("engineStatisticsAfterRun", after);
            err.printf("inf2 bench-engine: %s batch %d: prefill %.3f s, decode %.3f s, %.2f tokens/s decode, step %.3f ms%n",
                    variant.name(), batch, prefillSeconds, decodeSeconds, decodeTokens / decodeSeconds, stepMs);
            return run;
        }
    }

    /**
     * Step-time bounds of one run from the bandwidths measured at the start. On a GPU, the weight bytes
     * of a step split as the engine's placement puts the layer tensors (weights outside the layers stay
     * where the backend computes); on the CPU every byte is read from host memory.
     */
    private Map<String, Object> runBounds(ComputeBackend backend, Placement placement, ModelWeights weights,
                                          long weightBytesPerStep, int batch, double stepMs, Bandwidths bw) {
        Map<String, Object> b = new LinkedHashMap<>();
        if (backend instanceof CudaBackend) {
            WeightLayout layout = placement.layout(weights.layers());
            long fromHost = bytes(layout.tensorsIn(WeightTier.HOST));
            long fromStorage = bytes(layout.tensorsIn(WeightTier.STORAGE));
            long onGpu = weightBytesPerStep - fromHost - fromStorage;
            b.put("weightBytesPerStepOnGpu", onGpu);
            b.put("weightBytesPerStepFromHostMemory", fromHost);
            b.put("weightBytesPerStepFromStorage", fromStorage);
            b.put("weightBytesPerStepSource", "the engine's placement (Placement.layout): layer tensors by tier; "
                    + "embeddings, final norm and lm_head on the GPU");
            if (onGpu > 0) {
                double hbmMs = onGpu / bw.deviceToDevice() * 1e3;
                b.put("hbmWeightBoundStepMs", round(hbmMs));
                b.put("fractionOfHbmWeightBound", round(hbmMs / stepMs));
            }
            if (placement.kvCache().equals("gpu")) {
                // Decode step i (1-based) attends over the prompt and i tokens; the mean over the timed steps.
                double meanContext = promptTokens + newTokens / 2.0;
                long kvBytes = (long) (batch * meanContext * model.layers() * 2L * model.kvDim() * GPU_KV_BYTES_PER_ELEMENT);
                double hbmMs = (onGpu + kvBytes) / bw.deviceToDevice() * 1e3;
                b.put("kvBytesReadPerStepOnGpu", kvBytes);
                b.put("hbmWeightAndKvBoundStepMs", round(hbmMs));
                b.put("fractionOfHbmWeightAndKvBound", round(hbmMs / stepMs));
            }
            if (fromHost + fromStorage > 0) {
                // Storage-tier weights cross the same link after their direct-I/O read.
                double linkMs = (fromHost + fromStorage) / bw.pinnedHostToDevice() * 1e3;
                b.put("hostToDeviceWeightBoundStepMs", round(linkMs));
                b.put("hostToDeviceWeightBoundLayerMs", round(linkMs / model.layers()));
                b.put("decodeStepOverHostToDeviceBound", round(stepMs / linkMs));
            }
        } else {
            double hostMs = weightBytesPerStep / bw.hostMemory() * 1e3;
            b.put("hostMemoryWeightBoundStepMs", round(hostMs));
            b.put("fractionOfHostMemoryBound", round(hostMs / stepMs));
        }
        return b;
    }

    /**
     * The machine's bandwidths, measured once before any run: host memory always, the GPU's copies when
     * a run uses the cuda backend; the figures also go into {@code json}.
     */
    private Bandwidths measureBandwidths(java.util.Collection<EngineOptions> runOptions, Map<String, Object> json) {
        int threads = runOptions.iterator().next().threads();
        err.println("inf2 bench-engine: measuring host memory bandwidth with " + threads + " threads ...");
        long probeBytes = bench.get(MEMORY_PROBE_MIB) == 0 ? MemoryBandwidth.defaultBytes() : (long) bench.get(MEMORY_PROBE_MIB) << 20;
        MemoryBandwidth.Result memory = MemoryBandwidth.measure(probeBytes, threads,
                MemoryBandwidth.DEFAULT_PASSES);
        json.put("hostMemoryBandwidthGBps", round(memory.bestGBps()));
        json.put("hostMemoryBandwidthMedianGBps", round(memory.medianGBps()));
        json.put("hostMemoryBandwidthThreads", threads);
        double hostMemory = memory.bestGBps() * 1e9;
        EngineOptions gpuRun = null;
        for (EngineOptions o : runOptions) {
            boolean wantsGpu = o.backend().equals("cuda")
                    || o.backend().equals("auto") && CudaBackend.availability(o.cuda().libraryPath()).available();
            if (wantsGpu && gpuRun == null) {
                gpuRun = o;
            }
        }
        if (gpuRun == null) {
            json.put("cuda", null);
            return new Bandwidths(hostMemory, Double.NaN, Double.NaN);
        }
        CudaBackend.Availability available = CudaBackend.availability(gpuRun.cuda().libraryPath());
        if (!available.available()) {
            throw new IllegalArgumentException("backend=cuda: " + available.reason());
        }
        err.println("inf2 bench-engine: measuring device-to-device and pinned host-to-device copy bandwidth ...");
        try (CudaContext context = CudaContext.open(CudaLibraryLocator.create(gpuRun.cuda().libraryPath()),
                gpuRun.cuda().device())) {
            double deviceToDevice = CopyBandwidth.deviceToDevice(context);
            double hostToDevice = CopyBandwidth.pinnedHostToDevice(context);
            Map<String, Object> cuda = new LinkedHashMap<>();
            cuda.put("device", context.deviceName());
            cuda.put("architecture", context.architecture());
            cuda.put("deviceMemoryBytes", context.totalMemory());
            cuda.put("deviceToDeviceCopyGBps", round(deviceToDevice / 1e9));
            cuda.put("deviceToDeviceCopyDefinition", "bytes read plus bytes written per second");
            cuda.put("pinnedHostToDeviceGBps", round(hostToDevice / 1e9));
            json.put("cuda", cuda);
            return new Bandwidths(hostMemory, deviceToDevice, hostToDevice);
        }
    }

    private static long bytes(List<Tensor> tensors) {
        return tensors.stream().mapToLong(t -> t.data().byteSize()).sum();
    }

    /** Weight bytes the GPU has copied in per layer so far; 0 where nothing streams. */
    private static long bytesStreamed(ComputeBackend backend) {
        return backend instanceof CudaBackend gpu && gpu.weights() instanceof LayerStreamingWeights streaming
                ? streaming.bytesStreamed() : 0;
    }

    private static boolean usesStorage(EngineOptions options) {
        return options.kvCache().equals("csd") || options.kvCache().equals("storage");
    }

    /** {@code batch} greedy requests of random prompts of {@code length} tokens. */
    private List<GenerationRequest> requests(SplittableRandom random, int batch, int length, int tokens) {
        List<GenerationRequest> requests = new ArrayList<>(batch);
        for (int i = 0; i < batch; i++) {
            int[] prompt = random.ints(length, 0, model.vocabSize()).toArray();
            requests.add(GenerationRequest.ofTokens("r" + i, prompt, SamplingParams.greedy(tokens)));
        }
        return requests;
    }

    /** Every sequence generated exactly {@code expected} tokens, or the run's figures would not mean what they say. */
    private static void check(List<GenerationResult> results, int expected) {
        for (GenerationResult r : results) {
            if (r.isError()) {
                throw new IllegalStateException("sequence " + r.id() + " failed: " + r.error());
            }
            if (r.completionTokens().length != expected || r.finishReason() != FinishReason.LENGTH) {
                throw new IllegalStateException("sequence " + r.id() + " generated " + r.completionTokens().length
                        + " tokens (" + r.finishReason() + "), expected " + expected);
            }
        }
    }

    /**
     * Every weight a decode step reads: all layers, the final norm, the lm_head and OPT-350m's
     * projections; embeddings are row lookups and do not count.
     */
    public static long weightBytesPerDecodeStep(ModelWeights w) {
        long bytes = w.lmHead().data().byteSize();
        for (LayerWeights layer : w.layers()) {
            bytes += layer.byteSize();
        }
        if (w.finalNormWeight() != null) {
            bytes += w.finalNormWeight().data().byteSize();
        }
        if (w.projectOut() != null) {
            bytes += w.projectOut().data().byteSize() + w.projectIn().data().byteSize();
        }
        return bytes;
    }

    private Map<String, Object> modelShape() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("architecture", model.architecture().modelType());
        m.put("layers", model.layers());
        m.put("hidden", model.hidden());
        m.put("heads", model.heads());
        m.put("kvHeads", model.kvHeads());
        m.put("headDim", model.headDim());
        m.put("intermediate", model.intermediate());
        m.put("vocab", model.vocabSize());
        m.put("parameters", preset.parameterCount());
        return m;
    }

    private static Map<String, Object> machine() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("cores", Runtime.getRuntime().availableProcessors());
        m.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        m.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " " + System.getProperty("os.arch"));
        m.put("maxHeapBytes", Runtime.getRuntime().maxMemory());
        return m;
    }

    private void writeOut(Map<String, Object> report) {
        if (!bench.isSet(OUT)) {
            return;
        }
        Path out = bench.get(OUT).toAbsolutePath();
        Path partial = out.resolveSibling(out.getFileName() + ".partial");
        try {
            Files.writeString(partial, toJson(report) + "\n");
            Files.move(partial, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("writing " + out + ": " + e.getMessage(), e);
        }
    }

    private static String toJson(Object value) {
        try {
            return JSON.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("bench-engine JSON: " + e.getMessage(), e);
        }
    }

    private static List<Integer> positiveInts(String text) {
        List<Integer> out = new ArrayList<>();
        for (String part : text.split(",")) {
            out.add(Integer.parseInt(part.strip()));
        }
        return List.copyOf(out);
    }

    /** The weight type a bench builds: f32, f16 or bf16 as chosen, else the preset's checkpoint type. */
    public static DType dtype(String choice, ModelPreset preset) {
        return switch (choice) {
            case "f32" -> DType.F32;
            case "f16" -> DType.F16;
            case "bf16" -> DType.BF16;
            default -> preset.checkpointDType();
        };
    }

    /** Four significant digits: enough for any figure here, short enough to read. */
    private static double round(double v) {
        if (v == 0 || !Double.isFinite(v)) {
            return v;
        }
        return new BigDecimal(v).round(new MathContext(4)).doubleValue();
    }

    private static String oneLine(RuntimeException e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return m.replace('\n', ' ').replace('\r', ' ');
    }
}
