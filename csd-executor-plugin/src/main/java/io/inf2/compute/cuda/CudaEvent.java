package io.inf2.compute.cuda;

import io.inf2.nativeio.CudaDriver;
import java.lang.foreign.MemorySegment;

/** A CUDA event with one owner: a point in a stream that other streams and the host can wait for. */
public final class CudaEvent implements AutoCloseable {
    private final CudaContext context;
    private final MemorySegment handle;
    private boolean destroyed;

    CudaEvent(CudaContext context, boolean timing) {
        this.context = context;
        context.makeCurrent();
        this.handle = context.driver().eventCreate(timing ? CudaDriver.CU_EVENT_DEFAULT : CudaDriver.CU_EVENT_DISABLE_TIMING);
    }

    public MemorySegment handle() {
        return handle;
    }

    public void record(CudaStream stream) {
        context.driver().eventRecord(handle, stream.handle());
    }

    public void synchronize() {
        context.makeCurrent();
        context.driver().eventSynchronize(handle);
    }

    /** Milliseconds from {@code start} to this event; both recorded, completed, and created with timing. */
    public float millisSince(CudaEvent start) {
        return context.driver().eventElapsedMillis(start.handle, handle);
    }

    @Override
    public void close() {
        if (!destroyed) {
            context.makeCurrent();
            context.driver().eventDestroy(handle);
            destroyed = true;
        }
    }
}
