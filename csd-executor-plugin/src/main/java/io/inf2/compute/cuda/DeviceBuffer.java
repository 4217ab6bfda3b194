package io.inf2.compute.cuda;

/**
 * Device memory with one owner: allocated in the constructor, freed by {@link #close}. The address
 * is a {@code CUdeviceptr}; kernels and copies use it on the owner's streams.
 */
public final class DeviceBuffer implements AutoCloseable {
    private final CudaContext context;
    private final long address;
    private final long bytes;
    private boolean freed;

    DeviceBuffer(CudaContext context, long bytes, String what) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("device buffer for " + what + ": " + bytes + " bytes");
        }
        this.context = context;
        this.bytes = bytes;
        context.makeCurrent();
        this.address = context.driver().memAlloc(bytes);
    }

    public long address() {
        if (freed) {
            throw new IllegalStateException("device buffer of " + bytes + " bytes used after close");
        }
        return address;
    }

    /** Address of the byte at {@code offset}. */
    public long address(long offset) {
        if (offset < 0 || offset > bytes) {
            throw new IndexOutOfBoundsException("offset " + offset + " outside a device buffer of " + bytes + " bytes");
        }
        return address() + offset;
    }

    public long byteSize() {
        return bytes;
    }

    /** Frees the memory; cuMemFree waits for work that may still use it. */
    @Override
    public void close() {
        if (!freed) {
            context.makeCurrent();
            context.driver().memFree(address);
            freed = true;
        }
    }
}
