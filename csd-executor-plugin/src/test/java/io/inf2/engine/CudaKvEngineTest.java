package io.inf2.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.compute.cpu.CpuBackend;
import io.inf2.compute.cuda.CudaBackend;
import io.inf2.compute.cuda.CudaKvCache;
import io.inf2.compute.cuda.CudaSettings;
import io.inf2.compute.cuda.RequiresCuda;
import io.inf2.kv.KvTraffic;
import io.inf2.kv.MemoryKvCache;
import io.inf2.model.ModelConfig;
import io.inf2.model.ModelWeights;
import io.inf2.model.checkpoint.Checkpoint;
import io.inf2.model.presets.ModelPreset;
import io.inf2.model.presets.RandomWeights;
import io.inf2.tensor.DType;
import io.inf2.tensor.FloatMatrix;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The whole engine with the KV cache in GPU memory ({@code kvCache=gpu}, backend cuda) against the
 * CPU engine with the host cache ({@code kvCache=memory}, backend cpu), on the tiny presets with
 * random F32 weights.
 *
 * <p>Logit tolerance 5e-3 of the largest logit, the one the CUDA transformer test uses for F16
 * weights: here the weights are F32 (1e-4 there) but keys and values are stored in F16 (2⁻¹¹
 * relative), which perturbs attention like rounding each layer's input. A wrong slot, length or
 * head moves logits by the order of the logits themselves.
 */
@RequiresCuda
class CudaKvEngineTest {
    private static final double LOGIT_TOLERANCE = 5e-3;

