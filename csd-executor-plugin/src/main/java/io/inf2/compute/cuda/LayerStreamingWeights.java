package io.inf2.compute.cuda;

import io.inf2.compute.WeightLayout;
import io.inf2.compute.WeightTier;
import io.inf2.model.LayerWeights;
import io.inf2.tensor.Tensor;
import io.inf2.util.Closeables;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * FlexGen's weight schedule on the GPU. DEVICE-tier weights are resident ({@link ResidentWeights});
 * the rest of each layer is copied in per layer, on a copy stream of its own, into one of two device
 * slots: while the compute stream runs layer l from one slot, layer l+1 lands in the other. HOST-tier
 * weights are copied straight from pinned host memory ({@link PinnedHostWeights}); STORAGE-tier
 * weights arrive in the engine's direct-I/O buffers and go through pinned staging.
 *
 * <p>No host synchronisation in the steady state: the compute stream waits on the event recorded
 * behind a slot's copies before its first use, and a slot's next copies wait on the event the
 * compute stream recorded when the layer in it was retired.
 */
public final class LayerStreamingWeights implements WeightPlacement {
    private static final long ALIGNMENT = 256;
    /**
     * Host-to-device copies on the compute stream (activations uploaded after CPU attention) queue on
     * the same copy engine as the weights: cut the weight copies into pieces so that such an upload
     * waits for one piece, not for a whole layer.
     */
    static final long COPY_CHUNK_BYTES = 16L << 20;

    private final CudaContext context;
    private final ResidentWeights resident;
    private final PinnedHostWeights host;
    private final Set<String> streamed = new HashSet<>();
    private final CudaStream copyStream;
    private final StagingCopier staging;
    private final Slot[] slots = new Slot[2];
    private final long slotBytes;
    private long bytesCopied;
    /** The slot whose weights the compute stream was handed last. */
    private int current;
    /** The slot holding the group staged or found last; the next group goes into the other one. */
    private int lastStaged;
    private CudaStream lastCompute;

    private final class Slot implements AutoCloseable {
        final DeviceBuffer buffer;
        final CudaEvent ready;
        final CudaEvent free;
        final Map<String, DeviceTensor> tensors = new HashMap<>();
        boolean computeWaited = true;
        /** Compute work may read this slot and no free event has been recorded behind it yet. */
        boolean handedOut;
        boolean freeRecorded;

        Slot(int index) {
            buffer = context.allocate(slotBytes, "streamed weight slot " + index);
            CudaEvent readyEvent = null;
            try {
                readyEvent = context.createEvent(false);
                free = context.createEvent(false);
            } catch (RuntimeException e) {
                throw Closeables.closeAll(Arrays.asList(readyEvent, buffer), e);
            }
            ready = readyEvent;
        }

        /** Exactly {@code group}: a layer the schedule staged. */
        boolean holds(List<Tensor> group) {
            return !group.isEmpty() && tensors.size() == group.size() && holdsAll(group);
        }

        boolean holdsAll(List<Tensor> group) {
            return group.stream().allMatch(t -> tensors.containsKey(t.name()));
        }

        @Override
        public void close() {
            Closeables.closeAllOrThrow(List.of(ready, free, buffer), null);
        }
    }

    LayerStreamingWeights(CudaContext context, WeightLayout layout) {
        this.context = context;
        List<Tensor> hostTier = layout.tensorsIn(WeightTier.HOST);
        long largest = 0;
        for (LayerWeights layer : layout.layers()) {
            long bytes = 0;
            for (Tensor t : layer.tensors()) {
                if (layout.tierOf(t) != WeightTier.DEVICE) {
                    streamed.add(t.name());
                    bytes += align(t.data().byteSize());
                }
            }
            largest = Math.max(largest, bytes);
        }
        this.slotBytes = Math.max(largest, ALIGNMENT);
        List<AutoCloseable> opened = new ArrayList<>();
        try {
            this.resident = new ResidentWeights(context);
            opened.add(resident);
            this.host = new PinnedHostWeights(context, hostTier);
            opened.add(host);
            this.copyStream = context.createStream();
            opened.add(copyStream);
            this.staging = new StagingCopier(context);
            opened.add(staging);
            for (int i = 0; i < 2; i++) {
                slots[i] = new Slot(i);
                opened.add(slots[i]);
            }
            resident.prefetch(layout.tensorsIn(WeightTier.DEVICE));
        } catch (RuntimeException e) {
            throw Closeables.closeAll(opened.reversed(), e);
        }
    }

    private static long align(long bytes) {
        return (bytes + ALIGNMENT - 1) & -ALIGNMENT;
    }

    @Override
    public synchronized void prefetch(List<Tensor> tensors) {
        List<Tensor> fixed = new ArrayList<>();
        for (Tensor t : tensors) {
            if (t != null && !streamed.contains(t.name())) {
                fixed.add(t);
            }
        }
        resident.prefetch(fixed);
    }

    @Override
    public synchronized void stage(List<Tensor> layer) {
        List<Tensor> group = streamedOf(layer);
        if (group.isEmpty()) {
            return;
        }
        int held = slotHolding(group);
        if (held >= 0) {
            lastStaged = held;
            return;
        }
        // The schedule stages layer l (found) and then l + 1: the other slot holds l - 1, retired.
        lastStaged = 1 - lastStaged;
        fill(lastStaged, group);
    }

