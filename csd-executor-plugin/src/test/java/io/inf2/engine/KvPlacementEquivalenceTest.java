package io.inf2.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.compute.cpu.CpuBackend;
import io.inf2.csd.CsdKvCacheFactory;
import io.inf2.kv.KvCache;
import io.inf2.kv.KvCacheFactory;
import io.inf2.kv.KvTraffic;
import io.inf2.kv.MemoryKvCache;
import io.inf2.model.ModelConfig;
import io.inf2.model.ModelWeights;
import io.inf2.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Whole-model equivalence of KV placements: with the cache on emulated CSDs (attention near storage,
 * delayed writeback, X-cache) or on plain storage read back to the host, decode logits equal the
 * in-memory engine's within fp16 rounding of the stored keys and values, and greedy generations are
 * identical token for token.
 */
class KvPlacementEquivalenceTest {
    /** K and V are stored in fp16 (relative error 2⁻¹¹ each); through softmax and two layers that stays below 1e-2 of the largest logit. */
    private static final float LOGIT_TOLERANCE = 1e-2f;

    static Stream<Arguments> placements() {
        List<Arguments> out = new ArrayList<>();
        for (String model : List.of("opt", "llama-gqa")) {
            out.add(Arguments.of(model, "csd", 1, 0.0, 16));
            out.add(Arguments.of(model, "csd", 2, 0.5, 1));
            out.add(Arguments.of(model, "csd", 3, 1.0, 16));
            out.add(Arguments.of(model, "csd", 4, 0.5, 64));
            out.add(Arguments.of(model, "csd", 2, 0.0, 64));
            out.add(Arguments.of(model, "storage", 2, 0.0, 16));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} kv={1} devices={2} alpha={3} c={4}")
    @MethodSource("placements")
    void decodeLogitsMatchTheMemoryCache(String kind, String placement, int devices, double alpha, int pageTokens,
                                         @TempDir Path dir) throws IOException {
        try (TestModels.Model m = TestModels.random(kind, 3); CpuBackend cpu = new CpuBackend(2)) {
            ModelConfig c = m.config();
            Transformer t = new Transformer(ModelWeights.bind(c, m.checkpoint()), cpu);
            Random random = new Random(5);
            // Lengths chosen so pages are partly full and sequences finish at different steps.
            int[][] prompts = {random.ints(5, 0, c.vocabSize()).toArray(), random.ints(17, 0, c.vocabSize()).toArray(),
                    random.ints(9, 0, c.vocabSize()).toArray()};
            int[] slots = {0, 1, 2};
            EngineOptions options = options(placement, devices, alpha, pageTokens, dir);
            KvTraffic traffic = new KvTraffic();
            try (KvCacheFactory factory = CsdKvCacheFactory.open(options, c, cpu);
                 KvCache csd = factory.create(c, 3, 40, t.projector(), traffic);
                 MemoryKvCache memory = new MemoryKvCache(c, 3, cpu, new KvTraffic())) {
                FloatMatrix expected = t.prefill(slots, prompts, memory);
                FloatMatrix actual = t.prefill(slots, prompts, csd);
                assertClose(expected, actual, "prefill");
                int[] positions = {5, 17, 9};
                for (int step = 0; step < 12; step++) {
                    int[] tokens = new int[3];
                    for (int s = 0; s < 3; s++) {
                        tokens[s] = Sampler.argmax(expected.data(), s * c.vocabSize(), c.vocabSize());
                    }
                    int[] active = step < 8 ? slots : new int[] {0, 2};
                    if (step == 8) {
                        memory.release(1);
                        csd.release(1);
                    }
                    int[] stepTokens = new int[active.length];
                    int[] stepPositions = new int[active.length];
                    for (int i = 0; i < active.length; i++) {
                        stepTokens[i] = tokens[active[i]];
                        stepPositions[i] = positions[active[i]]++;
                    }
                    FloatMatrix e = t.decode(active, stepTokens, stepPositions, memory);
                    FloatMatrix a = t.decode(active, stepTokens, stepPositions, csd);
                    assertClose(e, a, "decode step " + step);
                    expected = scatter(e, active, 3);
                }
                for (int s : new int[] {0, 2}) {
                    assertEquals(memory.length(s), csd.length(s));
                }
            }
            // With 64-token pages these short sequences never fill a page: everything stays in the writeback buffer.
            assertTrue(traffic.snapshot().deviceWriteBytes() > 0 || alpha == 1.0 || pageTokens > 17, "nothing was written to the devices");
        }
    }

    @ParameterizedTest(name = "{0} kv={1} devices={2} alpha={3} c={4}")
    @MethodSource("placements")
    void greedyGenerationsAreIdentical(String kind, String placement, int devices, double alpha, int pageTokens,
                                       @TempDir Path dir) throws IOException {
        try (TestModels.Model m = TestModels.random(kind, 13)) {
            List<GenerationRequest> requests = new ArrayList<>();
            Random random = new Random(1);
            for (int i = 0; i < 5; i++) {
                requests.add(GenerationRequest.ofTokens("r" + i, random.ints(3 + 7 * i, 0, m.config().vocabSize()).toArray(),
                        SamplingParams.greedy(4 + 3 * i)));
            }
            List<GenerationResult> expected;
            try (InferenceEngine memory = m.engine(3)) {
                expected = memory.generate(requests, ProgressListener.NONE);
            }
            EngineOptions options = options(placement, devices, alpha, pageTokens, dir);
            CpuBackend cpu = new CpuBackend(2);
            try (InferenceEngine tiered = InferenceEngine.assemble(options, m.config(),
                    io.inf2.model.checkpoint.Checkpoint.borrowed(m.checkpoint()), null, cpu, cpu,
                    InferenceEngine.kvPlacement(options, m.config()))) {
                List<GenerationResult> actual = tiered.generate(requests, ProgressListener.NONE);
                for (int i = 0; i < requests.size(); i++) {
                    assertArrayEquals(expected.get(i).completionTokens(), actual.get(i).completionTokens(), "request " + i);
                    assertEquals(expected.get(i).finishReason(), actual.get(i).finishReason());
                }
                assertTrue(tiered.statistics().kv().pagesWritten() > 0 || alpha == 1.0 || pageTokens > 17);
            }
        }
    }

    private static EngineOptions options(String placement, int devices, double alpha, int pageTokens, Path dir)
            throws IOException {
        List<Path> dirs = new ArrayList<>();
        for (int i = 0; i < devices; i++) {
            dirs.add(Files.createDirectories(dir.resolve("csd" + i)));
        }
        return TestOptions.of("model", dir, "batchSize", 3, "maxNewTokens", 8, "kvCache", placement, "csd", dirs,
                "writebackTokens", pageTokens, "xcacheFraction", alpha, "csdThreads", 1);
    }

    private static FloatMatrix scatter(FloatMatrix rows, int[] slots, int total) {
        FloatMatrix out = new FloatMatrix(total, rows.cols());
        for (int i = 0; i < slots.length; i++) {
            System.arraycopy(rows.data(), rows.offset(i), out.data(), out.offset(slots[i]), rows.cols());
        }
        return out;
    }

    private static void assertClose(FloatMatrix expected, FloatMatrix actual, String what) {
        float scale = 0;
        for (float v : expected.data()) {
            scale = Math.max(scale, Math.abs(v));
        }
        for (int i = 0; i < expected.data().length; i++) {
            float diff = Math.abs(expected.data()[i] - actual.data()[i]);
            assertTrue(diff <= LOGIT_TOLERANCE * scale, what + ": logit " + i + " differs by " + diff + " (max |logit| " + scale + ")");
        }
    }
}
