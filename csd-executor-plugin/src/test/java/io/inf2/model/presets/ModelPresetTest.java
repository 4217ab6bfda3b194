package io.inf2.model.presets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.model.Architecture;
import io.inf2.model.ModelConfig;
import io.inf2.model.RopeScaling;
import io.inf2.model.tokenizer.TokenizerStyle;
import io.inf2.tensor.DType;
import java.util.HashSet;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Real-shape presets carry the published HF config values; tiny ones are small but still exercise the hard cases. */
class ModelPresetTest {

    /** hidden, layers, heads, kv heads, MLP size, vocab, max positions: straight from the models' config.json. */
    private static void assertShape(String name, int hidden, int layers, int heads, int kvHeads, int ffn, int vocab,
                                    int maxPositions) {
        ModelConfig c = ModelPreset.named(name).config();
        assertEquals(List.of(hidden, layers, heads, kvHeads, ffn, vocab, maxPositions),
                List.of(c.hidden(), c.layers(), c.heads(), c.kvHeads(), c.intermediate(), c.vocabSize(), c.maxPositions()), name);
    }

    @Test
    void optPresetsMatchFacebooksConfigs() {
        assertShape("opt-125m", 768, 12, 12, 12, 3072, 50272, 2048);
        assertShape("opt-350m", 1024, 24, 16, 16, 4096, 50272, 2048);
        assertShape("opt-1.3b", 2048, 24, 32, 32, 8192, 50272, 2048);
        assertShape("opt-2.7b", 2560, 32, 32, 32, 10240, 50272, 2048);
        assertShape("opt-6.7b", 4096, 32, 32, 32, 16384, 50272, 2048);
        assertShape("opt-13b", 5120, 40, 40, 40, 20480, 50272, 2048);
        assertShape("opt-30b", 7168, 48, 56, 56, 28672, 50272, 2048);
        assertShape("opt-66b", 9216, 64, 72, 72, 36864, 50272, 2048);
        assertShape("opt-175b", 12288, 96, 96, 96, 49152, 50272, 2048);

        ModelConfig opt350 = ModelPreset.named("opt-350m").config();
        assertEquals(512, opt350.wordEmbedDim());
        assertFalse(opt350.preLayerNorm());
        ModelConfig opt30 = ModelPreset.named("opt-30b").config();
        assertEquals(7168, opt30.wordEmbedDim());
        assertTrue(opt30.preLayerNorm());
        assertEquals(128, opt30.headDim());
        assertEquals("relu", opt30.activation());
        assertEquals(List.of(2, List.of(2), 1), List.of(opt30.bosTokenId(), opt30.eosTokenIds(), opt30.padTokenId()));
    }

    @Test
    void llamaPresetsMatchMetasConfigs() {
        assertShape("llama-7b", 4096, 32, 32, 32, 11008, 32000, 4096);
        assertShape("llama-13b", 5120, 40, 40, 40, 13824, 32000, 4096);
        assertShape("llama-70b", 8192, 80, 64, 8, 28672, 32000, 4096);
        assertShape("llama-3-8b", 4096, 32, 32, 8, 14336, 128256, 8192);
        ModelConfig l3 = ModelPreset.named("llama-3-8b").config();
        assertEquals(500000.0, l3.ropeTheta());
        assertEquals(128, l3.headDim());
        assertEquals(1e-5, l3.normEps());
        assertFalse(l3.tieWordEmbeddings());
        assertEquals(List.of(128000, List.of(128001)), List.of(l3.bosTokenId(), l3.eosTokenIds()));
        assertEquals(10000.0, ModelPreset.named("llama-70b").config().ropeTheta());
    }

    @Test
    void parameterCountsEqualThePublishedOnes() {
        assertEquals(125_239_296L, ModelPreset.named("opt-125m").parameterCount());
        assertEquals(6_738_415_616L, ModelPreset.named("llama-7b").parameterCount());
        assertEquals(68_976_648_192L, ModelPreset.named("llama-70b").parameterCount());
        assertEquals(8_030_261_248L, ModelPreset.named("llama-3-8b").parameterCount());
        long opt30 = ModelPreset.named("opt-30b").parameterCount();
        assertTrue(opt30 > 29_900_000_000L && opt30 < 30_100_000_000L, "opt-30b: " + opt30);
    }

    @Test
    void tinyPresetsAreSmallButExerciseTheHardCases() {
        for (ModelPreset p : ModelPreset.all()) {
            if (!p.tiny()) {
                continue;
            }
            ModelConfig c = p.config();
            long f32 = p.weightBytes(DType.F32);
            assertTrue(f32 < 40L << 20, p.name() + " is " + f32 + " bytes in f32");
            assertTrue(c.layers() >= 3 && c.heads() >= 4, p.name());
            assertTrue(c.vocabSize() >= 32000, p.name() + " has a real vocabulary size");
            assertSame(WeightScale.PEAKED, p.weightScale());
            assertSame(DType.F32, p.checkpointDType());
        }
        ModelConfig tinyOpt = ModelPreset.named("tiny-opt").config();
        assertEquals(List.of(64, 4, 3, 256, 512, 50272), List.of(tinyOpt.hidden(), tinyOpt.heads(), tinyOpt.layers(),
                tinyOpt.intermediate(), tinyOpt.maxPositions(), tinyOpt.vocabSize()));
        ModelConfig tinyLlama = ModelPreset.named("tiny-llama").config();
        assertEquals(List.of(8, 2, 16, 3, 32000), List.of(tinyLlama.heads(), tinyLlama.kvHeads(), tinyLlama.headDim(),
                tinyLlama.layers(), tinyLlama.vocabSize()));
        assertFalse(tinyLlama.tieWordEmbeddings());
        ModelConfig rope = ModelPreset.named("tiny-llama-rope").config();
        assertEquals(new RopeScaling("llama3", 8, 1, 4, 64), rope.ropeScaling());
        assertTrue(rope.tieWordEmbeddings());
        ModelConfig l3 = ModelPreset.named("tiny-llama3").config();
        assertEquals(128256, l3.vocabSize());
        assertTrue(l3.kvHeads() < l3.heads());
        assertEquals(TokenizerStyle.LLAMA3, ModelPreset.named("tiny-llama3").tokenizerStyle());
        ModelConfig postLn = ModelPreset.named("tiny-opt-postln").config();
        assertFalse(postLn.preLayerNorm());
        assertTrue(postLn.wordEmbedDim() < postLn.hidden());
    }

    @Test
    void eachPresetUsesItsFamilysTokenizer() {
        for (ModelPreset p : ModelPreset.all()) {
            TokenizerStyle expected = p.config().architecture() == Architecture.OPT ? TokenizerStyle.GPT2
                    : p.config().vocabSize() == 128256 ? TokenizerStyle.LLAMA3 : TokenizerStyle.LLAMA2;
            assertEquals(expected, p.tokenizerStyle(), p.name());
        }
    }

    @Test
    void lookupByNameListsTheValidNamesOnError() {
        assertSame(ModelPreset.named("opt-6.7b"), ModelPreset.named(" OPT-6.7B "));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelPreset.named("opt-7b"));
        assertTrue(e.getMessage().startsWith("unknown model preset \"opt-7b\" (valid: tiny-opt, "), e.getMessage());
        assertTrue(e.getMessage().contains("opt-6.7b") && e.getMessage().contains("llama-3-8b"), e.getMessage());
        assertEquals(ModelPreset.all().size(), new HashSet<>(ModelPreset.all().stream().map(ModelPreset::name).toList()).size());
    }
}
