package io.inf2.model.checkpoint;

import io.inf2.tensor.Tensor;
import java.util.Set;

/**
 * Named tensors of a model, typically memory-mapped from safetensors files. Tensors returned stay
 * valid until the checkpoint is closed.
 */
public interface Checkpoint extends AutoCloseable {

    /** Every tensor name in the checkpoint. */
    Set<String> names();

    boolean contains(String name);

    /** The named tensor; a {@link io.inf2.model.ModelFormatException} naming the file(s) if it is absent. */
    Tensor tensor(String name);

    /** A human-readable location for error messages (a directory or file). */
    String location();

    @Override
    void close();
}
