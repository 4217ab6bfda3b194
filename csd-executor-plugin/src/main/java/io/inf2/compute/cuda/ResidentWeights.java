package io.inf2.compute.cuda;

import io.inf2.tensor.Tensor;
import io.inf2.util.Closeables;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Every weight resident in device memory, uploaded once on first use (or on {@link #prefetch}) on a
 * copy stream of its own through a {@link StagingCopier}. Each tensor's copy ends with an event; the
 * compute stream waits on it once.
 */
public final class ResidentWeights implements WeightPlacement {

    private final CudaContext context;
    private final CudaStream copyStream;
    private final StagingCopier staging;
    /** Bytes between group members' starts must be a multiple of this for {@link #prefetchAdjacent}. */
    static final long ADJACENT_ALIGNMENT = 256;

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
        this.staging = new StagingCopier(context);
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

    /**
     * One allocation for the whole group when none of it is resident yet and every tensor's size is a
     * multiple of {@link #ADJACENT_ALIGNMENT} (so each starts where cuBLAS wants its operands);
     * otherwise tensor by tensor.
     */
    @Override
    public synchronized void prefetchAdjacent(List<Tensor> tensors) {
        context.makeCurrent();
        boolean groupable = tensors.size() > 1;
        for (Tensor t : tensors) {
            groupable &= t != null && !resident.containsKey(t) && t.data().byteSize() % ADJACENT_ALIGNMENT == 0;
        }
        if (!groupable) {
            prefetch(tensors);
            return;
        }
        upload(tensors, "weights " + tensors.getFirst().name() + " and the " + (tensors.size() - 1) + " after it");
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

    private static void requireFloatingPoint(Tensor t) {
        if (!t.dtype().isFloatingPoint()) {
            throw new IllegalArgumentException("weight " + t.name() + " has dtype " + t.dtype() + "; the cuda backend reads F32, F16 or BF16");
        }
    }

    private Resident upload(Tensor t) {
        return upload(List.of(t), "weight " + t.name()).getFirst();
    }

    /** Copies {@code tensors} back to back into one new device allocation, each with its own ready event. */
    private List<Resident> upload(List<Tensor> tensors, String what) {
        long total = 0;
        for (Tensor t : tensors) {
            requireFloatingPoint(t);
            total += t.data().byteSize();
        }
        DeviceBuffer buffer = context.allocate(total, what);
        List<Resident> added = new ArrayList<>();
        try {
            long offset = 0;
            for (Tensor t : tensors) {
                staging.copy(t.data(), buffer.address() + offset, copyStream);
                CudaEvent ready = context.createEvent(false);
                added.add(new Resident(buffer, new DeviceTensor(t, buffer.address() + offset), ready));
                ready.record(copyStream);
                offset += t.data().byteSize();
            }
        } catch (RuntimeException e) {
            List<AutoCloseable> cleanup = new ArrayList<>();
            cleanup.add(copyStream::synchronize);
            added.forEach(r -> cleanup.add(r.ready));
            cleanup.add(buffer);
            throw Closeables.closeAll(cleanup, e);
        }
        for (int i = 0; i < tensors.size(); i++) {
            resident.put(tensors.get(i), added.get(i));
        }
        deviceBytes += total;
        return added;
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
        RuntimeException failure = copyStream.synchronizeBeforeFree();
        List<AutoCloseable> owned = new ArrayList<>();
        owned.add(copyStream);
        // Tensors of one adjacent group share a buffer: free each buffer once.
        Set<DeviceBuffer> buffers = Collections.newSetFromMap(new IdentityHashMap<>());
        for (Resident r : resident.values()) {
            owned.add(r.ready);
            buffers.add(r.buffer);
        }
        owned.addAll(buffers);
        owned.add(staging);
        resident.clear();
        deviceBytes = 0;
        Closeables.closeAllOrThrow(owned, failure);
    }
}
