package io.inf2.compute.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import io.inf2.nativeio.CudaDriver;
import io.inf2.tensor.DType;
import io.inf2.util.Closeables;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Typed launchers for the NVRTC kernels in this package's resources. Arguments are device
 * addresses (longs) and scalars; each method picks the launch shape its kernel expects and queues
 * the launch on {@code stream}. Shapes are checked by the callers ({@link CudaBackend}).
 */
final class CudaKernels implements AutoCloseable {

    static final int MAX_HEAD_DIM = 256;
    static final int KEY_TILE = 32;
    static final int PREFILL_WARPS = 8;
    static final int DECODE_THREADS = 128;
    static final int SELECT_THREADS = 1024;
    static final int MAX_SPLIT_OUTPUTS = 3;
    /** MERGE_MAX_PARTS in attention.cu. */
    static final int MAX_MERGE_PARTS = 256;
    private static final int THREADS = 256;
    private static final int MAX_GRID_Y = 65535;

    private final CudaContext context;
    private final KernelModules modules;
    private final Map<String, MemorySegment> functions = new HashMap<>();
    private final Arena argumentArena = Arena.ofShared();
    private final Arguments arguments = new Arguments(argumentArena);
    private int prefillSharedLimitSet;

    CudaKernels(CudaContext context, Path cacheDir) {
        this.context = context;
        this.modules = new KernelModules(context, cacheDir);
    }

    /**
     * Where a kernel also writes its output converted to the next product's input type (address 0:
     * nowhere), so that the product needs no conversion of its own.
     */
    record Narrowed(long address, DType type) {
        static final Narrowed NONE = new Narrowed(0, DType.F16);
    }

    /** The element-type code the kernels use for a checkpoint type. */
    static int code(DType t) {
        return switch (t) {
            case F32 -> 0;
            case F16 -> 1;
            case BF16 -> 2;
            default -> throw new IllegalArgumentException("CUDA kernels read F32, F16 or BF16, not " + t);
        };
    }

    /** Compiles (or loads from the disk cache) every module now rather than at first use. */
    void loadAll() {
        modules.function("elementwise", "embed_rows");
        modules.function("norm", "layer_norm");
        modules.function("attention", "causal_attention");
        modules.function("sampling", "select_tokens");
    }

    void embedRows(CudaStream s, long out, long indices, int rows, long table, DType dtype, int cols, boolean accumulate) {
        launch(s, "elementwise", "embed_rows", blocks(cols), Math.min(rows, MAX_GRID_Y), 1, THREADS, 0,
                a -> a.ptr(out).ptr(indices).i32(rows).ptr(table).i32(code(dtype)).i32(cols).i32(accumulate ? 1 : 0));
    }

    void gatherRows(CudaStream s, long src, long rows, int n, int cols, long dst) {
        launch(s, "elementwise", "gather_rows", blocks(cols), Math.min(n, MAX_GRID_Y), 1, THREADS, 0,
                a -> a.ptr(src).ptr(rows).i32(n).i32(cols).ptr(dst));
    }

    void biasAdd(CudaStream s, long x, int rows, int cols, long bias, DType dtype) {
        long n = (long) rows * cols;
        launch(s, "elementwise", "bias_add", blocks(n), 1, 1, THREADS, 0,
                a -> a.ptr(x).i64(rows).i32(cols).ptr(bias).i32(code(dtype)));
    }

    /**
     * Columns [0, widths[0]) of src [rows, total] to outs[0] (+ biases[0]), the next widths[1] columns
     * to outs[1], and so on; a bias address of 0 adds nothing. At most {@link #MAX_SPLIT_OUTPUTS} outputs.
     */
    void splitColumns(CudaStream s, long src, int rows, int total, long[] outs, int[] widths, long[] biases, DType biasType) {
        if (outs.length > MAX_SPLIT_OUTPUTS || widths.length != outs.length || biases.length != outs.length) {
            throw new IllegalArgumentException("split_columns takes 1 to " + MAX_SPLIT_OUTPUTS + " outputs, each with a width and a bias");
        }
        long[] o = new long[MAX_SPLIT_OUTPUTS];
        int[] w = new int[MAX_SPLIT_OUTPUTS];
        long[] b = new long[MAX_SPLIT_OUTPUTS];
        System.arraycopy(outs, 0, o, 0, outs.length);
        System.arraycopy(widths, 0, w, 0, widths.length);
        System.arraycopy(biases, 0, b, 0, biases.length);
        long n = (long) rows * total;
        launch(s, "elementwise", "split_columns", blocks(n), 1, 1, THREADS, 0,
                a -> a.ptr(src).i32(rows).i32(total).ptr(o[0]).i32(w[0]).ptr(b[0]).ptr(o[1]).i32(w[1]).ptr(b[1])
                        .ptr(o[2]).i32(w[2]).ptr(b[2]).i32(code(biasType)));
    }

