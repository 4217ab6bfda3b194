package io.inf2.model.checkpoint;

import io.inf2.model.ModelFormatException;
import io.inf2.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Tensors in native memory, all owned by one shared arena: a model that exists without a file, such as
 * real-shaped random weights built straight into memory for throughput runs (an OPT-30B in f16 is 60 GB
 * that need never touch a disk). Tensors are zero-filled, 64-byte aligned and writable until closed.
 */
public final class InMemoryCheckpoint implements Checkpoint {

    private static final long ALIGNMENT = 64;

    private final String location;
    private final Arena arena;
    private final Map<String, Tensor> tensors;
    private final long byteSize;
    private volatile boolean closed;

    private InMemoryCheckpoint(String location, Arena arena, Map<String, Tensor> tensors, long byteSize) {
        this.location = location;
        this.arena = arena;
        this.tensors = Collections.unmodifiableMap(tensors);
        this.byteSize = byteSize;
    }

    /**
     * Allocates every tensor of {@code specs}, zeroed.
     *
     * @param location how error messages name this checkpoint (e.g. "in-memory opt-30b seed 1")
     */
    public static InMemoryCheckpoint allocate(String location, List<TensorSpec> specs) {
        Arena arena = Arena.ofShared();
        try {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            long total = 0;
            for (TensorSpec spec : specs) {
                MemorySegment data = arena.allocate(spec.byteSize(), ALIGNMENT);
                if (tensors.putIfAbsent(spec.name(), new Tensor(spec.name(), spec.dtype(), spec.shape(), data)) != null) {
                    throw new IllegalArgumentException(location + ": tensor " + spec.name() + " listed twice");
                }
                total += spec.byteSize();
            }
            return new InMemoryCheckpoint(location, arena, tensors, total);
        } catch (RuntimeException | OutOfMemoryError e) {
            arena.close();
            throw e;
        }
    }

    @Override
    public Set<String> names() {
        return tensors.keySet();
    }

    @Override
    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    @Override
    public Tensor tensor(String name) {
        if (closed) {
            throw new IllegalStateException(location + ": checkpoint is closed");
        }
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new ModelFormatException(location + ": no tensor named " + name);
        }
        return t;
    }

    /** Bytes of all tensors together. */
    public long byteSize() {
        return byteSize;
    }

    @Override
    public String location() {
        return location;
    }

    /** Frees every tensor. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            arena.close();
        }
    }
}
