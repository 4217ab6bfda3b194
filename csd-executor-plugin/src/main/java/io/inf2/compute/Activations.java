package io.inf2.compute;

/**
 * A row-major f32 [rows, cols] buffer in a compute backend's memory (host memory for the CPU
 * backend, device memory for the GPU). Engine code moves data between it and the host only through
 * {@link ComputeBackend#download} and {@link ComputeBackend#upload}, so every transfer is explicit.
 */
public interface Activations extends AutoCloseable {
    int rows();

    int cols();

    /** Frees the buffer (a no-op where the garbage collector owns it). */
    @Override
    void close();
}
