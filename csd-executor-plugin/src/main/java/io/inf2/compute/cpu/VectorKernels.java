package io.inf2.compute.cpu;

import io.inf2.tensor.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * CPU kernels on the Vector API (jdk.incubator.vector), at the platform's preferred vector width.
 *
 * <p><b>linear</b> packs, then multiplies, so a weight byte comes from memory once per call however
 * many input rows there are: decode at batch 32 is one pass over the weights, not 32, and f16/bf16
 * widening costs once per weight, not once per input row. Three tile shapes:
 * <ul>
 *   <li>batch 1: no panel; four (bf16: eight) weight rows are streamed at once and each weight is
 *       multiplied as soon as it is widened ({@link #linearOneRow}), since nothing would reuse a
 *       packed copy;</li>
 *   <li>decode (2 to fewer than {@value #BROADCAST_MIN_ROWS} input rows): a block of {@value #PANEL_ROWS}
 *       weight rows by up to {@value #PANEL_COLS} columns is widened to f32 into a per-thread panel
 *       that stays in L1/L2, and every input row is multiplied against it, four input rows by two
 *       weight rows at a time (eight accumulators: each loaded x vector feeds two FMAs, each loaded
 *       weight vector four; leftover rows go one by one against four weight rows);</li>
 *   <li>prefill: the panel is stored transposed, two vectors of weight rows wide, and six input rows
 *       at a time broadcast each x element into twelve accumulators (a classic GEMM micro-kernel).</li>
 * </ul>
 *
 * <p>Half-precision widening: JDK 25's Vector API has no half-to-float lane conversion (there is no
 * such {@code VectorOperators.Conversion}; {@code jdk.incubator.vector.Float16} is a scalar type).
 * Emulating it in lanes (shift the exponent and mantissa into place, rescale subnormals by 2^112,
 * patch Inf/NaN) measured 6 elements/ns on one core of this project's dev machine (AVX2, Zen 3), and
 * 2.5 on random bit patterns, because rescaling subnormal lanes takes a microcode assist. A plain
 * loop over {@link Float#float16ToFloat}, which C2 compiles to the hardware conversion (x86 F16C
 * vcvtph2ps, AArch64 fcvtl), measured 15 elements/ns whatever the data, so F16 panels are widened
 * by that loop. BF16 is the upper half of an f32: a sign-extending short-to-int lane conversion and
 * a shift by 16 (13 elements/ns; the equivalent scalar loop does not vectorize). F32 panels are a
 * bulk copy. All figures in thread CPU time, in cache.
 *
 * <p>Batch 1 is the exception for f16 ({@link HalfWidening#LANES}, the default): no
 * conversion at all, only the bits moved by shifts so a half reads as its value times 2^-112, and x
 * scaled by 2^112 instead, which makes every product exact and needs no special case for subnormal
 * halves (they become f32 subnormals of the right value), only for Inf/NaN. Streamed from memory
 * that reached 14.9 GB/s of f16 weights on one Zen 3 core against 7.5 to 7.9 for the widening
 * buffer (f32: 16.8 to 17.5). On that core an FMA with an f32-subnormal operand measured no slower:
 * rows of nothing but subnormal halves ran at the rate of normal ones (the assist blamed above was
 * not isolated from the random patterns' NaN/Inf lanes). On a 16-core Intel Xeon host, where one
 * thread in cache runs the widening buffer faster, LLaMA-7B decode on all cores still ran 1.2 times
 * faster with the lanes (three alternated pairs, 7.1-7.5 against 5.6-6.2 tokens/s).
 */
public final class VectorKernels implements CpuKernels {

    private static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> INTS = FLOATS.withLanes(int.class);
    private static final VectorSpecies<Short> SHORTS =
            VectorSpecies.of(short.class, VectorShape.forBitSize(FLOATS.vectorBitSize() / 2));
    private static final int LANES = FLOATS.length();
    /** Weight rows of a one-row dot tile. */
    private static final int DOT_ROWS = 4;

    /** Weight rows per panel; a multiple of 4 so both tile shapes cover a panel exactly. */
    private static final int PANEL_ROWS = 8;
    /**
     * Panel columns (4 KiB of f32 per row): long enough that a tile's eight horizontal sums cost a
     * few percent of its FMAs, short enough that a 4×2 tile's six streams (24 KiB) stay in a 32 KiB L1.
     */
    private static final int PANEL_COLS = 1024;
    /** Weight rows of a transposed panel: two vectors, the width of a broadcast tile. */
    private static final int WIDE_ROWS = 2 * LANES;
    /** Columns of a transposed panel: 16 KiB of f32 per panel, which one six-row tile streams from L1. */
    private static final int WIDE_COLS = 4096 / WIDE_ROWS;
    /**
     * Weight rows packed together (a row of panels, 256 KiB of f32 at most) before the input rows
     * run against them: they stay in L2 while every block of input rows passes.
     */
    private static final int WIDE_BLOCK_ROWS = 256;
    /**
     * Input rows per block in the prefill path, a multiple of the six-row tile: their WIDE_COLS-column
     * slice (96 KiB) stays in L2 while it meets every panel of the packed block, so x streams from
     * memory once per WIDE_BLOCK_ROWS weight rows rather than once per panel.
     */
    private static final int WIDE_ROW_BLOCK = 96;
    /**
     * From this many input rows on (prefill), linear uses broadcast tiles over transposed panels;
     * below it (decode), dot-product tiles, whose panels need no transposing. Measured on AVX2: the
     * broadcast tiles overtake between 32 and 64 rows (at 32 the transposing pack still costs 10-30%),
     * and reach two thirds or more of the FMA peak at 512. Below it the x rows of one panel column range
     * (at most 63 × 4 KiB) stay in L2.
     */
    static final int BROADCAST_MIN_ROWS = 64;

    /** Per-thread packing buffers, reused by every call on the thread. */
    private static final class Scratch {
        final float[] panel = new float[PANEL_ROWS * PANEL_COLS];
        final float[] wide = new float[WIDE_BLOCK_ROWS * WIDE_COLS];
        final float[] row = new float[WIDE_COLS];
        /** The input row of a one-row linear, its pairs split as {@link #splitPairs} lays them out. */
        float[] pairs = new float[4096];
        /**
         * The sum of every int the one-row kernels read ahead ({@link #touchAhead}): stored so that
         * the JIT cannot drop those loads as unused.
         */
        int touched;

        float[] pairs(int k) {
            if (pairs.length < k) {
                pairs = new float[k];
            }
            return pairs;
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private static final float INV_SQRT2 = (float) (1 / Math.sqrt(2));

    /**
     * How batch-1 linear turns f16 weights into f32 operands. Both are exact; they differ in speed
     * ({@code io.inf2.bench.KernelBench} measures both). {@code HARDWARE} is also the exact path {@code LANES}
     * hands a tile to when the tile holds an Inf or NaN half or x cannot be scaled.
     */
    public enum HalfWidening {
        /**
         * f16 rows are read as int lanes like bf16 and each half is moved into f32 bit positions by
         * shifts (its value times 2^-112, x carrying the 2^112), multiplied straight from the mapping.
         * A subnormal half becomes an f32 subnormal, which some processors multiply through a slow
         * microcode assist.
         */
        LANES,
        /** f16 rows are widened into an L1 buffer by the hardware conversion (vcvtph2ps), then multiplied. */
        HARDWARE
    }

    private final HalfWidening halfWidening;

    /** The kernels with the f16 lane widening, the faster one in whole-model decode on every processor measured. */
    public VectorKernels() {
        this(HalfWidening.LANES);
    }

    public VectorKernels(HalfWidening halfWidening) {
        if (LANES < 4) {
            throw new UnsupportedOperationException("the preferred float vector has " + LANES + " lanes; VectorKernels needs at least 4");
        }
        this.halfWidening = java.util.Objects.requireNonNull(halfWidening, "halfWidening");
    }

    @Override
    public String toString() {
        return "VectorKernels(" + halfWidening + ")";
    }

    /** The f16 widening in use, for benchmark reports. */
    public HalfWidening halfWidening() {
        return halfWidening;
    }

    /** The vector width in f32 lanes, for benchmark reports. */
    public static int lanes() {
        return LANES;
    }

    @Override
    public void linear(float[] x, int rows, int k, MemorySegment weight, DType dtype, MemorySegment bias, DType biasType,
                       int nFrom, int nTo, float[] out, int outCols) {
        product(x, rows, k, weight, dtype, bias, biasType, nFrom, nTo, out, outCols, false);
    }

    @Override
    public void linearAdd(float[] x, int rows, int k, MemorySegment weight, DType dtype, MemorySegment bias, DType biasType,
                          int nFrom, int nTo, float[] out, int outCols) {
        product(x, rows, k, weight, dtype, bias, biasType, nFrom, nTo, out, outCols, true);
    }

    /** Every path below adds its products to out, so out starts as the bias, or as itself plus the bias. */
    private void product(float[] x, int rows, int k, MemorySegment weight, DType dtype, MemorySegment bias, DType biasType,
                         int nFrom, int nTo, float[] out, int outCols, boolean accumulate) {
        requireLinearType(dtype);
        Scratch scratch = SCRATCH.get();
        if (rows == 1) {
            linearOneRow(x, k, rearrange(x, k, dtype, scratch.pairs(k)), weight, dtype, bias, biasType, nFrom, nTo, out,
                    accumulate, scratch);
            return;
        }
        for (int n = nFrom; n < nTo; n++) {
            float b = bias == null ? 0f : biasType.getFloat(bias, n);
            for (int m = 0; m < rows; m++) {
                int i = m * outCols + n;
                out[i] = accumulate ? out[i] + b : b;
            }
        }
        if (rows >= BROADCAST_MIN_ROWS) {
            linearBroadcast(x, rows, k, weight, dtype, nFrom, nTo, out, outCols, scratch);
        } else {
            linearDot(x, rows, k, weight, dtype, nFrom, nTo, out, outCols, scratch.panel);
        }
    }

    @Override
    public OneRow prepareOneRow(float[] x, int k, DType dtype) {
        requireLinearType(dtype);
        return new OneRow(x, k, dtype, rearrange(x, k, dtype, new float[k]));
    }

    @Override
    public void linearOneRow(OneRow row, MemorySegment weight, MemorySegment bias, DType biasType, int nFrom, int nTo,
                             float[] out, boolean accumulate) {
        linearOneRow(row.x(), row.k(), row.rearranged(), weight, row.dtype(), bias, biasType, nFrom, nTo, out, accumulate,
                SCRATCH.get());
    }

    private static void requireLinearType(DType dtype) {
        if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16) {
            throw new IllegalArgumentException("linear weights must be F32, F16 or BF16, got " + dtype);
        }
    }

    /**
     * x as the one-row kernels read it for {@code dtype} weights, written into {@code into}: split into
     * pairs ({@link #splitPairs}) for bf16, and for f16 on the lane path, scaled; null where they read
     * x itself (f32, f16 widened by the hardware) or where the scaled pairs would not be finite.
     */
    private float[] rearrange(float[] x, int k, DType dtype, float[] into) {
        return switch (dtype) {
            case BF16 -> splitPairs(x, k, into, 1f);
            case F16 -> halfWidening == HalfWidening.LANES ? splitPairs(x, k, into, HALF_SCALE) : null;
            default -> null;
        };
    }

    /** out[nFrom, nTo) of a one-row product set to the bias (or zero), or with {@code accumulate} the bias added to it. */
    private void startOneRow(MemorySegment bias, DType biasType, int nFrom, int nTo, float[] out, boolean accumulate,
                             Scratch scratch) {
        if (bias == null) {
            if (!accumulate) {
                Arrays.fill(out, nFrom, nTo, 0f);
            }
        } else if (!accumulate) {
            widen(bias, biasType, nFrom, out, nFrom, nTo - nFrom);
        } else {
            float[] widened = scratch.panel;
            for (int from = nFrom; from < nTo; from += widened.length) {
                int count = Math.min(widened.length, nTo - from);
                widen(bias, biasType, from, widened, 0, count);
                axpy(1f, widened, 0, out, from, count);
            }
        }
    }

    /**
     * Decode at batch 1, where each weight is used once and its memory traffic is the whole cost:
     * several weight rows at a time (several memory streams for the prefetchers, independent FMA
     * chains), each weight multiplied as soon as it is widened. bf16 rows are loaded as int lanes of
     * two elements each, the even elements (low 16 bits) and the odd ones (high 16 bits) going to
     * separate vectors, so x is split the same way, once per operation where the backend prepares it
     * ({@link #prepareOneRow}, {@link #splitPairs}); rows longer than {@link #EIGHT_ROW_MIN_ROW_BYTES}
     * eight at a time, which streamed from memory measured 1.15 to 1.6 times the rate of four, the
     * others four at a time, short ones ({@link #TOUCH_AHEAD_MAX_ROW_BYTES}) with the next tile touched
     * ahead, as f16 rows are (opt-125m decode: 1.04 to 1.15 times the rate of eight, in four alternated
     * runs each against the bandwidth measured around them). f16 rows are
     * read the same way ({@link #dotRowsF16Lanes}, {@link #dotRowsF16Lanesx8}) or widened through a
     * small L1 buffer ({@link #dotRowsF16}), as {@link HalfWidening} says. f32 rows already stream at memory speed
     * four at a time.
     */
    private void linearOneRow(float[] x, int k, float[] pairs, MemorySegment weight, DType dtype, MemorySegment bias,
                              DType biasType, int nFrom, int nTo, float[] out, boolean accumulate, Scratch scratch) {
        startOneRow(bias, biasType, nFrom, nTo, out, accumulate, scratch);
        int n = nFrom;
        int touched = 0;
        switch (dtype) {
            case BF16 -> {
                if (2L * k > EIGHT_ROW_MIN_ROW_BYTES) {
                    for (; n + 2 * DOT_ROWS <= nTo; n += 2 * DOT_ROWS) {
                        dotRowsBf16x8(pairs, x, k, weight, n, out);
                    }
                }
                for (; n + DOT_ROWS <= nTo; n += DOT_ROWS) {
                    touched += dotRowsBf16(pairs, x, k, weight, n, out, ahead(n, DOT_ROWS, weight, 2L * k));
                }
            }
            case F16 -> {
                if (pairs != null && 2L * k > EIGHT_ROW_MIN_ROW_BYTES) {
                    // A refused group goes to the four-row loop below, which finds the refusing tile.
                    while (n + 2 * DOT_ROWS <= nTo && dotRowsF16Lanesx8(pairs, x, k, weight, n, out)) {
                        n += 2 * DOT_ROWS;
                    }
                }
                for (; n + DOT_ROWS <= nTo; n += DOT_ROWS) {
                    int read = pairs == null ? LANES_REFUSED
                            : dotRowsF16Lanes(pairs, x, k, weight, n, out, ahead(n, DOT_ROWS, weight, 2L * k));
                    if (read == LANES_REFUSED) {
                        touched += dotRowsF16(x, k, weight, n, out, scratch.panel);
                    } else {
                        touched += read;
                    }
                }
            }
            default -> {
                for (; n + DOT_ROWS <= nTo; n += DOT_ROWS) {
                    dotRowsF32(x, k, weight, n, out);
                }
            }
        }
        scratch.touched += touched;
        for (; n < nTo; n++) {
            out[n] += dotExact(x, k, weight, dtype, n);
        }
    }

    /**
     * Where the tile of {@code rows} rows after the one at row n starts, in bytes, when rows are short
     * ({@link #TOUCH_AHEAD_MAX_ROW_BYTES}) and that tile lies within the weight; otherwise
     * {@link #NO_TOUCH}. The tile may lie past the rows this call multiplies: a thread's next range
     * usually starts there ({@link WorkerTeam}), and where another thread has it, it is only read.
     */
    private static long ahead(int n, int rows, MemorySegment weight, long rowBytes) {
        long at = (n + rows) * rowBytes;
        return rowBytes <= TOUCH_AHEAD_MAX_ROW_BYTES && at + rows * rowBytes <= weight.byteSize() ? at : NO_TOUCH;
    }

    /**
     * bf16 and f16 rows longer than this go eight at a time ({@link #dotRowsBf16x8},
     * {@link #dotRowsF16Lanesx8}): LLaMA's 4096- and 11008-wide rows. Rows of up to 3072 columns go
     * four at a time: opt-125m's 3072-wide MLP rows read eight at a time left its bf16 decode at a
     * median of 66% of the bound against 69% four at a time (ten alternated pairs, tokens/s 51.7
     * against 55.1). LLaMA-7B f16 decode on 16 Intel cores: eight rows 68-70% against four 63-67%
     * (three alternated pairs).
     */
    private static final long EIGHT_ROW_MIN_ROW_BYTES = 6144;

    /** {@link #ahead} when no tile is to be touched: a loop-invariant test in the kernels' loops. */
    private static final long NO_TOUCH = -1;

    /**
     * Rows up to this long have the next tile touched ahead ({@link #touchAhead}): up to 1024 columns
     * of f16 or bf16. Longer rows stream well on their own (6 KiB rows reached 1.6 to 2 times the
     * rate of 1.5 KiB ones without it), and their next tile would crowd the current one out of L1.
     * f32 rows are not touched ahead: their loop is all loads already, and in interleaved runs the
     * touches (and the test for them) cost more than they gained.
     */
    private static final long TOUCH_AHEAD_MAX_ROW_BYTES = 2048;

    /**
     * Reads one int from each of the two cache lines at {@code at} and {@code at + 64}. The one-row
     * kernels call it once per step of their loop on the next tile's bytes, so that tile is in cache
     * before its own loop starts. Rows of a one-row tile are read as one memory stream each; a row
     * of hidden size 768 in f16 is 24 cache lines, too short for the hardware prefetcher to ramp up
     * before the stream ends, and such matrices (most of opt-125m, every lm_head of width 768)
     * streamed at 60% of the rate of 3072-wide rows. The loads are independent of the arithmetic, so
     * out-of-order execution keeps them in flight alongside it.
     */
    private static int touchAhead(MemorySegment weight, long at) {
        return weight.get(ValueLayout.JAVA_INT_UNALIGNED, at) + weight.get(ValueLayout.JAVA_INT_UNALIGNED, at + 64);
    }

    /** bf16 elements per int-lane block: two per lane. */
    private static final int PAIR_BLOCK = 2 * LANES;

    /**
     * x times {@code scale} rearranged for 16-bit rows read as int lanes: within each block of
     * 2·LANES elements, the even-indexed elements first, then the odd-indexed ones; elements past the
     * last whole block stay in place, unscaled. Returns null when a scaled element would not be finite
     * (|x| ≥ 2^16 at the f16 scale, or a non-finite x), where the caller takes another path.
     */
    private static float[] splitPairs(float[] x, int k, float[] pairs, float scale) {
        int blocked = k - k % PAIR_BLOCK;
        FloatVector largest = FloatVector.zero(FLOATS);
        for (int b = 0; b < blocked; b += PAIR_BLOCK) {
            FloatVector low = FloatVector.fromArray(FLOATS, x, b);
            FloatVector high = FloatVector.fromArray(FLOATS, x, b + LANES);
            largest = largest.max(low.abs()).max(high.abs());
            low.rearrange(EVEN_LANES, high).mul(scale).intoArray(pairs, b);
            low.rearrange(ODD_LANES, high).mul(scale).intoArray(pairs, b + LANES);
        }
        // NaN lanes make the maximum NaN, which fails the test as infinite ones do.
        if (scale != 1f && !(largest.reduceLanes(VectorOperators.MAX) <= Float.MAX_VALUE / scale)) {
            return null;
        }
        System.arraycopy(x, blocked, pairs, blocked, k - blocked);
        return pairs;
    }

    /** Lane j takes lane 2j of the pair of vectors {@code (a, b)} in {@code a.rearrange(EVEN_LANES, b)}: the even elements. */
    private static final VectorShuffle<Float> EVEN_LANES = VectorShuffle.fromOp(FLOATS, j -> 2 * j);
    /** Likewise the odd elements: lane j takes lane 2j + 1. */
    private static final VectorShuffle<Float> ODD_LANES = VectorShuffle.fromOp(FLOATS, j -> 2 * j + 1);

    /**
     * The f16 lane path's factor on x: an f16 half moved into f32 bit positions by shifts alone
     * keeps its 5-bit exponent field, so it reads as its value times 2^-112 (subnormal halves as f32
     * subnormals, exactly), and x times 2^112 restores every product exactly.
     */
    private static final float HALF_SCALE = 0x1p112f;
    /** The sign, 5-bit exponent and 10-bit mantissa of an f16 half after an arithmetic shift right by 3. */
    private static final int HALF_BITS = 0x8FFFE000;

    /**
     * f16 weight rows n..n+3 times x, added to out[n..n+3], with the f16 halves converted in int
     * lanes ({@link #HALF_SCALE}); {@code scaledPairs} is x times 2^112 laid out by
     * {@link #splitPairs}. A half with exponent field 31 (Inf, NaN) would read as a finite number, so
     * the exponent bits of every weight are OR-ed together and a tile where they could include 31
     * adds nothing and returns {@link #LANES_REFUSED}, for an exact path to redo; otherwise it returns
     * what {@link #touchAhead} read of the tile at byte {@code ahead}. That needs some weight of at least
     * 2 in magnitude in the tile (exponent 16 or more), so a trained model's weights rarely trigger it.
     */
    private static int dotRowsF16Lanes(float[] scaledPairs, float[] x, int k, MemorySegment weight, int n, float[] out,
                                       long ahead) {
        long r0 = (long) n * k * 2;
        long r1 = r0 + 2L * k;
        long r2 = r1 + 2L * k;
        long r3 = r2 + 2L * k;
        FloatVector a0 = FloatVector.zero(FLOATS);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        IntVector seen = IntVector.zero(INTS);
        int touched = 0;
        int blocked = k - k % PAIR_BLOCK;
        for (int i = 0; i < blocked; i += PAIR_BLOCK) {
            FloatVector even = FloatVector.fromArray(FLOATS, scaledPairs, i);
            FloatVector odd = FloatVector.fromArray(FLOATS, scaledPairs, i + LANES);
            IntVector p0 = IntVector.fromMemorySegment(INTS, weight, r0 + 2L * i, ByteOrder.LITTLE_ENDIAN);
            IntVector p1 = IntVector.fromMemorySegment(INTS, weight, r1 + 2L * i, ByteOrder.LITTLE_ENDIAN);
            IntVector p2 = IntVector.fromMemorySegment(INTS, weight, r2 + 2L * i, ByteOrder.LITTLE_ENDIAN);
            IntVector p3 = IntVector.fromMemorySegment(INTS, weight, r3 + 2L * i, ByteOrder.LITTLE_ENDIAN);
            seen = seen.or(p0.or(p1)).or(p2.or(p3));
            // Four rows of 2k bytes over k/PAIR_BLOCK steps: 4·PAIR_BLOCK bytes of the next tile per step,
            // of which two cache lines are touched (all of it with 256-bit vectors, half with 512-bit).
            if (ahead != NO_TOUCH) {
                touched += touchAhead(weight, ahead + 8L * i);
            }
            // Low half: shifted to the top, then down by 3 (sign-extending); high half: down by 3.
            // The mask drops the sign's copies and the other half's bits.
            a0 = p0.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats()
                    .fma(even, p0.lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats().fma(odd, a0));
            a1 = p1.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats()
                    .fma(even, p1.lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats().fma(odd, a1));
            a2 = p2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats()
                    .fma(even, p2.lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats().fma(odd, a2));
            a3 = p3.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats()
                    .fma(even, p3.lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats().fma(odd, a3));
        }
        IntVector exponents = seen.and(0x7C007C00);
        if (exponents.and(0x7C00).compare(VectorOperators.EQ, 0x7C00)
                .or(exponents.compare(VectorOperators.GE, 0x7C000000)).anyTrue()) {
            return LANES_REFUSED;
        }
        float s0 = a0.reduceLanes(VectorOperators.ADD);
        float s1 = a1.reduceLanes(VectorOperators.ADD);
        float s2 = a2.reduceLanes(VectorOperators.ADD);
        float s3 = a3.reduceLanes(VectorOperators.ADD);
        for (int i = blocked; i < k; i++) {
            float xi = x[i];
            s0 += xi * Float.float16ToFloat(weight.get(DType.I16_LE, r0 + 2L * i));
            s1 += xi * Float.float16ToFloat(weight.get(DType.I16_LE, r1 + 2L * i));
            s2 += xi * Float.float16ToFloat(weight.get(DType.I16_LE, r2 + 2L * i));
            s3 += xi * Float.float16ToFloat(weight.get(DType.I16_LE, r3 + 2L * i));
        }
        out[n] += s0;
        out[n + 1] += s1;
        out[n + 2] += s2;
        out[n + 3] += s3;
        // Never LANES_REFUSED, so a tile that was added is not redone.
        return touched == LANES_REFUSED ? 0 : touched;
    }

    /**
     * f16 weight rows n..n+7 times x, added to out[n..n+7]: {@link #dotRowsF16Lanes} over eight memory
     * streams, for long rows, as {@link #dotRowsBf16x8} is for bf16. Returns false, having added
     * nothing, where a half in the group could be Inf or NaN.
     */
    private static boolean dotRowsF16Lanesx8(float[] scaledPairs, float[] x, int k, MemorySegment weight, int n, float[] out) {
        long stride = 2L * k;
        long r0 = n * stride;
        FloatVector a0 = FloatVector.zero(FLOATS);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        FloatVector a4 = a0;
        FloatVector a5 = a0;
        FloatVector a6 = a0;
        FloatVector a7 = a0;
        IntVector seen = IntVector.zero(INTS);
        int blocked = k - k % PAIR_BLOCK;
        for (int i = 0; i < blocked; i += PAIR_BLOCK) {
            FloatVector even = FloatVector.fromArray(FLOATS, scaledPairs, i);
            FloatVector odd = FloatVector.fromArray(FLOATS, scaledPairs, i + LANES);
            long at = r0 + 2L * i;
            IntVector p;
            p = IntVector.fromMemorySegment(INTS, weight, at, ByteOrder.LITTLE_ENDIAN);
            seen = seen.or(p);
            a0 = p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats()
                    .fma(even, p.lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats().fma(odd, a0));
            p = IntVector.fromMemorySegment(INTS, weight, at + stride, ByteOrder.LITTLE_ENDIAN);
            seen = seen.or(p);
            a1 = p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats()
                    .fma(even, p.lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats().fma(odd, a1));
            p = IntVector.fromMemorySegment(INTS, weight, at + 2 * stride, ByteOrder.LITTLE_ENDIAN);
            seen = seen.or(p);
            a2 = p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats()
                    .fma(even, p.lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats().fma(odd, a2));
            p = IntVector.fromMemorySegment(INTS, weight, at + 3 * stride, ByteOrder.LITTLE_ENDIAN);
            seen = seen.or(p);
            a3 = p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats()
                    .fma(even, p.lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats().fma(odd, a3));
            p = IntVector.fromMemorySegment(INTS, weight, at + 4 * stride, ByteOrder.LITTLE_ENDIAN);
            seen = seen.or(p);
            a4 = p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats()
                    .fma(even, p.lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats().fma(odd, a4));
            p = IntVector.fromMemorySegment(INTS, weight, at + 5 * stride, ByteOrder.LITTLE_ENDIAN);
            seen = seen.or(p);
            a5 = p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats()
                    .fma(even, p.lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats().fma(odd, a5));
            p = IntVector.fromMemorySegment(INTS, weight, at + 6 * stride, ByteOrder.LITTLE_ENDIAN);
            seen = seen.or(p);
            a6 = p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats()
                    .fma(even, p.lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats().fma(odd, a6));
            p = IntVector.fromMemorySegment(INTS, weight, at + 7 * stride, ByteOrder.LITTLE_ENDIAN);
            seen = seen.or(p);
            a7 = p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats()
                    .fma(even, p.lanewise(VectorOperators.ASHR, 3).and(HALF_BITS).reinterpretAsFloats().fma(odd, a7));
        }
        // As in dotRowsF16Lanes: could any half's exponent field be 31 (Inf, NaN)?
        IntVector exponents = seen.and(0x7C007C00);
        if (exponents.and(0x7C00).compare(VectorOperators.EQ, 0x7C00)
                .or(exponents.compare(VectorOperators.GE, 0x7C000000)).anyTrue()) {
            return false;
        }
        out[n] += a0.reduceLanes(VectorOperators.ADD) + f16Tail(x, blocked, k, weight, r0);
        out[n + 1] += a1.reduceLanes(VectorOperators.ADD) + f16Tail(x, blocked, k, weight, r0 + stride);
        out[n + 2] += a2.reduceLanes(VectorOperators.ADD) + f16Tail(x, blocked, k, weight, r0 + 2L * stride);
        out[n + 3] += a3.reduceLanes(VectorOperators.ADD) + f16Tail(x, blocked, k, weight, r0 + 3L * stride);
        out[n + 4] += a4.reduceLanes(VectorOperators.ADD) + f16Tail(x, blocked, k, weight, r0 + 4L * stride);
        out[n + 5] += a5.reduceLanes(VectorOperators.ADD) + f16Tail(x, blocked, k, weight, r0 + 5L * stride);
        out[n + 6] += a6.reduceLanes(VectorOperators.ADD) + f16Tail(x, blocked, k, weight, r0 + 6L * stride);
        out[n + 7] += a7.reduceLanes(VectorOperators.ADD) + f16Tail(x, blocked, k, weight, r0 + 7L * stride);
        return true;
    }

    /** Σ x[i]·w[i] over columns from..k-1 of the f16 row at byte offset {@code row}: what a tile's int lanes leave over. */
    private static float f16Tail(float[] x, int from, int k, MemorySegment weight, long row) {
        float sum = 0f;
        for (int i = from; i < k; i++) {
            sum += x[i] * Float.float16ToFloat(weight.get(DType.I16_LE, row + 2L * i));
        }
        return sum;
    }

    /** What {@link #dotRowsF16Lanes} returns for a tile it adds nothing for. */
    private static final int LANES_REFUSED = Integer.MIN_VALUE;

    /** Columns of the f16 rows a one-row tile widens at a time: four rows' worth (8 KiB of f32) stays in L1. */
    private static final int ONE_ROW_CHUNK = 512;

    /**
     * f16 weight rows n..n+3 times x, added to out[n..n+3], widened into a small L1 buffer first by
     * {@link #widenF16}, whose plain loop C2 compiles to the hardware conversion (vcvtph2ps). Exact
     * for every input and never multiplies an f32 subnormal; {@link #dotRowsF16Lanes} is twice as fast
     * streamed from memory where subnormal operands cost nothing. An exact conversion in Vector API
     * lanes that avoids f32 subnormals (re-biased exponents plus a per-lane fix for subnormal halves,
     * or a per-block check sending such blocks to a scalar path) measured no faster than this: on
     * real weight distributions one 64-weight block in seven holds a subnormal half. Returns what
     * {@link #touchAhead} read of the next chunk (one thread on an Intel Xeon: 12.4 GB/s streamed
     * with the touches, 8.9-9.6 without).
     */
    private static int dotRowsF16(float[] x, int k, MemorySegment weight, int n, float[] out, float[] buffer) {
        long r0 = (long) n * k;
        FloatVector a0 = FloatVector.zero(FLOATS);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        float s0 = 0f;
        float s1 = 0f;
        float s2 = 0f;
        float s3 = 0f;
        int touched = 0;
        long rowBytes = 2L * k;
        for (int k0 = 0; k0 < k; k0 += ONE_ROW_CHUNK) {
            int kc = Math.min(ONE_ROW_CHUNK, k - k0);
            widenF16(weight, 2 * (r0 + k0), buffer, 0, kc);
            widenF16(weight, 2 * (r0 + k + k0), buffer, ONE_ROW_CHUNK, kc);
            widenF16(weight, 2 * (r0 + 2L * k + k0), buffer, 2 * ONE_ROW_CHUNK, kc);
            widenF16(weight, 2 * (r0 + 3L * k + k0), buffer, 3 * ONE_ROW_CHUNK, kc);
            // While the widened chunk is multiplied no weight is loaded, so the next chunk of the four
            // rows is touched meanwhile: in step j, two cache lines of row j mod 4, 128 bytes further
            // into it every fourth step, up to where that chunk ends.
            long nextChunk = 2 * (r0 + k0 + ONE_ROW_CHUNK);
            long nextChunkBytes = 2L * Math.min(ONE_ROW_CHUNK, k - k0 - ONE_ROW_CHUNK);
            int i = 0;
            for (int bound = FLOATS.loopBound(kc), step = 0; i < bound; i += LANES, step++) {
                long into = (long) (step >> 2) * 128;
                if (into + 68 <= nextChunkBytes) {
                    touched += touchAhead(weight, nextChunk + (step & 3) * rowBytes + into);
                }
                FloatVector xv = FloatVector.fromArray(FLOATS, x, k0 + i);
                a0 = FloatVector.fromArray(FLOATS, buffer, i).fma(xv, a0);
                a1 = FloatVector.fromArray(FLOATS, buffer, ONE_ROW_CHUNK + i).fma(xv, a1);
                a2 = FloatVector.fromArray(FLOATS, buffer, 2 * ONE_ROW_CHUNK + i).fma(xv, a2);
                a3 = FloatVector.fromArray(FLOATS, buffer, 3 * ONE_ROW_CHUNK + i).fma(xv, a3);
            }
            for (; i < kc; i++) {
                float xi = x[k0 + i];
                s0 += xi * buffer[i];
                s1 += xi * buffer[ONE_ROW_CHUNK + i];
                s2 += xi * buffer[2 * ONE_ROW_CHUNK + i];
                s3 += xi * buffer[3 * ONE_ROW_CHUNK + i];
            }
        }
        out[n] += s0 + a0.reduceLanes(VectorOperators.ADD);
        out[n + 1] += s1 + a1.reduceLanes(VectorOperators.ADD);
        out[n + 2] += s2 + a2.reduceLanes(VectorOperators.ADD);
        out[n + 3] += s3 + a3.reduceLanes(VectorOperators.ADD);
        return touched;
    }

    /**
     * bf16 weight rows n..n+3 times x, added to out[n..n+3]: bf16 is the upper half of an f32, so exact.
     * Returns what {@link #touchAhead} read of the tile at byte {@code ahead}.
     */
    private static int dotRowsBf16(float[] pairs, float[] x, int k, MemorySegment weight, int n, float[] out, long ahead) {
        long r0 = (long) n * k * 2;
        long r1 = r0 + 2L * k;
        long r2 = r1 + 2L * k;
        long r3 = r2 + 2L * k;
        FloatVector a0 = FloatVector.zero(FLOATS);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        int touched = 0;
        int blocked = k - k % PAIR_BLOCK;
        for (int i = 0; i < blocked; i += PAIR_BLOCK) {
            FloatVector even = FloatVector.fromArray(FLOATS, pairs, i);
            FloatVector odd = FloatVector.fromArray(FLOATS, pairs, i + LANES);
            // As in dotRowsF16Lanes: two cache lines of the next four-row tile per step.
            if (ahead != NO_TOUCH) {
                touched += touchAhead(weight, ahead + 8L * i);
            }
            IntVector p0 = IntVector.fromMemorySegment(INTS, weight, r0 + 2L * i, ByteOrder.LITTLE_ENDIAN);
            IntVector p1 = IntVector.fromMemorySegment(INTS, weight, r1 + 2L * i, ByteOrder.LITTLE_ENDIAN);
            IntVector p2 = IntVector.fromMemorySegment(INTS, weight, r2 + 2L * i, ByteOrder.LITTLE_ENDIAN);
            IntVector p3 = IntVector.fromMemorySegment(INTS, weight, r3 + 2L * i, ByteOrder.LITTLE_ENDIAN);
            a0 = p0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(even, p0.and(0xFFFF0000).reinterpretAsFloats().fma(odd, a0));
            a1 = p1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(even, p1.and(0xFFFF0000).reinterpretAsFloats().fma(odd, a1));
            a2 = p2.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(even, p2.and(0xFFFF0000).reinterpretAsFloats().fma(odd, a2));
            a3 = p3.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(even, p3.and(0xFFFF0000).reinterpretAsFloats().fma(odd, a3));
        }
        float s0 = a0.reduceLanes(VectorOperators.ADD);
        float s1 = a1.reduceLanes(VectorOperators.ADD);
        float s2 = a2.reduceLanes(VectorOperators.ADD);
        float s3 = a3.reduceLanes(VectorOperators.ADD);
        for (int i = blocked; i < k; i++) {
            float xi = x[i];
            s0 += xi * Float.intBitsToFloat(weight.get(DType.I16_LE, r0 + 2L * i) << 16);
            s1 += xi * Float.intBitsToFloat(weight.get(DType.I16_LE, r1 + 2L * i) << 16);
            s2 += xi * Float.intBitsToFloat(weight.get(DType.I16_LE, r2 + 2L * i) << 16);
            s3 += xi * Float.intBitsToFloat(weight.get(DType.I16_LE, r3 + 2L * i) << 16);
        }
        out[n] += s0;
        out[n + 1] += s1;
        out[n + 2] += s2;
        out[n + 3] += s3;
        return touched;
    }

    /**
     * bf16 weight rows n..n+7 times x, added to out[n..n+7]: {@link #dotRowsBf16} over eight memory
     * streams, for long rows.
     */
    private static void dotRowsBf16x8(float[] pairs, float[] x, int k, MemorySegment weight, int n, float[] out) {
        long stride = 2L * k;
        long r0 = n * stride;
        FloatVector a0 = FloatVector.zero(FLOATS);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        FloatVector a4 = a0;
        FloatVector a5 = a0;
        FloatVector a6 = a0;
        FloatVector a7 = a0;
        int blocked = k - k % PAIR_BLOCK;
        for (int i = 0; i < blocked; i += PAIR_BLOCK) {
            FloatVector even = FloatVector.fromArray(FLOATS, pairs, i);
            FloatVector odd = FloatVector.fromArray(FLOATS, pairs, i + LANES);
            long at = r0 + 2L * i;
            IntVector p;
            p = IntVector.fromMemorySegment(INTS, weight, at, ByteOrder.LITTLE_ENDIAN);
            a0 = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(even, p.and(0xFFFF0000).reinterpretAsFloats().fma(odd, a0));
            p = IntVector.fromMemorySegment(INTS, weight, at + stride, ByteOrder.LITTLE_ENDIAN);
            a1 = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(even, p.and(0xFFFF0000).reinterpretAsFloats().fma(odd, a1));
            p = IntVector.fromMemorySegment(INTS, weight, at + 2 * stride, ByteOrder.LITTLE_ENDIAN);
            a2 = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(even, p.and(0xFFFF0000).reinterpretAsFloats().fma(odd, a2));
            p = IntVector.fromMemorySegment(INTS, weight, at + 3 * stride, ByteOrder.LITTLE_ENDIAN);
            a3 = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(even, p.and(0xFFFF0000).reinterpretAsFloats().fma(odd, a3));
            p = IntVector.fromMemorySegment(INTS, weight, at + 4 * stride, ByteOrder.LITTLE_ENDIAN);
            a4 = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(even, p.and(0xFFFF0000).reinterpretAsFloats().fma(odd, a4));
            p = IntVector.fromMemorySegment(INTS, weight, at + 5 * stride, ByteOrder.LITTLE_ENDIAN);
            a5 = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(even, p.and(0xFFFF0000).reinterpretAsFloats().fma(odd, a5));
            p = IntVector.fromMemorySegment(INTS, weight, at + 6 * stride, ByteOrder.LITTLE_ENDIAN);
            a6 = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(even, p.and(0xFFFF0000).reinterpretAsFloats().fma(odd, a6));
            p = IntVector.fromMemorySegment(INTS, weight, at + 7 * stride, ByteOrder.LITTLE_ENDIAN);
            a7 = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(even, p.and(0xFFFF0000).reinterpretAsFloats().fma(odd, a7));
        }
        out[n] += a0.reduceLanes(VectorOperators.ADD) + bf16Tail(x, blocked, k, weight, r0);
        out[n + 1] += a1.reduceLanes(VectorOperators.ADD) + bf16Tail(x, blocked, k, weight, r0 + stride);
        out[n + 2] += a2.reduceLanes(VectorOperators.ADD) + bf16Tail(x, blocked, k, weight, r0 + 2L * stride);
        out[n + 3] += a3.reduceLanes(VectorOperators.ADD) + bf16Tail(x, blocked, k, weight, r0 + 3L * stride);
        out[n + 4] += a4.reduceLanes(VectorOperators.ADD) + bf16Tail(x, blocked, k, weight, r0 + 4L * stride);
        out[n + 5] += a5.reduceLanes(VectorOperators.ADD) + bf16Tail(x, blocked, k, weight, r0 + 5L * stride);
        out[n + 6] += a6.reduceLanes(VectorOperators.ADD) + bf16Tail(x, blocked, k, weight, r0 + 6L * stride);
        out[n + 7] += a7.reduceLanes(VectorOperators.ADD) + bf16Tail(x, blocked, k, weight, r0 + 7L * stride);
    }

    /** Σ x[i]·w[i] over columns from..k-1 of the bf16 row at byte offset {@code row}: what a tile's int lanes leave over. */
    private static float bf16Tail(float[] x, int from, int k, MemorySegment weight, long row) {
        float sum = 0f;
        for (int i = from; i < k; i++) {
            sum += x[i] * Float.intBitsToFloat(weight.get(DType.I16_LE, row + 2L * i) << 16);
        }
        return sum;
    }

    /** f32 weight rows n..n+3 times x, added to out[n..n+3]. */
    private static void dotRowsF32(float[] x, int k, MemorySegment weight, int n, float[] out) {
        long r0 = (long) n * k * 4;
        long r1 = r0 + 4L * k;
        long r2 = r1 + 4L * k;
        long r3 = r2 + 4L * k;
        FloatVector a0 = FloatVector.zero(FLOATS);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        int i = 0;
        for (int bound = FLOATS.loopBound(k); i < bound; i += LANES) {
            FloatVector xv = FloatVector.fromArray(FLOATS, x, i);
            a0 = FloatVector.fromMemorySegment(FLOATS, weight, r0 + 4L * i, ByteOrder.LITTLE_ENDIAN).fma(xv, a0);
            a1 = FloatVector.fromMemorySegment(FLOATS, weight, r1 + 4L * i, ByteOrder.LITTLE_ENDIAN).fma(xv, a1);
            a2 = FloatVector.fromMemorySegment(FLOATS, weight, r2 + 4L * i, ByteOrder.LITTLE_ENDIAN).fma(xv, a2);
            a3 = FloatVector.fromMemorySegment(FLOATS, weight, r3 + 4L * i, ByteOrder.LITTLE_ENDIAN).fma(xv, a3);
        }
        float s0 = a0.reduceLanes(VectorOperators.ADD);
        float s1 = a1.reduceLanes(VectorOperators.ADD);
        float s2 = a2.reduceLanes(VectorOperators.ADD);
        float s3 = a3.reduceLanes(VectorOperators.ADD);
        for (; i < k; i++) {
            float xi = x[i];
            s0 += xi * weight.get(DType.F32_LE, r0 + 4L * i);
            s1 += xi * weight.get(DType.F32_LE, r1 + 4L * i);
            s2 += xi * weight.get(DType.F32_LE, r2 + 4L * i);
            s3 += xi * weight.get(DType.F32_LE, r3 + 4L * i);
        }
        out[n] += s0;
        out[n + 1] += s1;
        out[n + 2] += s2;
        out[n + 3] += s3;
    }

    /** One weight row times x, scalar: the rows left over after groups of four. */
    private static float dotExact(float[] x, int k, MemorySegment weight, DType dtype, int n) {
        long base = (long) n * k;
        float sum = 0f;
        for (int i = 0; i < k; i++) {
            sum += x[i] * dtype.getFloat(weight, base + i);
        }
        return sum;
    }

    private void linearDot(float[] x, int rows, int k, MemorySegment weight, DType dtype, int nFrom, int nTo,
                           float[] out, int outCols, float[] panel) {
        for (int n0 = nFrom; n0 < nTo; n0 += PANEL_ROWS) {
            int nb = Math.min(PANEL_ROWS, nTo - n0);
            for (int k0 = 0; k0 < k; k0 += PANEL_COLS) {
                int kc = Math.min(PANEL_COLS, k - k0);
                pack(weight, dtype, k, n0, nb, k0, kc, panel);
                multiplyPanel(x, k, rows, k0, kc, panel, n0, nb, out, outCols);
            }
        }
    }

    /**
     * The prefill path, blocked like a BLAS GEMM: for each block of up to WIDE_BLOCK_ROWS weight rows
     * and each WIDE_COLS-column slice, the weights are widened into panels of WIDE_ROWS rows stored
     * column-major (element kk of row j at kk·WIDE_ROWS + j), so one column is two vector loads; then
     * every block of input rows runs against every panel, six input rows at a time broadcasting each
     * x element into twelve accumulators (no horizontal sums). The transposing pack costs a strided
     * store per weight, repaid over the many input rows of a prefill.
     */
    private void linearBroadcast(float[] x, int rows, int k, MemorySegment weight, DType dtype, int nFrom, int nTo,
                                 float[] out, int outCols, Scratch scratch) {
        float[] wide = scratch.wide;
        for (int nc0 = nFrom; nc0 < nTo; nc0 += WIDE_BLOCK_ROWS) {
            int ncEnd = Math.min(nTo, nc0 + WIDE_BLOCK_ROWS);
            int panels = (ncEnd - nc0 + WIDE_ROWS - 1) / WIDE_ROWS;
            for (int k0 = 0; k0 < k; k0 += WIDE_COLS) {
                int kc = Math.min(WIDE_COLS, k - k0);
                for (int p = 0; p < panels; p++) {
                    int n0 = nc0 + p * WIDE_ROWS;
                    packTransposed(weight, dtype, k, n0, Math.min(WIDE_ROWS, ncEnd - n0), k0, kc, wide, p * WIDE_ROWS * kc, scratch.row);
                }
                for (int m0 = 0; m0 < rows; m0 += WIDE_ROW_BLOCK) {
                    int mEnd = Math.min(rows, m0 + WIDE_ROW_BLOCK);
                    for (int p = 0; p < panels; p++) {
                        int n0 = nc0 + p * WIDE_ROWS;
                        int nb = Math.min(WIDE_ROWS, ncEnd - n0);
                        int base = p * WIDE_ROWS * kc;
                        int m = m0;
                        for (; m + 6 <= mEnd; m += 6) {
                            tile6xWide(x, k, m, k0, kc, wide, base, out, outCols, n0, nb);
                        }
                        for (; m < mEnd; m++) {
                            tile1xWide(x, k, m, k0, kc, wide, base, out, outCols, n0, nb);
                        }
                    }
                }
            }
        }
    }

    /** Widens weight[n0 .. n0 + nb, k0 .. k0 + kc) column-major into wide[base ..], zero beyond row nb. */
    private void packTransposed(MemorySegment weight, DType dtype, int k, int n0, int nb, int k0, int kc,
                                float[] wide, int base, float[] row) {
        for (int r = 0; r < WIDE_ROWS; r++) {
            if (r < nb) {
                widen(weight, dtype, (long) (n0 + r) * k + k0, row, 0, kc);
                for (int kk = 0; kk < kc; kk++) {
                    wide[base + kk * WIDE_ROWS + r] = row[kk];
                }
            } else {
                for (int kk = 0; kk < kc; kk++) {
                    wide[base + kk * WIDE_ROWS + r] = 0f;
                }
            }
        }
    }

    /** Input rows m..m+5 times the transposed panel over kc columns, added to out[m.., n0 .. n0 + nb). */
    private static void tile6xWide(float[] x, int k, int m, int k0, int kc, float[] wide, int base,
                                   float[] out, int outCols, int n0, int nb) {
        int x0 = m * k + k0;
        int x1 = x0 + k;
        int x2 = x1 + k;
        int x3 = x2 + k;
        int x4 = x3 + k;
        int x5 = x4 + k;
        FloatVector c00 = FloatVector.zero(FLOATS);
        FloatVector c01 = c00;
        FloatVector c10 = c00;
        FloatVector c11 = c00;
        FloatVector c20 = c00;
        FloatVector c21 = c00;
        FloatVector c30 = c00;
        FloatVector c31 = c00;
        FloatVector c40 = c00;
        FloatVector c41 = c00;
        FloatVector c50 = c00;
        FloatVector c51 = c00;
        for (int kk = 0; kk < kc; kk++) {
            FloatVector w0 = FloatVector.fromArray(FLOATS, wide, base + kk * WIDE_ROWS);
            FloatVector w1 = FloatVector.fromArray(FLOATS, wide, base + kk * WIDE_ROWS + LANES);
            FloatVector b = FloatVector.broadcast(FLOATS, x[x0 + kk]);
            c00 = b.fma(w0, c00);
            c01 = b.fma(w1, c01);
            b = FloatVector.broadcast(FLOATS, x[x1 + kk]);
            c10 = b.fma(w0, c10);
            c11 = b.fma(w1, c11);
            b = FloatVector.broadcast(FLOATS, x[x2 + kk]);
            c20 = b.fma(w0, c20);
            c21 = b.fma(w1, c21);
            b = FloatVector.broadcast(FLOATS, x[x3 + kk]);
            c30 = b.fma(w0, c30);
            c31 = b.fma(w1, c31);
            b = FloatVector.broadcast(FLOATS, x[x4 + kk]);
            c40 = b.fma(w0, c40);
            c41 = b.fma(w1, c41);
            b = FloatVector.broadcast(FLOATS, x[x5 + kk]);
            c50 = b.fma(w0, c50);
            c51 = b.fma(w1, c51);
        }
        int o = m * outCols + n0;
        addWide(out, o, nb, c00, c01);
        addWide(out, o + outCols, nb, c10, c11);
        addWide(out, o + 2 * outCols, nb, c20, c21);
        addWide(out, o + 3 * outCols, nb, c30, c31);
        addWide(out, o + 4 * outCols, nb, c40, c41);
        addWide(out, o + 5 * outCols, nb, c50, c51);
    }

    /** Input row m times the transposed panel (rows left over after blocks of six). */
    private static void tile1xWide(float[] x, int k, int m, int k0, int kc, float[] wide, int base,
                                   float[] out, int outCols, int n0, int nb) {
        int x0 = m * k + k0;
        FloatVector c0 = FloatVector.zero(FLOATS);
        FloatVector c1 = c0;
        for (int kk = 0; kk < kc; kk++) {
            FloatVector b = FloatVector.broadcast(FLOATS, x[x0 + kk]);
            c0 = b.fma(FloatVector.fromArray(FLOATS, wide, base + kk * WIDE_ROWS), c0);
            c1 = b.fma(FloatVector.fromArray(FLOATS, wide, base + kk * WIDE_ROWS + LANES), c1);
        }
        addWide(out, m * outCols + n0, nb, c0, c1);
    }

    /** out[o .. o + nb) += the first nb lanes of (lo, hi); lanes past nb belong to other columns. */
    private static void addWide(float[] out, int o, int nb, FloatVector lo, FloatVector hi) {
        if (nb == WIDE_ROWS) {
            FloatVector.fromArray(FLOATS, out, o).add(lo).intoArray(out, o);
            FloatVector.fromArray(FLOATS, out, o + LANES).add(hi).intoArray(out, o + LANES);
            return;
        }
        VectorMask<Float> first = FLOATS.indexInRange(0, nb);
        VectorMask<Float> second = FLOATS.indexInRange(LANES, nb);
        FloatVector.fromArray(FLOATS, out, o, first).add(lo).intoArray(out, o, first);
        FloatVector.fromArray(FLOATS, out, o + LANES, second).add(hi).intoArray(out, o + LANES, second);
    }

    /**
     * Widens weight[n0 .. n0 + nb, k0 .. k0 + kc) into panel rows of stride kc, and zeroes the rows
     * up to the next multiple of 4 so tiles may read them (their sums are never stored).
     */
    private void pack(MemorySegment weight, DType dtype, int k, int n0, int nb, int k0, int kc, float[] panel) {
        for (int r = 0; r < nb; r++) {
            widen(weight, dtype, (long) (n0 + r) * k + k0, panel, r * kc, kc);
        }
        int padded = (nb + 3) & ~3;
        if (padded > nb) {
            Arrays.fill(panel, nb * kc, padded * kc, 0f);
        }
    }

    private static void multiplyPanel(float[] x, int k, int rows, int k0, int kc, float[] panel,
                                      int n0, int nb, float[] out, int outCols) {
        int m = 0;
        for (; m + 4 <= rows; m += 4) {
            for (int j = 0; j < nb; j += 2) {
                tile4x2(x, k, m, k0, kc, panel, j, out, outCols, n0, nb);
            }
        }
        for (; m < rows; m++) {
            for (int j = 0; j < nb; j += 4) {
                tile1x4(x, k, m, k0, kc, panel, j, out, outCols, n0, nb);
            }
        }
    }

    /** Input rows m..m+3 times panel rows j, j+1 over the panel's kc columns, added to out. */
    private static void tile4x2(float[] x, int k, int m, int k0, int kc, float[] panel, int j,
                                float[] out, int outCols, int n0, int nb) {
        int x0 = m * k + k0;
        int x1 = x0 + k;
        int x2 = x1 + k;
        int x3 = x2 + k;
        int w0 = j * kc;
        int w1 = w0 + kc;
        FloatVector a00 = FloatVector.zero(FLOATS);
        FloatVector a01 = a00;
        FloatVector a10 = a00;
        FloatVector a11 = a00;
        FloatVector a20 = a00;
        FloatVector a21 = a00;
        FloatVector a30 = a00;
        FloatVector a31 = a00;
        int i = 0;
        for (int bound = FLOATS.loopBound(kc); i < bound; i += LANES) {
            FloatVector wa = FloatVector.fromArray(FLOATS, panel, w0 + i);
            FloatVector wb = FloatVector.fromArray(FLOATS, panel, w1 + i);
            FloatVector xv = FloatVector.fromArray(FLOATS, x, x0 + i);
            a00 = xv.fma(wa, a00);
            a01 = xv.fma(wb, a01);
            xv = FloatVector.fromArray(FLOATS, x, x1 + i);
            a10 = xv.fma(wa, a10);
            a11 = xv.fma(wb, a11);
            xv = FloatVector.fromArray(FLOATS, x, x2 + i);
            a20 = xv.fma(wa, a20);
            a21 = xv.fma(wb, a21);
            xv = FloatVector.fromArray(FLOATS, x, x3 + i);
            a30 = xv.fma(wa, a30);
            a31 = xv.fma(wb, a31);
        }
        float s00 = a00.reduceLanes(VectorOperators.ADD);
        float s01 = a01.reduceLanes(VectorOperators.ADD);
        float s10 = a10.reduceLanes(VectorOperators.ADD);
        float s11 = a11.reduceLanes(VectorOperators.ADD);
        float s20 = a20.reduceLanes(VectorOperators.ADD);
        float s21 = a21.reduceLanes(VectorOperators.ADD);
        float s30 = a30.reduceLanes(VectorOperators.ADD);
        float s31 = a31.reduceLanes(VectorOperators.ADD);
        for (; i < kc; i++) {
            float wa = panel[w0 + i];
            float wb = panel[w1 + i];
            s00 += x[x0 + i] * wa;
            s01 += x[x0 + i] * wb;
            s10 += x[x1 + i] * wa;
            s11 += x[x1 + i] * wb;
            s20 += x[x2 + i] * wa;
            s21 += x[x2 + i] * wb;
            s30 += x[x3 + i] * wa;
            s31 += x[x3 + i] * wb;
        }
        int o = m * outCols + n0 + j;
        out[o] += s00;
        out[o + outCols] += s10;
        out[o + 2 * outCols] += s20;
        out[o + 3 * outCols] += s30;
        if (j + 1 < nb) {
            out[o + 1] += s01;
            out[o + 1 + outCols] += s11;
            out[o + 1 + 2 * outCols] += s21;
            out[o + 1 + 3 * outCols] += s31;
        }
    }

    /** Input row m times panel rows j..j+3 (the rows left over after blocks of four), added to out. */
    private static void tile1x4(float[] x, int k, int m, int k0, int kc, float[] panel, int j,
                                float[] out, int outCols, int n0, int nb) {
        int x0 = m * k + k0;
        int w0 = j * kc;
        int w1 = w0 + kc;
        int w2 = w1 + kc;
        int w3 = w2 + kc;
        FloatVector a0 = FloatVector.zero(FLOATS);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        int i = 0;
        for (int bound = FLOATS.loopBound(kc); i < bound; i += LANES) {
            FloatVector xv = FloatVector.fromArray(FLOATS, x, x0 + i);
            a0 = xv.fma(FloatVector.fromArray(FLOATS, panel, w0 + i), a0);
            a1 = xv.fma(FloatVector.fromArray(FLOATS, panel, w1 + i), a1);
            a2 = xv.fma(FloatVector.fromArray(FLOATS, panel, w2 + i), a2);
            a3 = xv.fma(FloatVector.fromArray(FLOATS, panel, w3 + i), a3);
        }
        float s0 = a0.reduceLanes(VectorOperators.ADD);
        float s1 = a1.reduceLanes(VectorOperators.ADD);
        float s2 = a2.reduceLanes(VectorOperators.ADD);
        float s3 = a3.reduceLanes(VectorOperators.ADD);
        for (; i < kc; i++) {
            float xi = x[x0 + i];
            s0 += xi * panel[w0 + i];
            s1 += xi * panel[w1 + i];
            s2 += xi * panel[w2 + i];
            s3 += xi * panel[w3 + i];
        }
        int o = m * outCols + n0 + j;
        out[o] += s0;
        int valid = nb - j;
        if (valid > 1) {
            out[o + 1] += s1;
        }
        if (valid > 2) {
            out[o + 2] += s2;
        }
        if (valid > 3) {
            out[o + 3] += s3;
        }
    }

    @Override
    public float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        // Two accumulators halve the FMA latency chain; attention calls this on 64- to 128-wide heads.
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = acc0;
        int i = 0;
        for (int bound = n - 2 * LANES; i <= bound; i += 2 * LANES) {
            acc0 = FloatVector.fromArray(FLOATS, a, aOff + i).fma(FloatVector.fromArray(FLOATS, b, bOff + i), acc0);
            acc1 = FloatVector.fromArray(FLOATS, a, aOff + i + LANES)
                    .fma(FloatVector.fromArray(FLOATS, b, bOff + i + LANES), acc1);
        }
        if (i <= n - LANES) {
            acc0 = FloatVector.fromArray(FLOATS, a, aOff + i).fma(FloatVector.fromArray(FLOATS, b, bOff + i), acc0);
            i += LANES;
        }
        float sum = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            sum += a[aOff + i] * b[bOff + i];
        }
        return sum;
    }

    @Override
    public void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        FloatVector a = FloatVector.broadcast(FLOATS, alpha);
        int i = 0;
        for (int bound = FLOATS.loopBound(n); i < bound; i += LANES) {
            FloatVector.fromArray(FLOATS, x, xOff + i).fma(a, FloatVector.fromArray(FLOATS, y, yOff + i))
                    .intoArray(y, yOff + i);
        }
        for (; i < n; i++) {
            y[yOff + i] += alpha * x[xOff + i];
        }
    }

    /** Four rows at a time: each loaded x vector feeds four independent FMA chains. */
    @Override
    public void dotRows(float[] x, int xOff, float[] rows, int rowOff, int rowStride, int count, int n, float[] out, int outOff) {
        int t = 0;
        int bound = FLOATS.loopBound(n);
        for (; t + 4 <= count; t += 4) {
            int r0 = rowOff + t * rowStride;
            int r1 = r0 + rowStride;
            int r2 = r1 + rowStride;
            int r3 = r2 + rowStride;
            FloatVector a0 = FloatVector.zero(FLOATS);
            FloatVector a1 = a0;
            FloatVector a2 = a0;
            FloatVector a3 = a0;
            int i = 0;
            for (; i < bound; i += LANES) {
                FloatVector xv = FloatVector.fromArray(FLOATS, x, xOff + i);
                a0 = FloatVector.fromArray(FLOATS, rows, r0 + i).fma(xv, a0);
                a1 = FloatVector.fromArray(FLOATS, rows, r1 + i).fma(xv, a1);
                a2 = FloatVector.fromArray(FLOATS, rows, r2 + i).fma(xv, a2);
                a3 = FloatVector.fromArray(FLOATS, rows, r3 + i).fma(xv, a3);
            }
            float s0 = a0.reduceLanes(VectorOperators.ADD);
            float s1 = a1.reduceLanes(VectorOperators.ADD);
            float s2 = a2.reduceLanes(VectorOperators.ADD);
            float s3 = a3.reduceLanes(VectorOperators.ADD);
            for (; i < n; i++) {
                float xi = x[xOff + i];
                s0 += xi * rows[r0 + i];
                s1 += xi * rows[r1 + i];
                s2 += xi * rows[r2 + i];
                s3 += xi * rows[r3 + i];
            }
            out[outOff + t] = s0;
            out[outOff + t + 1] = s1;
            out[outOff + t + 2] = s2;
            out[outOff + t + 3] = s3;
        }
        for (; t < count; t++) {
            out[outOff + t] = dot(x, xOff, rows, rowOff + t * rowStride, n);
        }
    }

    /**
     * Column chunks outside, rows inside, so each chunk's sum stays in registers across the rows;
     * eight chunks at a time give eight independent FMA chains, enough to hide the FMA latency.
     */
    @Override
    public void accumulateRows(float[] weights, int wOff, float[] rows, int rowOff, int rowStride, int count, int n,
                               float[] y, int yOff) {
        int i = 0;
        for (; i + 8 * LANES <= n; i += 8 * LANES) {
            FloatVector a0 = FloatVector.fromArray(FLOATS, y, yOff + i);
            FloatVector a1 = FloatVector.fromArray(FLOATS, y, yOff + i + LANES);
            FloatVector a2 = FloatVector.fromArray(FLOATS, y, yOff + i + 2 * LANES);
            FloatVector a3 = FloatVector.fromArray(FLOATS, y, yOff + i + 3 * LANES);
            FloatVector a4 = FloatVector.fromArray(FLOATS, y, yOff + i + 4 * LANES);
            FloatVector a5 = FloatVector.fromArray(FLOATS, y, yOff + i + 5 * LANES);
            FloatVector a6 = FloatVector.fromArray(FLOATS, y, yOff + i + 6 * LANES);
            FloatVector a7 = FloatVector.fromArray(FLOATS, y, yOff + i + 7 * LANES);
            for (int t = 0; t < count; t++) {
                FloatVector w = FloatVector.broadcast(FLOATS, weights[wOff + t]);
                int r = rowOff + t * rowStride + i;
                a0 = FloatVector.fromArray(FLOATS, rows, r).fma(w, a0);
                a1 = FloatVector.fromArray(FLOATS, rows, r + LANES).fma(w, a1);
                a2 = FloatVector.fromArray(FLOATS, rows, r + 2 * LANES).fma(w, a2);
                a3 = FloatVector.fromArray(FLOATS, rows, r + 3 * LANES).fma(w, a3);
                a4 = FloatVector.fromArray(FLOATS, rows, r + 4 * LANES).fma(w, a4);
                a5 = FloatVector.fromArray(FLOATS, rows, r + 5 * LANES).fma(w, a5);
                a6 = FloatVector.fromArray(FLOATS, rows, r + 6 * LANES).fma(w, a6);
                a7 = FloatVector.fromArray(FLOATS, rows, r + 7 * LANES).fma(w, a7);
            }
            a0.intoArray(y, yOff + i);
            a1.intoArray(y, yOff + i + LANES);
            a2.intoArray(y, yOff + i + 2 * LANES);
            a3.intoArray(y, yOff + i + 3 * LANES);
            a4.intoArray(y, yOff + i + 4 * LANES);
            a5.intoArray(y, yOff + i + 5 * LANES);
            a6.intoArray(y, yOff + i + 6 * LANES);
            a7.intoArray(y, yOff + i + 7 * LANES);
        }
        for (; i + 2 * LANES <= n; i += 2 * LANES) {
            FloatVector a0 = FloatVector.fromArray(FLOATS, y, yOff + i);
            FloatVector a1 = FloatVector.fromArray(FLOATS, y, yOff + i + LANES);
            for (int t = 0; t < count; t++) {
                FloatVector w = FloatVector.broadcast(FLOATS, weights[wOff + t]);
                int r = rowOff + t * rowStride + i;
                a0 = FloatVector.fromArray(FLOATS, rows, r).fma(w, a0);
                a1 = FloatVector.fromArray(FLOATS, rows, r + LANES).fma(w, a1);
            }
            a0.intoArray(y, yOff + i);
            a1.intoArray(y, yOff + i + LANES);
        }
        for (; i + LANES <= n; i += LANES) {
            FloatVector a0 = FloatVector.fromArray(FLOATS, y, yOff + i);
            for (int t = 0; t < count; t++) {
                a0 = FloatVector.fromArray(FLOATS, rows, rowOff + t * rowStride + i).fma(FloatVector.broadcast(FLOATS, weights[wOff + t]), a0);
            }
            a0.intoArray(y, yOff + i);
        }
        for (; i < n; i++) {
            float sum = y[yOff + i];
            for (int t = 0; t < count; t++) {
                sum += weights[wOff + t] * rows[rowOff + t * rowStride + i];
            }
            y[yOff + i] = sum;
        }
    }

    @Override
    public void scale(float[] x, int off, int n, float factor) {
        int i = 0;
        for (int bound = FLOATS.loopBound(n); i < bound; i += LANES) {
            FloatVector.fromArray(FLOATS, x, off + i).mul(factor).intoArray(x, off + i);
        }
        for (; i < n; i++) {
            x[off + i] *= factor;
        }
    }

    @Override
    public float expShiftSum(float[] x, int off, int n, float shift) {
        FloatVector acc = FloatVector.zero(FLOATS);
        int i = 0;
        for (int bound = FLOATS.loopBound(n); i < bound; i += LANES) {
            FloatVector e = FloatVector.fromArray(FLOATS, x, off + i).sub(shift).lanewise(VectorOperators.EXP);
            e.intoArray(x, off + i);
            acc = acc.add(e);
        }
        if (i < n) {
            VectorMask<Float> tail = FLOATS.indexInRange(i, n);
            FloatVector e = FloatVector.fromArray(FLOATS, x, off + i, tail).sub(shift).lanewise(VectorOperators.EXP, tail);
            e.intoArray(x, off + i, tail);
            acc = acc.add(e, tail);
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    @Override
    public void widen(MemorySegment src, DType dtype, long index, float[] dst, int dstOff, int n) {
        switch (dtype) {
            case F32 -> MemorySegment.copy(src, DType.F32_LE, index * Float.BYTES, dst, dstOff, n);
            case F16 -> widenF16(src, index * 2, dst, dstOff, n);
            case BF16 -> widenBf16(src, index * 2, dst, dstOff, n);
            default -> throw new IllegalArgumentException("cannot widen " + dtype + " to f32");
        }
    }

    /** Kept a plain counted loop on purpose: C2 turns it into the hardware half-to-float conversion. */
    private static void widenF16(MemorySegment src, long byteOffset, float[] dst, int dstOff, int n) {
        for (int i = 0; i < n; i++) {
            dst[dstOff + i] = Float.float16ToFloat(src.get(DType.I16_LE, byteOffset + 2L * i));
        }
    }

    private static void widenBf16(MemorySegment src, long byteOffset, float[] dst, int dstOff, int n) {
        int i = 0;
        for (int bound = FLOATS.loopBound(n); i < bound; i += LANES) {
            ShortVector halves = ShortVector.fromMemorySegment(SHORTS, src, byteOffset + 2L * i, ByteOrder.LITTLE_ENDIAN);
            // S2I sign-extends; the shift pushes the extension out, leaving bf16 bits as the upper half.
            ((IntVector) halves.convertShape(VectorOperators.S2I, INTS, 0))
                    .lanewise(VectorOperators.LSHL, 16)
                    .reinterpretAsFloats()
                    .intoArray(dst, dstOff + i);
        }
        for (; i < n; i++) {
            dst[dstOff + i] = Float.intBitsToFloat(src.get(DType.I16_LE, byteOffset + 2L * i) << 16);
        }
    }

    @Override
    public void siluMul(float[] gate, float[] up, int from, int to) {
        int i = from;
        for (int bound = from + FLOATS.loopBound(to - from); i < bound; i += LANES) {
            FloatVector g = FloatVector.fromArray(FLOATS, gate, i);
            FloatVector sigmoidDenominator = g.neg().lanewise(VectorOperators.EXP).add(1f);
            g.div(sigmoidDenominator).mul(FloatVector.fromArray(FLOATS, up, i)).intoArray(gate, i);
        }
        for (; i < to; i++) {
            float v = gate[i];
            gate[i] = v / (1f + (float) Math.exp(-v)) * up[i];
        }
    }

    /**
     * gelu(x) = x·(1 − h) for x ≥ 0 and x·h for x &lt; 0, with h = erfc(|x|/√2)/2: working from erfc
     * keeps the relative accuracy of the small negative tail, where 1 + erf(x/√2) would cancel.
     */
    @Override
    public void gelu(float[] x, int from, int to) {
        int i = from;
        for (int bound = from + FLOATS.loopBound(to - from); i < bound; i += LANES) {
            FloatVector v = FloatVector.fromArray(FLOATS, x, i);
            FloatVector h = halfErfc(v.abs());
            FloatVector factor = h.neg().add(1f).blend(h, v.compare(VectorOperators.LT, 0f));
            v.mul(factor).intoArray(x, i);
        }
        for (; i < to; i++) {
            float v = x[i];
            float h = halfErfc(Math.abs(v));
            x[i] = v * (v < 0f ? h : 1f - h);
        }
    }

    /*
     * erfc(z)/2 at z = |x|/√2 from the Chebyshev fit in Numerical Recipes ("erfcc"): erfc(z) =
     * t·exp(P(t) − z²) with t = 1/(1 + z/2), fractional error below 1.2e-7 for every z >= 0. z² is
     * taken as x²/2 (one rounding rather than three), since its rounding becomes relative error of
     * the result.
     */
    private static FloatVector halfErfc(FloatVector ax) {
        FloatVector t = FloatVector.broadcast(FLOATS, 1f).div(ax.mul(0.5f * INV_SQRT2).add(1f));
        FloatVector p = t.mul(0.17087277f).add(-0.82215223f);
        p = p.fma(t, FloatVector.broadcast(FLOATS, 1.48851587f));
        p = p.fma(t, FloatVector.broadcast(FLOATS, -1.13520398f));
        p = p.fma(t, FloatVector.broadcast(FLOATS, 0.27886807f));
        p = p.fma(t, FloatVector.broadcast(FLOATS, -0.18628806f));
        p = p.fma(t, FloatVector.broadcast(FLOATS, 0.09678418f));
        p = p.fma(t, FloatVector.broadcast(FLOATS, 0.37409196f));
        p = p.fma(t, FloatVector.broadcast(FLOATS, 1.00002368f));
        p = p.fma(t, FloatVector.broadcast(FLOATS, -1.26551223f));
        return t.mul(0.5f).mul(ax.mul(ax).fma(FloatVector.broadcast(FLOATS, -0.5f), p).lanewise(VectorOperators.EXP));
    }

    private static float halfErfc(float ax) {
        float t = 1f / (1f + 0.5f * INV_SQRT2 * ax);
        float p = Math.fma(0.17087277f, t, -0.82215223f);
        p = Math.fma(p, t, 1.48851587f);
        p = Math.fma(p, t, -1.13520398f);
        p = Math.fma(p, t, 0.27886807f);
        p = Math.fma(p, t, -0.18628806f);
        p = Math.fma(p, t, 0.09678418f);
        p = Math.fma(p, t, 0.37409196f);
        p = Math.fma(p, t, 1.00002368f);
        p = Math.fma(p, t, -1.26551223f);
        return 0.5f * t * (float) Math.exp(Math.fma(ax * ax, -0.5f, p));
    }
}
