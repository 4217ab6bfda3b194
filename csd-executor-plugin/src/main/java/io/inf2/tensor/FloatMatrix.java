package io.inf2.tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A row-major f32 matrix in host (Java heap) memory: activations, queries, attention outputs and
 * KV rows on their way between the engine and the KV places. {@link #segment()} gives the same
 * memory as a MemorySegment for the Vector API and FFM calls.
 */
public final class FloatMatrix {
    private final float[] data;
    private final int rows;
    private final int cols;

    public FloatMatrix(int rows, int cols) {
        this(new float[Math.multiplyExact(rows, cols)], rows, cols);
    }

    public FloatMatrix(float[] data, int rows, int cols) {
        if (rows < 0 || cols < 0 || data.length < (long) rows * cols) {
            throw new IllegalArgumentException("matrix " + rows + "x" + cols + " needs " + (long) rows * cols
                    + " floats, got " + data.length);
        }
        this.data = data;
        this.rows = rows;
        this.cols = cols;
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    /** The backing array; element (r, c) is at {@code r * cols() + c}. */
    public float[] data() {
        return data;
    }

    public MemorySegment segment() {
        return MemorySegment.ofArray(data).asSlice(0, (long) rows * cols * Float.BYTES);
    }

    public float get(int row, int col) {
        return data[row * cols + col];
    }

    public void set(int row, int col, float value) {
        data[row * cols + col] = value;
    }

    public int offset(int row) {
        return row * cols;
    }

    /** A copy of row {@code r}. */
    public float[] row(int r) {
        return Arrays.copyOfRange(data, r * cols, (r + 1) * cols);
    }

    /** A copy of rows [from, to). */
    public FloatMatrix rows(int from, int to) {
        return new FloatMatrix(Arrays.copyOfRange(data, from * cols, to * cols), to - from, cols);
    }

    /** A copy of columns [from, to) of every row. */
    public FloatMatrix columns(int from, int to) {
        FloatMatrix out = new FloatMatrix(rows, to - from);
        for (int r = 0; r < rows; r++) {
            System.arraycopy(data, r * cols + from, out.data, r * out.cols, to - from);
        }
        return out;
    }

    public void fill(float value) {
        Arrays.fill(data, 0, rows * cols, value);
    }
}
