package io.inf2.compute.cuda;

import io.inf2.compute.Activations;

/** A row-major f32 [rows, cols] matrix in device memory, owned by the backend that made it. */
final class CudaActivations implements Activations {
    private final CudaBackend owner;
    private final int rows;
    private final int cols;
    private final DeviceBuffer buffer;

    CudaActivations(CudaBackend owner, CudaContext context, int rows, int cols) {
        if (rows < 0 || cols < 0) {
            throw new IllegalArgumentException("activations of " + rows + "x" + cols);
        }
        this.owner = owner;
        this.rows = rows;
        this.cols = cols;
        long bytes = (long) rows * cols * Float.BYTES;
        this.buffer = bytes == 0 ? null : context.allocate(bytes, "activations " + rows + "x" + cols);
    }

    CudaBackend owner() {
        return owner;
    }

    /** Device address of element (0, 0); 0 for an empty matrix, which no kernel reads. */
    long address() {
        return buffer == null ? 0L : buffer.address();
    }

    long address(int row) {
        return buffer == null ? 0L : buffer.address((long) row * cols * Float.BYTES);
    }

    long elements() {
        return (long) rows * cols;
    }

    @Override
    public int rows() {
        return rows;
    }

    @Override
    public int cols() {
        return cols;
    }

    @Override
    public void close() {
        if (buffer != null) {
            buffer.close();
        }
    }

    @Override
    public String toString() {
        return "cuda activations " + rows + "x" + cols;
    }
}
