package io.inf2.compute.cuda;

import io.inf2.tensor.Tensor;
import java.util.List;

/**
 * Where the CUDA backend finds a weight's device copy. The layer math asks only for
 * {@link #onDevice}; the placement decides when bytes move. {@link ResidentWeights} keeps every
 * weight on the GPU once uploaded. A streaming placement (FlexGen's schedule: weights in pinned
 * host memory, layer i+1 copied on a copy stream into one of two device buffers while layer i
 * computes, the compute stream waiting on the copy's event, the buffer reused once the compute
 * stream's event says layer i is done) implements the same three methods, so the layer math does
 * not change.
 */
public interface WeightPlacement extends AutoCloseable {

    /**
     * Starts bringing {@code tensors} to the device without waiting; a hint that they are needed
     * soon (the next layer's weights).
     */
    void prefetch(List<Tensor> tensors);

    /**
     * The device copy of {@code tensor}, safe to read by work queued on {@code compute} after this
     * call returns (the stream is made to wait for the copy if it is still in flight).
     */
    DeviceTensor onDevice(Tensor tensor, CudaStream compute);

    /** Blocks until every copy started so far has landed in device memory. */
    void awaitTransfers();

    /** Bytes of weights held in device memory now. */
    long deviceBytes();

    @Override
    void close();
}
