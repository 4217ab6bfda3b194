package io.inf2.compute.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.inf2.tensor.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * Every VectorKernels fast path against ReferenceKernels.
 *
 * <p>Tolerances. The fast kernels sum the same fp32 products in a different order (lanes, then a
 * horizontal reduction, then panels). For a sum of k products computed in fp32 in any order, the
 * rounding error is at most γ_k·Σ|x_i·w_i| with γ_k = k·u/(1 − k·u) and u = 2⁻²⁴ (Higham, Accuracy
 * and Stability of Numerical Algorithms, §3.1; fused multiply-adds only lower it). Both results are
 * within that of the exact sum, so they are within 2·γ_k·Σ|x_i·w_i| of each other, plus one rounding
 * of the bias addition each. That bound is what {@link #assertLinearClose} allows. Because a bound
 * that scales with k could hide a dropped term for large k, {@link #linearIsExactOnIntegers} also
 * runs every shape on small integers, where every partial sum is exact in any order and the results
 * must be bit-identical.
 */
class VectorKernelsTest {

    private static final double U = 0x1p-24;
    private static final Arena ARENA = Arena.ofShared();
    private final CpuKernels fast = new VectorKernels();
    /** Every f16 widening of batch-1 linear: each must be exact whichever this machine would pick. */
    private final CpuKernels[] fastLinear = java.util.Arrays.stream(VectorKernels.HalfWidening.values())
            .map(VectorKernels::new).toArray(CpuKernels[]::new);
    private final CpuKernels reference = new ReferenceKernels();

    /** k values around the lane counts (4, 8, 16), the panel width (2048) and odd tails. */
    private static final int[] KS = {1, 3, 7, 8, 9, 16, 17, 31, 64, 100, 257, 1000, 2047, 2048, 2049, 4099};
    private static final int[] NS = {1, 2, 5, 8, 13, 19};

    @AfterAll
    static void freeMemory() {
        ARENA.close();
    }

    @Test
    void fastestIsTheVectorKernelsWhenTheModuleIsPresent() {
        assertInstanceOf(VectorKernels.class, CpuKernels.fastest());
    }

    @Test
    void linearMatchesTheReferenceForEveryDtypeShapeAndBias() {
        SplittableRandom random = new SplittableRandom(1);
        for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            for (int k : KS) {
                for (int rows = 1; rows <= 9; rows++) {
                    int n = NS[(k + rows) % NS.length];
                    DType biasType = rows % 3 == 0 ? null : (rows % 3 == 1 ? DType.F32 : DType.F16);
                    checkLinear(random, dtype, biasType, rows, k, n, false);
                }
            }
        }
    }

    @Test
    void linearIsExactOnIntegers() {
        SplittableRandom random = new SplittableRandom(2);
        for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            for (int k : KS) {
                for (int rows = 1; rows <= 9; rows++) {
                    checkLinear(random, dtype, rows % 2 == 0 ? DType.F32 : null, rows, k, NS[(k * 7 + rows) % NS.length], true);
                }
            }
        }
    }

    @Test
    void linearPrefillPathMatchesTheReference() {
        SplittableRandom random = new SplittableRandom(3);
        // From BROADCAST_MIN_ROWS rows on: six-row tiles plus 0..5 leftover rows, more than one
        // 96-row block; k around the transposed panel's width (256 columns at 8 lanes, 128 at 16);
        // n around one panel (16 or 32 weight rows) and past one 256-row block, last ones partial.
        int[][] shapes = {{64, 1, 1}, {65, 7, 15}, {69, 255, 16}, {70, 257, 17}, {64, 600, 33}, {75, 256, 31},
            {131, 2051, 21}, {97, 37, 300}, {193, 130, 529}};
        for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            for (int[] s : shapes) {
                assertTrue(s[0] >= VectorKernels.BROADCAST_MIN_ROWS);
                checkLinear(random, dtype, s[1] % 2 == 0 ? null : DType.F32, s[0], s[1], s[2], false);
                checkLinear(random, dtype, s[1] % 2 == 0 ? DType.BF16 : null, s[0], s[1], s[2], true);
            }
        }
    }

    @Test
    void linearWritesOnlyItsRangeOfOutputColumns() {
        linearWritesOnlyItsRange(6);
        linearWritesOnlyItsRange(VectorKernels.BROADCAST_MIN_ROWS + 2);
    }

    private void linearWritesOnlyItsRange(int rows) {
        SplittableRandom random = new SplittableRandom(4);
        int k = 45;
        int n = 53;
        int outCols = n + 3;
        float[] x = randomFloats(random, rows * k, false);
        MemorySegment w = randomWeights(random, DType.F16, (long) n * k, false);
        for (int[] range : new int[][] {{0, n}, {3, 17}, {5, 6}, {9, 23}, {2, 50}}) {
            float[] expected = new float[rows * outCols];
            float[] actual = new float[rows * outCols];
            java.util.Arrays.fill(expected, Float.NaN);
            java.util.Arrays.fill(actual, Float.NaN);
            reference.linear(x, rows, k, w, DType.F16, null, null, range[0], range[1], expected, outCols);
            fast.linear(x, rows, k, w, DType.F16, null, null, range[0], range[1], actual, outCols);
            for (int m = 0; m < rows; m++) {
                for (int c = 0; c < outCols; c++) {
                    float a = actual[m * outCols + c];
                    boolean inside = c >= range[0] && c < range[1];
                    assertEquals(inside, !Float.isNaN(a), "row " + m + " column " + c + " of range " + range[0] + ".." + range[1]);
                    if (inside) {
                        assertLinearClose(x, k, m, w, DType.F16, c, 0f, expected[m * outCols + c], a);
                    }
                }
            }
        }
    }

    @Test
    void oneRowLinearKeepsSubnormalAndNonFiniteWeightsOverUnalignedRowRanges() {
        // Batch 1 multiplies weights as they are widened, four or eight rows at a time: weights that are
        // subnormal in their own type must count, and an Inf weight must make its row's output
        // non-finite, whichever position of a four-row group or of a row they take.
        SplittableRandom random = new SplittableRandom(11);
        int n = 23;
        // 3100 columns: rows long enough to go eight at a time.
        for (int k : new int[] {1043, 3100}) {
            for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
                float[] x = randomFloats(random, k, false);
                MemorySegment w = randomWeights(random, dtype, (long) n * k, false);
                float subnormal = dtype == DType.F16 ? 0x1p-20f : dtype == DType.BF16 ? 0x1p-130f : 0x1p-140f;
                for (int j = 0; j < n; j++) {
                    dtype.setFloat(w, (long) j * k + (j * 37) % k, subnormal);
                    dtype.setFloat(w, (long) j * k + (j * 53 + 1) % k, -subnormal);
                }
                // Rows 7 and 21 hold nothing but subnormals, so losing them would show beyond rounding.
                for (int j : new int[] {7, 21}) {
                    for (int i = 0; i < k; i++) {
                        dtype.setFloat(w, (long) j * k + i, i % 5 == 0 ? (i % 2 == 0 ? subnormal : -subnormal) * (1 + i % 3) : 0f);
                    }
                }
                dtype.setFloat(w, 5L * k + 1040, Float.POSITIVE_INFINITY);
                dtype.setFloat(w, 14L * k + 3, Float.NEGATIVE_INFINITY);
                dtype.setFloat(w, 22L * k + 700, Float.NaN);
                for (int[] range : new int[][] {{0, n}, {1, 6}, {3, 15}, {14, 15}, {13, 23}}) {
                    float[] expected = new float[n];
                    reference.linear(x, 1, k, w, dtype, null, null, range[0], range[1], expected, n);
                    for (CpuKernels kernels : fastLinear) {
                        float[] actual = new float[n];
                        kernels.linear(x, 1, k, w, dtype, null, null, range[0], range[1], actual, n);
                        for (int j = range[0]; j < range[1]; j++) {
                            String where = dtype + " " + ((VectorKernels) kernels).halfWidening() + " row " + j;
                            if (j == 5 || j == 14 || j == 22) {
                                assertTrue(!Float.isFinite(actual[j]), where + " holds a non-finite weight, got " + actual[j]);
                            } else {
                                assertLinearClose(x, k, 0, w, dtype, j, 0f, expected[j], actual[j]);
                                if (j == 7 || j == 21) {
                                    assertTrue(expected[j] != 0f, where + " must sum to a nonzero value");
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void oneRowF16LanesStayExactWhereTheirShortcutDoesNotHold() {
        // The lane path reads halves with their exponent field unchanged (value times 2^-112) and
        // multiplies by x times 2^112: an x of 2^16 or more would overflow, and a weight whose
        // exponent field could be 31 (here: weights of 2 and more OR-ed with smaller ones) would read
        // as finite. Both must fall back to an exact path; an x just below 2^16 must not overflow.
        SplittableRandom random = new SplittableRandom(12);
        int k = 517;
        int n = 9;
        CpuKernels lanes = new VectorKernels(VectorKernels.HalfWidening.LANES);
        MemorySegment small = randomWeights(random, DType.F16, (long) n * k, false);
        MemorySegment large = randomWeights(random, DType.F16, (long) n * k, false);
        for (int j = 0; j < n; j++) {
            DType.F16.setFloat(large, (long) j * k + (j * 31) % k, 3.5f + j);
            DType.F16.setFloat(large, (long) j * k + (j * 7 + 2) % k, -1.75f);
        }
        for (float big : new float[] {65535.996f, 65536f, 1e30f}) {
            float[] x = randomFloats(random, k, false);
            x[(int) (big % 97)] = big;
            x[200] = -big;
            for (MemorySegment w : new MemorySegment[] {small, large}) {
                float[] expected = new float[n];
                float[] actual = new float[n];
                reference.linear(x, 1, k, w, DType.F16, null, null, 0, n, expected, n);
                lanes.linear(x, 1, k, w, DType.F16, null, null, 0, n, actual, n);
                for (int j = 0; j < n; j++) {
                    assertTrue(Float.isFinite(actual[j]), "x up to " + big + ", row " + j + ": " + actual[j]);
                    assertLinearClose(x, k, 0, w, DType.F16, j, 0f, expected[j], actual[j]);
                }
            }
        }
    }

    @Test
    void oneRowF16LanesReadEveryFiniteHalfExactly() {
        // Every f16 bit pattern but Inf/NaN (those tiles take the exact path), zeros and subnormals
        // included, laid out 64 rows by 1024; x one-hot at each column in turn, so each output is one
        // weight times 1 plus zeros and must equal that weight's value exactly.
        int n = 64;
        int k = 1024;
        MemorySegment w = ARENA.allocate((long) n * k * 2);
        for (int bits = 0; bits < 1 << 16; bits++) {
            boolean infOrNan = (bits & 0x7C00) == 0x7C00;
            w.set(DType.I16_LE, 2L * bits, (short) (infOrNan ? 0 : bits));
        }
        CpuKernels lanes = new VectorKernels(VectorKernels.HalfWidening.LANES);
        float[] x = new float[k];
        float[] out = new float[n];
        for (int col = 0; col < k; col++) {
            x[col] = 1f;
            lanes.linear(x, 1, k, w, DType.F16, null, null, 0, n, out, n);
            x[col] = 0f;
            for (int row = 0; row < n; row++) {
                float expected = DType.F16.getFloat(w, (long) row * k + col);
                assertEquals(expected, out[row], 0f, lanes + ": weight bits 0x"
                        + Integer.toHexString(Short.toUnsignedInt(w.get(DType.I16_LE, 2L * (row * k + col)))));
            }
        }
    }

    @Test
    void oneRowLinearOverShortRowsReadsAheadOnlyWithinTheWeight() {
        // Rows of at most 2 KiB have the next tile read ahead while the current one is multiplied,
        // past the range's rows where the weight goes on. Each range is multiplied with the whole
        // weight and with a segment that ends at its last row, where a read past the segment fails; weights in {-1, -0.5, 0, 0.5, 1} and integer x keep every sum exact, so the
        // fast results must equal the reference bit for bit. One tile in the f16 weights holds 4 and
        // 1.5, whose exponent fields OR to 31: the lane path refuses that tile after having read
        // ahead from it, and the exact path must take over.
        SplittableRandom random = new SplittableRandom(13);
        int n = 70;
        CpuKernels lanes = new VectorKernels(VectorKernels.HalfWidening.LANES);
        for (DType dtype : new DType[] {DType.F16, DType.BF16}) {
            for (int k : new int[] {768, 1000, 1024}) {
                MemorySegment w = ARENA.allocate((long) n * k * dtype.byteSize());
                for (long i = 0; i < (long) n * k; i++) {
                    dtype.setFloat(w, i, random.nextInt(-2, 3) * 0.5f);
                }
                dtype.setFloat(w, 13L * k + 5, 4f);
                dtype.setFloat(w, 14L * k + 700, 1.5f);
                float[] x = randomFloats(random, k, true);
                for (int[] range : new int[][] {{0, n}, {8, 40}, {12, 20}, {60, 70}, {0, 13}, {3, 29}}) {
                    for (MemorySegment weight : List.of(w, w.asSlice(0, (long) range[1] * k * dtype.byteSize()))) {
                        float[] expected = new float[n];
                        float[] actual = new float[n];
                        reference.linear(x, 1, k, weight, dtype, null, null, range[0], range[1], expected, n);
                        lanes.linear(x, 1, k, weight, dtype, null, null, range[0], range[1], actual, n);
                        for (int j = range[0]; j < range[1]; j++) {
                            assertEquals(expected[j], actual[j], dtype + " k=" + k + " rows " + range[0] + ".." + range[1]
                                    + " of " + weight.byteSize() / ((long) k * dtype.byteSize()) + ", row " + j);
                        }
                    }
                }
            }
        }
    }

    /** Integer-valued inputs: every sum is exact in fp32, so any order gives the reference's value. */
    @Test
    void linearAddAddsToWhatOutHolds() {
        SplittableRandom random = new SplittableRandom(99);
        for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            for (int rows : new int[] {1, 3, 40}) {
                int k = 72;
                int n = 37;
                float[] x = randomFloats(random, rows * k, true);
                MemorySegment w = randomWeights(random, dtype, (long) n * k, true);
                MemorySegment bias = randomWeights(random, dtype, n, true);
                float[] start = randomFloats(random, rows * n, true);
                float[] product = new float[rows * n];
                reference.linear(x, rows, k, w, dtype, bias, dtype, 0, n, product, n);
                float[] expected = start.clone();
                reference.linearAdd(x, rows, k, w, dtype, bias, dtype, 0, n, expected, n);
                for (int i = 0; i < rows * n; i++) {
                    assertEquals(start[i] + product[i], expected[i], "reference " + dtype + " rows=" + rows + " at " + i);
                }
                for (CpuKernels kernels : fastLinear) {
                    float[] actual = start.clone();
                    kernels.linearAdd(x, rows, k, w, dtype, bias, dtype, 0, n, actual, n);
                    for (int i = 0; i < rows * n; i++) {
                        assertEquals(expected[i], actual[i], dtype + " " + ((VectorKernels) kernels).halfWidening() + " rows="
                                + rows + " at " + i);
                    }
                }
            }
        }
    }

    /**
     * One row prepared once and multiplied in ranges, as the backend's threads do at batch 1: each range
     * with or without a bias, set or added, must give the reference's values exactly (integer inputs),
     * and rows outside the ranges must stay as they were.
     */
    @Test
    void aPreparedRowMultipliedInRangesMatchesTheReference() {
        SplittableRandom random = new SplittableRandom(7);
        for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            int k = 200;
            int n = 45;
            float[] x = randomFloats(random, k, true);
            MemorySegment w = randomWeights(random, dtype, (long) n * k, true);
            MemorySegment bias = randomWeights(random, DType.F16, n, true);
            float[] start = randomFloats(random, n, true);
            for (boolean accumulate : new boolean[] {false, true}) {
                for (MemorySegment b : Arrays.asList(null, bias)) {
                    float[] expected = start.clone();
                    if (accumulate) {
                        reference.linearAdd(x, 1, k, w, dtype, b, DType.F16, 0, n, expected, n);
                    } else {
                        reference.linear(x, 1, k, w, dtype, b, DType.F16, 0, n, expected, n);
                    }
                    for (CpuKernels kernels : fastLinear) {
                        CpuKernels.OneRow row = kernels.prepareOneRow(x, k, dtype);
                        float[] actual = start.clone();
                        for (int[] range : new int[][] {{0, 8}, {8, 9}, {9, 40}, {40, 45}}) {
                            kernels.linearOneRow(row, w, b, DType.F16, range[0], range[1], actual, accumulate);
                        }
                        assertArrayEquals(expected, actual, dtype + " " + ((VectorKernels) kernels).halfWidening()
                                + " accumulate=" + accumulate + " bias=" + (b != null));
                        float[] partial = start.clone();
                        kernels.linearOneRow(row, w, b, DType.F16, 9, 40, partial, accumulate);
                        for (int j = 0; j < n; j++) {
                            assertEquals(j >= 9 && j < 40 ? expected[j] : start[j], partial[j], "row " + j + " of range 9..40");
                        }
                    }
                }
            }
        }
    }

    @Test
    void linearRejectsIntegerWeights() {
        MemorySegment w = ARENA.allocate(16);
        assertThrows(IllegalArgumentException.class,
                () -> fast.linear(new float[4], 1, 4, w, DType.I32, null, null, 0, 1, new float[1], 1));
    }

    private void checkLinear(SplittableRandom random, DType dtype, DType biasType, int rows, int k, int n, boolean integers) {
        float[] x = randomFloats(random, rows * k, integers);
        MemorySegment w = randomWeights(random, dtype, (long) n * k, integers);
        MemorySegment bias = biasType == null ? null : randomWeights(random, biasType, n, integers);
        float[] expected = new float[rows * n];
        reference.linear(x, rows, k, w, dtype, bias, biasType, 0, n, expected, n);
        for (CpuKernels kernels : fastLinear) {
            checkLinearAgainst(kernels, x, rows, k, w, dtype, bias, biasType, n, integers, expected);
        }
    }

    private static void checkLinearAgainst(CpuKernels kernels, float[] x, int rows, int k, MemorySegment w, DType dtype,
                                           MemorySegment bias, DType biasType, int n, boolean integers, float[] expected) {
        float[] actual = new float[rows * n];
        kernels.linear(x, rows, k, w, dtype, bias, biasType, 0, n, actual, n);
        for (int m = 0; m < rows; m++) {
            for (int j = 0; j < n; j++) {
                String where = dtype + " " + ((VectorKernels) kernels).halfWidening() + " rows=" + rows + " k=" + k + " n=" + n
                        + " bias=" + biasType + " at (" + m + ", " + j + ")";
                if (integers) {
                    assertEquals(expected[m * n + j], actual[m * n + j], where);
                } else {
                    float b = bias == null ? 0f : biasType.getFloat(bias, j);
                    assertLinearClose(x, k, m, w, dtype, j, b, expected[m * n + j], actual[m * n + j]);
                }
            }
        }
    }

    private static void assertLinearClose(float[] x, int k, int m, MemorySegment w, DType dtype, int j, float bias,
                                          float expected, float actual) {
        double magnitude = Math.abs(bias);
        for (int i = 0; i < k; i++) {
            magnitude += Math.abs((double) x[m * k + i] * dtype.getFloat(w, (long) j * k + i));
        }
        double gamma = (k + 1) * U / (1 - (k + 1) * U);
        double tolerance = 2 * gamma * magnitude;
        if (!(Math.abs(expected - actual) <= tolerance)) {
            fail(dtype + " k=" + k + " output (" + m + ", " + j + "): reference " + expected + ", fast " + actual
                    + ", allowed difference " + tolerance);
        }
    }

    @Test
    void dotMatchesTheReference() {
        SplittableRandom random = new SplittableRandom(5);
        for (int n = 0; n <= 70; n++) {
            float[] a = randomFloats(random, n + 5, false);
            float[] b = randomFloats(random, n + 7, false);
            float expected = reference.dot(a, 3, b, 6, n);
            float actual = fast.dot(a, 3, b, 6, n);
            double magnitude = 0;
            for (int i = 0; i < n; i++) {
                magnitude += Math.abs((double) a[3 + i] * b[6 + i]);
            }
            double tolerance = 2 * n * U / (1 - n * U) * magnitude;
            assertTrue(Math.abs(expected - actual) <= tolerance, "dot of " + n + ": " + expected + " vs " + actual);
        }
    }

    @Test
    void axpyMatchesTheReference() {
        SplittableRandom random = new SplittableRandom(6);
        for (int n = 0; n <= 70; n++) {
            float alpha = (float) random.nextDouble(-2, 2);
            float[] x = randomFloats(random, n + 2, false);
            float[] y = randomFloats(random, n + 9, false);
            float[] expected = y.clone();
            float[] actual = y.clone();
            reference.axpy(alpha, x, 2, expected, 9, n);
            fast.axpy(alpha, x, 2, actual, 9, n);
            for (int i = 0; i < y.length; i++) {
                // The fast path fuses the multiply-add (one rounding), the reference rounds twice.
                double tolerance = 2 * U * (Math.abs(y[i]) + (i >= 9 ? Math.abs(alpha * x[i - 7]) : 0));
                assertTrue(Math.abs(expected[i] - actual[i]) <= tolerance, "axpy of " + n + " at " + i);
            }
        }
    }

    @Test
    void dotRowsMatchesTheReference() {
        SplittableRandom random = new SplittableRandom(11);
        for (int n : new int[] {1, 5, 8, 13, 64, 128, 131}) {
            for (int count = 0; count <= 9; count++) {
                int stride = n + 2;
                float[] x = randomFloats(random, n + 1, false);
                float[] rows = randomFloats(random, 3 + count * stride, false);
                float[] expected = new float[count + 2];
                float[] actual = new float[count + 2];
                reference.dotRows(x, 1, rows, 3, stride, count, n, expected, 2);
                fast.dotRows(x, 1, rows, 3, stride, count, n, actual, 2);
                for (int t = 0; t < count; t++) {
                    double magnitude = 0;
                    for (int i = 0; i < n; i++) {
                        magnitude += Math.abs((double) x[1 + i] * rows[3 + t * stride + i]);
                    }
                    double tolerance = 2 * n * U / (1 - n * U) * magnitude;
                    assertTrue(Math.abs(expected[2 + t] - actual[2 + t]) <= tolerance, "n " + n + " row " + t + " of " + count);
                }
                assertEquals(0f, actual[0]);
                assertEquals(0f, actual[1]);
            }
        }
    }

    @Test
    void accumulateRowsMatchesTheReference() {
        SplittableRandom random = new SplittableRandom(12);
        // Widths around one, two and eight vectors of every lane count, with tails.
        for (int n : new int[] {1, 3, 8, 17, 32, 64, 100, 128, 129, 257}) {
            for (int count : new int[] {0, 1, 2, 7, 33}) {
                int stride = n + 1;
                float[] weights = randomFloats(random, count + 1, false);
                float[] rows = randomFloats(random, 2 + count * stride, false);
                float[] y = randomFloats(random, n + 4, false);
                float[] expected = y.clone();
                float[] actual = y.clone();
                reference.accumulateRows(weights, 1, rows, 2, stride, count, n, expected, 3);
                fast.accumulateRows(weights, 1, rows, 2, stride, count, n, actual, 3);
                for (int i = 0; i < y.length; i++) {
                    int column = i - 3;
                    double magnitude = Math.abs(y[i]);
                    if (column >= 0 && column < n) {
                        for (int t = 0; t < count; t++) {
                            magnitude += Math.abs((double) weights[1 + t] * rows[2 + t * stride + column]);
                        }
                    }
                    // A sum of count + 1 terms in two orders (and fused or not): 2·γ of its magnitude.
                    double tolerance = 2 * (count + 2) * U / (1 - (count + 2) * U) * magnitude;
                    assertTrue(Math.abs(expected[i] - actual[i]) <= tolerance, "n " + n + " count " + count + " element " + i);
                }
            }
        }
    }

    @Test
    void scaleMatchesTheReferenceExactly() {
        SplittableRandom random = new SplittableRandom(7);
        for (int n = 0; n <= 40; n++) {
            float[] x = randomFloats(random, n + 1, false);
            float[] expected = x.clone();
            float[] actual = x.clone();
            reference.scale(expected, 1, n, 0.37f);
            fast.scale(actual, 1, n, 0.37f);
            org.junit.jupiter.api.Assertions.assertArrayEquals(expected, actual, "scale of " + n);
        }
    }

    @Test
    void expShiftSumMatchesTheReference() {
        SplittableRandom random = new SplittableRandom(8);
        for (int n = 0; n <= 70; n++) {
            float[] x = new float[n + 4];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) random.nextDouble(-30, 5);
            }
            float[] expected = x.clone();
            float[] actual = x.clone();
            float expectedSum = reference.expShiftSum(expected, 4, n, 4f);
            float actualSum = fast.expShiftSum(actual, 4, n, 4f);
            // The vector exp is within 1 ulp of the exact value as Math.exp is, so they differ by at
            // most 2 ulps; the sums then differ by that plus reassociation (γ_n of the positive sum).
            for (int i = 0; i < x.length; i++) {
                assertTrue(Math.abs(expected[i] - actual[i]) <= 2 * Math.ulp(expected[i]), "exp at " + i + " of " + n);
            }
            double tolerance = (2 * n * U / (1 - n * U) + 4 * U) * expectedSum;
            assertTrue(Math.abs(expectedSum - actualSum) <= tolerance, "sum of " + n + ": " + expectedSum + " vs " + actualSum);
        }
    }

    @Test
    void widenIsExactForEveryHalfPrecisionBitPattern() {
        MemorySegment all = ARENA.allocate(2 * 65536 + 2);
        for (int i = 0; i < 65536; i++) {
            all.setAtIndex(DType.I16_LE, i + 1, (short) i);
        }
        for (DType dtype : new DType[] {DType.F16, DType.BF16}) {
            // Start one element in and stop short of a lane multiple to cover unaligned heads and tails.
            for (int[] range : new int[][] {{1, 65536}, {3, 29}, {100, 1}}) {
                float[] expected = new float[range[1] + 2];
                float[] actual = new float[range[1] + 2];
                reference.widen(all, dtype, range[0], expected, 2, range[1]);
                fast.widen(all, dtype, range[0], actual, 2, range[1]);
                for (int i = 0; i < expected.length; i++) {
                    boolean same = Float.isNaN(expected[i])
                            ? Float.isNaN(actual[i])
                            : Float.floatToRawIntBits(expected[i]) == Float.floatToRawIntBits(actual[i]);
                    assertTrue(same, dtype + " element " + i + ": " + expected[i] + " vs " + actual[i]);
                }
            }
        }
    }

    @Test
    void widenCopiesF32Exactly() {
        SplittableRandom random = new SplittableRandom(9);
        MemorySegment s = randomWeights(random, DType.F32, 100, false);
        float[] expected = new float[60];
        float[] actual = new float[60];
        reference.widen(s, DType.F32, 13, expected, 1, 57);
        fast.widen(s, DType.F32, 13, actual, 1, 57);
        org.junit.jupiter.api.Assertions.assertArrayEquals(expected, actual);
    }

    @Test
    void siluMulMatchesTheReference() {
        SplittableRandom random = new SplittableRandom(10);
        int n = 1000;
        float[] gate = new float[n];
        float[] up = randomFloats(random, n, false);
        for (int i = 0; i < n; i++) {
            gate[i] = (float) random.nextDouble(-20, 20);
        }
        gate[0] = -100f;
        gate[1] = 100f;
        gate[2] = 0f;
        float[] expected = gate.clone();
        float[] actual = gate.clone();
        reference.siluMul(expected, up, 1, n - 3);
        fast.siluMul(actual, up, 1, n - 3);
        assertEquals(gate[0], actual[0], "outside the range");
        for (int i = 0; i < n; i++) {
            // exp within 1 ulp each, then one add, one divide and one multiply: a few ulps of the result.
            assertTrue(Math.abs(expected[i] - actual[i]) <= 4 * Math.ulp(expected[i]), "silu at " + gate[i] + ": "
                    + expected[i] + " vs " + actual[i]);
        }
    }

    /**
     * The fast GELU uses a Chebyshev fit of erfc with fractional error below 1.2e-7 (2u), so
     * gelu = x·erfc(|x|/√2)/2 (x &lt; 0) keeps its relative accuracy even far in the negative tail.
     * Evaluating t, the polynomial, exp and the final products in fp32 adds a handful of ulps (about
     * 10u measured), and the exponent P(t) − x²/2 carries the roundings of x² and of the subtraction,
     * each at most half an ulp of z² = x²/2, i.e. u·z², which exp turns into relative error. Hence
     * |fast − exact| ≤ (16u + 3u·z²)·|gelu(x)| (about 1.5u·z² is reached near x = −11), plus the
     * smallest normal float for results that underflow.
     */
    @Test
    void geluMatchesTheReferenceToItsDocumentedAccuracy() {
        int n = 40001;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = -20f + 40f * i / (n - 1);
        }
        float[] expected = x.clone();
        float[] actual = x.clone();
        reference.gelu(expected, 0, n);
        fast.gelu(actual, 0, n);
        for (int i = 0; i < n; i++) {
            double z2 = x[i] * (double) x[i] / 2;
            double tolerance = (16 * U + 3 * U * z2) * Math.abs(expected[i]) + Float.MIN_NORMAL;
            assertTrue(Math.abs(expected[i] - actual[i]) <= tolerance, "gelu(" + x[i] + "): " + expected[i] + " vs " + actual[i]);
        }
        float[] special = {Float.POSITIVE_INFINITY, Float.NaN, 0f, -0f, 1e-30f, -1e-30f};
        float[] specialFast = special.clone();
        float[] specialReference = special.clone();
        fast.gelu(specialFast, 0, special.length);
        reference.gelu(specialReference, 0, special.length);
        org.junit.jupiter.api.Assertions.assertArrayEquals(specialReference, specialFast);
    }

    static float[] randomFloats(SplittableRandom random, int n, boolean integers) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = integers ? random.nextInt(-8, 9) : (float) random.nextDouble(-1, 1);
        }
        return a;
    }

    /** Random values stored as dtype; integers in [-8, 8] are exact in every dtype. */
    static MemorySegment randomWeights(SplittableRandom random, DType dtype, long count, boolean integers) {
        MemorySegment s = ARENA.allocate(count * dtype.byteSize());
        for (long i = 0; i < count; i++) {
            dtype.setFloat(s, i, integers ? random.nextInt(-8, 9) : (float) random.nextDouble(-1, 1));
        }
        return s;
    }
}
