package io.inf2.kv;

import io.inf2.tensor.FloatMatrix;

/**
 * Where one engine batch's KV cache lives, and what answers decode attention over it.
 *
 * <p>Implementations place each (sequence, KV head) share of a layer's cache somewhere (host
 * memory, a host writeback buffer, computational storage devices, plain storage read back, or the
 * X-cache that recomputes K and V from the layer input) and merge the partial results of every
 * place exactly by log-sum-exp ({@link PartialAttention}). The engine does not know which.
 *
 * <p>Slots are the positions of sequences in the engine batch, {@code 0 <= slot < capacity}.
 * Keys passed in already carry rotary position information. All matrices are host f32 and valid
 * only during the call: a place that keeps data copies it.
 */
public interface KvCache extends AutoCloseable {

    /**
     * Stores the prompt of one sequence for one layer.
     *
     * @param keys       [promptTokens, kvDim]
     * @param values     [promptTokens, kvDim]
     * @param layerInput [promptTokens, hidden]: the normalized layer input the K and V projections
     *                   consumed; kept by places that recompute K and V (the X-cache); null when
     *                   {@link #keepsLayerInput()} is false
     */
    void writePrompt(int layer, int slot, FloatMatrix keys, FloatMatrix values, FloatMatrix layerInput);

    /**
     * One decode step of one layer for several sequences: appends each sequence's new key and value,
     * then computes causal attention of its query over its whole cache (the new token included).
     *
     * @param slots      the sequences, one per row of the matrices
     * @param queries    [n, heads * headDim]
     * @param keys       [n, kvDim]
     * @param values     [n, kvDim]
     * @param layerInput [n, hidden], as in {@link #writePrompt}
     * @param out        [n, heads * headDim], receives softmax(q·Kᵀ/√d)·V per head
     */
    void appendAndAttend(int layer, int[] slots, FloatMatrix queries, FloatMatrix keys, FloatMatrix values,
                         FloatMatrix layerInput, FloatMatrix out);

    /**
     * Whether this cache keeps the layer input X (to recompute K and V from it). When false the
     * engine passes null as {@code layerInput} and saves moving X to the host.
     */
    default boolean keepsLayerInput() {
        return true;
    }

    /** Number of tokens cached for {@code slot} (the same in every layer once a step completes). */
    int length(int slot);

    /** Forgets a finished sequence; what was not yet written to storage is dropped, never written. */
    void release(int slot);

    /** Traffic and placement counters of this cache (shared with the engine's statistics). */
    KvTraffic traffic();

    /** Frees every region and buffer. */
    @Override
    void close();
}
