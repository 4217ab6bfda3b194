package io.inf2.compute.cuda;

import java.lang.foreign.MemorySegment;

/** A non-blocking CUDA stream with one owner. */
public final class CudaStream implements AutoCloseable {
    private final CudaContext context;
    private final MemorySegment handle;
    private boolean destroyed;

    CudaStream(CudaContext context) {
        this.context = context;
        context.makeCurrent();
        // Non-blocking: no implicit ordering with the legacy default stream that cuBLAS or another
        // library might use.
        this.handle = context.driver().streamCreate(io.inf2.nativeio.CudaDriver.CU_STREAM_NON_BLOCKING);
    }

    public MemorySegment handle() {
        return handle;
    }

    /** Blocks until all work queued on this stream is done. */
    public void synchronize() {
        context.makeCurrent();
        context.driver().streamSynchronize(handle);
    }

    /**
     * Waits for the work queued here before its owner frees the memory that work uses; returns the
     * failure rather than throwing it, for a close that must go on freeing everything else.
     */
    public RuntimeException synchronizeBeforeFree() {
        try {
            synchronize();
            return null;
        } catch (RuntimeException e) {
            return e;
        }
    }

    /** Later work on this stream waits for {@code event}. */
    public void waitFor(CudaEvent event) {
        context.driver().streamWaitEvent(handle, event.handle());
    }

    @Override
    public void close() {
        if (!destroyed) {
            context.makeCurrent();
            RuntimeException failure = null;
            try {
                context.driver().streamSynchronize(handle);
            } catch (RuntimeException e) {
                failure = e;
            }
            try {
                context.driver().streamDestroy(handle);
                destroyed = true;
            } catch (RuntimeException e) {
                if (failure == null) {
                    throw e;
                }
                failure.addSuppressed(e);
            }
            if (failure != null) {
                throw failure;
            }
        }
    }
}
