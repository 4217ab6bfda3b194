package io.inf2.model.presets;

import io.inf2.model.ModelConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The tensors HF transformers' {@code save_pretrained} writes for a config (OPTForCausalLM or
 * LlamaForCausalLM), with their HF names and shapes, in model order: embeddings, then layer by layer,
 * then the final norm and an untied lm_head. A tied lm_head is not stored (HF drops the duplicate).
 */
public final class HfTensorLayout {

    /** What a tensor does, which decides how random weights for it are drawn. */
    public enum Role {
        /** Token and position embeddings, and an untied lm_head. */
        EMBEDDING,
        /** A linear layer's weight, {@code [out_features, in_features]}. */
        LINEAR_WEIGHT,
        /** A linear layer's bias. */
        BIAS,
        /** A LayerNorm or RMSNorm scale. */
        NORM_WEIGHT,
        /** A LayerNorm shift. */
        NORM_BIAS
    }

    /** One stored tensor: its HF name, shape and role. */
    public record Parameter(String name, long[] shape, Role role) {
        public Parameter {
            shape = shape.clone();
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        public long elementCount() {
            long n = 1;
            for (long d : shape) {
                n = Math.multiplyExact(n, d);
            }
            return n;
        }

        /** The input width of a linear weight (its second dimension); 0 for other roles. */
        public long fanIn() {
            return role == Role.LINEAR_WEIGHT ? shape[1] : 0;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Parameter p && name.equals(p.name) && role == p.role && Arrays.equals(shape, p.shape);
        }

        @Override
        public int hashCode() {
            return name.hashCode() * 31 + Arrays.hashCode(shape);
        }

        @Override
        public String toString() {
            return name + Arrays.toString(shape) + " " + role;
        }
    }

    private HfTensorLayout() {
    }

    public static List<Parameter> of(ModelConfig config) {
        return switch (config.architecture()) {
            case OPT -> opt(config);
            case LLAMA -> llama(config);
        };
    }

    /** Number of stored parameters (a tied lm_head counted once). */
    public static long parameterCount(ModelConfig config) {
        long n = 0;
        for (Parameter p : of(config)) {
            n += p.elementCount();
        }
        return n;
    }

    private static List<Parameter> opt(ModelConfig c) {
        List<Parameter> out = new ArrayList<>();
        String p = "model.decoder.";
        long h = c.hidden();
        long ff = c.intermediate();
        boolean bias = c.attentionBias();
        out.add(new Parameter(p + "embed_tokens.weight", new long[] {c.vocabSize(), c.wordEmbedDim()}, Role.EMBEDDING));
        out.add(new Parameter(p + "embed_positions.weight",
                new long[] {c.maxPositions() + ModelConfig.OPT_POSITION_OFFSET, h}, Role.EMBEDDING));
        if (c.wordEmbedDim() != c.hidden()) {
            // OPT-350m: embeddings live in a narrower space and are projected in and out (no bias).
            addLinear(out, p + "project_out", c.wordEmbedDim(), h, false);
            addLinear(out, p + "project_in", h, c.wordEmbedDim(), false);
        }
        for (int i = 0; i < c.layers(); i++) {
            String l = p + "layers." + i + ".";
            for (String proj : new String[] {"k_proj", "v_proj", "q_proj", "out_proj"}) {
                addLinear(out, l + "self_attn." + proj, h, h, bias);
            }
            addLayerNorm(out, l + "self_attn_layer_norm", h);
            addLinear(out, l + "fc1", ff, h, bias);
            addLinear(out, l + "fc2", h, ff, bias);
            addLayerNorm(out, l + "final_layer_norm", h);
        }
        if (c.preLayerNorm()) {
            // HF's OPTDecoder has a final LayerNorm only when normalising before each block.
            addLayerNorm(out, p + "final_layer_norm", h);
        }
        if (!c.tieWordEmbeddings()) {
            out.add(new Parameter("lm_head.weight", new long[] {c.vocabSize(), c.wordEmbedDim()}, Role.EMBEDDING));
        }
        return out;
    }

    private static List<Parameter> llama(ModelConfig c) {
        List<Parameter> out = new ArrayList<>();
        long h = c.hidden();
        long q = c.qDim();
        long kv = c.kvDim();
        long ff = c.intermediate();
        out.add(new Parameter("model.embed_tokens.weight", new long[] {c.vocabSize(), h}, Role.EMBEDDING));
        for (int i = 0; i < c.layers(); i++) {
            String l = "model.layers." + i + ".";
            out.add(new Parameter(l + "input_layernorm.weight", new long[] {h}, Role.NORM_WEIGHT));
            addLinear(out, l + "self_attn.q_proj", q, h, c.attentionBias());
            addLinear(out, l + "self_attn.k_proj", kv, h, c.attentionBias());
            addLinear(out, l + "self_attn.v_proj", kv, h, c.attentionBias());
            addLinear(out, l + "self_attn.o_proj", h, q, c.attentionBias());
            out.add(new Parameter(l + "post_attention_layernorm.weight", new long[] {h}, Role.NORM_WEIGHT));
            addLinear(out, l + "mlp.gate_proj", ff, h, c.mlpBias());
            addLinear(out, l + "mlp.up_proj", ff, h, c.mlpBias());
            addLinear(out, l + "mlp.down_proj", h, ff, c.mlpBias());
        }
        out.add(new Parameter("model.norm.weight", new long[] {h}, Role.NORM_WEIGHT));
        if (!c.tieWordEmbeddings()) {
            out.add(new Parameter("lm_head.weight", new long[] {c.vocabSize(), h}, Role.EMBEDDING));
        }
        return out;
    }

    private static void addLinear(List<Parameter> out, String name, long outFeatures, long inFeatures, boolean bias) {
        out.add(new Parameter(name + ".weight", new long[] {outFeatures, inFeatures}, Role.LINEAR_WEIGHT));
        if (bias) {
            out.add(new Parameter(name + ".bias", new long[] {outFeatures}, Role.BIAS));
        }
    }

    private static void addLayerNorm(List<Parameter> out, String name, long width) {
        out.add(new Parameter(name + ".weight", new long[] {width}, Role.NORM_WEIGHT));
        out.add(new Parameter(name + ".bias", new long[] {width}, Role.NORM_BIAS));
    }
}
