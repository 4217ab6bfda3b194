package io.inf2.model.presets;

import io.inf2.model.ModelConfig;
import io.inf2.model.checkpoint.InMemoryCheckpoint;
import io.inf2.model.checkpoint.ShardedSafetensorsWriter;
import io.inf2.model.checkpoint.TensorSource;
import io.inf2.model.checkpoint.TensorSpec;
import io.inf2.model.presets.HfTensorLayout.Parameter;
import io.inf2.tensor.DType;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.LongStream;

/**
 * Deterministic random weights for a model config: element {@code i} of tensor {@code name} is a pure
 * function of (seed, name, i), so the same seed gives the same model whatever order, chunking or
 * parallelism produced it, on a file or in memory.
 *
 * <p>The generator is counter-based: SplitMix64's output function applied to
 * {@code key(seed, name) + (i + 1)·γ} gives 64 random bits per element, whose four 16-bit quarters are
 * summed (Irwin–Hall) into a bell-shaped value with unit variance, bounded by ±3.46 like a truncated
 * normal. That is a handful of integer operations per element, so a 30B-parameter model fills in
 * seconds on a many-core host. Values are computed in f32 and rounded to the requested dtype.
 */
public final class RandomWeights implements TensorSource {

    private static final long GOLDEN_GAMMA = 0x9E3779B97F4A7C15L;
    /** sqrt(3) / 65536: the sum of four uniform 16-bit values has standard deviation 65536 / sqrt(3). */
    private static final float IRWIN_HALL_SCALE = (float) (Math.sqrt(3.0) / 65536.0);
    private static final float IRWIN_HALL_MEAN = 4 * 65535 / 2f;
    /** Chunks smaller than this are filled on the calling thread. */
    private static final long PARALLEL_BLOCK = 1 << 16;
    /**
     * Never started: asking whether a chunk is accessible by a thread other than the caller tells a
     * shared segment (filled in parallel) from a confined one (filled by its owner alone).
     */
    private static final Thread SOME_OTHER_THREAD = Thread.ofVirtual().unstarted(() -> { });

    private final ModelConfig config;
    private final WeightScale scale;
    private final long seed;
    private final DType dtype;
    private final Map<String, Parameter> parameters;
    private final List<TensorSpec> tensors;

    private RandomWeights(ModelConfig config, WeightScale scale, long seed, DType dtype) {
        if (!dtype.isFloatingPoint()) {
            throw new IllegalArgumentException("random weights need F32, F16 or BF16, not " + dtype);
        }
        this.config = config;
        this.scale = scale;
        this.seed = seed;
        this.dtype = dtype;
        Map<String, Parameter> byName = new LinkedHashMap<>();
        List<TensorSpec> specs = new ArrayList<>();
        for (Parameter p : HfTensorLayout.of(config)) {
            byName.put(p.name(), p);
            specs.add(new TensorSpec(p.name(), dtype, p.shape()));
        }
        this.parameters = Collections.unmodifiableMap(byName);
        this.tensors = List.copyOf(specs);
    }

    public static RandomWeights of(ModelConfig config, WeightScale scale, long seed, DType dtype) {
        return new RandomWeights(config, scale, seed, dtype);
    }

    /** Weights for a preset, at the preset's scale. */
    public static RandomWeights of(ModelPreset preset, long seed, DType dtype) {
        return new RandomWeights(preset.config(), preset.weightScale(), seed, dtype);
    }

    public ModelConfig config() {
        return config;
    }

    public DType dtype() {
        return dtype;
    }

    /** Every tensor, with HF names, in model order. */
    public List<TensorSpec> tensors() {
        return tensors;
    }

    /** Bytes of all tensors at this dtype. */
    public long byteSize() {
        long total = 0;
        for (TensorSpec t : tensors) {
            total += t.byteSize();
        }
        return total;
    }

    /** Element {@code index} of tensor {@code name} in f32, before rounding to the dtype. */
    public float value(String name, long index) {
        Parameter p = parameter(name);
        Distribution d = distribution(p);
        return d.mean + d.std * unitValue(d.key, index);
    }

    @Override
    public void fill(TensorSpec spec, long firstElement, MemorySegment chunk) {
        Parameter p = parameter(spec.name());
        if (spec.dtype() != dtype || !Arrays.equals(spec.shape(), p.shape())) {
            throw new IllegalArgumentException("tensor " + spec + " requested, generated as " + dtype + Arrays.toString(p.shape()));
        }
        long count = chunk.byteSize() / dtype.byteSize();
        if (firstElement < 0 || firstElement + count > p.elementCount()) {
            throw new IllegalArgumentException("tensor " + spec.name() + ": elements [" + firstElement + ", "
                    + (firstElement + count) + ") outside its " + p.elementCount());
        }
        Distribution d = distribution(p);
        if (count <= PARALLEL_BLOCK || !chunk.isAccessibleBy(SOME_OTHER_THREAD)) {
            fillRange(d, firstElement, chunk, 0, count);
        } else {
            long blocks = (count + PARALLEL_BLOCK - 1) / PARALLEL_BLOCK;
            LongStream.range(0, blocks).parallel().forEach(b -> {
                long from = b * PARALLEL_BLOCK;
                fillRange(d, firstElement, chunk, from, Math.min(count, from + PARALLEL_BLOCK));
            });
        }
    }

