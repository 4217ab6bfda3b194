package io.inf2.kv;

import io.inf2.tensor.FloatMatrix;

/**
 * Recomputes keys and values from a layer's normalized input, for places that keep X instead of K
 * and V (INF²'s cooperative X-cache). Supplied by the engine, which owns the weights and the compute
 * backend.
 */
@FunctionalInterface
public interface KvProjector {

    /**
     * @param layerInput    [tokens, hidden]; row i is the token at position {@code firstPosition + i}
     * @param keysOut       [tokens, kvDim], receives rotary-embedded keys
     * @param valuesOut     [tokens, kvDim]
     */
    void project(int layer, FloatMatrix layerInput, int firstPosition, FloatMatrix keysOut, FloatMatrix valuesOut);
}
