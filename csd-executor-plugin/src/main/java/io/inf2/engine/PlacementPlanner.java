package io.inf2.engine;

import io.inf2.kv.MemoryKvCache;
import io.inf2.model.LayerWeights;
import io.inf2.model.ModelConfig;
import io.inf2.model.ModelWeights;
import java.util.List;

/**
 * Resolves the placement an engine runs with, from (first that applies) the percent policy, the
 * memory budgets, or the plain weights and kvCache choices.
 *
 * <p>From budgets, in the order decode throughput asks for: the GPU takes as much of each layer's
 * weights as fits (decode reads every weight once per step, so weights on the GPU are bytes not moved
 * per step), keeping room for two streaming slots when some must stream; the KV cache goes to the GPU
 * if what is left holds a batch of sequences at their longest ({@link EngineOptions#contextTokens(int)}),
 * else to host memory, else to the CSD tier; host memory then takes what weights it can hold, and the
 * rest is read from storage.
 */
final class PlacementPlanner {
    /** GPU memory kept free for activations, cuBLAS workspace and kernels. */
    static final long GPU_WORKSPACE_BYTES = 2L << 30;

    private PlacementPlanner() {
    }

    /**
     * @param gpuBackend      whether the engine computes on a GPU
     * @param deviceFreeBytes free GPU memory now (used when no GPU budget is given)
     * @param weightsOnDisk   whether the checkpoint is a file that weights can be streamed from
     */
    static Placement resolve(EngineOptions options, ModelWeights weights, boolean gpuBackend, long deviceFreeBytes,
                             boolean weightsOnDisk) {
        Placement p;
        if (!options.percent().isEmpty()) {
            p = fromPercent(options);
        } else if (options.gpuMemory() > 0 || options.hostMemory() > 0) {
            p = fromBudgets(options, weights, gpuBackend, deviceFreeBytes);
        } else {
            boolean stream = options.weights().equals("storage");
            p = new Placement(stream || !gpuBackend ? 0 : 100, stream || gpuBackend ? 0 : 100, options.kvCache(), true);
        }
        check(p, options, gpuBackend, weightsOnDisk);
        return p;
    }

    private static Placement fromPercent(EngineOptions options) {
        List<Integer> pc = options.percent();
        if (options.weights().equals("storage")) {
            throw new IllegalArgumentException("percent and weights=storage both place the weights: give one of them");
        }
        String tier = pc.get(2) == 100 ? "gpu" : pc.get(3) == 100 ? "memory" : "storage";
        String kvCache = switch (tier) {
            case "storage" -> {
                if (!options.kvCache().equals("csd") && !options.kvCache().equals("storage")) {
                    throw new IllegalArgumentException("percent puts the KV cache on storage: set kvCache to csd (attention "
                            + "near storage) or storage (read back to the host)");
                }
                yield options.kvCache();
            }
            default -> {
                if (!options.kvCache().equals("memory") && !options.kvCache().equals(tier)) {
                    throw new IllegalArgumentException("percent puts the KV cache in " + (tier.equals("gpu") ? "GPU" : "host")
                            + " memory but kvCache=" + options.kvCache() + ": give one of them");
                }
                yield tier;
            }
        };
        return new Placement(pc.get(0), pc.get(1), kvCache, pc.get(4) == 100);
    }

    private static Placement fromBudgets(EngineOptions options, ModelWeights weights, boolean gpuBackend,
                                         long deviceFreeBytes) {
        ModelConfig c = weights.config();
        long layerBytes = 0;
        long largestLayer = 0;
        for (LayerWeights l : weights.layers()) {
            layerBytes += l.byteSize();
            largestLayer = Math.max(largestLayer, l.byteSize());
        }
        long globalBytes = weights.byteSize() - layerBytes;
        int sequenceTokens = options.contextTokens(c.maxPositions());
        long cacheTokens = (long) options.batchSize() * sequenceTokens * c.layers();

        long gpuLeft = 0;
        int weightsGpu = 0;
        if (gpuBackend) {
            long budget = options.gpuMemory() > 0 ? options.gpuMemory() : deviceFreeBytes;
            gpuLeft = budget - globalBytes - GPU_WORKSPACE_BYTES;
            if (gpuLeft >= layerBytes) {
                weightsGpu = 100;
            } else {
                weightsGpu = (int) Math.max(0, Math.floor((gpuLeft - 2.0 * largestLayer) * 100 / layerBytes));
            }
            gpuLeft -= layerBytes * weightsGpu / 100 + (weightsGpu < 100 ? 2 * largestLayer : 0);
        }
        long hostLeft = options.hostMemory() > 0 ? options.hostMemory() : Long.MAX_VALUE;
        String kvCache;
        long gpuCache = cacheTokens * c.kvBytesPerTokenPerLayer(2);
        long hostCache = cacheTokens * c.kvBytesPerTokenPerLayer(MemoryKvCache.storedType(weights).byteSize());
        if (gpuBackend && gpuCache <= gpuLeft) {
            kvCache = "gpu";
        } else if (hostCache <= hostLeft) {
            kvCache = "memory";
            hostLeft -= hostCache;
        } else if (options.kvCache().equals("csd") || options.kvCache().equals("storage")) {
            kvCache = options.kvCache();
        } else if (!options.csdDirectories().isEmpty()) {
            kvCache = "csd";
        } else {
            throw new IllegalArgumentException("the KV cache for " + options.batchSize() + " sequences of " + sequenceTokens
                    + " tokens (" + (hostCache >> 20) + " MiB) fits neither the GPU nor the host memory budget; give CSD "
                    + "directories (csd), larger budgets, or a smaller contextTokens");
        }
        int weightsHost = 100 - weightsGpu;
        if (layerBytes > 0 && hostLeft < layerBytes * weightsHost / 100) {
            weightsHost = (int) Math.max(0, Math.floor(hostLeft * 100.0 / layerBytes));
        }
        return new Placement(weightsGpu, weightsHost, kvCache, true);
    }

    private static void check(Placement p, EngineOptions options, boolean gpuBackend, boolean weightsOnDisk) {
        if (!gpuBackend && p.weightsGpuPercent() > 0) {
            throw new IllegalArgumentException("placement puts " + p.weightsGpuPercent() + "% of the weights in GPU memory, "
                    + "but the backend is the CPU (backend=" + options.backend() + ")");
        }
        if (!gpuBackend && p.kvCache().equals("gpu")) {
            if (options.kvCache().equals("gpu")) {
                throw InferenceEngine.gpuKvCacheNeedsCuda(options);
            }
            throw new IllegalArgumentException("placement puts the KV cache in GPU memory, but the backend is the CPU (backend="
                    + options.backend() + ")");
        }
        if (p.weightsStoragePercent() > 0 && !weightsOnDisk) {
            throw new IllegalArgumentException("placement streams " + p.weightsStoragePercent() + "% of the weights from "
                    + "storage, but the checkpoint is not a safetensors file on disk");
        }
        if ((p.kvCache().equals("csd") || p.kvCache().equals("storage")) && options.csdDirectories().isEmpty()) {
            throw new IllegalArgumentException("placement puts the KV cache on " + p.kvCache()
                    + ", which needs device directories (csd)");
        }
    }
}
