package io.inf2.engine;

import io.inf2.model.LayerWeights;

/**
 * Where a layer's weights come from when the schedule reaches it. The block schedule calls, for each
 * layer in order, {@link #acquire} (wait until usable), {@link #prefetch} of the next layer (start
 * bringing it in while this one computes), and {@link #release} once every GPU batch has used it.
 * Weights that stay put (mapped, resident) make all three trivial; streamed weights overlap the
 * next layer's transfer with this layer's compute.
 */
interface WeightStore extends AutoCloseable {

    LayerWeights acquire(int layer);

    void prefetch(int layer);

    /** True when {@link #acquire} of {@code layer} would return without waiting. */
    boolean ready(int layer);

    void release(int layer);

    /** True when concurrent batches can share the store; a streaming store serves one schedule at a time. */
    boolean concurrent();

    /** Bytes read from storage so far (0 for weights that never move). */
    long bytesRead();

    String describe();

    @Override
    void close();
}
