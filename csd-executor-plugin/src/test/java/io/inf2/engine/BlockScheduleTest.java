package io.inf2.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.compute.cpu.CpuBackend;
import io.inf2.model.checkpoint.SafetensorsCheckpoint;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The block schedule changes the order of work, never the result: splitting an engine batch into
 * GPU batches, and streaming layer weights from storage instead of using them mapped, give the
 * same tokens as one batch over mapped weights.
 */
class BlockScheduleTest {

    private static List<GenerationRequest> requests(int vocab) {
        Random random = new Random(2);
        List<GenerationRequest> out = new ArrayList<>();
        for (int i = 0; i < 7; i++) {
            out.add(GenerationRequest.ofTokens("r" + i, random.ints(2 + 3 * i, 0, vocab).toArray(),
                    i % 2 == 0 ? SamplingParams.greedy(3 + i) : new SamplingParams(3 + i, 0.7, 10, 0.95, 1.0, i, List.of())));
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"opt", "llama-gqa"})
    void gpuBatchesGiveTheSameTokensAsOneBatch(String kind) {
        try (TestModels.Model m = TestModels.random(kind, 21)) {
            List<GenerationRequest> requests = requests(m.config().vocabSize());
            List<GenerationResult> whole;
            try (InferenceEngine engine = m.engine(7)) {
                whole = engine.generate(requests, ProgressListener.NONE);
            }
            for (int gpuBatch : new int[] {1, 2, 3}) {
                try (InferenceEngine engine = m.engine(7, gpuBatch)) {
                    List<GenerationResult> split = engine.generate(requests, ProgressListener.NONE);
                    for (int i = 0; i < requests.size(); i++) {
                        assertArrayEquals(whole.get(i).completionTokens(), split.get(i).completionTokens(),
                                "gpu batch " + gpuBatch + ", request " + i);
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"opt", "llama-gqa", "llama-rope-scaled"})
    void weightsStreamedFromStorageGiveTheSameTokens(String kind, @TempDir Path dir) throws IOException {
        assertStreamedWeightsGiveTheSameTokens(kind, dir, options(dir, "storage", List.of()), "weights 0/0/100");
    }

    /** FlexGen's percent policy splits every layer between host memory and storage: same tokens, only the storage share read. */
    @ParameterizedTest
    @ValueSource(strings = {"opt", "llama-gqa"})
    void weightsSplitBetweenHostAndStorageGiveTheSameTokens(String kind, @TempDir Path dir) throws IOException {
        assertStreamedWeightsGiveTheSameTokens(kind, dir, options(dir, "memory", List.of(0, 50, 0, 100, 100, 0)),
                "weights 0/50/50");
    }

    private static EngineOptions options(Path dir, String weights, List<Integer> percent) {
        return TestOptions.of("model", dir, "batchSize", 4, "maxNewTokens", 8, "gpuBatchSize", 2, "weights", weights,
                "percent", percent);
    }

    private static void assertStreamedWeightsGiveTheSameTokens(String kind, Path dir, EngineOptions options, String policy)
            throws IOException {
        TestModels.writeSafetensors(kind, 4, dir);
        try (TestModels.Model m = TestModels.random(kind, 4)) {
            List<GenerationRequest> requests = requests(m.config().vocabSize());
            List<GenerationResult> mapped;
            try (InferenceEngine engine = m.engine(4, 2)) {
                mapped = engine.generate(requests, ProgressListener.NONE);
            }
            CpuBackend cpu = new CpuBackend(2);
            try (InferenceEngine engine = InferenceEngine.assemble(options, m.config(), SafetensorsCheckpoint.open(dir),
                    null, cpu, cpu, InferenceEngine.memoryPlacement())) {
                List<GenerationResult> streamed = engine.generate(requests, ProgressListener.NONE);
                for (int i = 0; i < requests.size(); i++) {
                    assertArrayEquals(mapped.get(i).completionTokens(), streamed.get(i).completionTokens(), "request " + i);
                }
                io.inf2.compute.WeightLayout layout = engine.placement().layout(
                        io.inf2.model.ModelWeights.bind(m.config(), m.checkpoint()).layers());
                long storageBytes = layout.tensorsIn(io.inf2.compute.WeightTier.STORAGE).stream()
                        .mapToLong(t -> t.data().byteSize()).sum();
                long layerBytes = io.inf2.model.ModelWeights.bind(m.config(), m.checkpoint()).layers().stream()
                        .mapToLong(io.inf2.model.LayerWeights::byteSize).sum();
                long hostBytes = layout.tensorsIn(io.inf2.compute.WeightTier.HOST).stream()
                        .mapToLong(t -> t.data().byteSize()).sum();
                assertEquals(layerBytes, storageBytes + hostBytes);
                assertTrue(storageBytes > 0, "nothing placed on storage");
                // Each layer's storage share is read at least once; more often only when the layers outnumber the
                // two buffers (a two-layer model stays in them).
                long reads = engine.statistics().weightBytesRead();
                long passes = m.config().layers() > 2 ? 2 : 1;
                assertTrue(reads >= passes * storageBytes, "read " + reads + " bytes of " + storageBytes + " per pass");
                assertEquals(7, engine.statistics().requests());
                assertTrue(engine.describe().contains(policy), engine.describe());
            }
        }
    }
}
