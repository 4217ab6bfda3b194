package io.inf2.compute.cuda;

import io.inf2.tensor.Tensor;
import java.util.List;

/**
 * Where the CUDA backend finds a weight's device copy. The layer math asks only for
 * {@link #onDevice}; the placement decides when bytes move. {@link ResidentWeights} keeps every
 * weight on the GPU once uploaded; {@link LayerStreamingWeights} keeps a share of each layer resident
 * and copies the rest in per layer (FlexGen's schedule), so the layer math does not change.
 */
public interface WeightPlacement extends AutoCloseable {

    /**
     * Starts bringing {@code tensors} to the device without waiting; a hint that they are needed
     * soon (the next layer's weights).
     */
    void prefetch(List<Tensor> tensors);

    /**
     * As {@link #prefetch}, asking for the tensors to sit back to back in device memory, in order, so
     * that products over them can run as one (q, k and v of a layer). A placement that cannot does a
     * plain prefetch; callers check adjacency of what {@link #onDevice} returns.
     */
    default void prefetchAdjacent(List<Tensor> tensors) {
        prefetch(tensors);
    }

    /**
     * The device copy of {@code tensor}, safe to read by work queued on {@code compute} after this
     * call returns (the stream is made to wait for the copy if it is still in flight).
     */
    DeviceTensor onDevice(Tensor tensor, CudaStream compute);

    /** One layer's weights are about to be used: start copying in what is not resident. */
    default void stage(List<Tensor> layer) {
        prefetch(layer);
    }

    /**
     * One operation is about to fetch {@code operands} (nulls allowed) with {@link #onDevice} before it
     * queues its work: where weights are copied in per use, they must all be in device memory at once.
     */
    default void stageTogether(List<Tensor> operands) {
    }

    /** Every use of {@code layer}'s weights is queued on {@code compute}; their staging memory may be reused after it. */
    default void retire(List<Tensor> layer, CudaStream compute) {
    }

    /** Blocks until every copy started so far has landed in device memory. */
    void awaitTransfers();

    /** Bytes of weights held in device memory now. */
    long deviceBytes();

    @Override
    void close();
}
