package io.inf2.kv;

import io.inf2.compute.cpu.CpuAttention;
import io.inf2.compute.cpu.CpuBackend;
import io.inf2.model.ModelConfig;
import io.inf2.model.ModelWeights;
import io.inf2.tensor.DType;
import io.inf2.tensor.FloatMatrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The KV cache in host memory, with decode attention on host CPU threads (FlexGen's CPU delegation
 * when the compute backend is a GPU). K and V are kept off the Java heap in a chosen type (F16 or
 * BF16 for half-precision models, as FlexGen and transformers keep them: half the memory and half
 * the bytes attention reads; F32 for F32 models). Each (layer, sequence) keeps K and V head-major,
 * so one KV head's rows are contiguous and a GQA group's query heads share one pass over them.
 * Each sequence's memory (every layer) belongs to one arena, freed when the sequence is released.
 */
public final class MemoryKvCache implements KvCache {
    private final ModelConfig model;
    private final CpuBackend host;
    private final KvTraffic traffic;
    private final DType stored;
    private final int layers;
    private final int kvHeads;
    private final int headDim;
    /** [layer][slot]: per KV head a block of capacity × headDim elements of {@link #stored}. */
    private final MemorySegment[][] keys;
    private final MemorySegment[][] values;
    private final Arena[] arenas;
    private final int[][] lengths;
    private final int[] capacity;
    /** Tokens a sequence may reach (0: unknown); a slot is sized for it at its first write. */
    private final int maxTokens;

    /** An F32 cache whose slots grow by doubling as tokens arrive. */
    public MemoryKvCache(ModelConfig model, int slots, CpuBackend host, KvTraffic traffic) {
        this(model, slots, 0, DType.F32, host, traffic);
    }

    /**
     * A cache of K and V in {@code stored} (F32, F16 or BF16) whose slots are sized for
     * {@code maxTokens} at their first write, so that no decode step re-lays out a sequence's whole
     * cache (a doubling at token 513 of an OPT-30B sequence copies its 48 layers); a sequence that
     * outgrows it still grows by doubling.
     */
    public MemoryKvCache(ModelConfig model, int slots, int maxTokens, DType stored, CpuBackend host, KvTraffic traffic) {
        if (!stored.isFloatingPoint()) {
            throw new IllegalArgumentException("the memory KV cache keeps F32, F16 or BF16, not " + stored);
        }
        this.maxTokens = maxTokens;
        this.model = model;
        this.host = host;
        this.traffic = traffic;
        this.stored = stored;
        this.layers = model.layers();
        this.kvHeads = model.kvHeads();
        this.headDim = model.headDim();
        this.keys = new MemorySegment[layers][slots];
        this.values = new MemorySegment[layers][slots];
        this.arenas = new Arena[slots];
        this.lengths = new int[layers][slots];
        this.capacity = new int[slots];
    }

    /**
     * The type a model's K and V are kept in: that of its key projection (F16 or BF16 for a
     * half-precision model, halving the memory and the bytes attention reads; F32 otherwise).
     */
    public static DType storedType(ModelWeights weights) {
        return weights.layers().getFirst().kWeight().dtype();
    }

    /** A factory of memory caches keeping K and V in {@code stored}, whose host attention runs on {@code host}. */
    public static KvCacheFactory factory(CpuBackend host, DType stored) {
        return KvCacheFactory.perBatch("host-memory", "kv-cache=memory (host, " + stored + ", attention on " + host.threads()
                        + " CPU threads)",
                (model, slots, maxTokens, projector, traffic) -> new MemoryKvCache(model, slots, maxTokens, stored, host, traffic));
    }

    /** The type K and V are kept in. */
    public DType storedType() {
        return stored;
    }

    @Override
    public void writePrompt(int layer, int slot, FloatMatrix k, FloatMatrix v, FloatMatrix layerInput) {
        if (lengths[layer][slot] != 0) {
            throw new IllegalStateException("slot " + slot + " of layer " + layer + " already holds a prompt");
        }
        int tokens = k.rows();
        ensureCapacity(layer, slot, tokens);
        for (int t = 0; t < tokens; t++) {
            store(layer, slot, t, k.data(), k.offset(t), v.data(), v.offset(t));
        }
        lengths[layer][slot] = tokens;
    }

