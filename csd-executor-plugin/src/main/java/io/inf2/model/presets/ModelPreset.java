package io.inf2.model.presets;

import io.inf2.model.Architecture;
import io.inf2.model.ModelConfig;
import io.inf2.model.RopeScaling;
import io.inf2.model.tokenizer.TokenizerStyle;
import io.inf2.tensor.DType;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * A named model shape: the real OPT and LLaMA sizes with their exact HF config values (for
 * real-shape runs with random weights), and tiny models for tests that still have several layers and
 * heads, grouped-query attention and real vocabulary sizes.
 *
 * <p>The special-token ids in {@link #config()} are the HF model's; {@link ModelInitializer} writes
 * those of the tokenizer it generates in the model's style.
 *
 * @param reference      the HF model whose shape this is, or what a tiny preset is for
 * @param checkpointDType the dtype the HF checkpoint ships in (F32 for tiny presets)
 */
public record ModelPreset(String name, String reference, ModelConfig config, TokenizerStyle tokenizerStyle,
                          WeightScale weightScale, DType checkpointDType, boolean tiny) {

    private static final List<ModelPreset> ALL = List.of(
            tinyOpt("tiny-opt", "tiny OPT for tests (pre-LayerNorm like OPT-125m and larger)", 64, 64, true),
            tinyOpt("tiny-opt-postln", "tiny OPT for tests in OPT-350m's style: post-LayerNorm, 32-wide embeddings "
                    + "projected in and out", 64, 32, false),
            tinyLlama("tiny-llama", "tiny LLaMA-2-style model for tests: GQA 8 heads / 2 KV heads, untied lm_head",
                    32000, 128, 8, 2, 320, 1024, 10000.0, RopeScaling.NONE, false, TokenizerStyle.LLAMA2),
            tinyLlama("tiny-llama-rope", "tiny LLaMA for tests with LLaMA-3.1's rope_scaling (llama3, factor 8 over 64 "
                    + "positions) and tied embeddings", 32000, 128, 8, 2, 320, 512, 500000.0,
                    new RopeScaling("llama3", 8.0, 1.0, 4.0, 64), true, TokenizerStyle.LLAMA2),
            tinyLlama("tiny-llama3", "tiny LLaMA-3-style model for tests: 128,256-token vocabulary, byte-level "
                    + "tokenizer with LLaMA-3 specials, GQA 4 heads / 2 KV heads, tied embeddings",
                    128256, 64, 4, 2, 192, 2048, 500000.0, RopeScaling.NONE, true, TokenizerStyle.LLAMA3),
            opt("opt-125m", 768, 768, 12, 12, 3072, true),
            opt("opt-350m", 1024, 512, 24, 16, 4096, false),
            opt("opt-1.3b", 2048, 2048, 24, 32, 8192, true),
            opt("opt-2.7b", 2560, 2560, 32, 32, 10240, true),
            opt("opt-6.7b", 4096, 4096, 32, 32, 16384, true),
            opt("opt-13b", 5120, 5120, 40, 40, 20480, true),
            opt("opt-30b", 7168, 7168, 48, 56, 28672, true),
            opt("opt-66b", 9216, 9216, 64, 72, 36864, true),
            opt("opt-175b", 12288, 12288, 96, 96, 49152, true),
            llama2("llama-7b", "meta-llama/Llama-2-7b-hf", 4096, 32, 32, 32, 11008),
            llama2("llama-13b", "meta-llama/Llama-2-13b-hf", 5120, 40, 40, 40, 13824),
            llama2("llama-70b", "meta-llama/Llama-2-70b-hf", 8192, 80, 64, 8, 28672),
            new ModelPreset("llama-3-8b", "meta-llama/Meta-Llama-3-8B",
                    new ModelConfig(Architecture.LLAMA, 128256, 4096, 4096, 32, 32, 8, 128, 14336, 8192, 1e-5, true, "silu",
                            false, false, false, 500000.0, RopeScaling.NONE, 128000, List.of(128001), -1),
                    TokenizerStyle.LLAMA3, WeightScale.HF_INIT, DType.BF16, false));

    public ModelPreset {
        if (!name.equals(name.toLowerCase(Locale.ROOT)) || name.isBlank()) {
            throw new IllegalArgumentException("preset names are lower-case: " + name);
        }
    }

    /** Every preset, tiny ones first, then by family and size. */
    public static List<ModelPreset> all() {
        return ALL;
    }

    /** The preset called {@code name} (case-insensitive); an IllegalArgumentException listing the valid names otherwise. */
    public static ModelPreset named(String name) {
        String wanted = name.strip().toLowerCase(Locale.ROOT);
        for (ModelPreset p : ALL) {
            if (p.name.equals(wanted)) {
                return p;
            }
        }
        throw new IllegalArgumentException("unknown model preset \"" + name + "\" (valid: "
                + ALL.stream().map(ModelPreset::name).collect(Collectors.joining(", ")) + ")");
    }

    /** Stored parameters (a tied lm_head counted once). */
    public long parameterCount() {
        return HfTensorLayout.parameterCount(config);
    }

    /** Bytes of the weights at {@code dtype}. */
    public long weightBytes(DType dtype) {
        return parameterCount() * dtype.byteSize();
    }

    private static ModelPreset opt(String name, int hidden, int wordEmbedDim, int layers, int heads, int ffn,
                                   boolean preLayerNorm) {
        return new ModelPreset(name, "facebook/" + name, optConfig(hidden, wordEmbedDim, layers, heads, ffn, 2048, preLayerNorm),
                TokenizerStyle.GPT2, WeightScale.HF_INIT, DType.F16, false);
    }

    private static ModelPreset tinyOpt(String name, String reference, int hidden, int wordEmbedDim, boolean preLayerNorm) {
        return new ModelPreset(name, reference, optConfig(hidden, wordEmbedDim, 3, 4, 256, 512, preLayerNorm),
                TokenizerStyle.GPT2, WeightScale.PEAKED, DType.F32, true);
    }

    /** OPT as HF's OPTConfig reads it: biases everywhere, LayerNorm eps 1e-5, ReLU, tied lm_head, BOS = EOS = 2, pad 1. */
    private static ModelConfig optConfig(int hidden, int wordEmbedDim, int layers, int heads, int ffn, int maxPositions,
                                         boolean preLayerNorm) {
        return new ModelConfig(Architecture.OPT, 50272, hidden, wordEmbedDim, layers, heads, heads, hidden / heads, ffn,
                maxPositions, 1e-5, preLayerNorm, "relu", true, true, true, 0, RopeScaling.NONE, 2, List.of(2), 1);
    }

    private static ModelPreset llama2(String name, String reference, int hidden, int layers, int heads, int kvHeads, int ffn) {
        return new ModelPreset(name, reference,
                new ModelConfig(Architecture.LLAMA, 32000, hidden, hidden, layers, heads, kvHeads, hidden / heads, ffn, 4096,
                        1e-5, true, "silu", false, false, false, 10000.0, RopeScaling.NONE, 1, List.of(2), -1),
                TokenizerStyle.LLAMA2, WeightScale.HF_INIT, DType.F16, false);
    }

    private static ModelPreset tinyLlama(String name, String reference, int vocab, int hidden, int heads, int kvHeads, int ffn,
                                         int maxPositions, double ropeTheta, RopeScaling scaling, boolean tied,
                                         TokenizerStyle tokenizer) {
        int bos = tokenizer == TokenizerStyle.LLAMA3 ? 128000 : 1;
        int eos = tokenizer == TokenizerStyle.LLAMA3 ? 128001 : 2;
        return new ModelPreset(name, reference,
                new ModelConfig(Architecture.LLAMA, vocab, hidden, hidden, 3, heads, kvHeads, hidden / heads, ffn, maxPositions,
                        1e-5, true, "silu", false, false, tied, ropeTheta, scaling, bos, List.of(eos), -1),
                tokenizer, WeightScale.PEAKED, DType.F32, true);
    }
}