    /**
     * Writes the weights as safetensors into {@code dir} (which must exist): {@code model.safetensors},
     * or HF-style shards plus an index when they exceed {@code maxShardBytes}.
     */
    public List<Path> writeCheckpoint(Path dir, long maxShardBytes) throws IOException {
        return ShardedSafetensorsWriter.write(dir, tensors, maxShardBytes, this);
    }

    /** The weights in native memory (the caller closes the checkpoint to free them). */
    public InMemoryCheckpoint inMemory() {
        String location = String.format(Locale.ROOT, "in-memory random %s weights (hidden %d, %d layers, seed %d, %s)",
                config.architecture().modelType(), config.hidden(), config.layers(), seed, dtype);
        InMemoryCheckpoint checkpoint = InMemoryCheckpoint.allocate(location, tensors);
        try {
            for (TensorSpec spec : tensors) {
                fill(spec, 0, checkpoint.tensor(spec.name()).data());
            }
            return checkpoint;
        } catch (RuntimeException e) {
            checkpoint.close();
            throw e;
        }
    }

    private Parameter parameter(String name) {
        Parameter p = parameters.get(name);
        if (p == null) {
            throw new IllegalArgumentException("no tensor " + name + " in a " + config.architecture().modelType() + " model");
        }
        return p;
    }

    private record Distribution(long key, float mean, float std) { }

    private Distribution distribution(Parameter p) {
        long key = mix64(fnv1a64(p.name()) ^ mix64(seed + GOLDEN_GAMMA));
        return switch (p.role()) {
            case EMBEDDING -> new Distribution(key, 0f, (float) scale.embeddingStd());
            case LINEAR_WEIGHT -> new Distribution(key, 0f, (float) scale.linearStd(p.fanIn()));
            case BIAS, NORM_BIAS -> new Distribution(key, 0f, (float) scale.biasStd());
            case NORM_WEIGHT -> new Distribution(key, 1f, (float) scale.normJitterStd());
        };
    }

    /**
     * Elements [from, to) of the chunk, which starts at tensor element {@code firstElement}. One loop
     * method per dtype, so each is compiled for its own hot path.
     */
    private void fillRange(Distribution d, long firstElement, MemorySegment chunk, long from, long to) {
        switch (dtype) {
            case F32 -> fillF32(d.key, d.mean, d.std, firstElement, chunk, from, to);
            case F16 -> fillF16(d.key, d.mean, d.std, firstElement, chunk, from, to);
            case BF16 -> fillBf16(d.key, d.mean, d.std, firstElement, chunk, from, to);
            default -> throw new IllegalStateException("not a floating-point type: " + dtype);
        }
    }

    private static void fillF32(long key, float mean, float std, long firstElement, MemorySegment chunk, long from, long to) {
        for (long i = from; i < to; i++) {
            chunk.setAtIndex(DType.F32_LE, i, mean + std * unitValue(key, firstElement + i));
        }
    }

    private static void fillF16(long key, float mean, float std, long firstElement, MemorySegment chunk, long from, long to) {
        for (long i = from; i < to; i++) {
            chunk.setAtIndex(DType.I16_LE, i, Float.floatToFloat16(mean + std * unitValue(key, firstElement + i)));
        }
    }

    private static void fillBf16(long key, float mean, float std, long firstElement, MemorySegment chunk, long from, long to) {
        for (long i = from; i < to; i++) {
            chunk.setAtIndex(DType.I16_LE, i, finiteToBf16(mean + std * unitValue(key, firstElement + i)));
        }
    }

    /** A bell-shaped value with mean 0 and variance 1 for element {@code index} of the tensor keyed {@code key}. */
    static float unitValue(long key, long index) {
        long z = mix64(key + (index + 1) * GOLDEN_GAMMA);
        int sum = (int) (z & 0xFFFF) + (int) ((z >>> 16) & 0xFFFF) + (int) ((z >>> 32) & 0xFFFF) + (int) (z >>> 48);
        return (sum - IRWIN_HALL_MEAN) * IRWIN_HALL_SCALE;
    }

    /**
     * Round-to-nearest-even bf16 of a finite float: what {@link DType#setFloat} stores, without its NaN
     * branch (generated values are always finite), which halves the cost of the bf16 fill.
     */
    private static short finiteToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
    }

    /** SplitMix64's output function (Steele, Lea and Flood, 2014). */
    static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private static long fnv1a64(String s) {
        long h = 0xCBF29CE484222325L;
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            h = (h ^ (b & 0xFF)) * 0x100000001B3L;
        }
        return h;
    }
}
