package io.inf2.model.checkpoint;

import io.inf2.model.ModelFormatException;
import io.inf2.tensor.Tensor;
import java.lang.foreign.MemorySegment;

/**
 * Produces a tensor's bytes piece by piece, so writers can stream a model far larger than memory:
 * the writer hands over a chunk buffer and the source fills it.
 */
@FunctionalInterface
public interface TensorSource {

    /**
     * Fills {@code chunk} with elements {@code [firstElement, firstElement + chunk.byteSize() / dtype size)}
     * of {@code spec}, encoded as {@code spec.dtype()} (little-endian). The chunk always holds whole elements.
     */
    void fill(TensorSpec spec, long firstElement, MemorySegment chunk);

    /** Copies tensors of an open checkpoint, which must hold each requested name with the same dtype and shape. */
    static TensorSource copyOf(Checkpoint checkpoint) {
        return (spec, firstElement, chunk) -> {
            Tensor t = checkpoint.tensor(spec.name());
            if (t.dtype() != spec.dtype() || !t.hasShape(spec.shape())) {
                throw new ModelFormatException(checkpoint.location() + ": tensor " + spec.name() + " is " + t
                        + ", the copy expects " + spec);
            }
            long offset = firstElement * spec.dtype().byteSize();
            MemorySegment.copy(t.data(), offset, chunk, 0, chunk.byteSize());
        };
    }
}
