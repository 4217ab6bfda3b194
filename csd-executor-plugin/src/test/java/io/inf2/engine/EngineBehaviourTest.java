package io.inf2.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.compute.cpu.CpuBackend;
import io.inf2.kv.MemoryKvCache;
import io.inf2.kv.KvTraffic;
import io.inf2.model.ModelConfig;
import io.inf2.model.ModelWeights;
import io.inf2.tensor.FloatMatrix;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Generation behaviour that holds for any weights: cache consistency, batch independence, stop rules, bad requests. */
class EngineBehaviourTest {

    static Stream<String> models() {
        return Stream.of("opt", "opt-post-ln", "llama-gqa", "llama-rope-scaled");
    }

    @ParameterizedTest
    @MethodSource("models")
    void decodeWithCacheEqualsPrefillOfTheWholeSequence(String kind) {
        try (TestModels.Model m = TestModels.random(kind, 7); CpuBackend cpu = new CpuBackend(2)) {
            ModelConfig c = m.config();
            Transformer t = new Transformer(ModelWeights.bind(c, m.checkpoint()), cpu);
            int[] prompt = new Random(3).ints(9, 0, c.vocabSize()).toArray();

            FloatMatrix full;
            try (MemoryKvCache cache = new MemoryKvCache(c, 1, cpu, new KvTraffic())) {
                full = t.prefill(new int[] {0}, new int[][] {prompt}, cache);
            }
            FloatMatrix stepped;
            try (MemoryKvCache cache = new MemoryKvCache(c, 1, cpu, new KvTraffic())) {
                int[] head = java.util.Arrays.copyOf(prompt, 6);
                t.prefill(new int[] {0}, new int[][] {head}, cache);
                stepped = null;
                for (int p = 6; p < prompt.length; p++) {
                    stepped = t.decode(new int[] {0}, new int[] {prompt[p]}, new int[] {p}, cache);
                }
                assertEquals(prompt.length, cache.length(0));
            }
            assertClose(full.data(), stepped.data(), 1e-4f);
        }
    }

