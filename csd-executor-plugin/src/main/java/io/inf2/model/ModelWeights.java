package io.inf2.model;

import io.inf2.model.checkpoint.Checkpoint;
import io.inf2.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * A checkpoint's tensors bound to their roles and checked against the config: every tensor the
 * architecture needs is present with the expected shape and a floating-point type.
 */
public record ModelWeights(
        ModelConfig config,
        Tensor tokenEmbedding,
        Tensor positionEmbedding,
        Tensor projectIn,
        Tensor projectOut,
        Tensor finalNormWeight,
        Tensor finalNormBias,
        Tensor lmHead,
        List<LayerWeights> layers) {

    public ModelWeights {
        layers = List.copyOf(layers);
    }

    public static ModelWeights bind(ModelConfig config, Checkpoint checkpoint) {
        return switch (config.architecture()) {
            case OPT -> bindOpt(config, new Binder(config, checkpoint));
            case LLAMA -> bindLlama(config, new Binder(config, checkpoint));
        };
    }

    /** Total bytes of all weights as stored (the lm_head counted once when tied). */
    public long byteSize() {
        long total = tokenEmbedding.data().byteSize();
        for (Tensor t : new Tensor[] {positionEmbedding, projectIn, projectOut, finalNormWeight, finalNormBias}) {
            if (t != null) {
                total += t.data().byteSize();
            }
        }
        if (lmHead != tokenEmbedding) {
            total += lmHead.data().byteSize();
        }
        for (LayerWeights l : layers) {
            total += l.byteSize();
        }
        return total;
    }

    private static ModelWeights bindOpt(ModelConfig c, Binder b) {
        String p = b.checkpoint.contains("model.decoder.embed_tokens.weight") ? "model.decoder." : "decoder.";
        int h = c.hidden();
        boolean bias = c.attentionBias();
        Tensor embed = b.get(p + "embed_tokens.weight", c.vocabSize(), c.wordEmbedDim());
        Tensor pos = b.get(p + "embed_positions.weight", c.maxPositions() + ModelConfig.OPT_POSITION_OFFSET, h);
        Tensor projectIn = null;
        Tensor projectOut = null;
        if (c.wordEmbedDim() != h) {
            projectIn = b.get(p + "project_in.weight", h, c.wordEmbedDim());
            projectOut = b.get(p + "project_out.weight", c.wordEmbedDim(), h);
        }
        Tensor finalW = null;
        Tensor finalB = null;
        if (c.preLayerNorm()) {
            finalW = b.get(p + "final_layer_norm.weight", h);
            finalB = b.get(p + "final_layer_norm.bias", h);
        }
        List<LayerWeights> layers = new ArrayList<>();
        for (int i = 0; i < c.layers(); i++) {
            String l = p + "layers." + i + ".";
            layers.add(new LayerWeights(
                    b.get(l + "self_attn_layer_norm.weight", h), b.get(l + "self_attn_layer_norm.bias", h),
                    b.get(l + "self_attn.q_proj.weight", h, h), b.optional(bias, l + "self_attn.q_proj.bias", h),
                    b.get(l + "self_attn.k_proj.weight", h, h), b.optional(bias, l + "self_attn.k_proj.bias", h),
                    b.get(l + "self_attn.v_proj.weight", h, h), b.optional(bias, l + "self_attn.v_proj.bias", h),
                    b.get(l + "self_attn.out_proj.weight", h, h), b.optional(bias, l + "self_attn.out_proj.bias", h),
                    b.get(l + "final_layer_norm.weight", h), b.get(l + "final_layer_norm.bias", h),
                    b.get(l + "fc1.weight", c.intermediate(), h), b.optional(bias, l + "fc1.bias", c.intermediate()),
                    null, null,
                    b.get(l + "fc2.weight", h, c.intermediate()), b.optional(bias, l + "fc2.bias", h)));
        }
        Tensor lmHead = b.checkpoint.contains("lm_head.weight") ? b.get("lm_head.weight", c.vocabSize(), c.wordEmbedDim()) : embed;
        return new ModelWeights(c, embed, pos, projectIn, projectOut, finalW, finalB, lmHead, layers);
    }

    private static ModelWeights bindLlama(ModelConfig c, Binder b) {
        int h = c.hidden();
        int q = c.qDim();
        int kv = c.kvDim();
        int ff = c.intermediate();
        boolean ab = c.attentionBias();
        boolean mb = c.mlpBias();
        Tensor embed = b.get("model.embed_tokens.weight", c.vocabSize(), h);
        List<LayerWeights> layers = new ArrayList<>();
        for (int i = 0; i < c.layers(); i++) {
            String l = "model.layers." + i + ".";
            layers.add(new LayerWeights(
                    b.get(l + "input_layernorm.weight", h), null,
                    b.get(l + "self_attn.q_proj.weight", q, h), b.optional(ab, l + "self_attn.q_proj.bias", q),
                    b.get(l + "self_attn.k_proj.weight", kv, h), b.optional(ab, l + "self_attn.k_proj.bias", kv),
                    b.get(l + "self_attn.v_proj.weight", kv, h), b.optional(ab, l + "self_attn.v_proj.bias", kv),
                    b.get(l + "self_attn.o_proj.weight", h, q), b.optional(ab, l + "self_attn.o_proj.bias", h),
                    b.get(l + "post_attention_layernorm.weight", h), null,
                    b.get(l + "mlp.gate_proj.weight", ff, h), b.optional(mb, l + "mlp.gate_proj.bias", ff),
                    b.get(l + "mlp.up_proj.weight", ff, h), b.optional(mb, l + "mlp.up_proj.bias", ff),
                    b.get(l + "mlp.down_proj.weight", h, ff), b.optional(mb, l + "mlp.down_proj.bias", h)));
        }
        Tensor norm = b.get("model.norm.weight", h);
        Tensor lmHead;
        if (b.checkpoint.contains("lm_head.weight")) {
            lmHead = b.get("lm_head.weight", c.vocabSize(), h);
        } else if (c.tieWordEmbeddings()) {
            lmHead = embed;
        } else {
            throw new ModelFormatException(b.checkpoint.location() + ": missing tensor lm_head.weight (tie_word_embeddings is false)");
        }
        return new ModelWeights(c, embed, null, null, null, norm, null, lmHead, layers);
    }

    private record Binder(ModelConfig config, Checkpoint checkpoint) {
        Tensor get(String name, long... shape) {
            if (!checkpoint.contains(name)) {
                throw new ModelFormatException(checkpoint.location() + ": missing tensor " + name
                        + " required by " + config.architecture().modelType() + " config.json");
            }
            Tensor t = checkpoint.tensor(name);
            if (!t.dtype().isFloatingPoint()) {
                throw new ModelFormatException(checkpoint.location() + ": tensor " + name + " has dtype " + t.dtype()
                        + ", expected F32, F16 or BF16");
            }
            if (!t.hasShape(shape)) {
                throw new ModelFormatException(checkpoint.location() + ": tensor " + name + " has shape "
                        + java.util.Arrays.toString(t.shape()) + ", config.json implies " + java.util.Arrays.toString(shape));
            }
            return t;
        }

        Tensor optional(boolean expected, String name, long... shape) {
            return expected || checkpoint.contains(name) ? get(name, shape) : null;
        }
    }
}
