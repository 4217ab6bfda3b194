package io.inf2.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.compute.cpu.CpuBackend;
import io.inf2.compute.cuda.CudaBackend;
import io.inf2.compute.cuda.CudaSettings;
import io.inf2.compute.cuda.RequiresCuda;
import io.inf2.kv.KvTraffic;
import io.inf2.kv.MemoryKvCache;
import io.inf2.model.ModelConfig;
import io.inf2.model.ModelWeights;
import io.inf2.model.checkpoint.Checkpoint;
import io.inf2.model.presets.RandomWeights;
import io.inf2.model.presets.WeightScale;
import io.inf2.tensor.DType;
import io.inf2.tensor.FloatMatrix;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The whole decoder stack on the GPU against the CPU: the same random model, prompts and decode
 * tokens through {@link Transformer} with each backend (KV cache in host memory for both), logits
 * compared after prefill and after each of three decode steps.
 *
 * <p>Tolerance, relative to the largest logit: F32 weights 1e-4 (only fp32 summation order and
 * exp/erf rounding differ); F16 5e-3 and BF16 4e-2, because the GPU rounds each linear layer's
 * input to the weight's type (2⁻¹¹ and 2⁻⁸ relative), several times per layer. A wrong head, mask
 * or offset moves logits by the order of the logits themselves.
 */
@RequiresCuda
class CudaTransformerTest {
    private static CpuBackend cpu;
    private static CudaBackend gpu;

    @BeforeAll
    static void open() {
        cpu = new CpuBackend(2);
        gpu = CudaBackend.open(new CudaBackend.Options("", 0, CudaSettings.defaultKernelCache()));
    }

    @AfterAll
    static void close() {
        if (gpu != null) {
            gpu.close();
        }
        if (cpu != null) {
            cpu.close();
        }
    }

    @Test
    void f32ModelsMatchTheCpu() {
        for (String kind : new String[] {"opt", "opt-post-ln", "llama-gqa", "llama-rope-scaled"}) {
            try (TestModels.Model m = TestModels.random(kind, 11)) {
                compare(kind + " F32", m.config(), m.checkpoint(), 1e-4);
            }
        }
    }

    @Test
    void halfPrecisionModelsMatchTheCpuWithinTheInputRounding() {
        for (String kind : new String[] {"opt", "llama-gqa"}) {
            ModelConfig config;
            try (TestModels.Model m = TestModels.random(kind, 12)) {
                config = m.config();
            }
            try (Checkpoint f16 = RandomWeights.of(config, WeightScale.PEAKED, 12, DType.F16).inMemory()) {
                compare(kind + " F16", config, f16, 5e-3);
            }
            try (Checkpoint bf16 = RandomWeights.of(config, WeightScale.PEAKED, 12, DType.BF16).inMemory()) {
                compare(kind + " BF16", config, bf16, 4e-2);
            }
        }
    }

    private static void compare(String what, ModelConfig config, Checkpoint checkpoint, double tolerance) {
        ModelWeights weights = ModelWeights.bind(config, checkpoint);
        Transformer onCpu = new Transformer(weights, cpu);
        Transformer onGpu = new Transformer(weights, gpu);
        SplittableRandom random = new SplittableRandom(what.hashCode());
        int[][] prompts = {prompt(random, config, 5), prompt(random, config, 9), prompt(random, config, 1)};
        int[] slots = {0, 1, 2};
        try (MemoryKvCache cpuCache = new MemoryKvCache(config, 3, cpu, new KvTraffic());
             MemoryKvCache gpuCache = new MemoryKvCache(config, 3, cpu, new KvTraffic())) {
            FloatMatrix expected = onCpu.prefill(slots, prompts, cpuCache);
            FloatMatrix actual = onGpu.prefill(slots, prompts, gpuCache);
            assertLogitsClose(expected, actual, tolerance, what + " prefill");
            int[] positions = {5, 9, 1};
            for (int step = 0; step < 3; step++) {
                int[] tokens = argmax(expected);
                expected = onCpu.decode(slots, tokens, positions, cpuCache);
                actual = onGpu.decode(slots, tokens, positions, gpuCache);
                assertLogitsClose(expected, actual, tolerance, what + " decode step " + step);
                for (int i = 0; i < positions.length; i++) {
                    positions[i]++;
                }
            }
        }
    }

    static int[] prompt(SplittableRandom random, ModelConfig config, int length) {
        int[] p = new int[length];
        for (int i = 0; i < length; i++) {
            p[i] = random.nextInt(config.vocabSize());
        }
        return p;
    }

    private static int[] argmax(FloatMatrix logits) {
        int[] best = new int[logits.rows()];
        for (int r = 0; r < logits.rows(); r++) {
            for (int c = 1; c < logits.cols(); c++) {
                if (logits.get(r, c) > logits.get(r, best[r])) {
                    best[r] = c;
                }
            }
        }
        return best;
    }

    static void assertLogitsClose(FloatMatrix expected, FloatMatrix actual, double tolerance, String what) {
        assertEquals(expected.rows(), actual.rows(), what);
        assertEquals(expected.cols(), actual.cols(), what);
        double scale = 0;
        double worst = 0;
        for (int i = 0; i < expected.rows() * expected.cols(); i++) {
            scale = Math.max(scale, Math.abs(expected.data()[i]));
            worst = Math.max(worst, Math.abs(expected.data()[i] - actual.data()[i]));
        }
        assertTrue(scale > 0, what + ": all-zero logits");
        assertTrue(worst <= tolerance * scale, what + ": largest logit difference " + worst + " exceeds " + tolerance
                + " x " + scale);
        System.out.printf("%s: largest logit difference %.3g of max |logit| %.3g%n", what, worst, scale);
    }
}
