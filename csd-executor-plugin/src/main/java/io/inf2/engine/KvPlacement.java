package io.inf2.engine;

import io.inf2.compute.ComputeBackend;
import io.inf2.compute.cpu.CpuBackend;
import io.inf2.model.ModelWeights;
import io.inf2.kv.KvCacheFactory;

/** Opens an engine's KV placement once its backends are chosen. */
@FunctionalInterface
public interface KvPlacement {

    /**
     * @param host    the host CPU backend (host attention threads of memory and CSD places)
     * @param backend the backend the model runs on ({@code host} itself on the CPU); a place in
     *                accelerator memory lives there
     * @param weights the model's weights (a place may keep K and V in their type)
     */
    KvCacheFactory open(CpuBackend host, ComputeBackend backend, ModelWeights weights);
}