    @Override
    public void appendAndAttend(int layer, int[] slots, FloatMatrix q, FloatMatrix k, FloatMatrix v,
                                FloatMatrix layerInput, FloatMatrix out) {
        for (int i = 0; i < slots.length; i++) {
            int slot = slots[i];
            int pos = lengths[layer][slot];
            ensureCapacity(layer, slot, pos + 1);
            store(layer, slot, pos, k.data(), k.offset(i), v.data(), v.offset(i));
            lengths[layer][slot] = pos + 1;
        }
        int group = model.queriesPerKvHead();
        host.parallelFor(slots.length * kvHeads, 1, (from, to) -> {
            float[] lse = new float[group];
            for (int task = from; task < to; task++) {
                int i = task / kvHeads;
                int kvh = task % kvHeads;
                int slot = slots[i];
                long base = (long) kvh * capacity[slot] * headDim;
                int head = kvh * group * headDim;
                CpuAttention.attendGroup(q.data(), q.offset(i) + head, group, headDim, keys[layer][slot], base,
                        values[layer][slot], base, stored, headDim, lengths[layer][slot], out.data(), out.offset(i) + head,
                        lse, 0);
            }
        });
    }

    private void store(int layer, int slot, int pos, float[] k, int kOff, float[] v, int vOff) {
        long cap = capacity[slot];
        MemorySegment kc = keys[layer][slot];
        MemorySegment vc = values[layer][slot];
        for (int h = 0; h < kvHeads; h++) {
            long dst = (h * cap + pos) * headDim;
            int src = h * headDim;
            if (stored == DType.F32) {
                MemorySegment.copy(k, kOff + src, kc, DType.F32_LE, dst * Float.BYTES, headDim);
                MemorySegment.copy(v, vOff + src, vc, DType.F32_LE, dst * Float.BYTES, headDim);
                continue;
            }
            for (int d = 0; d < headDim; d++) {
                stored.setFloat(kc, dst + d, k[kOff + src + d]);
                stored.setFloat(vc, dst + d, v[vOff + src + d]);
            }
        }
    }

    /** Grows every layer of a slot together so one capacity describes the slot's layout. */
    private void ensureCapacity(int layer, int slot, int tokens) {
        if (keys[layer][slot] != null && tokens <= capacity[slot]) {
            return;
        }
        int old = capacity[slot];
        int grown = old == 0 ? Math.max(tokens, maxTokens > 0 ? maxTokens : 16) : Math.max(tokens, old * 2);
        Arena arena = Arena.ofShared();
        try {
            for (int l = 0; l < layers; l++) {
                keys[l][slot] = relayout(arena, keys[l][slot], old, grown, lengths[l][slot]);
                values[l][slot] = relayout(arena, values[l][slot], old, grown, lengths[l][slot]);
            }
        } catch (RuntimeException | OutOfMemoryError e) {
            arena.close();
            throw e;
        }
        if (arenas[slot] != null) {
            arenas[slot].close();
        }
        arenas[slot] = arena;
        capacity[slot] = grown;
    }

    private MemorySegment relayout(Arena arena, MemorySegment old, int oldCap, int newCap, int used) {
        long elementBytes = stored.byteSize();
        MemorySegment grown = arena.allocate((long) kvHeads * newCap * headDim * elementBytes, 64);
        if (old != null && oldCap > 0) {
            for (int h = 0; h < kvHeads; h++) {
                MemorySegment.copy(old, (long) h * oldCap * headDim * elementBytes, grown,
                        (long) h * newCap * headDim * elementBytes, (long) used * headDim * elementBytes);
            }
        }
        return grown;
    }

    /** K and V are kept as they are; X would only be carried to the host for nothing. */
    @Override
    public boolean keepsLayerInput() {
        return false;
    }

    @Override
    public int length(int slot) {
        return lengths[layers - 1][slot];
    }

    @Override
    public void release(int slot) {
        for (int l = 0; l < layers; l++) {
            keys[l][slot] = null;
            values[l][slot] = null;
            lengths[l][slot] = 0;
        }
        capacity[slot] = 0;
        if (arenas[slot] != null) {
            arenas[slot].close();
            arenas[slot] = null;
        }
    }

    @Override
    public KvTraffic traffic() {
        return traffic;
    }

    @Override
    public void close() {
        for (int s = 0; s < capacity.length; s++) {
            release(s);
        }
    }
}