    @ParameterizedTest
    @MethodSource("models")
    void aSequenceGeneratesTheSameTokensAloneAndInABatch(String kind) {
        try (TestModels.Model m = TestModels.random(kind, 11)) {
            SamplingParams sampled = new SamplingParams(6, 0.8, 20, 0.9, 1.1, 42, List.of());
            int[] a = {5, 9, 13, 2};
            try (InferenceEngine alone = m.engine(1); InferenceEngine batched = m.engine(4)) {
                for (SamplingParams p : List.of(SamplingParams.greedy(6), sampled)) {
                    GenerationResult solo = alone.generate(List.of(GenerationRequest.ofTokens("a", a, p)), ProgressListener.NONE).get(0);
                    List<GenerationResult> many = batched.generate(List.of(
                            GenerationRequest.ofTokens("b", new int[] {1, 2, 3, 4, 5, 6, 7}, p.withSeed(7)),
                            GenerationRequest.ofTokens("a", a, p),
                            GenerationRequest.ofTokens("c", new int[] {8}, p.withSeed(9))), ProgressListener.NONE);
                    assertEquals("a", many.get(1).id());
                    assertArrayEquals(solo.completionTokens(), many.get(1).completionTokens());
                    assertEquals(FinishReason.LENGTH, solo.finishReason());
                    assertEquals(6, solo.completionTokens().length);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("models")
    void stopRulesEndEachSequenceWithItsReason(String kind) {
        try (TestModels.Model m = TestModels.random(kind, 5); InferenceEngine engine = m.engine(8)) {
            int[] prompt = {3, 1, 4, 1, 5};
            int[] greedy = engine.generate(List.of(GenerationRequest.ofTokens("g", prompt, SamplingParams.greedy(5))),
                    ProgressListener.NONE).get(0).completionTokens();
            int stopAt = greedy[2];
            SamplingParams stopping = new SamplingParams(5, 0, 0, 1, 1, 0, List.of(stopAt));
            int contextWindow = m.config().maxPositions();
            int[] longPrompt = new int[contextWindow - 2];
            List<GenerationResult> r = engine.generate(List.of(
                    GenerationRequest.ofTokens("stop", prompt, stopping),
                    GenerationRequest.ofTokens("full", longPrompt, SamplingParams.greedy(10))), ProgressListener.NONE);
            GenerationResult stop = r.get(0);
            assertEquals(FinishReason.STOP_TOKEN, stop.finishReason());
            int firstStop = 0;
            while (greedy[firstStop] != stopAt) {
                firstStop++;
            }
            assertArrayEquals(java.util.Arrays.copyOf(greedy, firstStop + 1), stop.completionTokens());
            assertEquals(FinishReason.CONTEXT_FULL, r.get(1).finishReason());
            assertEquals(2, r.get(1).completionTokens().length);
        }
    }

    @ParameterizedTest
    @MethodSource("models")
    void badRequestsBecomeErrorResultsAndOthersAreServed(String kind) {
        try (TestModels.Model m = TestModels.random(kind, 5); InferenceEngine engine = m.engine(2)) {
            int vocab = m.config().vocabSize();
            List<GenerationResult> r = engine.generate(List.of(
                    GenerationRequest.ofTokens("empty", new int[0], SamplingParams.greedy(3)),
                    GenerationRequest.ofTokens("ok", new int[] {1, 2}, SamplingParams.greedy(3)),
                    GenerationRequest.ofTokens("vocab", new int[] {vocab}, SamplingParams.greedy(3)),
                    GenerationRequest.ofTokens("long", new int[m.config().maxPositions()], SamplingParams.greedy(3))),
                    ProgressListener.NONE);
            assertEquals("empty prompt", r.get(0).error());
            assertNull(r.get(1).error());
            int served = r.get(1).completionTokens().length;
            assertTrue(served == 3 || r.get(1).finishReason() == FinishReason.EOS, "served " + served + " tokens");
            assertTrue(r.get(2).error().contains("outside the vocabulary"), r.get(2).error());
            assertTrue(r.get(3).error().contains("context window"), r.get(3).error());
            EngineStatistics s = engine.statistics();
            assertEquals(4, s.requests());
            assertEquals(3, s.failedRequests());
            assertEquals(served, s.generatedTokens());
        }
    }

    @ParameterizedTest
    @MethodSource("models")
    void requestsLongerThanContextTokensAreRefusedAndShorterOnesServed(String kind) {
        try (TestModels.Model m = TestModels.random(kind, 5);
             InferenceEngine engine = m.engine(TestOptions.of("batchSize", 2, "contextTokens", 12))) {
            List<GenerationResult> r = engine.generate(List.of(
                    GenerationRequest.ofTokens("fits", new int[] {1, 2, 3, 4, 5, 6, 7, 8}, SamplingParams.greedy(4)),
                    GenerationRequest.ofTokens("over", new int[] {1, 2, 3, 4, 5, 6, 7, 8, 9}, SamplingParams.greedy(4))),
                    ProgressListener.NONE);
            assertNull(r.get(0).error());
            assertEquals("prompt of 9 tokens plus max_new_tokens 4 is longer than contextTokens=12, the sequence length "
                    + "the KV cache is placed for", r.get(1).error());
        }
    }

    @Test
    void aSequenceWhoseLogitsOverflowEndsWithAnErrorAndTheOthersAreServed() {
        // An untied lm_head, so that only the sequence holding the broken token sees it.
        try (TestModels.Model m = TestModels.random("llama-gqa", 5); InferenceEngine engine = m.engine(2)) {
            // Token 7's embedding infinite: its sequence's RMS norm gives NaN (inf times 0), and so do its logits.
            io.inf2.tensor.Tensor embed = m.checkpoint().tensor("model.embed_tokens.weight");
            for (int c = 0; c < embed.cols(); c++) {
                embed.data().setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, 7L * embed.cols() + c, Float.POSITIVE_INFINITY);
            }
            SamplingParams sampled = new SamplingParams(3, 0.8, 0, 1.0, 1.0, 11, List.of());
            List<GenerationResult> r = engine.generate(List.of(
                    GenerationRequest.ofTokens("overflow", new int[] {3, 7, 4}, sampled),
                    GenerationRequest.ofTokens("fine", new int[] {3, 5, 4}, sampled)), ProgressListener.NONE);
            assertEquals(FinishReason.ERROR, r.get(0).finishReason());
            assertTrue(r.get(0).error().startsWith("generation stopped after 0 token(s): the logits are not finite"),
                    r.get(0).error());
            assertNull(r.get(1).error());
            assertEquals(3, r.get(1).completionTokens().length);
            assertEquals(1, engine.statistics().failedRequests());
        }
    }

    static void assertClose(float[] expected, float[] actual, float relTolerance) {
        assertEquals(expected.length, actual.length);
        float scale = 0;
        for (float e : expected) {
            scale = Math.max(scale, Math.abs(e));
        }
        for (int i = 0; i < expected.length; i++) {
            float diff = Math.abs(expected[i] - actual[i]);
            assertTrue(diff <= relTolerance * Math.max(scale, 1e-6f),
                    "element " + i + ": expected " + expected[i] + " got " + actual[i] + " (max |x| " + scale + ")");
        }
    }
}