    /**
     * Streamed operands the schedule did not stage are copied in one at a time by {@link #onDevice},
     * each into the slot not used last; an operation that fetched three (linears over q, k and v, or
     * their biases after the next weight) would have the third copy land on the first before its
     * product was queued. So an operation's operands go into one slot together unless one slot holds
     * them all already, as it does for every operation of the schedule.
     */
    @Override
    public synchronized void stageTogether(List<Tensor> operands) {
        List<Tensor> group = streamedOf(operands);
        if (group.size() < 2) {
            return;
        }
        for (Slot slot : slots) {
            if (slot.holdsAll(group)) {
                return;
            }
        }
        fillOutsideSchedule(group);
    }

    /** Copies {@code group} into the slot not handed out last, for an operation the schedule did not stage; returns that slot. */
    private int fillOutsideSchedule(List<Tensor> group) {
        int index = 1 - current;
        fill(index, group);
        lastStaged = index;
        return index;
    }

    private List<Tensor> streamedOf(List<Tensor> tensors) {
        List<Tensor> group = new ArrayList<>();
        for (Tensor t : tensors) {
            if (t != null && streamed.contains(t.name())) {
                group.add(t);
            }
        }
        return group;
    }

    private int slotHolding(List<Tensor> group) {
        for (int i = 0; i < 2; i++) {
            if (slots[i].holds(group)) {
                return i;
            }
        }
        return -1;
    }

    private void fill(int index, List<Tensor> group) {
        context.makeCurrent();
        Slot slot = slots[index];
        long needed = 0;
        for (Tensor t : group) {
            needed += align(t.data().byteSize());
        }
        if (needed > slot.buffer.byteSize()) {
            throw new IllegalArgumentException("streamed weights " + group.getFirst().name() + " ... " + group.getLast().name()
                    + " need " + needed + " bytes of device staging, more than a slot's " + slot.buffer.byteSize()
                    + " (a slot holds one layer's streamed weights)");
        }
        if (slot.handedOut && !slot.freeRecorded) {
            // Used without being retired (an operation outside the schedule): free it behind everything queued.
            slot.free.record(lastCompute);
            slot.freeRecorded = true;
        }
        if (slot.freeRecorded) {
            copyStream.waitFor(slot.free);
        }
        slot.tensors.clear();
        slot.handedOut = false;
        slot.freeRecorded = false;
        long offset = 0;
        for (Tensor t : group) {
            long bytes = t.data().byteSize();
            long address = slot.buffer.address(offset);
            MemorySegment pinned = host.pinnedBytes(t);
            if (pinned != null) {
                for (long done = 0; done < bytes; done += COPY_CHUNK_BYTES) {
                    long len = Math.min(COPY_CHUNK_BYTES, bytes - done);
                    context.driver().memcpyHtoDAsync(address + done, pinned.asSlice(done, len), len, copyStream.handle());
                }
            } else {
                staging.copy(t.data(), address, copyStream);
            }
            slot.tensors.put(t.name(), new DeviceTensor(t, address));
            offset += align(bytes);
            bytesCopied += bytes;
        }
        slot.ready.record(copyStream);
        slot.computeWaited = false;
    }

    @Override
    public synchronized DeviceTensor onDevice(Tensor tensor, CudaStream compute) {
        if (!streamed.contains(tensor.name())) {
            return resident.onDevice(tensor, compute);
        }
        int index = -1;
        for (int i = 0; i < 2; i++) {
            if (slots[i].tensors.containsKey(tensor.name())) {
                index = i;
            }
        }
        if (index < 0) {
            // Not staged by the schedule: bring in this tensor alone.
            index = fillOutsideSchedule(List.of(tensor));
        }
        Slot slot = slots[index];
        if (!slot.computeWaited) {
            compute.waitFor(slot.ready);
            slot.computeWaited = true;
        }
        slot.handedOut = true;
        current = index;
        lastCompute = compute;
        // Found by name: a storage-tier layer arrives as new Tensor objects per read, the device copy is the one staged.
        return slot.tensors.get(tensor.name());
    }

    @Override
    public synchronized void retire(List<Tensor> layer, CudaStream compute) {
        List<Tensor> group = streamedOf(layer);
        int index = slotHolding(group);
        if (index >= 0 && slots[index].handedOut) {
            slots[index].free.record(compute);
            slots[index].freeRecorded = true;
        }
    }

    @Override
    public synchronized void awaitTransfers() {
        resident.awaitTransfers();
        copyStream.synchronize();
    }

    /** Resident weights plus the two slots. */
    @Override
    public synchronized long deviceBytes() {
        return resident.deviceBytes() + 2 * slotBytes;
    }

    /** Weight bytes copied in per layer so far. */
    public synchronized long bytesStreamed() {
        return bytesCopied;
    }

    public String describe() {
        return "weights streamed per layer through 2 x " + (slotBytes >> 20) + " MiB device slots; host tier: " + host.describe();
    }

    @Override
    public synchronized void close() {
        context.makeCurrent();
        RuntimeException failure = copyStream.synchronizeBeforeFree();
        Closeables.closeAllOrThrow(Arrays.asList(copyStream, staging, slots[0], slots[1], host, resident), failure);
    }
}
