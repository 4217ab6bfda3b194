package io.inf2.compute.cuda;

import io.inf2.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Every weight resident in device memory, uploaded once on first use (or on {@link #prefetch}).
 * Uploads run on a copy stream of their own through two pinned staging buffers used in turn: the
 * host copies chunk i+1 from the checkpoint mapping into one buffer while the DMA engine moves
 * chunk i from the other, and a buffer is refilled only after the event recorded behind its last
 * copy has completed. Each tensor's copy ends with an event; the compute stream waits on it once.
 */
public final class ResidentWeights implements WeightPlacement {

    /** Staging chunk size: large enough to run the copy engine near its peak, small enough to pin cheaply. */
    static final long STAGING_BYTES = 32L << 20;

    private final CudaContext context;
    private final CudaStream copyStream;
    private final PinnedBuffer[] staging = new PinnedBuffer[2];
    private final CudaEvent[] stagingFree = new CudaEvent[2];
    private final boolean[] stagingUsed = new boolean[2];
    private int nextStaging;
    private final Map<Tensor, Resident> resident = new IdentityHashMap<>();
    private long deviceBytes;

    private static final class Resident {
        final DeviceBuffer buffer;
        final DeviceTensor tensor;
        CudaEvent ready;

        Resident(DeviceBuffer buffer, DeviceTensor tensor, CudaEvent ready) {
            this.buffer = buffer;
            this.tensor = tensor;
            this.ready = ready;
        }
    }

    public ResidentWeights(CudaContext context) {
        this.context = context;
        this.copyStream = context.createStream();
    }

    @Override
    public synchronized void prefetch(List<Tensor> tensors) {
        context.makeCurrent();
        for (Tensor t : tensors) {
            if (t != null && !resident.containsKey(t)) {
                upload(t);
            }
        }
    }

    @Override
    public synchronized DeviceTensor onDevice(Tensor tensor, CudaStream compute) {
        Resident r = resident.get(tensor);
        if (r == null) {
            r = upload(tensor);
        }
        if (r.ready != null) {
            // Once the compute stream has waited for the copy, later work on it is ordered after it.
            compute.waitFor(r.ready);
            r.ready.close();
            r.ready = null;
        }
        return r.tensor;
    }

    private Resident upload(Tensor t) {
        if (!t.dtype().isFloatingPoint()) {
            throw new IllegalArgumentException("weight " + t.name() + " has dtype " + t.dtype() + "; the cuda backend reads F32, F16 or BF16");
        }
        long bytes = t.data().byteSize();
        DeviceBuffer buffer = context.allocate(bytes, "weight " + t.name());
        try {
            MemorySegment src = t.data();
            for (long offset = 0; offset < bytes; offset += STAGING_BYTES) {
                long len = Math.min(STAGING_BYTES, bytes - offset);
                int i = nextStaging;
                nextStaging ^= 1;
                PinnedBuffer stage = stagingBuffer(i);
                if (stagingUsed[i]) {
                    stagingFree[i].synchronize();
                }
                MemorySegment.copy(src, offset, stage.segment(), 0, len);
                context.driver().memcpyHtoDAsync(buffer.address(offset), stage.segment(), len, copyStream.handle());
                stagingFree[i].record(copyStream);
                stagingUsed[i] = true;
            }
            CudaEvent ready = context.createEvent(false);
            ready.record(copyStream);
            Resident r = new Resident(buffer, new DeviceTensor(t, buffer.address()), ready);
            resident.put(t, r);
            deviceBytes += bytes;
            return r;
        } catch (RuntimeException e) {
            buffer.close();
            throw e;
        }
    }

    private PinnedBuffer stagingBuffer(int i) {
        if (staging[i] == null) {
            staging[i] = context.allocatePinned(STAGING_BYTES);
            stagingFree[i] = context.createEvent(false);
        }
        return staging[i];
    }

    @Override
    public synchronized void awaitTransfers() {
        copyStream.synchronize();
    }

    @Override
    public synchronized long deviceBytes() {
        return deviceBytes;
    }

    @Override
    public synchronized void close() {
        context.makeCurrent();
        copyStream.close();
        for (Resident r : resident.values()) {
            if (r.ready != null) {
                r.ready.close();
            }
            r.buffer.close();
        }
        resident.clear();
        deviceBytes = 0;
        for (int i = 0; i < 2; i++) {
            if (staging[i] != null) {
                stagingFree[i].close();
                staging[i].close();
            }
        }
    }
}
