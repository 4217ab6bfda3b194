package io.inf2.kv;

import io.inf2.compute.Activations;
import io.inf2.compute.ComputeBackend;

/**
 * A KV cache that lives in the compute backend's own memory (GPU memory for the cuda backend) and
 * answers attention there. The engine hands it the layer's activations as they are, so q, k, v and
 * the attention output never cross to the host: the FlexGen policy of a GPU-resident cache.
 *
 * <p>The {@link KvCache} methods on host matrices still work on such a cache (an implementation
 * copies them to and from the backend), so tools and tests written against host matrices can use
 * it; the engine uses the methods here.
 */
public interface BackendKvCache extends KvCache {

    /** The backend whose {@link Activations} this cache takes; the engine must run on the same one. */
    ComputeBackend backend();

    /**
     * Stores the prompts of a packed prefill batch for one layer: prompt {@code s} is rows
     * {@code [starts[s], starts[s] + lengths[s])} of the matrices and goes to slot {@code slots[s]},
     * which must be empty. One call for the whole batch, so the backend stores every prompt in one
     * operation.
     *
     * @param keys       [rows, kvDim], rotary position already applied
     * @param values     [rows, kvDim]
     * @param layerInput [rows, hidden], as in {@link KvCache#writePrompt}
     */
    void writePrompts(int layer, int[] slots, int[] starts, int[] lengths, Activations keys, Activations values,
                      Activations layerInput);

    /**
     * {@link KvCache#appendAndAttend} on the backend's activations: appends row i of {@code keys}
     * and {@code values} to slot {@code slots[i]}, then writes the causal attention of row i of
     * {@code queries} over that slot's whole cache to row i of {@code out}.
     *
     * @param queries [n, heads · headDim]
     * @param out     [n, heads · headDim]
     */
    void appendAndAttend(int layer, int[] slots, Activations queries, Activations keys, Activations values,
                         Activations layerInput, Activations out);
}