    /** acc[i] += Σ_s slices[s][i] + bias[i % cols] over n elements; bias 0 adds nothing. */
    void addSlices(CudaStream s, long acc, long slices, int count, long n, int cols, long bias, DType biasType) {
        launch(s, "elementwise", "add_slices", blocks(n), 1, 1, THREADS, 0,
                a -> a.ptr(acc).ptr(slices).i32(count).i64(n).i32(cols).ptr(bias).i32(code(biasType)));
    }

    void addInPlace(CudaStream s, long acc, long x, long n) {
        launch(s, "elementwise", "add_in_place", blocks(n), 1, 1, THREADS, 0, a -> a.ptr(acc).ptr(x).i64(n));
    }

    /** x = act(x + bias) for {@code kind} "relu" or "gelu"; bias 0 adds nothing. */
    void biasActivation(CudaStream s, long x, int rows, int cols, long bias, DType biasType, String kind, Narrowed narrowed) {
        int code = switch (kind) {
            case "relu" -> 0;
            case "gelu" -> 1;
            default -> throw new IllegalArgumentException("unknown activation " + kind + " (expected relu or gelu)");
        };
        launch(s, "elementwise", "bias_activation", blocks((long) rows * cols), 1, 1, THREADS, 0,
                a -> a.ptr(x).i64(rows).i32(cols).ptr(bias).i32(code(biasType)).i32(code).ptr(narrowed.address())
                        .i32(code(narrowed.type())));
    }

    void siluMul(CudaStream s, long gate, long up, long n, Narrowed narrowed) {
        launch(s, "elementwise", "silu_mul", blocks(n), 1, 1, THREADS, 0,
                a -> a.ptr(gate).ptr(up).i64(n).ptr(narrowed.address()).i32(code(narrowed.type())));
    }

    void rotary(CudaStream s, long x, int rows, int heads, int headDim, long cos, long sin, long positions) {
        long n = (long) rows * heads * (headDim / 2);
        launch(s, "elementwise", "rotary", blocks(n), 1, 1, THREADS, 0,
                a -> a.ptr(x).i32(rows).i32(heads).i32(headDim).ptr(cos).ptr(sin).ptr(positions));
    }

    void convertFromF32(CudaStream s, long in, long out, DType dtype, long n) {
        launch(s, "elementwise", "convert_from_f32", blocks(n), 1, 1, THREADS, 0,
                a -> a.ptr(in).ptr(out).i32(code(dtype)).i64(n));
    }

    void kvStore(CudaStream s, long kCache, long vCache, DType dtype, long slotStride, int kvDim, long keys, long values,
                 long slots, long positions, int rows) {
        launch(s, "elementwise", "kv_store", blocks((long) rows * kvDim), 1, 1, THREADS, 0,
                a -> a.ptr(kCache).ptr(vCache).i32(code(dtype)).i64(slotStride).i32(kvDim).ptr(keys).ptr(values)
                        .ptr(slots).ptr(positions).i32(rows));
    }

    void layerNorm(CudaStream s, long x, long out, int rows, int cols, long gamma, DType gammaType, long beta,
                   DType betaType, float eps, Narrowed narrowed) {
        launch(s, "norm", "layer_norm", Math.min(rows, 1 << 20), 1, 1, normThreads(cols), 0,
                a -> a.ptr(x).ptr(out).i32(rows).i32(cols).ptr(gamma).i32(code(gammaType)).ptr(beta)
                        .i32(betaType == null ? -1 : code(betaType)).f32(eps).ptr(narrowed.address())
                        .i32(code(narrowed.type())));
    }

    void rmsNorm(CudaStream s, long x, long out, int rows, int cols, long gamma, DType gammaType, float eps,
                 Narrowed narrowed) {
        launch(s, "norm", "rms_norm", Math.min(rows, 1 << 20), 1, 1, normThreads(cols), 0,
                a -> a.ptr(x).ptr(out).i32(rows).i32(cols).ptr(gamma).i32(code(gammaType)).f32(eps)
                        .ptr(narrowed.address()).i32(code(narrowed.type())));
    }

    void causalAttention(CudaStream s, long q, long k, long v, long out, long starts, long lengths, int sequences,
                         int maxLength, int heads, int kvHeads, int headDim) {
        int shared = (KEY_TILE * (headDim + 1) + KEY_TILE * headDim + PREFILL_WARPS * headDim) * Float.BYTES;
        if (shared > 48 * 1024 && shared > prefillSharedLimitSet) {
            // Above 48 KiB a kernel must opt in to more dynamic shared memory (head widths over 128).
            context.driver().funcSetAttribute(modules.function("attention", "causal_attention"),
                    CudaDriver.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, shared, "causal_attention");
            prefillSharedLimitSet = shared;
        }
        float scale = (float) (1.0 / Math.sqrt(headDim));
        launch(s, "attention", "causal_attention", (maxLength + PREFILL_WARPS - 1) / PREFILL_WARPS, heads, sequences,
                PREFILL_WARPS * 32, shared,
                a -> a.ptr(q).ptr(k).ptr(v).ptr(out).ptr(starts).ptr(lengths).i32(heads).i32(kvHeads).i32(headDim)
                        .f32(scale));
    }

