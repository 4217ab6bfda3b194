package io.inf2.compute.cuda;

import io.inf2.compute.Activations;
import io.inf2.compute.ComputeBackend;
import io.inf2.kv.BackendKvCache;
import io.inf2.kv.KvCache;
import io.inf2.kv.KvCacheFactory;
import io.inf2.kv.KvTraffic;
import io.inf2.model.ModelConfig;
import io.inf2.tensor.DType;
import io.inf2.tensor.FloatMatrix;
import io.inf2.util.Closeables;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

/**
 * The KV cache in GPU memory ({@code kvCache=gpu}): one {@link CudaKvBlock} per layer holding K and
 * V in F16 for every slot of the engine batch, sized up front to {@code slots × maxTokens} (no
 * growth, so no copy in the middle of a batch); attention is {@link CudaBackend#decodeAttention} on
 * the same stream as the layer, so the engine never waits for the GPU inside a step.
 *
 * <p>Precision: keys and values are rounded to F16 when stored (relative error 2⁻¹¹), scores,
 * softmax and sums are F32, as in the CSD places.
 *
 * <p>Counters ({@link KvTraffic}): the GPU is the device that holds this cache, so
 * {@code deviceWriteBytes} counts the F16 K and V bytes stored and {@code deviceReadBytes} the K and
 * V bytes decode attention reads (each sequence's whole cache, every layer, every step).
 * {@code linkBytes} counts only what crosses PCIe, which the engine's path never does: it is
 * non-zero only through the host-matrix {@link KvCache} methods, which upload their inputs and
 * download the attention output (f32).
 */
public final class CudaKvCache implements BackendKvCache {
    private static final DType STORED = DType.F16;

    private final CudaBackend backend;
    private final ModelConfig model;
    private final KvTraffic traffic;
    private final CudaKvBlock[] blocks;
    /** F16 bytes of one token's K plus V in one layer. */
    private final long tokenBytes;
    private boolean closed;

    /**
     * Allocates every layer's block now, so a batch that does not fit fails before its prefill with
     * one line naming the size; on failure nothing stays allocated.
     */
    public CudaKvCache(CudaBackend backend, ModelConfig model, int slots, int maxTokens, KvTraffic traffic) {
        this.backend = backend;
        this.model = model;
        this.traffic = traffic;
        this.tokenBytes = 2L * model.kvDim() * STORED.byteSize();
        this.blocks = new CudaKvBlock[model.layers()];
        try {
            for (int l = 0; l < blocks.length; l++) {
                blocks[l] = backend.createKvBlock(slots, maxTokens, model.kvHeads(), model.headDim(), STORED);
            }
        } catch (RuntimeException e) {
            try {
                close();
            } catch (RuntimeException freeing) {
                e.addSuppressed(freeing);
            }
            long bytes = tokenBytes * slots * maxTokens * blocks.length;
            throw new IllegalStateException("kvCache=gpu: cannot place the KV cache of " + slots + " sequences x "
                    + maxTokens + " tokens x " + blocks.length + " layers (" + (bytes >> 20) + " MiB of F16 K and V) on "
                    + backend.context() + ": " + e.getMessage(), e);
        }
    }

    /** A factory of GPU caches on {@code backend}; each cache owns its device memory. */
    public static KvCacheFactory factory(CudaBackend backend) {
        return KvCacheFactory.perBatch("gpu-memory", "kv-cache=gpu (" + STORED + " in the memory of " + backend.context()
                + ", attention on the GPU)",
                (model, slots, maxTokens, projector, traffic) -> new CudaKvCache(backend, model, slots, maxTokens, traffic));
    }

    @Override
    public ComputeBackend backend() {
        return backend;
    }

