package io.inf2.engine;

import io.inf2.compute.cuda.CudaBackend;
import io.inf2.compute.cuda.CudaSettings;
import io.inf2.config.Inf2Config;
import io.inf2.config.Settings;
import java.nio.file.Path;
import java.util.List;

/**
 * The engine's typed options, taken from an {@link Inf2Config} (command line, Spark keys or code).
 *
 * @param model          local model directory
 * @param backend        "cpu", "cuda" or "auto"
 * @param threads        CPU threads (resolved: never 0)
 * @param batchSize      sequences per engine batch
 * @param defaults       sampling settings for requests that bring none
 * @param kvCache        "memory", "gpu", "csd" or "storage"
 * @param csdDirectories device directories for csd and storage placements
 * @param writebackTokens delayed-writeback page size in tokens
 * @param xcacheFraction fraction of sequences kept as X; NaN means choose automatically
 * @param csdThreads     near-storage compute threads per emulated device
 * @param gpuBatchSize   sequences per GPU batch of the block schedule; 0 means the whole engine batch
 * @param weights        "memory" (used where mapped) or "storage" (streamed per layer with direct I/O)
 * @param cuda           how to open the cuda backend when it is chosen
 * @param percent        FlexGen's six placement percentages, or empty (see {@link Settings#PERCENT})
 * @param gpuMemory      GPU memory budget in bytes for deriving a placement; 0 means none
 * @param hostMemory     host memory budget in bytes for deriving a placement; 0 means none
 * @param contextTokens  the longest sequence (prompt plus new tokens) served; 0 means the model's context window
 */
public record EngineOptions(Path model, String backend, int threads, int batchSize, SamplingParams defaults,
                            String kvCache, List<Path> csdDirectories, int writebackTokens, double xcacheFraction,
                            int csdThreads, int gpuBatchSize, String weights, CudaBackend.Options cuda,
                            List<Integer> percent, long gpuMemory, long hostMemory, int contextTokens) {

    public EngineOptions {
        csdDirectories = List.copyOf(csdDirectories);
        percent = List.copyOf(percent);
        if ((kvCache.equals("csd") || kvCache.equals("storage")) && csdDirectories.isEmpty()) {
            throw new IllegalArgumentException("kvCache=" + kvCache + " needs at least one device directory (--csd DIR[,DIR...], spark.inf2.csd)");
        }
    }

    public static EngineOptions from(Inf2Config c) {
        int threads = c.get(Settings.THREADS);
        if (threads == 0) {
            threads = Runtime.getRuntime().availableProcessors();
        }
        SamplingParams defaults = new SamplingParams(c.get(Settings.MAX_NEW_TOKENS), c.get(Settings.TEMPERATURE),
                c.get(Settings.TOP_K), c.get(Settings.TOP_P), c.get(Settings.REPETITION_PENALTY), c.get(Settings.SEED),
                c.get(Settings.STOP_TOKEN_IDS));
        return new EngineOptions(Path.of(c.get(Settings.MODEL)), c.get(Settings.BACKEND), threads, c.get(Settings.BATCH_SIZE),
                defaults, c.get(Settings.KV_CACHE), c.get(Settings.CSD), c.get(Settings.WRITEBACK_TOKENS),
                c.get(Settings.XCACHE_FRACTION), c.get(Settings.CSD_THREADS), c.get(Settings.GPU_BATCH_SIZE),
                c.get(Settings.WEIGHTS), CudaSettings.options(c.get(Settings.CUDA_LIBRARY_PATH), c.get(Settings.CUDA_DEVICE),
                c.get(Settings.CUDA_KERNEL_CACHE)), c.get(Settings.PERCENT), c.get(Settings.GPU_MEMORY),
                c.get(Settings.HOST_MEMORY), c.get(Settings.CONTEXT_TOKENS));
    }

    /** Sequences per GPU batch: the whole engine batch unless set smaller. */
    public int effectiveGpuBatchSize() {
        return gpuBatchSize == 0 ? batchSize : Math.min(gpuBatchSize, batchSize);
    }

    public EngineOptions withModel(Path dir) {
        return new EngineOptions(dir, backend, threads, batchSize, defaults, kvCache, csdDirectories, writebackTokens,
                xcacheFraction, csdThreads, gpuBatchSize, weights, cuda, percent, gpuMemory, hostMemory, contextTokens);
    }

    /** The same options with the KV cache where a resolved {@link Placement} put it. */
    public EngineOptions withKvCache(String place) {
        return new EngineOptions(model, backend, threads, batchSize, defaults, place, csdDirectories, writebackTokens,
                xcacheFraction, csdThreads, gpuBatchSize, weights, cuda, percent, gpuMemory, hostMemory, contextTokens);
    }

    /** The longest sequence, prompt plus new tokens, this engine serves for a model of {@code contextWindow} positions. */
    public int contextTokens(int contextWindow) {
        return contextTokens == 0 ? contextWindow : Math.min(contextTokens, contextWindow);
    }
}