    @ParameterizedTest
    @ValueSource(strings = {"tiny-opt", "tiny-llama"})
    void prefillAndDecodeLogitsMatchTheCpuWithTheHostCache(String preset) {
        ModelConfig config = ModelPreset.named(preset).config();
        try (Checkpoint checkpoint = RandomWeights.of(ModelPreset.named(preset), 21, DType.F32).inMemory();
             CpuBackend cpu = new CpuBackend(2);
             CudaBackend gpu = CudaBackend.open(new CudaBackend.Options("", 0, CudaSettings.defaultKernelCache()))) {
            ModelWeights weights = ModelWeights.bind(config, checkpoint);
            Transformer onCpu = new Transformer(weights, cpu);
            Transformer onGpu = new Transformer(weights, gpu);
            SplittableRandom random = new SplittableRandom(preset.hashCode());
            int[][] prompts = {CudaTransformerTest.prompt(random, config, 7), CudaTransformerTest.prompt(random, config, 19), CudaTransformerTest.prompt(random, config, 1),
                    CudaTransformerTest.prompt(random, config, 12)};
            int[] slots = {1, 3, 0, 2};
            KvTraffic traffic = new KvTraffic();
            try (MemoryKvCache host = new MemoryKvCache(config, 4, cpu, new KvTraffic());
                 CudaKvCache device = new CudaKvCache(gpu, config, 4, 32, traffic)) {
                FloatMatrix expected = onCpu.prefill(slots, prompts, host);
                FloatMatrix actual = onGpu.prefill(slots, prompts, device);
                CudaTransformerTest.assertLogitsClose(expected, actual, LOGIT_TOLERANCE, preset + " prefill");
                int[] positions = {7, 19, 1, 12};
                for (int step = 0; step < 4; step++) {
                    int[] tokens = new int[slots.length];
                    for (int i = 0; i < slots.length; i++) {
                        tokens[i] = Sampler.argmax(expected.data(), i * config.vocabSize(), config.vocabSize());
                    }
                    // GPU batches of 3 then 1: the block schedule with a cache in device memory.
                    expected = onCpu.decode(slots, tokens, positions, host, 3);
                    actual = onGpu.decode(slots, tokens, positions, device, 3);
                    CudaTransformerTest.assertLogitsClose(expected, actual, LOGIT_TOLERANCE, preset + " decode step " + step);
                    for (int i = 0; i < positions.length; i++) {
                        positions[i]++;
                    }
                }
                for (int slot : slots) {
                    assertEquals(host.length(slot), device.length(slot), "length of slot " + slot);
                }
            }
            assertEquals(0, traffic.snapshot().linkBytes(), "q, k, v and the output stayed on the GPU");
            assertTrue(traffic.snapshot().deviceReadBytes() > 0);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-opt", "tiny-llama"})
    void greedyGenerationsAreIdentical(String preset) {
        ModelConfig config = ModelPreset.named(preset).config().withEosTokenIds(List.of());
        List<GenerationRequest> requests = new ArrayList<>();
        SplittableRandom random = new SplittableRandom(3);
        for (int i = 0; i < 5; i++) {
            requests.add(GenerationRequest.ofTokens("r" + i, CudaTransformerTest.prompt(random, config, 2 + 6 * i), SamplingParams.greedy(3 + 4 * i)));
        }
        try (Checkpoint checkpoint = RandomWeights.of(ModelPreset.named(preset), 22, DType.F32).inMemory()) {
            List<GenerationResult> expected;
            EngineOptions cpuOptions = options("cpu", "memory", 0);
            CpuBackend cpuOnly = new CpuBackend(2);
            try (InferenceEngine engine = InferenceEngine.assemble(cpuOptions, config, Checkpoint.borrowed(checkpoint), null,
                    cpuOnly, cpuOnly, InferenceEngine.kvPlacement(cpuOptions, config))) {
                expected = engine.generate(requests, ProgressListener.NONE);
            }
            for (int gpuBatch : new int[] {0, 2}) {
                EngineOptions options = options("cuda", "gpu", gpuBatch);
                CpuBackend host = new CpuBackend(2);
                CudaBackend gpu = CudaBackend.open(options.cuda());
                try (InferenceEngine engine = InferenceEngine.assemble(options, config, Checkpoint.borrowed(checkpoint), null,
                        gpu, host, InferenceEngine.kvPlacement(options, config))) {
                    assertTrue(engine.describe().contains("kv-cache=gpu"), engine.describe());
                    List<GenerationResult> actual = engine.generate(requests, ProgressListener.NONE);
                    for (int i = 0; i < requests.size(); i++) {
                        String what = preset + " gpu batch " + gpuBatch + " request " + i;
                        assertNull(actual.get(i).error(), what);
                        assertArrayEquals(expected.get(i).completionTokens(), actual.get(i).completionTokens(), what);
                        assertEquals(expected.get(i).finishReason(), actual.get(i).finishReason(), what);
                    }
                    assertEquals(0, engine.statistics().kv().linkBytes());
                    assertTrue(engine.servedBy().contains("gpu-memory"), engine.servedBy().toString());
                }
            }
        }
    }

    @Test
    void aGpuCacheRefusesAModelRunningOnAnotherBackend() {
        String preset = "tiny-opt";
        ModelConfig config = ModelPreset.named(preset).config();
        try (Checkpoint checkpoint = RandomWeights.of(ModelPreset.named(preset), 23, DType.F32).inMemory();
             CpuBackend cpu = new CpuBackend(1);
             CudaBackend gpu = CudaBackend.open(new CudaBackend.Options("", 0, CudaSettings.defaultKernelCache()));
             CudaKvCache device = new CudaKvCache(gpu, config, 1, 8, new KvTraffic())) {
            Transformer onCpu = new Transformer(ModelWeights.bind(config, checkpoint), cpu);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> onCpu.prefill(new int[] {0}, new int[][] {{5, 6}}, device));
            assertTrue(e.getMessage().startsWith("the KV cache lives in the memory of cuda("), e.getMessage());
        }
    }

    private static EngineOptions options(String backend, String kvCache, int gpuBatchSize) {
        return TestOptions.of("backend", backend, "batchSize", 5, "maxNewTokens", 8, "kvCache", kvCache,
                "gpuBatchSize", gpuBatchSize);
    }
}
