package io.inf2.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.inf2.bench.EngineBench;
import io.inf2.bench.KernelBench;
import io.inf2.bench.MemoryBandwidth;
import io.inf2.compute.cpu.CpuBackend;
import io.inf2.config.Inf2Config;
import io.inf2.config.Setting;
import io.inf2.config.Settings;
import io.inf2.engine.EngineOptions;
import io.inf2.engine.GenerationRequest;
import io.inf2.engine.GenerationResult;
import io.inf2.engine.InferenceEngine;
import io.inf2.engine.ProgressListener;
import io.inf2.engine.SamplingParams;
import io.inf2.model.ModelWeights;
import io.inf2.model.presets.ModelPreset;
import io.inf2.model.presets.RandomWeights;
import io.inf2.model.checkpoint.Checkpoint;
import io.inf2.model.checkpoint.InMemoryCheckpoint;
import io.inf2.tensor.DType;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * {@code inf2 bench}: CPU decode throughput of real-shaped random models, next to the bound that
 * memory bandwidth (measured in the same run) puts on it. JSON on stdout.
 *
 * <p>At batch 1 a decode step must stream every weight once, so tokens/s cannot exceed
 * bandwidth ÷ weight bytes per step; a larger batch reuses each weight for every sequence.
 */
final class BenchCommand {
    static final Setting<String> PRESETS = new Setting<>("bench", "presets", "comma-separated preset names",
            "opt-125m,llama-7b", "inf2 bench: model shapes to measure (random weights made in memory, no file).",
            s -> s, s -> !s.isBlank(), "preset names");
    static final Setting<String> DTYPE = Settings.choice("bench", "dtype", "preset",
            "inf2 bench: weight type; preset means the type the real checkpoint ships in.", "preset", "f32", "f16", "bf16");
    static final Setting<String> BATCHES = new Setting<>("bench", "batches", "comma-separated ints", "1,32",
            "inf2 bench: batch sizes.", s -> s, s -> s.matches("\\d+(,\\d+)*"), "positive integers");
    static final Setting<Integer> PROMPT_TOKENS = Settings.integer("bench", "promptTokens", "32",
            "inf2 bench: prompt length of every sequence.", 1, 1 << 20);
    static final Setting<Integer> NEW_TOKENS = Settings.integer("bench", "newTokens", "8",
            "inf2 bench: tokens generated per sequence (the first comes from prefill and is not timed as decode).", 2, 1 << 20);
    static final Setting<Integer> BENCH_THREADS = Settings.integer("bench", "threads", "0",
            "inf2 bench: CPU threads; 0 means all cores.", 0, 4096);
    static final Setting<Integer> ROUNDS = Settings.integer("bench", "rounds", "3",
            "inf2 bench: timed generations per batch size, each with the memory bandwidth measured just before and "
                    + "after it (a shared machine's load moves both).", 1, 100);

    private BenchCommand() {
    }

    static List<Setting<?>> settings() {
        return List.of(PRESETS, DTYPE, BATCHES, PROMPT_TOKENS, NEW_TOKENS, BENCH_THREADS, ROUNDS);
    }

