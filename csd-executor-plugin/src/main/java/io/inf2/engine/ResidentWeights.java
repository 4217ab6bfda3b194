package io.inf2.engine;

import io.inf2.model.LayerWeights;
import io.inf2.model.ModelWeights;

/** Weights used where they are (a file mapping or memory): nothing to fetch. */
final class ResidentWeights implements WeightStore {
    private final ModelWeights weights;

    ResidentWeights(ModelWeights weights) {
        this.weights = weights;
    }

    @Override
    public LayerWeights acquire(int layer) {
        return weights.layers().get(layer);
    }

    @Override
    public void prefetch(int layer) {
    }

    @Override
    public boolean ready(int layer) {
        return true;
    }

    @Override
    public void release(int layer) {
    }

    @Override
    public boolean concurrent() {
        return true;
    }

    @Override
    public long bytesRead() {
        return 0;
    }

    @Override
    public String describe() {
        return "layer weights read where they are";
    }

    @Override
    public void close() {
    }
}