    @Override
    public void writePrompts(int layer, int[] slots, int[] starts, int[] lengths, Activations keys, Activations values,
                             Activations layerInput) {
        CudaKvBlock block = block(layer);
        if (slots.length != starts.length || slots.length != lengths.length) {
            throw new IllegalArgumentException("writePrompts: " + slots.length + " slots, " + starts.length + " starts, "
                    + lengths.length + " lengths");
        }
        int rows = keys.rows();
        int total = 0;
        boolean packedInOrder = true;
        Set<Integer> seen = new HashSet<>();
        for (int s = 0; s < slots.length; s++) {
            if (!seen.add(slots[s])) {
                throw new IllegalArgumentException("writePrompts: slot " + slots[s] + " given twice");
            }
            if (block.length(slots[s]) != 0) {
                throw new IllegalStateException("slot " + slots[s] + " of layer " + layer + " already holds a prompt");
            }
            if (lengths[s] < 0 || starts[s] < 0 || (long) starts[s] + lengths[s] > rows) {
                throw new IllegalArgumentException("writePrompts: prompt " + s + " [" + starts[s] + ", +" + lengths[s]
                        + ") outside " + rows + " rows");
            }
            packedInOrder &= starts[s] == total;
            total += lengths[s];
        }
        int[] slotOfRow = new int[total];
        int[] sourceRows = new int[total];
        int row = 0;
        for (int s = 0; s < slots.length; s++) {
            for (int i = 0; i < lengths[s]; i++, row++) {
                slotOfRow[row] = slots[s];
                sourceRows[row] = starts[s] + i;
            }
        }
        if (packedInOrder && total == rows) {
            block.append(slotOfRow, keys, values);
        } else {
            // The prompts are a subset or out of order: gather their rows first (the store takes whole matrices).
            try (Activations k = backend.allocate(total, keys.cols()); Activations v = backend.allocate(total, values.cols())) {
                backend.gatherRows(keys, sourceRows, k);
                backend.gatherRows(values, sourceRows, v);
                block.append(slotOfRow, k, v);
            }
        }
        traffic.addDeviceWriteBytes(tokenBytes * total);
    }

    @Override
    public void appendAndAttend(int layer, int[] slots, Activations queries, Activations keys, Activations values,
                                Activations layerInput, Activations out) {
        CudaKvBlock block = block(layer);
        Set<Integer> seen = new HashSet<>();
        for (int slot : slots) {
            if (!seen.add(slot)) {
                throw new IllegalArgumentException("appendAndAttend: slot " + slot + " given twice in one step");
            }
        }
        block.append(slots, keys, values);
        long cachedTokens = 0;
        for (int slot : slots) {
            cachedTokens += block.length(slot);
        }
        try (Activations lse = backend.allocate(slots.length, model.heads())) {
            backend.decodeAttention(queries, block, slots, model.heads(), out, lse);
        }
        traffic.addDeviceWriteBytes(tokenBytes * slots.length);
        traffic.addDeviceReadBytes(tokenBytes * cachedTokens);
    }

    @Override
    public void writePrompt(int layer, int slot, FloatMatrix keys, FloatMatrix values, FloatMatrix layerInput) {
        block(layer);
        try (Activations k = backend.upload(keys); Activations v = backend.upload(values)) {
            traffic.addLinkBytes(floatBytes(keys) + floatBytes(values));
            writePrompts(layer, new int[] {slot}, new int[] {0}, new int[] {keys.rows()}, k, v, null);
        }
    }

    @Override
    public void appendAndAttend(int layer, int[] slots, FloatMatrix queries, FloatMatrix keys, FloatMatrix values,
                                FloatMatrix layerInput, FloatMatrix out) {
        block(layer);
        if (out.rows() != slots.length || out.cols() != queries.cols()) {
            throw new IllegalArgumentException("appendAndAttend: out is " + out.rows() + "x" + out.cols() + ", expected "
                    + slots.length + "x" + queries.cols());
        }
        FloatMatrix result;
        try (Activations q = backend.upload(queries); Activations k = backend.upload(keys);
             Activations v = backend.upload(values); Activations o = backend.allocate(slots.length, queries.cols())) {
            appendAndAttend(layer, slots, q, k, v, null, o);
            result = backend.download(o);
        }
        System.arraycopy(result.data(), 0, out.data(), 0, slots.length * out.cols());
        traffic.addLinkBytes(floatBytes(queries) + floatBytes(keys) + floatBytes(values) + floatBytes(out));
    }

    private static long floatBytes(FloatMatrix m) {
        return (long) m.rows() * m.cols() * Float.BYTES;
    }

    private CudaKvBlock block(int layer) {
        if (closed) {
            throw new IllegalStateException("kvCache=gpu: the cache is closed");
        }
        if (layer < 0 || layer >= blocks.length) {
            throw new IndexOutOfBoundsException("layer " + layer + " outside the " + blocks.length + " layers of the GPU KV cache");
        }
        return blocks[layer];
    }

    @Override
    public int length(int slot) {
        return block(blocks.length - 1).length(slot);
    }

    @Override
    public void release(int slot) {
        for (int l = 0; l < blocks.length; l++) {
            block(l).release(slot);
        }
    }

    @Override
    public KvTraffic traffic() {
        return traffic;
    }

    /** Frees every layer's device memory (also after a failed construction); later calls fail. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        Closeables.closeAllOrThrow(Arrays.asList(blocks), null);
    }
}
