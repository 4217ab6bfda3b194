package io.inf2.model.checkpoint;

import io.inf2.tensor.DType;
import io.inf2.tensor.Tensor;
import java.util.Arrays;
import java.util.Objects;

/**
 * The name, element type and shape of a tensor before its bytes exist: what a safetensors header
 * records, and what a writer needs to lay out a file before streaming the data.
 */
public record TensorSpec(String name, DType dtype, long[] shape) {

    public TensorSpec {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dtype, "dtype");
        if (name.isEmpty()) {
            throw new IllegalArgumentException("tensor name must not be empty");
        }
        shape = shape.clone();
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("tensor " + name + ": negative dimension in shape " + Arrays.toString(shape));
            }
        }
        // Fails early (ArithmeticException) for shapes whose byte size does not fit a long.
        Math.multiplyExact(Tensor.elementCount(shape), (long) dtype.byteSize());
    }

    public static TensorSpec of(Tensor tensor) {
        return new TensorSpec(tensor.name(), tensor.dtype(), tensor.shape());
    }

    public long elementCount() {
        return Tensor.elementCount(shape);
    }

    public long byteSize() {
        return elementCount() * dtype.byteSize();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorSpec other && name.equals(other.name) && dtype == other.dtype
                && Arrays.equals(shape, other.shape);
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, dtype, Arrays.hashCode(shape));
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape);
    }
}
