package io.inf2.model.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.inf2.model.ModelFormatException;
import io.inf2.tensor.DType;
import io.inf2.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

class InMemoryCheckpointTest {

    @Test
    void allocatesZeroedWritableAlignedTensorsAndFreesThemOnClose() {
        List<TensorSpec> specs = List.of(new TensorSpec("w", DType.BF16, new long[] {3, 5}),
                new TensorSpec("b", DType.F32, new long[] {5}));
        InMemoryCheckpoint c = InMemoryCheckpoint.allocate("test model", specs);
        assertEquals(3 * 5 * 2 + 5 * 4, c.byteSize());
        Tensor w = c.tensor("w");
        assertEquals(0f, w.getFloat(14));
        assertEquals(0, w.data().address() % 64);
        DType.BF16.setFloat(w.data(), 14, 1.5f);
        assertEquals(1.5f, c.tensor("w").getFloat(14));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> c.tensor("x"));
        assertEquals("test model: no tensor named x", e.getMessage());
        c.close();
        assertThrows(IllegalStateException.class, () -> w.getFloat(0));
        assertThrows(IllegalStateException.class, () -> c.tensor("w"));
    }

    @Test
    void duplicateNamesAreRejected() {
        TensorSpec s = new TensorSpec("w", DType.F32, new long[] {1});
        assertThrows(IllegalArgumentException.class, () -> InMemoryCheckpoint.allocate("m", List.of(s, s)));
    }
}
