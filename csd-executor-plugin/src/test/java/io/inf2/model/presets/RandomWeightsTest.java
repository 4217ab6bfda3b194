package io.inf2.model.presets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.model.checkpoint.InMemoryCheckpoint;
import io.inf2.model.checkpoint.SafetensorsCheckpoint;
import io.inf2.model.checkpoint.TensorSpec;
import io.inf2.tensor.DType;
import io.inf2.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class RandomWeightsTest {

    private static final ModelPreset TINY_LLAMA = ModelPreset.named("tiny-llama");
    private static final String EMBED = "model.embed_tokens.weight";
    private static final String GATE = "model.layers.1.mlp.gate_proj.weight";

    @TempDir
    Path dir;

    private static TensorSpec spec(RandomWeights w, String name) {
        return w.tensors().stream().filter(t -> t.name().equals(name)).findFirst().orElseThrow();
    }

    @ParameterizedTest
    @EnumSource(names = {"F32", "F16", "BF16"})
    void valuesDependOnlyOnSeedNameAndIndexNotOnChunking(DType dtype) {
        RandomWeights w = RandomWeights.of(TINY_LLAMA, 42, dtype);
        TensorSpec embed = spec(w, EMBED);
        long n = embed.elementCount();
        // The shared segment is filled in parallel blocks, the confined one by its owner alone, piece by piece.
        try (Arena arena = Arena.ofShared(); Arena confined = Arena.ofConfined()) {
            MemorySegment whole = arena.allocate(embed.byteSize());
            w.fill(embed, 0, whole);
            MemorySegment pieces = confined.allocate(embed.byteSize());
            long[] cuts = {0, 1, 1000, 65_536 + 3, 1_000_003, n};
            for (int i = 0; i + 1 < cuts.length; i++) {
                long from = cuts[i] * dtype.byteSize();
                w.fill(embed, cuts[i], pieces.asSlice(from, (cuts[i + 1] - cuts[i]) * dtype.byteSize()));
            }
            assertEquals(-1, whole.mismatch(pieces));
            for (long i : new long[] {0, 17, 65_535, 65_536, n - 1}) {
                MemorySegment one = arena.allocate(8);
                dtype.setFloat(one, 0, w.value(EMBED, i));
                assertEquals(dtype.getFloat(one, 0), dtype.getFloat(whole, i), "element " + i);
            }
        }
    }

    @Test
    void seedAndNameChangeTheValues() {
        RandomWeights a = RandomWeights.of(TINY_LLAMA, 1, DType.F32);
        RandomWeights b = RandomWeights.of(TINY_LLAMA, 2, DType.F32);
        assertNotEquals(a.value(GATE, 5), b.value(GATE, 5));
        assertNotEquals(a.value(GATE, 5), a.value("model.layers.2.mlp.gate_proj.weight", 5));
        assertEquals(a.value(GATE, 5), RandomWeights.of(TINY_LLAMA, 1, DType.BF16).value(GATE, 5),
                "the f32 value is the same whatever the stored dtype");
    }

    private static double[] meanAndStd(RandomWeights w, String name) {
        TensorSpec s = spec(w, name);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(s.byteSize());
            w.fill(s, 0, data);
            double sum = 0;
            double squares = 0;
            long n = s.elementCount();
            for (long i = 0; i < n; i++) {
                double v = data.getAtIndex(DType.F32_LE, i);
                sum += v;
                squares += v * v;
            }
            double mean = sum / n;
            return new double[] {mean, Math.sqrt(squares / n - mean * mean)};
        }
    }

    @Test
    void realShapesUseHfInitialisationAndTinyOnesPeakedScales() {
        RandomWeights real = RandomWeights.of(ModelPreset.named("opt-125m"), 3, DType.F32);
        double[] fc1 = meanAndStd(real, "model.decoder.layers.0.fc1.weight");
        assertEquals(0, fc1[0], 2e-4);
        assertEquals(0.02, fc1[1], 0.0004);
        double[] ln = meanAndStd(real, "model.decoder.layers.0.final_layer_norm.weight");
        assertEquals(1, ln[0], 0.005);
        assertTrue(ln[1] > 0.01 && ln[1] < 0.03, "norm scales jitter: " + ln[1]);

        RandomWeights tiny = RandomWeights.of(TINY_LLAMA, 3, DType.F32);
        assertEquals(1 / Math.sqrt(128), meanAndStd(tiny, GATE)[1], 0.003);
        assertEquals(1 / Math.sqrt(320), meanAndStd(tiny, "model.layers.0.mlp.down_proj.weight")[1], 0.003);
        assertEquals(0.5, meanAndStd(tiny, "lm_head.weight")[1], 0.005);
    }

    @Test
    void valuesAreBellShapedAndBounded() {
        RandomWeights w = RandomWeights.of(TINY_LLAMA, 9, DType.F32);
        long within1 = 0;
        long n = 1_000_000;
        float max = 0;
        for (long i = 0; i < n; i++) {
            float z = w.value(EMBED, i) / 0.5f;
            within1 += Math.abs(z) <= 1 ? 1 : 0;
            max = Math.max(max, Math.abs(z));
        }
        // A normal distribution has 68.3% within one standard deviation; standardised Irwin-Hall(4) has 67.0%.
        assertEquals(0.6697, within1 / (double) n, 0.003);
        assertTrue(max <= 3.4642 && max > 3.0, "bounded like a truncated normal: " + max);
    }

    @Test
    void inMemoryAndWrittenWeightsAreIdentical() throws IOException {
        RandomWeights w = RandomWeights.of(ModelPreset.named("tiny-opt"), 5, DType.BF16);
        w.writeCheckpoint(dir, 60_000);
        try (InMemoryCheckpoint memory = w.inMemory(); SafetensorsCheckpoint file = SafetensorsCheckpoint.open(dir)) {
            assertEquals(w.tensors().size(), file.names().size());
            assertTrue(file.files().size() > 5, "sharded at 60 kB: " + file.files().size());
            for (TensorSpec s : w.tensors()) {
                Tensor a = memory.tensor(s.name());
                Tensor b = file.tensor(s.name());
                assertEquals(-1, a.data().mismatch(b.data()), s.name());
            }
            assertEquals(w.byteSize(), memory.byteSize());
            assertNotEquals(0, memory.tensor("model.decoder.embed_tokens.weight").data().get(ValueLayout.JAVA_SHORT_UNALIGNED, 0));
        }
    }
}
