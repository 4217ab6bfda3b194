package io.inf2.tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A typed, shaped view of memory: a checkpoint tensor mapped from a file, or a buffer the engine
 * owns. The tensor does not own its segment; whoever created the segment (a file mapping's arena,
 * an engine arena) frees it.
 */
public record Tensor(String name, DType dtype, long[] shape, MemorySegment data) {

    public Tensor {
        shape = shape.clone();
        long expected = elementCount(shape) * dtype.byteSize();
        if (data.byteSize() != expected) {
            throw new IllegalArgumentException("tensor " + name + ": " + data.byteSize() + " bytes for shape "
                    + Arrays.toString(shape) + " of " + dtype + " (expected " + expected + ")");
        }
    }

    public static long elementCount(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    public long elementCount() {
        return elementCount(shape);
    }

    public int rank() {
        return shape.length;
    }

    public long dim(int axis) {
        return shape[axis];
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public float getFloat(long index) {
        return dtype.getFloat(data, index);
    }

    /** Rows of a rank-2 tensor (the output features of a linear weight). */
    public int rows() {
        requireRank(2);
        return Math.toIntExact(shape[0]);
    }

    /** Columns of a rank-2 tensor (the input features of a linear weight). */
    public int cols() {
        requireRank(2);
        return Math.toIntExact(shape[1]);
    }

    public boolean hasShape(long... expected) {
        return Arrays.equals(shape, expected);
    }

    private void requireRank(int rank) {
        if (shape.length != rank) {
            throw new IllegalStateException("tensor " + name + " has rank " + shape.length + ", expected " + rank);
        }
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape);
    }

    @Override
    public boolean equals(Object o) {
        return this == o;
    }

    @Override
    public int hashCode() {
        return System.identityHashCode(this);
    }
}
