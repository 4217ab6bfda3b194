package io.inf2.compute.cuda;

import java.lang.foreign.MemorySegment;

/** Page-locked host memory with one owner, for asynchronous copies; freed by {@link #close}. */
public final class PinnedBuffer implements AutoCloseable {
    private final CudaContext context;
    private final MemorySegment segment;
    private boolean freed;

    PinnedBuffer(CudaContext context, long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("pinned buffer of " + bytes + " bytes");
        }
        this.context = context;
        context.makeCurrent();
        this.segment = context.driver().memAllocHost(bytes);
    }

    public MemorySegment segment() {
        if (freed) {
            throw new IllegalStateException("pinned buffer of " + segment.byteSize() + " bytes used after close");
        }
        return segment;
    }

    public long byteSize() {
        return segment.byteSize();
    }

    @Override
    public void close() {
        if (!freed) {
            context.makeCurrent();
            context.driver().memFreeHost(segment);
            freed = true;
        }
    }
}
