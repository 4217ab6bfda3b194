package io.inf2.compute.cuda;

import io.inf2.compute.Activations;

/**
 * A row-major f32 [rows, cols] matrix in device memory, made by a backend from its pool of device
 * buffers; {@link #close} gives the buffer back to that pool.
 */
final class CudaActivations implements Activations {
    private final CudaBackend owner;
    private final int rows;
    private final int cols;
    private final DeviceBuffer buffer;
    private boolean closed;
    private long version;

    /** @param buffer at least rows · cols floats, or null for an empty matrix */
    CudaActivations(CudaBackend owner, DeviceBuffer buffer, int rows, int cols) {
        this.owner = owner;
        this.rows = rows;
        this.cols = cols;
        this.buffer = buffer;
    }

    CudaBackend owner() {
        return owner;
    }

    /** Device address of element (0, 0); 0 for an empty matrix, which no kernel reads. */
    long address() {
        if (closed) {
            throw new IllegalStateException(this + " used after close");
        }
        return buffer == null ? 0L : buffer.address();
    }

    /** Counts the operations queued to write this matrix: a copy made of it is current while this is unchanged. */
    long version() {
        return version;
    }

    void written() {
        version++;
    }

    boolean isClosed() {
        return closed;
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
        if (!closed) {
            closed = true;
            if (buffer != null) {
                owner.recycle(buffer);
            }
        }
    }

    @Override
    public String toString() {
        return "cuda activations " + rows + "x" + cols;
    }
}
