package io.inf2.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.compute.cpu.CpuBackend;
import io.inf2.compute.cuda.CudaBackend;
import io.inf2.compute.cuda.RequiresCuda;
import io.inf2.model.checkpoint.SafetensorsCheckpoint;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Same outputs under every placement policy on the GPU: where the weights live (resident, streamed per
 * layer from pinned host memory, read from storage, mixed), where decode parks activations, and where
 * the KV cache lives change where bytes come from, never the tokens. The models are deeper than the
 * two device slots, so layers really cycle through them.
 */
@RequiresCuda
class CudaPlacementTest {

    private static final String[] POLICIES = {
        "0,100,0,100,100,0",   // every layer weight streamed from pinned host memory
        "30,40,0,100,100,0",   // part resident, part host, part read from storage per layer
        "0,0,0,100,100,0",     // every layer weight read from storage, then copied in
        "50,50,0,100,0,100",   // activations parked in host memory between layers (with GPU batches of 2)
        "0,100,0,0,100,0",     // KV cache on emulated CSDs, X-cache recomputed on the GPU from streamed weights
        "70,30,100,0,100,0",   // KV cache in GPU memory (kvCache=gpu), attention on the GPU
        "30,70,100,0,0,100",   // KV cache in GPU memory with streamed weights and activations parked (GPU batches of 2)
    };

    private static List<GenerationRequest> requests(int vocab) {
        Random random = new Random(5);
        List<GenerationRequest> out = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            out.add(GenerationRequest.ofTokens("r" + i, random.ints(3 + 4 * i, 0, vocab).toArray(), SamplingParams.greedy(6)));
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"opt-5-layers", "llama-gqa-5-layers"})
    void everyPlacementGivesTheTokensOfResidentWeights(String kind, @TempDir Path dir) throws IOException {
        Path model = Files.createDirectories(dir.resolve("model"));
        TestModels.writeSafetensors(kind, 8, model);
        TestModels.Model m = TestModels.random(kind, 8);
        m.close();
        List<GenerationRequest> requests = requests(m.config().vocabSize());
        List<GenerationResult> resident = run(m, model, options(model, "memory", List.of(), List.of(), 0), requests);
        for (String policy : POLICIES) {
            List<Integer> percent = java.util.Arrays.stream(policy.split(",")).map(Integer::valueOf).toList();
            boolean csd = percent.get(2) + percent.get(3) == 0;
            List<Path> devices = List.of();
            if (csd) {
                devices = List.of(Files.createDirectories(dir.resolve("csd0")), Files.createDirectories(dir.resolve("csd1")));
            }
            EngineOptions o = options(model, csd ? "csd" : "memory", devices, percent, percent.get(4) == 0 ? 2 : 0);
            List<GenerationResult> placed = run(m, model, o, requests);
            for (int i = 0; i < requests.size(); i++) {
                assertArrayEquals(resident.get(i).completionTokens(), placed.get(i).completionTokens(),
                        kind + " percent " + policy + ", request " + i);
            }
        }
    }

    /** Weights built in memory are pinned in place (registered with the driver) instead of copied: same tokens. */
    @ParameterizedTest
    @ValueSource(strings = {"opt-5-layers"})
    void weightsInAllocatedMemoryStreamFromWhereTheyAre(String kind) {
        try (TestModels.Model m = TestModels.random(kind, 8)) {
            List<GenerationRequest> requests = requests(m.config().vocabSize());
            List<GenerationResult> resident = runInMemory(m, List.of(), requests);
            List<GenerationResult> streamed = runInMemory(m, List.of(0, 100, 0, 100, 100, 0), requests);
            for (int i = 0; i < requests.size(); i++) {
                assertArrayEquals(resident.get(i).completionTokens(), streamed.get(i).completionTokens(), "request " + i);
            }
        }
    }

    private static List<GenerationResult> runInMemory(TestModels.Model m, List<Integer> percent,
                                                      List<GenerationRequest> requests) {
        EngineOptions options = options(Path.of("in-memory"), "memory", List.of(), percent, 0);
        CpuBackend host = new CpuBackend(2);
        CudaBackend gpu = CudaBackend.open(options.cuda());
        try (InferenceEngine engine = InferenceEngine.assemble(options, m.config(),
                io.inf2.model.checkpoint.Checkpoint.borrowed(m.checkpoint()), null, gpu, host,
                InferenceEngine.memoryPlacement())) {
            if (!percent.isEmpty()) {
                assertTrue(engine.describe().contains(" 0 copied into pinned memory"), engine.describe());
            }
            return engine.generate(requests, ProgressListener.NONE);
        }
    }

    private static EngineOptions options(Path model, String kvCache, List<Path> csd, List<Integer> percent, int gpuBatch) {
        return TestOptions.of("model", model, "backend", "cuda", "batchSize", 5, "maxNewTokens", 6, "kvCache", kvCache,
                "csd", csd, "writebackTokens", 4, "xcacheFraction", csd.isEmpty() ? 0 : 0.5, "csdThreads", 1,
                "gpuBatchSize", gpuBatch, "percent", percent);
    }

    private static List<GenerationResult> run(TestModels.Model m, Path model, EngineOptions options,
                                              List<GenerationRequest> requests) {
        CpuBackend host = new CpuBackend(2);
        CudaBackend gpu = CudaBackend.open(options.cuda());
        SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.open(model);
        EngineOptions placed = InferenceEngine.resolvePlacement(options, m.config(), checkpoint, gpu);
        try (InferenceEngine engine = InferenceEngine.assemble(placed, m.config(), checkpoint, null, gpu, host,
                InferenceEngine.kvPlacement(placed, m.config()))) {
            if (!options.percent().isEmpty()) {
                assertEquals(options.percent().get(0), engine.placement().weightsGpuPercent());
                assertEquals(options.percent().get(1), engine.placement().weightsHostPercent());
                assertTrue(engine.describe().contains("streamed per layer"), engine.describe());
            }
            List<GenerationResult> results = engine.generate(requests, ProgressListener.NONE);
            for (GenerationResult r : results) {
                assertTrue(r.finishReason() != FinishReason.ERROR, r.id() + ": " + r.error());
            }
            System.out.println(options.percent() + ": " + engine.describe());
            return results;
        }
    }
}
