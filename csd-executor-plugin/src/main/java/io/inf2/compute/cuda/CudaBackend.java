package io.inf2.compute.cuda;

import io.inf2.compute.Activations;
import io.inf2.compute.ComputeBackend;
import io.inf2.compute.RotaryTable;
import io.inf2.compute.WeightLayout;
import io.inf2.compute.WeightTier;
import io.inf2.model.LayerWeights;
import io.inf2.nativeio.Cublas;
import io.inf2.nativeio.CudaDriver;
import io.inf2.nativeio.CudaException;
import io.inf2.nativeio.CudaLibraryLocator;
import io.inf2.tensor.DType;
import io.inf2.tensor.FloatMatrix;
import io.inf2.tensor.Tensor;
import io.inf2.util.Closeables;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The GPU backend. Activations are f32 in device memory; weights are the checkpoint's tensors in
 * their stored type (F32, F16, BF16), found on the device through a {@link WeightPlacement}
 * (resident, or streamed per layer as the engine's weight layout says). Everything is queued on one compute stream in call order; only
 * {@link #download} and {@link #selectTokens} wait for the GPU.
 *
 * <p>Linear layers run on cuBLAS with fp32 accumulation: with F16 or BF16 weights the f32
 * activations are first rounded to the weight's type on the GPU (cuBLAS multiplies like types), so
 * results differ from an f32 reference by the rounding of the inputs (about 2⁻¹¹ relative per
 * element for F16, 2⁻⁸ for BF16) summed over k; with F32 weights the product is plain fp32 (no TF32).
 *
 * <p>Beyond {@link ComputeBackend}: {@link #decodeAttention} over a {@link CudaKvBlock},
 * {@link #mergeAttention} of partial results by log-sum-exp, and {@link #selectTokens}.
 *
 * <p>Public operations are synchronized and make the context current on the calling thread, so
 * any thread may call them.
 */
public final class CudaBackend implements ComputeBackend {

    /** How to open the backend; see {@link CudaSettings#options}. */
    public record Options(String libraryPath, int device, Path kernelCache) {
        public Options {
            Objects.requireNonNull(kernelCache, "kernelCache");
            libraryPath = libraryPath == null ? "" : libraryPath;
        }

        public static Options defaults() {
            return new Options("", 0, CudaSettings.defaultKernelCache());
        }
    }

    /** Whether the cuda backend can run here, and why (or why not), for the engine's log. */
    public record Availability(boolean available, String reason) {
    }

    /**
     * Fewest keys a block of split decode attention takes: one round of its 8 groups of 4 keys (a
     * block's time is a few dependent memory round trips, so fewer rounds each over more blocks is
     * faster, until the merge of more parts costs more than it saves).
     */
    static final int MIN_KEYS_PER_SPLIT = 32;
    private static final int ARGUMENT_ALIGNMENT = 256;
    /** {@link #linearAdd} of at most this many rows runs as a batch of products over k-slices. */
    static final int SLICED_ACCUMULATE_MAX_ROWS = 16;
    static final int ACCUMULATE_SLICES = 4;

    private final CudaContext context;
    private final CudaStream stream;
    private final CudaKernels kernels;
    private final Cublas cublas;
    private final MemorySegment cublasHandle;
    private WeightPlacement weights;
    private final Map<RotaryTable, DeviceBuffer[]> rotaryTables = new IdentityHashMap<>();
    private final Scratch arguments;
    private final Scratch narrowedInput;
    private final Scratch fusedOutput;
    private final Scratch kSlices;
    /**
     * What {@link #narrowedInput} holds: the values of {@code narrowedSource} at its version
     * {@code narrowedVersion}, in {@code narrowedType}. Products of an unchanged input reuse it; kernels
     * whose output is the next product's input (norms, activations, attention merges) write it as they go.
     */
    private CudaActivations narrowedSource;
    private long narrowedVersion;
    private DType narrowedType;
    /** The weight type of the last product (null before the first or for F32 weights): the type to narrow to. */
    private DType productType;
    private final Scratch partials;
    /** Per (row, head) of decode attention, how many of its splits have finished: zero between launches. */
    private final Scratch arrivalCounts;
    private final Scratch mergeInput;
    private final BufferPool pool = new BufferPool();
    private PinnedBuffer uploadStaging;
    private CudaEvent uploadStagingFree;
    private boolean uploadStagingUsed;
    private PinnedBuffer downloadStaging;
    private boolean closed;

    private CudaBackend(CudaContext context, Path kernelCache) {
        this.context = context;
        this.stream = context.createStream();
        List<AutoCloseable> opened = new ArrayList<>(List.of(stream));
        try {
            this.cublas = context.cublas();
            this.cublasHandle = cublas.create();
            opened.add(() -> cublas.destroy(cublasHandle));
            cublas.setStream(cublasHandle, stream.handle());
            this.kernels = new CudaKernels(context, kernelCache);
            opened.add(kernels);
            this.weights = new ResidentWeights(context);
        } catch (RuntimeException e) {
            throw Closeables.closeAll(opened.reversed(), e);
        }
        this.arguments = new Scratch("kernel arguments");
        this.narrowedInput = new Scratch("linear input in the weight's type");
        this.fusedOutput = new Scratch("output of one product over adjacent weights");
        this.kSlices = new Scratch("products over k-slices");
        this.partials = new Scratch("decode attention partials");
        this.arrivalCounts = new Scratch("decode attention arrival counts");
        this.mergeInput = new Scratch("attention merge input");
    }

    /** Opens the backend on {@code options.device()}; the context is released again if anything fails. */
    public static CudaBackend open(Options options) {
        CudaContext context = CudaContext.open(CudaLibraryLocator.create(options.libraryPath()), options.device());
        try {
            return new CudaBackend(context, options.kernelCache());
        } catch (RuntimeException e) {
            context.close();
            throw e;
        }
    }

    /** {@link #availability(String)} with the default library search. */
    public static Availability availability() {
        return availability("");
    }

    /**
     * Whether libcuda loads and reports at least one device. Never throws: the reason says what is
     * missing ("CUDA not available: libcuda.so.1 not found ...") or what was found.
     */
    public static Availability availability(String libraryPath) {
        try {
            CudaDriver driver = CudaDriver.load(CudaLibraryLocator.create(libraryPath));
            int count = driver.deviceCount();
            int version = driver.driverVersion();
            String cuda = "CUDA " + version / 1000 + "." + (version % 1000) / 10;
            if (count == 0) {
                return new Availability(false, "CUDA not available: the driver (" + cuda + ") reports no device");
            }
            return new Availability(true, count + " CUDA device(s), driver " + cuda + ", device 0: "
                    + driver.deviceName(driver.device(0)));
        } catch (CudaException | UnsatisfiedLinkError e) {
            return new Availability(false, "CUDA not available: " + e.getMessage());
        }
    }

    public CudaContext context() {
        return context;
    }

    public WeightPlacement weights() {
        return weights;
    }

    /**
     * Applies the engine's weight layout: with every layer weight on the device they are uploaded now;
     * otherwise a {@link LayerStreamingWeights} keeps the DEVICE share resident and copies the rest in
     * per layer as {@link #stageWeights} says. Call before the first operation that reads a weight.
     */
    @Override
    public synchronized void placeWeights(WeightLayout layout) {
        context.makeCurrent();
        if (weights.deviceBytes() > 0) {
            throw new IllegalStateException("placeWeights after weights were uploaded");
        }
        if (layout.streams()) {
            WeightPlacement streaming = new LayerStreamingWeights(context, layout);
            weights.close();
            weights = streaming;
        } else {
            // q, k and v (and LLaMA's gate and up) side by side, so that linears() runs one product.
            for (LayerWeights layer : layout.layers()) {
                weights.prefetchAdjacent(List.of(layer.qWeight(), layer.kWeight(), layer.vWeight()));
                if (layer.fcUpWeight() != null) {
                    weights.prefetchAdjacent(List.of(layer.fc1Weight(), layer.fcUpWeight()));
                }
            }
            weights.prefetch(layout.tensorsIn(WeightTier.DEVICE));
        }
    }

    @Override
    public synchronized long deviceMemoryFree() {
        context.makeCurrent();
        return context.driver().memoryInfo()[0];
    }

    @Override
    public synchronized void stageWeights(List<Tensor> layer) {
        context.makeCurrent();
        weights.stage(layer);
    }

    @Override
    public synchronized void retireWeights(List<Tensor> layer) {
        context.makeCurrent();
        weights.retire(layer, stream);
    }

    /** Compiles or loads every kernel module now, so the first layer does not pay for it. */
    public synchronized void loadKernels() {
        context.makeCurrent();
        kernels.loadAll();
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public String description() {
        return "cuda(" + context + (weights instanceof LayerStreamingWeights l ? "; " + l.describe() : "") + ")";
    }

    @Override
    public synchronized Activations allocate(int rows, int cols) {
        if (rows < 0 || cols < 0) {
            throw new IllegalArgumentException("cuda activations of " + rows + "x" + cols);
        }
        long bytes = (long) rows * cols * Float.BYTES;
        context.makeCurrent();
        return new CudaActivations(this, bytes == 0 ? null : pool.take(bytes), rows, cols);
    }

    /** Takes back an activation buffer for reuse; see {@link BufferPool}. */
    synchronized void recycle(DeviceBuffer buffer) {
        if (!closed) {
            pool.give(buffer);
        }
        // After close the pool has freed everything it held; the context release freed the rest.
    }

    /** A KV block for {@code slots} sequences of up to {@code maxTokens} tokens each. */
    public synchronized CudaKvBlock createKvBlock(int slots, int maxTokens, int kvHeads, int headDim, DType dtype) {
        context.makeCurrent();
        return new CudaKvBlock(this, context, slots, maxTokens, kvHeads, headDim, dtype);
    }

    @Override
    public synchronized FloatMatrix download(Activations a) {
        CudaActivations d = dev(a, "download");
        context.makeCurrent();
        FloatMatrix host = new FloatMatrix(d.rows(), d.cols());
        long bytes = d.elements() * Float.BYTES;
        if (bytes > 0) {
            MemorySegment staging = downloadStaging(bytes);
            context.driver().memcpyDtoHAsync(staging, d.address(), bytes, stream.handle());
            stream.synchronize();
            MemorySegment.copy(staging, ValueLayout.JAVA_FLOAT, 0, host.data(), 0, (int) d.elements());
        }
        return host;
    }

    @Override
    public synchronized Activations upload(FloatMatrix host) {
        context.makeCurrent();
        CudaActivations d = (CudaActivations) allocate(host.rows(), host.cols());
        copyToDevice(host.segment(), d.address());
        return d;
    }

    @Override
    public synchronized void embed(int[] tokens, Tensor table, Activations out) {
        embedding(tokens, table, out, false, "token id", "embedding");
    }

    @Override
    public synchronized void addEmbeddingRows(int[] indices, Tensor table, Activations x) {
        embedding(indices, table, x, true, "position", "position embedding");
    }

    private void embedding(int[] indices, Tensor table, Activations target, boolean accumulate, String what, String op) {
        CudaActivations o = output(target, op);
        int cols = table.cols();
        requireShape(o, indices.length, cols, op + " output for ", table);
        for (int idx : indices) {
            if (idx < 0 || idx >= table.rows()) {
                throw new IllegalArgumentException(what + " " + idx + " outside " + table.name() + " of " + table.rows() + " rows");
            }
        }
        if (indices.length == 0) {
            return;
        }
        context.makeCurrent();
        DeviceTensor t = weights.onDevice(table, stream);
        long[] args = arguments.upload(indices);
        kernels.embedRows(stream, o.address(), args[0], indices.length, t.address(), t.dtype(), cols, accumulate);
    }

    @Override
    public synchronized void linear(Activations x, Tensor weight, Tensor bias, Activations out) {
        CudaActivations in = dev(x, "linear");
        CudaActivations o = output(out, "linear");
        requireLinearShapes(in, weight, bias, o, "linear");
        if (in.rows() == 0) {
            return;
        }
        context.makeCurrent();
        weights.stageTogether(Arrays.asList(weight, bias));
        DeviceTensor w = weights.onDevice(weight, stream);
        product(in, inputIn(in, w.dtype()), w, weight.rows(), o.address(), false);
        addBias(o.address(), in.rows(), weight.rows(), bias);
    }

    /** The bias and the activation in one pass over the output, which also leaves it narrowed for the next product. */
    @Override
    public synchronized void linearActivated(Activations x, Tensor weight, Tensor bias, Activations out, String activation) {
        CudaActivations in = dev(x, "linearActivated");
        CudaActivations o = output(out, "linearActivated");
        requireLinearShapes(in, weight, bias, o, "linearActivated");
        if (!activation.equals("relu") && !activation.equals("gelu")) {
            throw new IllegalArgumentException("unknown activation " + activation + " (expected relu or gelu)");
        }
        if (in.rows() == 0) {
            return;
        }
        context.makeCurrent();
        weights.stageTogether(Arrays.asList(weight, bias));
        DeviceTensor w = weights.onDevice(weight, stream);
        product(in, inputIn(in, w.dtype()), w, weight.rows(), o.address(), false);
        DeviceTensor b = bias == null ? null : weights.onDevice(bias, stream);
        kernels.biasActivation(stream, o.address(), in.rows(), weight.rows(), b == null ? 0L : b.address(),
                b == null ? DType.F32 : b.dtype(), activation, narrowedCopyOf(o));
    }

    /** The product accumulates into {@code acc} (cuBLAS with β = 1): no temporary, no separate add. */
    @Override
    public synchronized void linearAdd(Activations x, Tensor weight, Tensor bias, Activations acc) {
        CudaActivations in = dev(x, "linearAdd");
        CudaActivations a = output(acc, "linearAdd");
        requireLinearShapes(in, weight, bias, a, "linearAdd");
        if (in.address() == a.address()) {
            throw new IllegalArgumentException("linearAdd " + weight.name() + ": the input is the accumulator");
        }
        if (in.rows() == 0) {
            return;
        }
        context.makeCurrent();
        weights.stageTogether(Arrays.asList(weight, bias));
        DeviceTensor w = weights.onDevice(weight, stream);
        long input = inputIn(in, w.dtype());
        int m = in.rows();
        int n = weight.rows();
        int k = weight.cols();
        if (m > SLICED_ACCUMULATE_MAX_ROWS || k % (ACCUMULATE_SLICES * 8) != 0) {
            product(in, input, w, n, a.address(), true);
            addBias(a.address(), m, n, bias);
            return;
        }
        // A few rows: cuBLAS would split k itself and add the pieces in a kernel of its own, before
        // a bias kernel. Here the product runs as a batch over k-slices and one kernel adds the
        // slices and the bias to the accumulator.
        int slice = k / ACCUMULATE_SLICES;
        int type = cudaType(w.dtype());
        long slices = kSlices.ensure((long) ACCUMULATE_SLICES * m * n * Float.BYTES);
        cublas.gemmStridedBatchedEx(cublasHandle, Cublas.CUBLAS_OP_T, Cublas.CUBLAS_OP_N, n, m, slice, 1f, w.address(), type,
                k, slice, input, type, k, slice, 0f, slices, Cublas.CUDA_R_32F, n, (long) n * m, ACCUMULATE_SLICES,
                Cublas.CUBLAS_COMPUTE_32F, weight.name());
        DeviceTensor b = bias == null ? null : weights.onDevice(bias, stream);
        kernels.addSlices(stream, a.address(), slices, ACCUMULATE_SLICES, (long) m * n, n, b == null ? 0L : b.address(),
                b == null ? DType.F32 : b.dtype());
    }

    /**
     * The input is converted to the weights' type once for all of them. Weights that the placement
     * laid side by side ({@link WeightPlacement#prefetchAdjacent}) are one matrix of their summed
     * rows: one product into a scratch buffer, then one kernel that splits its columns into the
     * outputs and adds the biases. A single product over three 4096-row weights ran in 60% of the
     * time of three on an H200 (tools/gpu/decode_reference.py).
     */
    @Override
    public synchronized void linears(Activations x, List<Tensor> weightList, List<Tensor> biases, List<Activations> outs) {
        ComputeBackend.requireOnePerWeight(weightList, biases, outs);
        int count = weightList.size();
        CudaActivations in = dev(x, "linears");
        CudaActivations[] o = new CudaActivations[count];
        for (int i = 0; i < count; i++) {
            o[i] = output(outs.get(i), "linears");
            requireLinearShapes(in, weightList.get(i), biases.get(i), o[i], "linears");
        }
        if (in.rows() == 0 || count == 0) {
            return;
        }
        context.makeCurrent();
        List<Tensor> operands = new ArrayList<>(weightList);
        operands.addAll(biases);
        weights.stageTogether(operands);
        DeviceTensor[] w = new DeviceTensor[count];
        for (int i = 0; i < count; i++) {
            w[i] = weights.onDevice(weightList.get(i), stream);
            if (w[i].dtype() != w[0].dtype()) {
                // Weights of different types cannot share the converted input: one product each.
                for (int j = 0; j < count; j++) {
                    linear(x, weightList.get(j), biases.get(j), outs.get(j));
                }
                return;
            }
        }
        int m = in.rows();
        long input = inputIn(in, w[0].dtype());
        DType biasType = sharedBiasType(biases);
        if (count <= CudaKernels.MAX_SPLIT_OUTPUTS && adjacent(w) && biasType != null) {
            int total = 0;
            for (Tensor t : weightList) {
                total += t.rows();
            }
            long fused = fusedOutput.ensure((long) m * total * Float.BYTES);
            product(in, input, w[0], total, fused, false);
            long[] targets = new long[count];
            int[] widths = new int[count];
            long[] biasAddresses = new long[count];
            for (int i = 0; i < count; i++) {
                targets[i] = o[i].address();
                widths[i] = weightList.get(i).rows();
                Tensor b = biases.get(i);
                biasAddresses[i] = b == null ? 0 : weights.onDevice(b, stream).address();
            }
            kernels.splitColumns(stream, fused, m, total, targets, widths, biasAddresses, biasType);
            return;
        }
        for (int i = 0; i < count; i++) {
            product(in, input, w[i], weightList.get(i).rows(), o[i].address(), false);
            addBias(o[i].address(), m, weightList.get(i).rows(), biases.get(i));
        }
    }

    /** Whether each weight starts where the one before it ends, in device memory. */
    private static boolean adjacent(DeviceTensor[] w) {
        for (int i = 1; i < w.length; i++) {
            if (w[i - 1].address() + w[i - 1].byteSize() != w[i].address() || w[i].source().cols() != w[0].source().cols()) {
                return false;
            }
        }
        return true;
    }

    /** The one type every present bias has (F32 when there are none); null when they differ. */
    private static DType sharedBiasType(List<Tensor> biases) {
        DType type = null;
        for (Tensor b : biases) {
            if (b != null) {
                if (type != null && type != b.dtype()) {
                    return null;
                }
                type = b.dtype();
            }
        }
        return type == null ? DType.F32 : type;
    }

    private static void requireLinearShapes(CudaActivations in, Tensor weight, Tensor bias, CudaActivations out, String op) {
        int n = weight.rows();
        int k = weight.cols();
        requireShape(in, in.rows(), k, op + " input for ", weight);
        requireShape(out, in.rows(), n, op + " output for ", weight);
        if (bias != null && bias.elementCount() != n) {
            throw new IllegalArgumentException(op + " " + weight.name() + ": bias " + bias.name() + " has " + bias.elementCount()
                    + " elements, expected " + n);
        }
    }

    /** The input's device address in the weights' type: converted into a scratch buffer unless F32. */
    private long inputIn(CudaActivations in, DType weightType) {
        productType = weightType == DType.F32 ? null : weightType;
        if (weightType == DType.F32) {
            return in.address();
        }
        long converted = narrowedInput.ensure(in.elements() * weightType.byteSize());
        if (narrowedSource == in && narrowedVersion == in.version() && narrowedType == weightType && !in.isClosed()) {
            return converted;
        }
        kernels.convertFromF32(stream, in.address(), converted, weightType, in.elements());
        remember(in, weightType);
        return converted;
    }

    /**
     * Where a kernel writing {@code out} should also write it narrowed for the next product, and records
     * that it will; {@link CudaKernels.Narrowed#NONE} while products read F32 weights (or none ran yet).
     * Call after {@link #output} and just before queueing that kernel.
     */
    private CudaKernels.Narrowed narrowedCopyOf(CudaActivations out) {
        if (productType == null) {
            return CudaKernels.Narrowed.NONE;
        }
        long address = narrowedInput.ensure(out.elements() * productType.byteSize());
        remember(out, productType);
        return new CudaKernels.Narrowed(address, productType);
    }

    private void remember(CudaActivations source, DType type) {
        narrowedSource = source;
        narrowedVersion = source.version();
        narrowedType = type;
    }

    /**
     * out[m, n] (=, or += with {@code accumulate}) input[m, k] · W[n, k]ᵀ, fp32 accumulation, where n
     * may cover several adjacent weights starting at {@code w}. Row-major out[m, n] = x · Wᵀ is
     * column-major outᵀ[n, m] = Wᵀ (op T on the column-major k×n view of W) · xᵀ (the column-major
     * k×m view of x).
     */
    private void product(CudaActivations in, long input, DeviceTensor w, int n, long out, boolean accumulate) {
        int k = w.source().cols();
        int type = cudaType(w.dtype());
        cublas.gemmEx(cublasHandle, Cublas.CUBLAS_OP_T, Cublas.CUBLAS_OP_N, n, in.rows(), k, 1f, w.address(), type, k,
                input, type, k, accumulate ? 1f : 0f, out, Cublas.CUDA_R_32F, n, Cublas.CUBLAS_COMPUTE_32F,
                w.source().name());
    }

    private void addBias(long out, int rows, int cols, Tensor bias) {
        if (bias != null) {
            DeviceTensor b = weights.onDevice(bias, stream);
            kernels.biasAdd(stream, out, rows, cols, b.address(), b.dtype());
        }
    }

    private static int cudaType(DType t) {
        return switch (t) {
            case F32 -> Cublas.CUDA_R_32F;
            case F16 -> Cublas.CUDA_R_16F;
            case BF16 -> Cublas.CUDA_R_16BF;
            default -> throw new IllegalArgumentException("cuBLAS linear reads F32, F16 or BF16 weights, not " + t);
        };
    }

    @Override
    public synchronized void layerNorm(Activations x, Tensor gamma, Tensor beta, float eps, Activations out) {
        CudaActivations in = dev(x, "layerNorm");
        CudaActivations o = output(out, "layerNorm");
        requireNormShapes(in, o, gamma, "layerNorm");
        if (beta != null && beta.elementCount() != in.cols()) {
            throw new IllegalArgumentException("layerNorm: beta " + beta.name() + " has " + beta.elementCount() + " elements, expected " + in.cols());
        }
        if (in.rows() == 0) {
            return;
        }
        context.makeCurrent();
        weights.stageTogether(Arrays.asList(gamma, beta));
        DeviceTensor g = weights.onDevice(gamma, stream);
        DeviceTensor b = beta == null ? null : weights.onDevice(beta, stream);
        kernels.layerNorm(stream, in.address(), o.address(), in.rows(), in.cols(), g.address(), g.dtype(),
                b == null ? 0L : b.address(), b == null ? null : b.dtype(), eps, narrowedCopyOf(o));
    }

    @Override
    public synchronized void rmsNorm(Activations x, Tensor gamma, float eps, Activations out) {
        CudaActivations in = dev(x, "rmsNorm");
        CudaActivations o = output(out, "rmsNorm");
        requireNormShapes(in, o, gamma, "rmsNorm");
        if (in.rows() == 0) {
            return;
        }
        context.makeCurrent();
        DeviceTensor g = weights.onDevice(gamma, stream);
        kernels.rmsNorm(stream, in.address(), o.address(), in.rows(), in.cols(), g.address(), g.dtype(), eps,
                narrowedCopyOf(o));
    }

    private static void requireNormShapes(CudaActivations in, CudaActivations o, Tensor gamma, String op) {
        requireShape(o, in.rows(), in.cols(), op + " output");
        if (gamma.elementCount() != in.cols()) {
            throw new IllegalArgumentException(op + ": gamma " + gamma.name() + " has " + gamma.elementCount()
                    + " elements, expected " + in.cols());
        }
    }

    @Override
    public synchronized void addInPlace(Activations acc, Activations x) {
        CudaActivations a = output(acc, "addInPlace");
        CudaActivations b = dev(x, "addInPlace");
        requireShape(b, a.rows(), a.cols(), "addInPlace operand");
        if (a.elements() > 0) {
            context.makeCurrent();
            kernels.addInPlace(stream, a.address(), b.address(), a.elements());
        }
    }

    @Override
    public synchronized void activate(Activations x, String kind) {
        CudaActivations a = output(x, "activate");
        if (!kind.equals("relu") && !kind.equals("gelu")) {
            throw new IllegalArgumentException("unknown activation " + kind + " (expected relu or gelu)");
        }
        if (a.elements() > 0) {
            context.makeCurrent();
            kernels.biasActivation(stream, a.address(), a.rows(), a.cols(), 0L, DType.F32, kind, narrowedCopyOf(a));
        }
    }

    @Override
    public synchronized void siluMul(Activations gate, Activations up) {
        CudaActivations g = output(gate, "siluMul");
        CudaActivations u = dev(up, "siluMul");
        requireShape(u, g.rows(), g.cols(), "siluMul up");
        if (g.elements() > 0) {
            context.makeCurrent();
            kernels.siluMul(stream, g.address(), u.address(), g.elements(), narrowedCopyOf(g));
        }
    }

    @Override
    public synchronized void rotary(Activations x, int heads, RotaryTable table, int[] positions) {
        CudaActivations a = output(x, "rotary");
        int hd = table.headDim();
        requireShape(a, positions.length, heads * hd, "rotary input");
        for (int p : positions) {
            if (p < 0 || p >= table.maxPositions()) {
                throw new IllegalArgumentException("position " + p + " outside the rotary table of " + table.maxPositions());
            }
        }
        if (positions.length == 0) {
            return;
        }
        context.makeCurrent();
        DeviceBuffer[] cosSin = rotaryTables.get(table);
        if (cosSin == null) {
            DeviceBuffer cos = uploadFloats(table.cos(), "rotary cos");
            try {
                cosSin = new DeviceBuffer[] {cos, uploadFloats(table.sin(), "rotary sin")};
            } catch (RuntimeException e) {
                throw Closeables.closeAll(List.of(cos), e);
            }
            rotaryTables.put(table, cosSin);
        }
        long[] args = arguments.upload(positions);
        kernels.rotary(stream, a.address(), positions.length, heads, hd, cosSin[0].address(), cosSin[1].address(), args[0]);
    }

    @Override
    public synchronized void causalAttention(Activations q, Activations k, Activations v, int[] starts, int[] lengths,
                                             int heads, int kvHeads, int headDim, Activations out) {
        CudaActivations qa = dev(q, "causalAttention");
        CudaActivations ka = dev(k, "causalAttention");
        CudaActivations va = dev(v, "causalAttention");
        CudaActivations oa = output(out, "causalAttention");
        requireHeads(heads, kvHeads, headDim, "causalAttention");
        if (starts.length != lengths.length) {
            throw new IllegalArgumentException("causalAttention: " + starts.length + " starts, " + lengths.length + " lengths");
        }
        int rows = qa.rows();
        requireShape(qa, rows, heads * headDim, "causalAttention q");
        requireShape(ka, rows, kvHeads * headDim, "causalAttention k");
        requireShape(va, rows, kvHeads * headDim, "causalAttention v");
        requireShape(oa, rows, heads * headDim, "causalAttention out");
        int maxLength = 0;
        for (int s = 0; s < starts.length; s++) {
            if (lengths[s] < 0 || starts[s] < 0 || (long) starts[s] + lengths[s] > rows) {
                throw new IllegalArgumentException("causalAttention: sequence " + s + " [" + starts[s] + ", +" + lengths[s]
                        + ") outside " + rows + " rows");
            }
            maxLength = Math.max(maxLength, lengths[s]);
        }
        if (maxLength == 0) {
            return;
        }
        context.makeCurrent();
        long[] args = arguments.upload(starts, lengths);
        kernels.causalAttention(stream, qa.address(), ka.address(), va.address(), oa.address(), args[0], args[1],
                starts.length, maxLength, heads, kvHeads, headDim);
    }

    @Override
    public synchronized void gatherRows(Activations src, int[] rows, Activations dst) {
        CudaActivations s = dev(src, "gatherRows");
        CudaActivations d = output(dst, "gatherRows");
        requireShape(d, rows.length, s.cols(), "gatherRows output");
        for (int r : rows) {
            if (r < 0 || r >= s.rows()) {
                throw new IllegalArgumentException("gatherRows: row " + r + " outside " + s.rows() + " rows");
            }
        }
        if (rows.length == 0 || s.cols() == 0) {
            return;
        }
        context.makeCurrent();
        long[] args = arguments.upload(rows);
        kernels.gatherRows(stream, s.address(), args[0], rows.length, s.cols(), d.address());
    }

    /** Appends keys and values ([n, kvDim] each) to a KV block; see {@link CudaKvBlock#append}. */
    synchronized void kvAppend(CudaKvBlock block, int[] slotOfRow, Activations keys, Activations values) {
        CudaActivations k = dev(keys, "kvAppend");
        CudaActivations v = dev(values, "kvAppend");
        requireShape(k, slotOfRow.length, block.kvDim(), "kvAppend keys");
        requireShape(v, slotOfRow.length, block.kvDim(), "kvAppend values");
        if (slotOfRow.length == 0) {
            return;
        }
        int[] positions = block.reservePositions(slotOfRow);
        context.makeCurrent();
        long[] args = arguments.upload(slotOfRow, positions);
        kernels.kvStore(stream, block.keysAddress(), block.valuesAddress(), block.dtype(), block.slotStride(), block.kvDim(),
                k.address(), v.address(), args[0], args[1], slotOfRow.length);
    }

    /**
     * Decode attention of one query row per sequence over its whole cached history in {@code cache}:
     * row i of {@code q} ([n, heads · headDim]) attends to the tokens of slot {@code slots[i]}.
     * Writes the normalised output to {@code out} ([n, heads · headDim]) and the log-sum-exp of the
     * scaled scores to {@code lse} ([n, heads]; −∞ for an empty slot), the partial form that
     * {@link #mergeAttention} and {@link io.inf2.kv.PartialAttention} merge exactly.
     */
    public synchronized void decodeAttention(Activations q, CudaKvBlock cache, int[] slots, int heads,
                                             Activations out, Activations lse) {
        CudaActivations qa = dev(q, "decodeAttention");
        CudaActivations oa = output(out, "decodeAttention");
        CudaActivations la = output(lse, "decodeAttention");
        int headDim = cache.headDim();
        requireHeads(heads, cache.kvHeads(), headDim, "decodeAttention");
        int n = slots.length;
        requireShape(qa, n, heads * headDim, "decodeAttention q");
        requireShape(oa, n, heads * headDim, "decodeAttention out");
        requireShape(la, n, heads, "decodeAttention lse");
        int[] lengths = cache.lengthsOf(slots);
        if (n == 0) {
            return;
        }
        int maxLength = 1;
        for (int len : lengths) {
            maxLength = Math.max(maxLength, len);
        }
        long pairs = (long) n * heads;
        // Enough blocks to fill the GPU four times over: few sequences get their keys split, and the
        // splits merge exactly by log-sum-exp.
        long wanted = Math.max(1, (4L * context.multiprocessors() + pairs - 1) / pairs);
        int splits = (int) Math.min(Math.min(wanted, CudaKernels.MAX_MERGE_PARTS),
                (maxLength + MIN_KEYS_PER_SPLIT - 1) / MIN_KEYS_PER_SPLIT);
        int keysPerSplit = (maxLength + splits - 1) / splits;
        splits = (maxLength + keysPerSplit - 1) / keysPerSplit;
        context.makeCurrent();
        long outBytes = (long) splits * pairs * headDim * Float.BYTES;
        long partBase = partials.ensure(outBytes + (long) splits * pairs * Float.BYTES);
        long[] args = arguments.upload(slots, lengths);
        long arrivals = arrivalCounts.ensureZeroed(pairs * Integer.BYTES);
        kernels.decodeAttention(stream, qa.address(), cache.keysAddress(), cache.valuesAddress(), cache.dtype(),
                cache.slotStride(), args[0], args[1], n, heads, cache.kvHeads(), headDim, keysPerSplit, splits,
                partBase, partBase + outBytes, arrivals, oa.address(), la.address(), narrowedCopyOf(oa));
    }

    /**
     * Merges partial attentions of the same queries over disjoint key sets (places of the KV cache):
     * out = Σ exp(lse_i − L) · out_i with L = log Σ exp(lse_i), per row and head. Each
     * {@code partOuts[i]} is [n, heads · headDim] and {@code partLses[i]} [n, heads].
     */
    public synchronized void mergeAttention(List<Activations> partOuts, List<Activations> partLses, int headDim,
                                            Activations out, Activations lse) {
        if (partOuts.size() != partLses.size() || partOuts.isEmpty()) {
            throw new IllegalArgumentException("mergeAttention: " + partOuts.size() + " outputs, " + partLses.size() + " log-sum-exps");
        }
        CudaActivations oa = output(out, "mergeAttention");
        CudaActivations la = output(lse, "mergeAttention");
        int n = oa.rows();
        int heads = la.cols();
        requireShape(oa, n, heads * headDim, "mergeAttention out");
        requireShape(la, n, heads, "mergeAttention lse");
        int parts = partOuts.size();
        long outBytes = oa.elements() * Float.BYTES;
        long lseBytes = la.elements() * Float.BYTES;
        if (n == 0) {
            return;
        }
        context.makeCurrent();
        long base = mergeInput.ensure(parts * (outBytes + lseBytes));
        long lseBase = base + parts * outBytes;
        for (int i = 0; i < parts; i++) {
            CudaActivations po = dev(partOuts.get(i), "mergeAttention");
            CudaActivations pl = dev(partLses.get(i), "mergeAttention");
            requireShape(po, n, heads * headDim, "mergeAttention part " + i + " out");
            requireShape(pl, n, heads, "mergeAttention part " + i + " lse");
            context.driver().memcpyDtoDAsync(base + i * outBytes, po.address(), outBytes, stream.handle());
            context.driver().memcpyDtoDAsync(lseBase + i * lseBytes, pl.address(), lseBytes, stream.handle());
        }
        kernels.mergePartials(stream, base, lseBase, parts, n * heads, headDim, oa.address(), la.address(),
                narrowedCopyOf(oa));
    }

    @Override
    public synchronized int[] greedyTokens(Activations logits) {
        int n = dev(logits, "greedyTokens").rows();
        float[] zeros = new float[n];
        float[] ones = new float[n];
        Arrays.fill(ones, 1f);
        return selectTokens(logits, zeros, new int[n], ones, zeros);
    }

    /**
     * Picks one token per row of {@code logits} ([n, vocab]) and waits for the result. Row r is
     * greedy (arg max, lowest id on ties) when {@code temperature[r] <= 0}; otherwise it is sampled
     * with temperature, top-k (0 = off) and top-p (1 = off) at the given uniform number in [0, 1):
     * the survivors' inverse CDF in ascending token-id order (sampling.cu states the exact rule).
     */
    public synchronized int[] selectTokens(Activations logits, float[] temperature, int[] topK, float[] topP, float[] uniform) {
        CudaActivations l = dev(logits, "selectTokens");
        int n = l.rows();
        if (temperature.length != n || topK.length != n || topP.length != n || uniform.length != n) {
            throw new IllegalArgumentException("selectTokens: " + n + " rows of logits but " + temperature.length + " temperatures, "
                    + topK.length + " top-k, " + topP.length + " top-p, " + uniform.length + " uniform numbers");
        }
        for (int r = 0; r < n; r++) {
            if (!(topP[r] > 0 && topP[r] <= 1) || topK[r] < 0 || !(uniform[r] >= 0 && uniform[r] < 1) || Float.isNaN(temperature[r])) {
                throw new IllegalArgumentException("selectTokens row " + r + ": temperature " + temperature[r] + ", top-k " + topK[r]
                        + ", top-p " + topP[r] + ", uniform " + uniform[r] + " (need top-p in (0, 1], top-k >= 0, uniform in [0, 1))");
            }
        }
        if (n == 0) {
            return new int[0];
        }
        if (l.cols() == 0) {
            throw new IllegalArgumentException("selectTokens: logits have no columns");
        }
        context.makeCurrent();
        long[] args = arguments.upload(temperature, topK, topP, uniform, new int[n]);
        kernels.selectTokens(stream, l.address(), n, l.cols(), args[0], args[1], args[2], args[3], args[4]);
        MemorySegment staging = downloadStaging((long) n * Integer.BYTES);
        context.driver().memcpyDtoHAsync(staging, args[4], (long) n * Integer.BYTES, stream.handle());
        stream.synchronize();
        int[] tokens = staging.asSlice(0, (long) n * Integer.BYTES).toArray(ValueLayout.JAVA_INT);
        for (int r = 0; r < n; r++) {
            if (tokens[r] < 0) {
                throw new IllegalArgumentException("selectTokens: row " + r + " of the logits has no finite value");
            }
        }
        return tokens;
    }

    /** Blocks until every operation queued so far has run (for timing; downloads already wait). */
    public synchronized void synchronize() {
        stream.synchronize();
    }

    private static void requireHeads(int heads, int kvHeads, int headDim, String op) {
        if (heads < 1 || kvHeads < 1 || heads % kvHeads != 0) {
            throw new IllegalArgumentException(op + ": " + heads + " query heads is not a multiple of " + kvHeads + " KV heads");
        }
        if (headDim < 2 || headDim % 2 != 0 || headDim > CudaKernels.MAX_HEAD_DIM) {
            throw new IllegalArgumentException(op + ": head width " + headDim + " (the CUDA kernels take even widths up to "
                    + CudaKernels.MAX_HEAD_DIM + ")");
        }
    }

    /** {@link #dev} for an operation's output: copies made of its earlier values are no longer current. */
    private CudaActivations output(Activations a, String op) {
        CudaActivations d = dev(a, op);
        d.written();
        return d;
    }

    private CudaActivations dev(Activations a, String op) {
        if (closed) {
            throw new IllegalStateException("cuda backend used after close (" + op + ")");
        }
        if (a instanceof CudaActivations d && d.owner() == this) {
            return d;
        }
        throw new IllegalArgumentException(op + ": " + a + " does not belong to this cuda backend");
    }

    private static void requireShape(CudaActivations a, int rows, int cols, String what) {
        if (a.rows() != rows || a.cols() != cols) {
            throw new IllegalArgumentException(what + ": " + a.rows() + "x" + a.cols() + ", expected " + rows + "x" + cols);
        }
    }

    /** As above, naming the weight; the message is built only when the check fails (hot path). */
    private static void requireShape(CudaActivations a, int rows, int cols, String what, Tensor weight) {
        if (a.rows() != rows || a.cols() != cols) {
            requireShape(a, rows, cols, what + weight.name());
        }
    }

    /** Copies host bytes to the device through the pinned upload buffer, queued on the compute stream. */
    private void copyToDevice(MemorySegment host, long dst) {
        long bytes = host.byteSize();
        if (bytes == 0) {
            return;
        }
        if (uploadStaging == null || uploadStaging.byteSize() < bytes) {
            if (uploadStagingFree == null) {
                uploadStagingFree = context.createEvent(false);
            }
            if (uploadStaging != null) {
                uploadStagingFree.synchronize();
                uploadStaging.close();
                // Not left holding a closed buffer when the allocation below fails.
                uploadStaging = null;
            }
            uploadStaging = context.allocatePinned(Math.max(bytes, 1L << 20));
            uploadStagingUsed = false;
        }
        if (uploadStagingUsed) {
            // The previous upload's copy must have left the buffer before it is overwritten.
            uploadStagingFree.synchronize();
        }
        MemorySegment.copy(host, 0, uploadStaging.segment(), 0, bytes);
        context.driver().memcpyHtoDAsync(dst, uploadStaging.segment(), bytes, stream.handle());
        uploadStagingFree.record(stream);
        uploadStagingUsed = true;
    }

    private DeviceBuffer uploadFloats(float[] data, String what) {
        DeviceBuffer b = context.allocate((long) data.length * Float.BYTES, what);
        try {
            copyToDevice(MemorySegment.ofArray(data), b.address());
        } catch (RuntimeException e) {
            throw Closeables.closeAll(List.of(b), e);
        }
        return b;
    }

    private MemorySegment downloadStaging(long bytes) {
        if (downloadStaging == null || downloadStaging.byteSize() < bytes) {
            if (downloadStaging != null) {
                downloadStaging.close();
                // Not left holding a closed buffer when the allocation below fails.
                downloadStaging = null;
            }
            downloadStaging = context.allocatePinned(Math.max(bytes, 1L << 20));
        }
        return downloadStaging.segment();
    }

    /**
     * Device buffers of activations, kept for reuse when closed. The engine allocates and closes
     * activations for every layer; cuMemAlloc and cuMemFree cost microseconds to milliseconds and
     * cuMemFree waits for the whole device, so buffers go back to a free list keyed by size class
     * instead. Reuse needs no wait: all work is on one stream, so the next owner's work queues
     * behind the last owner's. Sizes round up to a power of two below 1 MiB and to 2 MiB steps above.
     */
    private final class BufferPool implements AutoCloseable {
        private final Map<Long, ArrayDeque<DeviceBuffer>> free = new HashMap<>();
        private long freeBytes;

        DeviceBuffer take(long bytes) {
            long size = sizeClass(bytes);
            ArrayDeque<DeviceBuffer> list = free.get(size);
            if (list != null && !list.isEmpty()) {
                freeBytes -= size;
                return list.pop();
            }
            try {
                return context.allocate(size, "activations");
            } catch (CudaException e) {
                if (!"CUDA_ERROR_OUT_OF_MEMORY".equals(e.errorName()) || freeBytes == 0) {
                    throw e;
                }
                releaseAll();
                return context.allocate(size, "activations");
            }
        }

        void give(DeviceBuffer buffer) {
            free.computeIfAbsent(buffer.byteSize(), k -> new ArrayDeque<>()).push(buffer);
            freeBytes += buffer.byteSize();
        }

        void releaseAll() {
            stream.synchronize();
            close();
        }

        /** Frees every pooled buffer; the caller has waited for the work that used them. */
        @Override
        public void close() {
            List<DeviceBuffer> buffers = new ArrayList<>();
            free.values().forEach(buffers::addAll);
            free.clear();
            freeBytes = 0;
            Closeables.closeAllOrThrow(buffers, null);
        }

        private static long sizeClass(long bytes) {
            if (bytes <= 1L << 20) {
                return Math.max(512, Long.highestOneBit(bytes - 1) << 1);
            }
            long step = 2L << 20;
            return (bytes + step - 1) / step * step;
        }
    }

    /**
     * A grow-only device buffer reused by every call of one operation. Reuse is safe without waiting
     * because all work is on one stream: the next call's writes queue behind the last call's reads.
     */
    private final class Scratch implements AutoCloseable {
        private final String what;
        private DeviceBuffer buffer;

        Scratch(String what) {
            this.what = what;
        }

        long ensure(long bytes) {
            if (buffer == null || buffer.byteSize() < bytes) {
                if (buffer != null) {
                    stream.synchronize();
                    buffer.close();
                    // Not left holding a closed buffer when the allocation below fails.
                    buffer = null;
                }
                buffer = context.allocate(Math.max(bytes, 1L << 16), what);
            }
            return buffer.address();
        }

        /** As {@link #ensure}, with a buffer that was zeroed when it was allocated (the users keep it zero). */
        long ensureZeroed(long bytes) {
            if (buffer == null || buffer.byteSize() < bytes) {
                long address = ensure(bytes);
                copyToDevice(MemorySegment.ofArray(new byte[(int) buffer.byteSize()]), address);
                return address;
            }
            return buffer.address();
        }

        /**
         * Copies small int[] / float[] arrays (token ids, positions, slots, lengths, sampling
         * settings) into the buffer with one transfer and returns each array's device address.
         * The source is pageable memory on purpose: the driver copies a small pageable source into
         * its command stream and returns, so the arena may close at once and the stream is not
         * held up. (A ring of pinned chunks, tried instead, made an OPT-6.7B decode step on an H200
         * about 2.7 ms slower: each pinned copy is a separate copy-engine transfer.)
         */
        long[] upload(Object... arrays) {
            long[] offsets = new long[arrays.length];
            long total = 0;
            for (int i = 0; i < arrays.length; i++) {
                offsets[i] = total;
                long bytes = switch (arrays[i]) {
                    case int[] ints -> (long) ints.length * Integer.BYTES;
                    case float[] floats -> (long) floats.length * Float.BYTES;
                    default -> throw new IllegalArgumentException("kernel arguments are int[] or float[]");
                };
                total += (bytes + ARGUMENT_ALIGNMENT - 1) / ARGUMENT_ALIGNMENT * ARGUMENT_ALIGNMENT;
            }
            long base = ensure(Math.max(total, ARGUMENT_ALIGNMENT));
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment host = arena.allocate(Math.max(total, ARGUMENT_ALIGNMENT), ARGUMENT_ALIGNMENT);
                for (int i = 0; i < arrays.length; i++) {
                    MemorySegment src = arrays[i] instanceof int[] ints ? MemorySegment.ofArray(ints)
                            : MemorySegment.ofArray((float[]) arrays[i]);
                    MemorySegment.copy(src, 0, host, offsets[i], src.byteSize());
                }
                context.driver().memcpyHtoDAsync(base, host, total, stream.handle());
            }
            long[] addresses = new long[arrays.length];
            for (int i = 0; i < arrays.length; i++) {
                addresses[i] = base + offsets[i];
            }
            return addresses;
        }

        @Override
        public void close() {
            if (buffer != null) {
                buffer.close();
                buffer = null;
            }
        }
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        RuntimeException failure = stream.synchronizeBeforeFree();
        List<AutoCloseable> owned = new ArrayList<>();
        for (DeviceBuffer[] cosSin : rotaryTables.values()) {
            owned.addAll(Arrays.asList(cosSin));
        }
        rotaryTables.clear();
        owned.addAll(List.of(pool, arguments, narrowedInput, fusedOutput, kSlices, partials, arrivalCounts, mergeInput));
        owned.addAll(Arrays.asList(uploadStagingFree, uploadStaging, downloadStaging));
        owned.add(weights);
        owned.add(() -> cublas.destroy(cublasHandle));
        owned.addAll(List.of(kernels, stream, context));
        Closeables.closeAllOrThrow(owned, failure);
    }
}
