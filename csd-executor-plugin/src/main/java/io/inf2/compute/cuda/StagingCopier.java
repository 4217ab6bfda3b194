package io.inf2.compute.cuda;

import io.inf2.util.Closeables;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;

/**
 * Copies pageable host memory to the device through two pinned staging buffers used in turn: the host
 * fills chunk i+1 into one buffer while the DMA engine moves chunk i from the other, and a buffer is
 * refilled only after the event recorded behind its last copy has completed. The host thread waits
 * only for a staging buffer, never for the whole copy.
 */
final class StagingCopier implements AutoCloseable {

    /** Large enough to run the copy engine near its peak, small enough to pin cheaply. */
    static final long CHUNK_BYTES = 32L << 20;

    private final CudaContext context;
    private final PinnedBuffer[] buffers = new PinnedBuffer[2];
    private final CudaEvent[] free = new CudaEvent[2];
    private final boolean[] used = new boolean[2];
    private int next;

    StagingCopier(CudaContext context) {
        this.context = context;
    }

    /** Queues the copy of {@code src} to device address {@code dst} on {@code stream}. */
    void copy(MemorySegment src, long dst, CudaStream stream) {
        long bytes = src.byteSize();
        for (long offset = 0; offset < bytes; offset += CHUNK_BYTES) {
            long len = Math.min(CHUNK_BYTES, bytes - offset);
            int i = next;
            next ^= 1;
            PinnedBuffer stage = buffer(i);
            if (used[i]) {
                free[i].synchronize();
            }
            MemorySegment.copy(src, offset, stage.segment(), 0, len);
            context.driver().memcpyHtoDAsync(dst + offset, stage.segment(), len, stream.handle());
            free[i].record(stream);
            used[i] = true;
        }
    }

    private PinnedBuffer buffer(int i) {
        if (buffers[i] == null) {
            PinnedBuffer buffer = context.allocatePinned(CHUNK_BYTES);
            CudaEvent event;
            try {
                event = context.createEvent(false);
            } catch (RuntimeException e) {
                throw Closeables.closeAll(List.of(buffer), e);
            }
            buffers[i] = buffer;
            free[i] = event;
        }
        return buffers[i];
    }

    /** The caller makes sure no copy is still reading the buffers (synchronises or destroys the stream first). */
    @Override
    public void close() {
        List<AutoCloseable> owned = Arrays.asList(free[0], buffers[0], free[1], buffers[1]);
        Arrays.fill(free, null);
        Arrays.fill(buffers, null);
        Closeables.closeAllOrThrow(owned, null);
    }
}
