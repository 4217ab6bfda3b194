package io.inf2.engine;

import io.inf2.model.LayerWeights;
import io.inf2.model.ModelWeights;
import io.inf2.model.checkpoint.SafetensorsCheckpoint;
import io.inf2.nativeio.LibC;
import io.inf2.tensor.Tensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The storage tier of the layer weights, read per layer with direct I/O into one of two aligned host
 * buffers (FlexGen's disk tier for weights): while layer l computes from one buffer, layer l + 1 is
 * read into the other. The other tiers' tensors, embeddings, final norm and lm_head stay mapped. One
 * schedule at a time.
 */
final class StreamedWeights implements WeightStore {
    private static final int ALIGNMENT = 4096;

    private final List<LayerWeights> mapped;
    private final SafetensorsCheckpoint checkpoint;
    private final Set<String> onStorage;
    private final LibC.AlignedBuffer[] buffers = new LibC.AlignedBuffer[2];
    private final Map<Path, Integer> descriptors = new HashMap<>();
    private final Map<Path, Boolean> directIo = new HashMap<>();
    private final ExecutorService reader = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "inf2-weight-prefetch");
        t.setDaemon(true);
        return t;
    });
    @SuppressWarnings("unchecked")
    private final CompletableFuture<LayerWeights>[] inFlight = new CompletableFuture[2];
    private final int[] layerInBuffer = {-1, -1};
    /** The buffer of the layer being computed; the other one takes prefetches. */
    private int current = 1;
    private final AtomicLong bytesRead = new AtomicLong();

    /** @param onStorage names of the layer tensors read from storage per layer */
    StreamedWeights(ModelWeights weights, SafetensorsCheckpoint checkpoint, Set<String> onStorage) {
        this.mapped = weights.layers();
        this.checkpoint = checkpoint;
        this.onStorage = Set.copyOf(onStorage);
        long largest = 0;
        for (LayerWeights l : mapped) {
            long size = 0;
            for (Tensor t : l.tensors()) {
                if (onStorage.contains(t.name())) {
                    size += paddedSize(checkpoint.region(t.name()));
                }
            }
            largest = Math.max(largest, size);
        }
        try {
            buffers[0] = LibC.allocateAligned(ALIGNMENT, largest);
            buffers[1] = LibC.allocateAligned(ALIGNMENT, largest);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private static long paddedSize(SafetensorsCheckpoint.FileRegion r) {
        long start = r.offset() & -ALIGNMENT;
        long end = (r.offset() + r.length() + ALIGNMENT - 1) & -ALIGNMENT;
        return end - start;
    }

    @Override
    public synchronized LayerWeights acquire(int layer) {
        int slot = slotOf(layer);
        if (slot < 0) {
            slot = load(layer);
        }
        current = slot;
        try {
            return inFlight[slot].get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while reading the weights of layer " + layer, e);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            throw cause instanceof UncheckedIOException u ? u
                    : new UncheckedIOException(new IOException("reading the weights of layer " + layer + " failed", cause));
        }
    }

    /** Starts reading {@code layer} into the buffer the layer in use does not occupy. */
    @Override
    public synchronized void prefetch(int layer) {
        if (slotOf(layer) < 0) {
            load(layer);
        }
    }

    @Override
    public synchronized boolean ready(int layer) {
        int slot = slotOf(layer);
        return slot >= 0 && inFlight[slot].isDone();
    }

    private int slotOf(int layer) {
        for (int slot = 0; slot < 2; slot++) {
            if (layerInBuffer[slot] == layer) {
                return slot;
            }
        }
        return -1;
    }

    private int load(int layer) {
        int slot = 1 - current;
        if (inFlight[slot] != null) {
            // The buffer may still be filling with a layer no one acquired: wait before reusing it.
            inFlight[slot].exceptionally(e -> null).join();
        }
        layerInBuffer[slot] = layer;
        MemorySegment buffer = buffers[slot].segment();
        inFlight[slot] = CompletableFuture.supplyAsync(() -> read(layer, buffer), reader);
        return slot;
    }

    @Override
    public synchronized void release(int layer) {
        // The buffer is reused by the next prefetch into its slot; nothing to free.
    }

    private LayerWeights read(int layer, MemorySegment buffer) {
        long[] position = {0};
        return mapped.get(layer).map(t -> {
            if (!onStorage.contains(t.name())) {
                return t;
            }
            SafetensorsCheckpoint.FileRegion region = checkpoint.region(t.name());
            long start = region.offset() & -ALIGNMENT;
            long padded = paddedSize(region);
            MemorySegment target = buffer.asSlice(position[0], padded);
            readFully(region.file(), target, start);
            position[0] += padded;
            bytesRead.addAndGet(padded);
            return new Tensor(t.name(), t.dtype(), t.shape(), target.asSlice(region.offset() - start, region.length()));
        });
    }

    private void readFully(Path file, MemorySegment target, long offset) {
        try {
            int fd = descriptor(file);
            long done = 0;
            while (done < target.byteSize()) {
                long n = LibC.pread(fd, target.asSlice(done), offset + done, file.toString());
                if (n == 0) {
                    // Past the end of file is only the alignment padding of the last tensor.
                    target.asSlice(done).fill((byte) 0);
                    break;
                }
                done += n;
            }
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": reading weights at offset " + offset + " failed: " + e.getMessage(), e);
        }
    }

    private int descriptor(Path file) throws IOException {
        Integer fd = descriptors.get(file);
        if (fd == null) {
            try {
                fd = LibC.open(file, LibC.O_RDONLY | LibC.O_DIRECT | LibC.O_CLOEXEC, 0);
                directIo.put(file, true);
            } catch (LibC.ErrnoException e) {
                if (e.errno() != LibC.EINVAL) {
                    throw e;
                }
                fd = LibC.open(file, LibC.O_RDONLY | LibC.O_CLOEXEC, 0);
                directIo.put(file, false);
            }
            descriptors.put(file, fd);
        }
        return fd;
    }

    @Override
    public boolean concurrent() {
        return false;
    }

    @Override
    public long bytesRead() {
        return bytesRead.get();
    }

    @Override
    public String describe() {
        boolean buffered = directIo.containsValue(false);
        return "storage tier: " + onStorage.size() + " layer tensors (per layer, double-buffered " + (buffered ? "buffered I/O: the file system refused O_DIRECT"
                : "direct I/O") + ", 2 x " + (buffers[0] == null ? 0 : buffers[0].byteSize() >> 20) + " MiB)";
    }

    @Override
    public synchronized void close() {
        // A pread in flight writes into a buffer by address: let it finish before the buffer is freed.
        reader.shutdown();
        try {
            reader.awaitTermination(1, java.util.concurrent.TimeUnit.MINUTES);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        List<Exception> failures = new ArrayList<>();
        for (var e : descriptors.entrySet()) {
            try {
                LibC.close(e.getValue(), e.getKey().toString());
            } catch (IOException ex) {
                failures.add(ex);
            }
        }
        descriptors.clear();
        for (int i = 0; i < 2; i++) {
            if (buffers[i] != null) {
                buffers[i].close();
                buffers[i] = null;
            }
        }
        if (!failures.isEmpty()) {
            throw new UncheckedIOException("closing weight files failed: " + failures.get(0).getMessage(),
                    new IOException(failures.get(0)));
        }
    }
}
