package io.inf2.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.inf2.compute.cpu.CpuBackend;
import io.inf2.config.Inf2Config;
import io.inf2.config.Settings;
import io.inf2.kv.KvTraffic;
import io.inf2.kv.MemoryKvCache;
import io.inf2.model.ModelWeights;
import io.inf2.model.checkpoint.SafetensorsCheckpoint;
import io.inf2.model.presets.ModelInitializer;
import io.inf2.model.presets.ModelPreset;
import io.inf2.tensor.DType;
import io.inf2.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The engine against Hugging Face transformers, a reference no one here wrote. Fixtures were made
 * by tools/reference/hf_fixtures.py (run on the GPU machine by tools/reference/run-on-gpu.sh) from
 * checkpoints that `inf2 init-model` wrote; this test rebuilds the same checkpoints (they are
 * deterministic) and requires the same prompt tokens, first-step logits within 1e-4 of the largest
 * logit for f32 weights (HF ran in float32 on the CPU) and 2e-2 for f16/bf16 (HF ran in that dtype
 * on the GPU, so its activations are rounded too), and the same greedy tokens for as long as HF's
 * top-two margin exceeds that tolerance (beyond it, either choice is numerically right).
 */
class HfReferenceTest {
    /** From the module (Maven) or from the repository root (the GPU machine's test launcher). */
    private static final Path FIXTURES = Files.isDirectory(Path.of("src/test/resources/fixtures/hf"))
            ? Path.of("src/test/resources/fixtures/hf") : Path.of("csd-executor-plugin/src/test/resources/fixtures/hf");
    private static final ObjectMapper JSON = new ObjectMapper();

    static Stream<Path> fixtures() throws IOException {
        List<Path> files = new ArrayList<>();
        try (Stream<Path> s = Files.list(FIXTURES)) {
            s.filter(p -> p.toString().endsWith(".json")).sorted().forEach(files::add);
        }
        assertFalse(files.isEmpty(), "no fixtures in " + FIXTURES.toAbsolutePath() + ": run tools/reference/run-on-gpu.sh");
        return files.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fixtures")
    void engineMatchesTransformers(Path fixtureFile, @TempDir Path dir) throws IOException {
        try (CpuBackend cpu = new CpuBackend(2)) {
            assertMatchesFixture(fixtureFile, dir, "cpu", "memory", cpu, true);
        }
    }

    /**
     * Rebuilds the fixture's checkpoint under {@code dir} and compares the engine on {@code backend}
     * (name and instance: the engine opens its own, the first-step logits come from {@code compute})
     * with transformers. Without {@code withTokenizer} the checkpoint's tokenizer.json is removed and
     * the fixture's token ids are used as they are (the tokenizer is the CPU test's to check).
     */
    static void assertMatchesFixture(Path fixtureFile, Path dir, String backend, String kvCache,
                                     io.inf2.compute.ComputeBackend compute, boolean withTokenizer) throws IOException {
        JsonNode fixture = JSON.readTree(fixtureFile.toFile());
        DType dtype = switch (fixture.get("dtype").asText()) {
            case "f16" -> DType.F16;
            case "bf16" -> DType.BF16;
            default -> DType.F32;
        };
        float tolerance = dtype == DType.F32 ? 1e-4f : 2e-2f;
        Path model = dir.resolve("model");
        ModelInitializer.write(ModelPreset.named(fixture.get("preset").asText()), fixture.get("seed").asLong(), dtype, model);
        if (!withTokenizer) {
            Files.delete(model.resolve("tokenizer.json"));
        }
        int maxNew = fixture.get("max_new_tokens").asInt();
        Inf2Config config = Inf2Config.fromNames(java.util.Map.of("model", model.toString(), "backend", backend,
                "kvCache", kvCache, "maxNewTokens", Integer.toString(maxNew)), Settings.all(), "");
        try (InferenceEngine engine = InferenceEngine.open(EngineOptions.from(config));
             SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.open(model);
             CpuBackend cacheHost = new CpuBackend(1)) {
            Transformer transformer = new Transformer(ModelWeights.bind(engine.model(), checkpoint), compute);
            int decisiveSteps = 0;
            for (JsonNode c : fixture.get("cases")) {
                String prompt = c.get("prompt").asText();
                int[] expectedIds = ints(c.get("input_ids"));
                if (withTokenizer) {
                    assertArrayEquals(expectedIds, engine.tokenizer().encode(prompt, true), "tokens of \"" + prompt + "\"");
                }

                FloatMatrix logits;
                try (MemoryKvCache cache = new MemoryKvCache(engine.model(), 1, cacheHost, new KvTraffic())) {
                    logits = transformer.prefill(new int[] {0}, new int[][] {expectedIds}, cache);
                }
                float scale = (float) c.get("max_abs_logit").asDouble();
                int[] ids = ints(c.get("logit_ids"));
                JsonNode values = c.get("logits");
                for (int i = 0; i < ids.length; i++) {
                    float expected = (float) values.get(i).asDouble();
                    float actual = logits.get(0, ids[i]);
                    assertTrue(Math.abs(expected - actual) <= tolerance * scale, fixtureFile.getFileName() + " on " + backend
                            + " \"" + prompt + "\": logit of token " + ids[i] + " is " + actual + ", transformers gives " + expected);
                }

                GenerationResult r = engine.generate(List.of(GenerationRequest.ofTokens("x", expectedIds,
                        SamplingParams.greedy(maxNew))), ProgressListener.NONE).get(0);
                int[] greedy = ints(c.get("greedy"));
                JsonNode margins = c.get("margins");
                int decisive = 0;
                while (decisive < greedy.length && margins.get(decisive).asDouble() > tolerance * scale) {
                    decisive++;
                }
                decisiveSteps += decisive;
                int[] ours = r.completionTokens();
                assertTrue(ours.length >= Math.min(decisive, greedy.length), "\"" + prompt + "\": generated " + ours.length);
                for (int i = 0; i < decisive; i++) {
                    assertEquals(greedy[i], ours[i], fixtureFile.getFileName() + " on " + backend + " \"" + prompt
                            + "\": greedy token " + i);
                }
                if (decisive == greedy.length) {
                    assertEquals(greedy.length, ours.length, "\"" + prompt + "\": length of the greedy continuation");
                }
            }
            assertTrue(decisiveSteps > 0, fixtureFile.getFileName() + ": no greedy step decisive at this tolerance");
        }
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }
}