    void decodeAttention(CudaStream s, long q, long kCache, long vCache, DType cacheType, long slotStride, long slots,
                         long lengths, int rows, int heads, int kvHeads, int headDim, int keysPerSplit, int splits,
                         long partOut, long partLse, long arrivals, long out, long lse, Narrowed narrowed) {
        if (splits > MAX_MERGE_PARTS) {
            throw new IllegalArgumentException("decode attention merges at most " + MAX_MERGE_PARTS + " splits, not " + splits);
        }
        float scale = (float) (1.0 / Math.sqrt(headDim));
        // Threads per key: one per 8 dims, rounded up to a power of two so groups tile the warps
        // (at most 32 for the widest head, 256).
        int perKey = headDim / 8;
        int group = Integer.bitCount(perKey) == 1 ? perKey : Integer.highestOneBit(perKey) << 1;
        // Split keys mean few sequences: the variant that loads values with keys (see attention.cu).
        launch(s, "attention", splits > 1 ? "decode_attention_split" : "decode_attention", splits, heads, rows,
                DECODE_THREADS, 0,
                a -> a.ptr(q).ptr(kCache).ptr(vCache).i32(code(cacheType)).i64(slotStride).ptr(slots).ptr(lengths)
                        .i32(rows).i32(heads).i32(kvHeads).i32(headDim).f32(scale).i32(keysPerSplit).i32(group)
                        .ptr(partOut).ptr(partLse).ptr(arrivals).ptr(out).ptr(lse).ptr(narrowed.address())
                        .i32(code(narrowed.type())));
    }

    void mergePartials(CudaStream s, long partOut, long partLse, int parts, int pairs, int headDim, long out, long lse,
                       Narrowed narrowed) {
        if (parts < 1 || parts > MAX_MERGE_PARTS) {
            throw new IllegalArgumentException("merge_partials merges 1 to " + MAX_MERGE_PARTS + " parts, not " + parts);
        }
        launch(s, "attention", "merge_partials", Math.min(pairs, 1 << 20), 1, 1, Math.min(THREADS, roundUpToWarp(headDim)), 0,
                a -> a.ptr(partOut).ptr(partLse).i32(parts).i32(pairs).i32(headDim).ptr(out).ptr(lse)
                        .ptr(narrowed.address()).i32(code(narrowed.type())));
    }

    void selectTokens(CudaStream s, long logits, int rows, int vocab, long temperature, long topK, long topP,
                      long uniform, long tokens) {
        launch(s, "sampling", "select_tokens", rows, 1, 1, SELECT_THREADS, 0,
                a -> a.ptr(logits).i32(vocab).ptr(temperature).ptr(topK).ptr(topP).ptr(uniform).ptr(tokens));
    }

    /** Four values a thread (one vector load each), up to 1024 threads. */
    private static int normThreads(int cols) {
        return Math.min(1024, Math.max(32, roundUpToWarp((cols + 3) / 4)));
    }

    private static int roundUpToWarp(int n) {
        return Math.max(32, (n + 31) / 32 * 32);
    }

    private static int blocks(long n) {
        // Grid-stride kernels: a few waves of blocks cover any size.
        return (int) Math.max(1, Math.min((n + THREADS - 1) / THREADS, 65536));
    }

    private synchronized void launch(CudaStream s, String module, String kernel, int gridX, int gridY, int gridZ,
                                     int threads, int shared, ArgumentWriter writer) {
        MemorySegment function = functions.get(kernel);
        if (function == null) {
            function = modules.function(module, kernel);
            functions.put(kernel, function);
        }
        arguments.count = 0;
        writer.write(arguments);
        context.driver().launchKernel(function, gridX, gridY, gridZ, threads, 1, 1, shared, s.handle(),
                arguments.pointers, kernel);
    }

    @FunctionalInterface
    private interface ArgumentWriter {
        void write(Arguments a);
    }

    /**
     * A kernel's arguments as cuLaunchKernel takes them: an array of pointers to each value. One
     * native block is reused for every launch (the driver copies the values during the call), with
     * pointer i fixed at value slot i, so a launch only writes the values.
     */
    private static final class Arguments {
        private static final int MAX = 24;
        private final MemorySegment values;
        private final MemorySegment pointers;
        private int count;

        Arguments(Arena arena) {
            this.values = arena.allocate(8L * MAX, 8);
            this.pointers = arena.allocate(ADDRESS, MAX);
            for (int i = 0; i < MAX; i++) {
                pointers.setAtIndex(ADDRESS, i, values.asSlice(8L * i, 8));
            }
        }

        Arguments ptr(long deviceAddress) {
            return i64(deviceAddress);
        }

        Arguments i64(long v) {
            values.set(JAVA_LONG, 8L * count++, v);
            return this;
        }

        Arguments i32(int v) {
            values.set(JAVA_INT, 8L * count++, v);
            return this;
        }

        Arguments f32(float v) {
            values.set(JAVA_FLOAT, 8L * count++, v);
            return this;
        }
    }

    @Override
    public synchronized void close() {
        functions.clear();
        Closeables.closeAllOrThrow(List.of(modules, argumentArena), null);
    }
}
