package io.inf2.engine;

import io.inf2.compute.ComputeBackend;
import io.inf2.compute.WeightLayout;
import io.inf2.compute.WeightTier;
import io.inf2.tensor.Tensor;
import io.inf2.compute.cpu.CpuBackend;
import io.inf2.compute.cuda.CudaBackend;
import io.inf2.compute.cuda.CudaKvCache;
import io.inf2.config.Settings;
import io.inf2.kv.KvCache;
import io.inf2.kv.KvCacheFactory;
import io.inf2.kv.KvTraffic;
import io.inf2.kv.MemoryKvCache;
import io.inf2.model.ModelConfig;
import io.inf2.model.ModelWeights;
import io.inf2.model.checkpoint.Checkpoint;
import io.inf2.model.tokenizer.Tokenizer;
import io.inf2.model.tokenizer.HfTokenizer;
import io.inf2.model.checkpoint.SafetensorsCheckpoint;
import io.inf2.csd.CsdKvCacheFactory;
import io.inf2.util.Closeables;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * The engine's public face: open a model with options, generate for batches of requests, close.
 * {@link #generate} may be called from several threads at once; each call runs its own engine
 * batches over the shared weights, backend and devices.
 */
public final class InferenceEngine implements AutoCloseable {
    private final EngineOptions options;
    private final ModelConfig config;
    private final Tokenizer tokenizer;
    private final ComputeBackend backend;
    private final KvCacheFactory kvFactory;
    private final Transformer transformer;
    private final WeightStore weightStore;
    private final Placement placement;
    /** One schedule at a time: streamed weights follow the schedule's layer order through two buffers. */
    private final boolean serialSchedule;
    /** Serialises batches when the weight store streams (its buffers follow one schedule). */
    private final java.util.concurrent.locks.ReentrantLock scheduleLock = new java.util.concurrent.locks.ReentrantLock();
    private final Deque<AutoCloseable> owned = new ArrayDeque<>();
    private final KvTraffic traffic = new KvTraffic();
    private final Set<Integer> eosIds;
    private final List<String> servedBy;

    private final LongAdder requests = new LongAdder();
    private final LongAdder failedRequests = new LongAdder();
    private final LongAdder promptTokens = new LongAdder();
    private final LongAdder generatedTokens = new LongAdder();
    private final AtomicLong prefillNanos = new AtomicLong();
    private final AtomicLong decodeNanos = new AtomicLong();
    private volatile boolean closed;

    /**
     * Opens the model directory of {@code options} (config.json, safetensors weights, tokenizer.json if
     * present) on the chosen backend with the chosen KV placement.
     */
    public static InferenceEngine open(EngineOptions options) {
        ModelConfig config = ModelConfig.load(options.model());
        Checkpoint checkpoint = SafetensorsCheckpoint.open(options.model());
        Deque<AutoCloseable> opened = new ArrayDeque<>();
        opened.push(checkpoint);
        Tokenizer tokenizer = null;
        CpuBackend host;
        ComputeBackend backend;
        EngineOptions placed;
        KvPlacement kv;
        try {
            if (java.nio.file.Files.exists(options.model().resolve("tokenizer.json"))) {
                tokenizer = HfTokenizer.load(options.model());
                opened.push(tokenizer);
            }
            host = new CpuBackend(options.threads());
            opened.push(host);
            backend = Backends.select(options, host);
            if (backend != host) {
                opened.push(backend);
            }
            placed = resolvePlacement(options, config, checkpoint, backend);
            kv = kvPlacement(placed, config);
        } catch (RuntimeException e) {
            closeAll(opened, e);
            throw e;
        }
        return assemble(placed, config, checkpoint, tokenizer, backend, host, kv);
    }

    /**
     * {@code options} with the KV cache where the placement policy (percent, budgets, or the plain
     * choices) puts it: call before choosing the KV placement for {@link #assemble}.
     */
    public static EngineOptions resolvePlacement(EngineOptions options, ModelConfig config, Checkpoint checkpoint,
                                                 ComputeBackend backend) {
        Placement p = PlacementPlanner.resolve(options, ModelWeights.bind(config, checkpoint), !(backend instanceof CpuBackend),
                backend.deviceMemoryFree(), checkpoint instanceof SafetensorsCheckpoint);
        return options.withKvCache(p.kvCache());
    }

    /** The KV placement named by {@code options.kvCache()}. */
    public static KvPlacement kvPlacement(EngineOptions options, ModelConfig config) {
        return switch (options.kvCache()) {
            case "memory" -> memoryPlacement();
            case "gpu" -> (host, backend, weights) -> gpuPlacement(options, backend);
            case "csd", "storage" -> (host, backend, weights) -> CsdKvCacheFactory.open(options, config, host);
            default -> throw new IllegalArgumentException("unknown KV placement " + options.kvCache());
        };
    }

    /** The GPU placement: KV cache in the cuda backend's memory; any other backend is a configuration error. */
    private static KvCacheFactory gpuPlacement(EngineOptions options, ComputeBackend backend) {
        if (backend instanceof CudaBackend gpu) {
            return CudaKvCache.factory(gpu);
        }
        throw gpuKvCacheNeedsCuda(options);
    }

    /** The one-line refusal of {@code kvCache=gpu} when the engine does not run on the GPU, saying why it does not. */
    static IllegalArgumentException gpuKvCacheNeedsCuda(EngineOptions options) {
        String why = options.backend().equals("auto")
                ? "backend=auto fell back to the CPU (" + CudaBackend.availability(options.cuda().libraryPath()).reason() + ")"
                : "the engine runs on backend=" + options.backend() + "; set " + Settings.BACKEND.sparkKey() + " / "
                        + Settings.BACKEND.cliFlag() + " to cuda";
        return new IllegalArgumentException(Settings.KV_CACHE.sparkKey() + "=gpu (" + Settings.KV_CACHE.cliFlag()
                + " gpu) keeps the KV cache in GPU memory and needs the cuda backend, but " + why);
    }

    /**
     * Assembles an engine from opened parts and takes ownership of all of them (they are closed
     * with the engine, in reverse order, even if assembly fails).
     *
     * @param kvFactoryOpener opens the KV placement given the host CPU backend and the compute backend
     */
    public static InferenceEngine assemble(EngineOptions options, ModelConfig config, Checkpoint checkpoint,
                                           Tokenizer tokenizer, ComputeBackend backend, CpuBackend host,
                                           KvPlacement kvFactoryOpener) {
        Deque<AutoCloseable> owned = new ArrayDeque<>();
        owned.push(checkpoint);
        if (tokenizer != null) {
            owned.push(tokenizer);
        }
        owned.push(host);
        if (backend != host) {
            owned.push(backend);
        }
        try {
            ModelWeights weights = ModelWeights.bind(config, checkpoint);
            boolean gpu = !(backend instanceof CpuBackend);
            Placement placement = PlacementPlanner.resolve(options, weights, gpu, backend.deviceMemoryFree(),
                    checkpoint instanceof SafetensorsCheckpoint);
            if (!placement.kvCache().equals(options.kvCache())) {
                throw new IllegalArgumentException("the placement puts the KV cache in " + placement.kvCache() + " but the "
                        + "options say kvCache=" + options.kvCache() + " (resolve the placement first: InferenceEngine.resolvePlacement)");
            }
            WeightLayout layout = placement.layout(weights.layers());
            backend.placeWeights(layout);
            WeightStore store = weightStore(layout, weights, checkpoint);
            owned.push(store);
            KvCacheFactory kv = kvFactoryOpener.open(host, backend, weights);
            owned.push(kv);
            return new InferenceEngine(options, config, weights, placement, layout.streams() && gpu, store, tokenizer,
                    backend, kv, owned);
        } catch (RuntimeException e) {
            closeAll(owned, e);
            throw e;
        }
    }

    /** The memory placement: KV cache in host memory ({@link MemoryKvCache#storedType}), attention on the host threads. */
    public static KvPlacement memoryPlacement() {
        return (host, backend, weights) -> MemoryKvCache.factory(host, MemoryKvCache.storedType(weights));
    }

    /** Storage-tier weights stream per layer from the checkpoint files; all others are used where they are. */
    private static WeightStore weightStore(WeightLayout layout, ModelWeights weights, Checkpoint checkpoint) {
        Set<String> onStorage = new HashSet<>();
        for (Tensor t : layout.tensorsIn(WeightTier.STORAGE)) {
            onStorage.add(t.name());
        }
        if (onStorage.isEmpty()) {
            return new ResidentWeights(weights);
        }
        return new StreamedWeights(weights, (SafetensorsCheckpoint) checkpoint, onStorage);
    }

    private InferenceEngine(EngineOptions options, ModelConfig config, ModelWeights weights, Placement placement,
                            boolean backendStreamsWeights, WeightStore store, Tokenizer tokenizer, ComputeBackend backend,
                            KvCacheFactory kvFactory, Deque<AutoCloseable> owned) {
        this.options = options;
        this.placement = placement;
        this.serialSchedule = backendStreamsWeights || !store.concurrent();
        this.config = config;
        this.tokenizer = tokenizer;
        this.backend = backend;
        this.kvFactory = kvFactory;
        this.owned.addAll(owned);
        this.weightStore = store;
        this.transformer = new Transformer(weights, store, backend,
                !placement.activationsOnGpu() && !(backend instanceof CpuBackend));
        this.eosIds = new HashSet<>(config.eosTokenIds());
        List<String> served = new ArrayList<>();
        served.add(backend.description());
        served.addAll(kvFactory.deviceNames());
        this.servedBy = List.copyOf(served);
    }

    /** Results in request order. A request that cannot be served gets an ERROR result, not an exception. */
    public List<GenerationResult> generate(List<GenerationRequest> requests, ProgressListener progress) {
        if (closed) {
            throw new IllegalStateException("the engine is closed");
        }
        long start = System.nanoTime();
        GenerationResult[] results = new GenerationResult[requests.size()];
        List<Sequence> valid = new ArrayList<>();
        for (int i = 0; i < requests.size(); i++) {
            GenerationRequest r = requests.get(i);
            this.requests.increment();
            try {
                valid.add(new Sequence(i, r, promptOf(r)));
            } catch (IllegalArgumentException e) {
                failedRequests.increment();
                results[i] = GenerationResult.failed(r.id(), e.getMessage());
            }
        }
        int done = requests.size() - valid.size();
        long tokens = 0;
        for (int from = 0; from < valid.size(); from += options.batchSize()) {
            List<Sequence> batch = valid.subList(from, Math.min(valid.size(), from + options.batchSize()));
            if (!serialSchedule) {
                runBatch(batch, progress, done, requests.size(), tokens, start);
            } else {
                scheduleLock.lock();
                try {
                    runBatch(batch, progress, done, requests.size(), tokens, start);
                } finally {
                    scheduleLock.unlock();
                }
            }
            for (Sequence s : batch) {
                results[s.index] = s.result();
                tokens += s.generated.size();
            }
            done += batch.size();
            progress.progress(done, requests.size(), tokens, System.nanoTime() - start);
        }
        return Arrays.asList(results);
    }

    private int[] promptOf(GenerationRequest r) {
        int[] ids;
        if (r.prompt() != null) {
            if (r.prompt().isEmpty()) {
                throw new IllegalArgumentException("empty prompt");
            }
            if (tokenizer == null) {
                throw new IllegalArgumentException("the model has no tokenizer.json: give prompt token ids");
            }
            ids = tokenizer.encode(r.prompt(), true);
        } else {
            ids = r.promptTokens();
        }
        if (ids.length == 0) {
            throw new IllegalArgumentException("empty prompt");
        }
        for (int id : ids) {
            if (id < 0 || id >= config.vocabSize()) {
                throw new IllegalArgumentException(r.prompt() != null
                        ? "tokenizer.json gave token id " + id + ", outside config.json's vocab_size of " + config.vocabSize()
                        : "prompt token id " + id + " is outside the vocabulary of " + config.vocabSize());
            }
        }
        if (ids.length >= config.maxPositions()) {
            throw new IllegalArgumentException("prompt has " + ids.length + " tokens; the model's context window is "
                    + config.maxPositions() + " (prompt plus at least one new token)");
        }
        int longest = options.contextTokens(config.maxPositions());
        int maxNewTokens = r.params().maxNewTokens();
        // Past the context window generation stops by itself; below it, the KV cache was placed for no more.
        if (longest < config.maxPositions() && (long) ids.length + maxNewTokens > longest) {
            throw new IllegalArgumentException("prompt of " + ids.length + " tokens plus max_new_tokens " + maxNewTokens
                    + " is longer than contextTokens=" + longest + ", the sequence length the KV cache is placed for");
        }
        return ids;
    }

    private void runBatch(List<Sequence> batch, ProgressListener progress, int doneBefore, int total, long tokensBefore,
                          long start) {
        int n = batch.size();
        int maxTokens = 0;
        for (Sequence s : batch) {
            maxTokens = Math.max(maxTokens, Math.min(config.maxPositions(), s.prompt.length + s.request.params().maxNewTokens()));
        }
        try (KvCache cache = kvFactory.create(config, n, maxTokens, transformer.projector(), traffic)) {
            int[] slots = new int[n];
            int[][] prompts = new int[n][];
            for (int i = 0; i < n; i++) {
                slots[i] = i;
                prompts[i] = batch.get(i).prompt;
                promptTokens.add(prompts[i].length);
            }
            long t0 = System.nanoTime();
            float[] logits = transformer.prefill(slots, prompts, cache).data();
            long prefill = System.nanoTime() - t0;
            prefillNanos.addAndGet(prefill);
            int vocab = config.vocabSize();
            List<Sequence> active = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                Sequence s = batch.get(i);
                s.prefillNanos = prefill;
                s.slot = i;
                s.sample(logits, i * vocab, vocab);
                if (s.finish == null) {
                    active.add(s);
                } else {
                    cache.release(s.slot);
                }
            }
            long tokens = tokensBefore + n;
            while (!active.isEmpty()) {
                int m = active.size();
                int[] stepSlots = new int[m];
                int[] tokenIds = new int[m];
                int[] positions = new int[m];
                for (int i = 0; i < m; i++) {
                    Sequence s = active.get(i);
                    stepSlots[i] = s.slot;
                    tokenIds[i] = s.generated.get(s.generated.size() - 1);
                    positions[i] = s.prompt.length + s.generated.size() - 1;
                }
                long d0 = System.nanoTime();
                // All greedy without a repetition penalty: the arg max is taken where the logits are.
                boolean greedy = active.stream().allMatch(s -> s.sampler.isPlainGreedy());
                int[] picked = null;
                float[] stepLogits = null;
                if (greedy) {
                    picked = transformer.decodeGreedy(stepSlots, tokenIds, positions, cache, options.effectiveGpuBatchSize());
                } else {
                    stepLogits = transformer.decode(stepSlots, tokenIds, positions, cache,
                            options.effectiveGpuBatchSize()).data();
                }
                long step = System.nanoTime() - d0;
                decodeNanos.addAndGet(step);
                List<Sequence> still = new ArrayList<>(m);
                for (int i = 0; i < m; i++) {
                    Sequence s = active.get(i);
                    s.decodeNanos += step;
                    if (greedy) {
                        s.accept(picked[i]);
                    } else {
                        s.sample(stepLogits, i * vocab, vocab);
                    }
                    if (s.finish == null) {
                        still.add(s);
                    } else {
                        cache.release(s.slot);
                    }
                }
                tokens += m;
                active = still;
                progress.progress(doneBefore + n - active.size(), total, tokens, System.nanoTime() - start);
            }
        } catch (RuntimeException e) {
            throw new EngineException("engine batch of " + n + " sequences failed: " + e.getMessage(), e);
        }
        for (Sequence s : batch) {
            generatedTokens.add(s.generated.size());
        }
    }

    /** One request's state while it is generated. */
    private final class Sequence {
        final int index;
        final GenerationRequest request;
        final int[] prompt;
        final Sampler sampler;
        final List<Integer> generated = new ArrayList<>();
        final Set<Integer> stopIds;
        int slot;
        FinishReason finish;
        /** Why generation of this sequence failed, once it has. */
        String error;
        long prefillNanos;
        long decodeNanos;

        Sequence(int index, GenerationRequest request, int[] prompt) {
            this.index = index;
            this.request = request;
            this.prompt = prompt;
            this.sampler = new Sampler(request.params(), config.vocabSize(), prompt);
            this.stopIds = new HashSet<>(request.params().stopTokenIds());
        }

        /**
         * Chooses and takes the next token. Logits no token can be drawn from end this sequence alone
         * with an error; the others in the batch go on.
         */
        void sample(float[] logits, int offset, int vocab) {
            int token;
            try {
                token = sampler.next(logits, offset, vocab);
            } catch (Sampler.NonFiniteLogitsException e) {
                error = "generation stopped after " + generated.size() + " token(s): " + e.getMessage();
                finish = FinishReason.ERROR;
                failedRequests.increment();
                return;
            }
            accept(token);
        }

        void accept(int token) {
            generated.add(token);
            if (eosIds.contains(token)) {
                finish = FinishReason.EOS;
            } else if (stopIds.contains(token)) {
                finish = FinishReason.STOP_TOKEN;
            } else if (generated.size() >= request.params().maxNewTokens()) {
                finish = FinishReason.LENGTH;
            } else if (prompt.length + generated.size() >= config.maxPositions()) {
                finish = FinishReason.CONTEXT_FULL;
            }
        }

        GenerationResult result() {
            if (error != null) {
                return new GenerationResult(request.id(), prompt, new int[0], "", FinishReason.ERROR, error, prefillNanos,
                        decodeNanos, servedBy);
            }
            int[] ids = generated.stream().mapToInt(Integer::intValue).toArray();
            String text = tokenizer == null ? "" : tokenizer.decode(ids, true);
            return new GenerationResult(request.id(), prompt, ids, text, finish, null, prefillNanos, decodeNanos, servedBy);
        }
    }

    /** The placement the engine runs with, resolved from the options. */
    public Placement placement() {
        return placement;
    }

    public ModelConfig model() {
        return config;
    }

    /** The model's tokenizer, or null for a model opened without one. */
    public Tokenizer tokenizer() {
        return tokenizer;
    }

    public EngineOptions options() {
        return options;
    }

    public EngineStatistics statistics() {
        return new EngineStatistics(requests.sum(), failedRequests.sum(), promptTokens.sum(), generatedTokens.sum(),
                prefillNanos.get(), decodeNanos.get(), weightStore.bytesRead(), traffic.snapshot());
    }

    /** Names of the devices serving this engine (backend first). */
    public List<String> servedBy() {
        return servedBy;
    }

    /** Backend, placement and devices in one line. */
    public String describe() {
        return config.architecture().modelType() + " " + config.layers() + " layers, hidden " + config.hidden()
                + " on " + backend.description() + "; " + placement.describe() + "; " + weightStore.describe() + "; gpu batch "
                + options.effectiveGpuBatchSize() + " of " + options.batchSize() + "; " + kvFactory.describe();
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        closeAll(owned, null);
    }

    /** Closes every resource, newest first, even when some fail; the first failure is thrown with the rest suppressed. */
    static void closeAll(Deque<AutoCloseable> resources, RuntimeException primary) {
        List<AutoCloseable> newestFirst = new ArrayList<>(resources);
        resources.clear();
        RuntimeException failure = Closeables.closeAll(newestFirst, primary);
        if (failure != primary) {
            throw failure;
        }
    }
}