    static void run(Inf2Config config, PrintStream out, PrintStream err) {
        int threads = config.get(BENCH_THREADS) == 0 ? Runtime.getRuntime().availableProcessors() : config.get(BENCH_THREADS);
        double loadBefore = ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
        long cacheBytes = MemoryBandwidth.lastLevelCacheBytes();
        List<Map<String, Object>> runs = new ArrayList<>();
        MemoryBandwidth.Result initial;
        try (MemoryBandwidth probe = MemoryBandwidth.open(MemoryBandwidth.defaultBytes(), threads)) {
            err.printf("inf2 bench: measuring memory bandwidth with %d threads over %d MiB ...%n", threads, probe.bytes() >> 20);
            initial = probe.sample(MemoryBandwidth.DEFAULT_PASSES, INITIAL_SAMPLE_SECONDS);
            for (String name : config.get(PRESETS).split(",")) {
                ModelPreset preset;
                try {
                    preset = ModelPreset.named(name.trim());
                } catch (IllegalArgumentException e) {
                    throw new CliException(e.getMessage());
                }
                DType dtype = EngineBench.dtype(config.get(DTYPE), preset);
                err.println("inf2 bench: " + preset.name() + " " + dtype + ": making random weights in memory ...");
                try (InMemoryCheckpoint weights = RandomWeights.of(preset, 1, dtype).inMemory()) {
                    long bytesPerStep = EngineBench.weightBytesPerDecodeStep(ModelWeights.bind(preset.config(), weights));
                    boolean fitsInCache = cacheBytes > 0 && bytesPerStep <= cacheBytes;
                    if (fitsInCache) {
                        err.printf("inf2 bench: %s %s: its %d MiB of weights fit in the %d MiB last-level cache, so a decode step"
                                        + " need not read them from memory and the memory-bandwidth bound does not hold it%n",
                                preset.name(), dtype, bytesPerStep >> 20, cacheBytes >> 20);
                    }
                    for (String b : config.get(BATCHES).split(",")) {
                        int batch = Integer.parseInt(b);
                        Map<String, Object> run = measure(preset, dtype, weights, batch, config, threads, bytesPerStep, probe, err);
                        run.put("weightsFitInLastLevelCache", fitsInCache);
                        runs.add(run);
                    }
                }
            }
        }
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("benchmark", "cpu-decode");
        report.put("date", Instant.now().toString());
        report.put("java", Runtime.version().toString());
        report.put("cpu", KernelBench.cpuName());
        report.put("cores", Runtime.getRuntime().availableProcessors());
        // On a shared machine a load average above the core count means the figures are contended.
        report.put("loadAverageBefore", loadBefore);
        report.put("loadAverageAfter", ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
        report.put("threads", threads);
        report.put("lastLevelCacheBytes", cacheBytes);
        report.put("memoryProbeBytes", initial.bytes());
        // The sample taken before any model was made; each run has its own, taken around its rounds.
        report.put("memoryBandwidthGBps", initial.bestGBps());
        report.put("memoryBandwidthMedianGBps", initial.medianGBps());
        report.put("memoryBandwidthPasses", initial.passes());
        report.put("runs", runs);
        try {
            out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(report));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The bandwidth sample taken before the first run. */
    private static final double INITIAL_SAMPLE_SECONDS = 1.0;
    /** The bandwidth sample taken before each timed round and after the last: about as long as a short round. */
    private static final double ROUND_SAMPLE_SECONDS = 0.5;
    private static final int ROUND_SAMPLE_PASSES = 3;

    /**
     * Times {@link #ROUNDS} generations of {@code batch} sequences, with a memory bandwidth sample
     * before each round and after the last. Each round is held to the median pass of the samples on
     * either side of it (the bandwidth of the same minute), and the run's headline fraction is the
     * median of those: a shared machine's load moves the bandwidth it gives from minute to minute,
     * and the best of many short passes is an extreme that grows with the number of passes, not a
     * rate any round could sustain. The best round against the best pass and the median round against
     * the median pass (all the run's passes pooled) are reported beside it.
     */
    private static Map<String, Object> measure(ModelPreset preset, DType dtype, InMemoryCheckpoint weights, int batch,
                                               Inf2Config config, int threads, long bytesPerStep, MemoryBandwidth probe,
                                               PrintStream err) {
        int promptTokens = config.get(PROMPT_TOKENS);
        int newTokens = config.get(NEW_TOKENS);
        EngineOptions options = EngineOptions.from(Inf2Config.fromNames(Map.of("model", preset.name(), "backend", "cpu",
                "threads", Integer.toString(threads), "batchSize", Integer.toString(batch),
                "maxNewTokens", Integer.toString(newTokens)), Settings.all(), ""));
        CpuBackend cpu = new CpuBackend(threads);
        SplittableRandom random = new SplittableRandom(7);
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < batch; i++) {
            int[] prompt = random.ints(promptTokens, 0, preset.config().vocabSize()).toArray();
            // Stop tokens would end sequences early and change the work measured: none.
            requests.add(GenerationRequest.ofTokens("r" + i, prompt, SamplingParams.greedy(newTokens)));
        }
        try (InferenceEngine engine = InferenceEngine.assemble(options, preset.config().withEosTokenIds(List.of()),
                Checkpoint.borrowed(weights), null, cpu, cpu, InferenceEngine.memoryPlacement())) {
            Warmup warmup = warmUp(engine, requests);
            int rounds = config.get(ROUNDS);
            double[] roundTokensPerSecond = new double[rounds];
            MemoryBandwidth.Result[] samples = new MemoryBandwidth.Result[rounds + 1];
            long steps = 0;
            double decodeSeconds = Double.MAX_VALUE;
            double prefillSeconds = Double.MAX_VALUE;
            for (int round = 0; round < rounds; round++) {
                samples[round] = probe.sample(ROUND_SAMPLE_PASSES, ROUND_SAMPLE_SECONDS);
                var before = engine.statistics();
                List<GenerationResult> results = engine.generate(requests, ProgressListener.NONE);
                var after = engine.statistics();
                long decodeTokens = results.stream().mapToLong(r -> r.completionTokens().length - 1).sum();
                steps = results.stream().mapToLong(r -> r.completionTokens().length - 1).max().orElse(0);
                double seconds = (after.decodeNanos() - before.decodeNanos()) / 1e9;
                roundTokensPerSecond[round] = decodeTokens / seconds;
                decodeSeconds = Math.min(decodeSeconds, seconds);
                prefillSeconds = Math.min(prefillSeconds, (after.prefillNanos() - before.prefillNanos()) / 1e9);
            }
            samples[rounds] = probe.sample(ROUND_SAMPLE_PASSES, ROUND_SAMPLE_SECONDS);
            double[] roundBandwidthGBps = new double[rounds];
            double[] roundFraction = new double[rounds];
            MemoryBandwidth.Result pooled = samples[0];
            for (int round = 0; round < rounds; round++) {
                roundBandwidthGBps[round] = samples[round].with(samples[round + 1]).medianGBps();
                roundFraction[round] = roundTokensPerSecond[round] / (batch * roundBandwidthGBps[round] * 1e9 / bytesPerStep);
                pooled = pooled.with(samples[round + 1]);
            }
            double tokensPerSecond = Arrays.stream(roundTokensPerSecond).max().orElseThrow();
            double medianTokensPerSecond = MemoryBandwidth.median(roundTokensPerSecond);
            double boundTokensPerSecond = batch * pooled.bestGBps() * 1e9 / bytesPerStep;
            double medianBoundTokensPerSecond = batch * pooled.medianGBps() * 1e9 / bytesPerStep;
            double fraction = MemoryBandwidth.median(roundFraction);
            Map<String, Object> run = new LinkedHashMap<>();
            run.put("preset", preset.name());
            run.put("dtype", dtype.name());
            run.put("batch", batch);
            run.put("promptTokens", promptTokens);
            run.put("decodeSteps", steps);
            run.put("weightBytesPerStep", bytesPerStep);
            run.put("warmupRounds", warmup.rounds());
            run.put("warmupSeconds", warmup.seconds());
            run.put("timedRounds", rounds);
            run.put("decodeTokensPerSecondByRound", roundTokensPerSecond);
            run.put("memoryBandwidthGBpsByRound", roundBandwidthGBps);
            run.put("fractionOfMemoryBoundByRound", roundFraction);
            // The headline: the median round's share of the bandwidth measured around it.
            run.put("fractionOfMemoryBoundPaired", fraction);
            // Best round: its prefill and decode time, its rate; held to the best pass of the run.
            run.put("prefillSeconds", prefillSeconds);
            run.put("decodeSeconds", decodeSeconds);
            run.put("decodeTokensPerSecond", tokensPerSecond);
            run.put("weightGBpsDecode", bytesPerStep * (double) steps / decodeSeconds / 1e9);
            run.put("memoryBandwidthPasses", pooled.passes());
            run.put("memoryBandwidthGBps", pooled.bestGBps());
            run.put("memoryBoundTokensPerSecond", boundTokensPerSecond);
            run.put("fractionOfMemoryBound", tokensPerSecond / boundTokensPerSecond);
            // Median round held to the median pass of the run.
            run.put("decodeTokensPerSecondMedian", medianTokensPerSecond);
            run.put("memoryBandwidthMedianGBps", pooled.medianGBps());
            run.put("fractionOfMemoryBoundMedian", medianTokensPerSecond / medianBoundTokensPerSecond);
            err.printf("inf2 bench: %s %s batch %d: %.2f tokens/s decode (median of %d rounds), %.0f%% of the memory-bandwidth"
                            + " bound measured around each round (median); best round %.2f, %.0f%% of the best pass's bound %.2f%n",
                    preset.name(), dtype, batch, medianTokensPerSecond, rounds, 100 * fraction, tokensPerSecond,
                    100 * tokensPerSecond / boundTokensPerSecond, boundTokensPerSecond);
            return run;
        }
    }

    /** Untimed generation before the measured one. */
    private record Warmup(int rounds, double seconds) {
    }

    /** Short warm-up rounds run until this much time has passed (at least one round, at most {@link #MAX_WARMUP_ROUNDS}). */
    private static final long WARMUP_NANOS = 3_000_000_000L;
    /** Then rounds of the measured requests themselves, until this much more time has passed (at least one). */
    private static final long WARMUP_FULL_NANOS = 3_000_000_000L;
    private static final int MAX_WARMUP_ROUNDS = 20;
    /** A short warm-up round's prompt and generation: every kernel path of the measured run at its batch size. */
    private static final int WARMUP_PROMPT_TOKENS = 8;
    private static final int WARMUP_NEW_TOKENS = 4;

    /**
     * Runs generations of the same batch size until the JIT has compiled the kernels: a run of a few
     * decode steps would otherwise time the interpreter and the first, unoptimised compilations (on a
     * 16-core host, opt-125m's 3 timed steps measured at a fiftieth of the bound). Short rounds first,
     * which compile most of it cheaply; then the measured requests themselves, because the first
     * rounds at the full length still ran 20-35% slower than the later ones (opt-125m, 64 new
     * tokens after short warm-up rounds only): longer contexts reach code the short rounds did not,
     * and on two cores the compiler threads take time from the decode.
     */
    private static Warmup warmUp(InferenceEngine engine, List<GenerationRequest> requests) {
        List<GenerationRequest> shortRequests = new ArrayList<>(requests.size());
        for (GenerationRequest r : requests) {
            int[] prompt = Arrays.copyOf(r.promptTokens(), Math.min(WARMUP_PROMPT_TOKENS, r.promptTokens().length));
            shortRequests.add(GenerationRequest.ofTokens(r.id() + "-warmup", prompt, SamplingParams.greedy(WARMUP_NEW_TOKENS)));
        }
        long start = System.nanoTime();
        int rounds = 0;
        do {
            engine.generate(shortRequests, ProgressListener.NONE);
            rounds++;
        } while (rounds < MAX_WARMUP_ROUNDS && System.nanoTime() - start < WARMUP_NANOS);
        long fullStart = System.nanoTime();
        do {
            engine.generate(requests, ProgressListener.NONE);
            rounds++;
        } while (rounds < 2 * MAX_WARMUP_ROUNDS && System.nanoTime() - fullStart < WARMUP_FULL_NANOS);
        return new Warmup(rounds, (System.nanoTime() - start) / 1e9);
    }
}
