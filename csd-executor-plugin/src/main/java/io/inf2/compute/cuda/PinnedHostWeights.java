package io.inf2.compute.cuda;

import io.inf2.nativeio.CudaException;
import io.inf2.tensor.Tensor;
import io.inf2.util.Closeables;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Logger;

/**
 * The host tier of the weights, page-locked so that per-layer copies run at the link's full bandwidth
 * straight from where the bytes are. Weights in allocated memory (a checkpoint built in memory) are
 * registered in place, page ranges merged so that no page is registered twice; weights in a file
 * mapping, or whose registration the driver refuses, are copied once into pinned buffers.
 */
final class PinnedHostWeights implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(PinnedHostWeights.class.getName());
    private static final long PAGE = 4096;

    private final CudaContext context;
    private final Map<String, MemorySegment> pinned = new HashMap<>();
    private final List<MemorySegment> registered = new ArrayList<>();
    private final List<PinnedBuffer> copies = new ArrayList<>();
    private long copiedBytes;
    private long registeredBytes;

    PinnedHostWeights(CudaContext context, List<Tensor> tensors) {
        this.context = context;
        try {
            context.makeCurrent();
            List<Tensor> inPlace = new ArrayList<>();
            for (Tensor t : tensors) {
                if (t.data().isMapped() || !t.data().isNative()) {
                    copy(t);
                } else {
                    inPlace.add(t);
                }
            }
            registerInPlace(inPlace);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private void registerInPlace(List<Tensor> tensors) {
        List<long[]> ranges = new ArrayList<>();
        for (Tensor t : tensors) {
            long start = t.data().address() & -PAGE;
            long end = (t.data().address() + t.data().byteSize() + PAGE - 1) & -PAGE;
            ranges.add(new long[] {start, end});
        }
        ranges.sort(Comparator.comparingLong(r -> r[0]));
        List<long[]> merged = new ArrayList<>();
        for (long[] r : ranges) {
            long[] last = merged.isEmpty() ? null : merged.get(merged.size() - 1);
            // Only overlapping ranges merge: their union is memory of one allocation, so every page is mapped.
            if (last != null && r[0] < last[1]) {
                last[1] = Math.max(last[1], r[1]);
            } else {
                merged.add(r.clone());
            }
        }
        List<long[]> refused = new ArrayList<>();
        for (long[] r : merged) {
            MemorySegment range = MemorySegment.ofAddress(r[0]).reinterpret(r[1] - r[0]);
            try {
                context.driver().memHostRegister(range);
                registered.add(range);
                registeredBytes += range.byteSize();
            } catch (CudaException e) {
                LOG.warning("host weights: pinning " + (range.byteSize() >> 20) + " MiB in place failed (" + e.getMessage()
                        + "); copying them into pinned memory instead");
                refused.add(r);
            }
        }
        for (Tensor t : tensors) {
            long address = t.data().address();
            boolean copied = refused.stream().anyMatch(r -> address >= r[0] && address < r[1]);
            if (copied) {
                copy(t);
            } else {
                pinned.put(t.name(), t.data());
            }
        }
    }

    private void copy(Tensor t) {
        PinnedBuffer buffer = context.allocatePinned(t.data().byteSize());
        copies.add(buffer);
        MemorySegment.copy(t.data(), 0, buffer.segment(), 0, t.data().byteSize());
        pinned.put(t.name(), buffer.segment().asSlice(0, t.data().byteSize()));
        copiedBytes += t.data().byteSize();
    }

    /** The page-locked bytes of {@code t}, or null when {@code t} is not in the host tier. */
    MemorySegment pinnedBytes(Tensor t) {
        return pinned.get(t.name());
    }

    String describe() {
        int copied = copies.size();
        return (pinned.size() - copied) + " tensors pinned in place (" + (registeredBytes >> 20) + " MiB of pages), " + copied
                + " copied into pinned memory (" + (copiedBytes >> 20) + " MiB)";
    }

    @Override
    public void close() {
        context.makeCurrent();
        RuntimeException failure = null;
        for (MemorySegment range : registered) {
            try {
                context.driver().memHostUnregister(range);
            } catch (RuntimeException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        registered.clear();
        List<PinnedBuffer> owned = new ArrayList<>(copies);
        copies.clear();
        pinned.clear();
        Closeables.closeAllOrThrow(owned, failure);
    }
}
