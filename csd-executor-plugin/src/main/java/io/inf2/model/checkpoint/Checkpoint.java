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

    /**
     * A view of {@code owner} whose close does nothing, for handing one checkpoint to several engines
     * (an engine closes the checkpoint it is given); the owner stays responsible for closing it.
     */
    static Checkpoint borrowed(Checkpoint owner) {
        return new Checkpoint() {
            @Override
            public Set<String> names() {
                return owner.names();
            }

            @Override
            public boolean contains(String name) {
                return owner.contains(name);
            }

            @Override
            public Tensor tensor(String name) {
                return owner.tensor(name);
            }

            @Override
            public String location() {
                return owner.location();
            }

            @Override
            public void close() {
            }
        };
    }
}
