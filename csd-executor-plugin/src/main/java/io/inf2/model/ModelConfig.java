package io.inf2.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The shape and conventions of a model, read from a Hugging Face {@code config.json} (and
 * {@code generation_config.json} where present). Everything the layer math needs is here; nothing
 * about where the weights live.
 *
 * @param hidden               hidden size (d_model)
 * @param wordEmbedDim         OPT's word_embed_proj_dim (equals hidden except OPT-350m)
 * @param intermediate         MLP inner size (OPT's ffn_dim)
 * @param preLayerNorm         OPT's do_layer_norm_before (always true for LLaMA)
 * @param activation           "relu", "gelu" or "silu"
 * @param eosTokenIds          end-of-sequence ids (generation_config.json wins over config.json)
 */
public record ModelConfig(
        Architecture architecture,
        int vocabSize,
        int hidden,
        int wordEmbedDim,
        int layers,
        int heads,
        int kvHeads,
        int headDim,
        int intermediate,
        int maxPositions,
        double normEps,
        boolean preLayerNorm,
        String activation,
        boolean attentionBias,
        boolean mlpBias,
        boolean tieWordEmbeddings,
        double ropeTheta,
        RopeScaling ropeScaling,
        int bosTokenId,
        List<Integer> eosTokenIds,
        int padTokenId) {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** OPT's learned position table is offset by 2 (ids 0 and 1 are reserved by fairseq). */
    public static final int OPT_POSITION_OFFSET = 2;

    public ModelConfig {
        eosTokenIds = List.copyOf(eosTokenIds);
        check(vocabSize > 0, "vocab_size must be positive");
        check(hidden > 0 && layers > 0 && heads > 0 && kvHeads > 0 && intermediate > 0,
                "hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads and the MLP size must be positive");
        check(heads % kvHeads == 0, "num_attention_heads (" + heads + ") must be a multiple of num_key_value_heads (" + kvHeads + ")");
        check(headDim > 0 && headDim % 2 == 0, "head_dim must be positive and even, got " + headDim);
        check(maxPositions > 0, "max_position_embeddings must be positive");
    }

    private static void check(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }

    /** The same model with other end-of-sequence ids (none: generation stops only on length). */
    public ModelConfig withEosTokenIds(List<Integer> ids) {
        return new ModelConfig(architecture, vocabSize, hidden, wordEmbedDim, layers, heads, kvHeads, headDim,
                intermediate, maxPositions, normEps, preLayerNorm, activation, attentionBias, mlpBias, tieWordEmbeddings,
                ropeTheta, ropeScaling, bosTokenId, ids, padTokenId);
    }

    public int queriesPerKvHead() {
        return heads / kvHeads;
    }

    public int qDim() {
        return heads * headDim;
    }

    public int kvDim() {
        return kvHeads * headDim;
    }

    /** Bytes of K plus V per token per layer at {@code bytesPerElement}. */
    public long kvBytesPerTokenPerLayer(int bytesPerElement) {
        return 2L * kvDim() * bytesPerElement;
    }

    /** Reads {@code dir/config.json} and, if present, {@code dir/generation_config.json}. */
    public static ModelConfig load(Path dir) {
        Path file = dir.resolve("config.json");
        if (!Files.isRegularFile(file)) {
            throw new ModelFormatException(file + ": missing (a Hugging Face model directory needs config.json)");
        }
        JsonNode config = readJson(file);
        Path genFile = dir.resolve("generation_config.json");
        JsonNode gen = Files.isRegularFile(genFile) ? readJson(genFile) : JSON.createObjectNode();
        try {
            return fromJson(config, gen);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file + ": " + e.getMessage(), e);
        }
    }

    private static JsonNode readJson(Path file) {
        try {
            JsonNode node = JSON.readTree(file.toFile());
            if (node == null || !node.isObject()) {
                throw new ModelFormatException(file + ": expected a JSON object");
            }
            return node;
        } catch (IOException e) {
            throw new ModelFormatException(file + ": not valid JSON (" + firstLine(e.getMessage()) + ")", e);
        }
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "unreadable";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    /** Parses a config.json document (no generation_config.json). */
    public static ModelConfig parse(JsonNode config) {
        return fromJson(config, JSON.createObjectNode());
    }

    static ModelConfig fromJson(JsonNode c, JsonNode gen) {
        String modelType = text(c, "model_type", null);
        if (modelType == null) {
            throw new IllegalArgumentException("no model_type (supported: opt, llama)");
        }
        Architecture arch = Architecture.fromModelType(modelType);
        if (arch == null) {
            throw new IllegalArgumentException("unknown architecture model_type=\"" + modelType + "\" (supported: opt, llama)");
        }
        int bos = intOf(gen, "bos_token_id", intOf(c, "bos_token_id", -1));
        List<Integer> eos = ids(gen.has("eos_token_id") ? gen.get("eos_token_id") : c.get("eos_token_id"));
        int pad = intOf(gen, "pad_token_id", intOf(c, "pad_token_id", -1));
        return switch (arch) {
            case OPT -> {
                int hidden = required(c, "hidden_size");
                int heads = required(c, "num_attention_heads");
                check(hidden % heads == 0, "hidden_size " + hidden + " is not divisible by num_attention_heads " + heads);
                String act = text(c, "activation_function", "relu");
                check(act.equals("relu") || act.equals("gelu"), "unsupported activation_function \"" + act + "\" (relu, gelu)");
                yield new ModelConfig(arch, required(c, "vocab_size"), hidden, intOf(c, "word_embed_proj_dim", hidden),
                        required(c, "num_hidden_layers"), heads, heads, hidden / heads, required(c, "ffn_dim"),
                        required(c, "max_position_embeddings"), 1e-5, bool(c, "do_layer_norm_before", true), act,
                        bool(c, "enable_bias", true), bool(c, "enable_bias", true), true, 0, RopeScaling.NONE, bos, eos, pad);
            }
            case LLAMA -> {
                int hidden = required(c, "hidden_size");
                int heads = required(c, "num_attention_heads");
                String act = text(c, "hidden_act", "silu");
                check(act.equals("silu"), "unsupported hidden_act \"" + act + "\" (silu)");
                int headDim = intOf(c, "head_dim", hidden / heads);
                yield new ModelConfig(arch, required(c, "vocab_size"), hidden, hidden, required(c, "num_hidden_layers"),
                        heads, intOf(c, "num_key_value_heads", heads), headDim, required(c, "intermediate_size"),
                        required(c, "max_position_embeddings"), c.path("rms_norm_eps").asDouble(1e-6), true, act,
                        bool(c, "attention_bias", false), bool(c, "mlp_bias", false), bool(c, "tie_word_embeddings", false),
                        ropeTheta(c), ropeScaling(ropeNode(c)), bos, eos, pad);
            }
        };
    }

    /**
     * The rotary settings: transformers 5 saves them as one {@code rope_parameters} object (rope_theta inside);
     * 4.x wrote {@code rope_theta} and {@code rope_scaling}. As in 5.x, a non-null legacy rope_scaling wins.
     */
    private static JsonNode ropeNode(JsonNode c) {
        JsonNode legacy = c.get("rope_scaling");
        JsonNode params = c.get("rope_parameters");
        return (legacy == null || legacy.isNull()) && params != null && params.isObject() ? params : legacy;
    }

    /** rope_theta inside the rope object wins over the top-level key, as in 5.x's setdefault. */
    private static double ropeTheta(JsonNode c) {
        JsonNode rope = ropeNode(c);
        return rope != null && rope.isObject() && rope.has("rope_theta") ? rope.get("rope_theta").asDouble()
                : c.path("rope_theta").asDouble(10000.0);
    }

    private static RopeScaling ropeScaling(JsonNode node) {
        if (node == null || node.isNull()) {
            return RopeScaling.NONE;
        }
        String type = text(node, "rope_type", text(node, "type", "default"));
        double factor = node.path("factor").asDouble(1.0);
        return switch (type) {
            case "default" -> RopeScaling.NONE;
            case "linear" -> {
                check(factor > 0, "rope_scaling.factor must be positive");
                yield new RopeScaling(type, factor, 0, 0, 0);
            }
            case "llama3" -> {
                double low = node.path("low_freq_factor").asDouble(Double.NaN);
                double high = node.path("high_freq_factor").asDouble(Double.NaN);
                int original = node.path("original_max_position_embeddings").asInt(0);
                check(factor > 0 && low > 0 && high > low && original > 0,
                        "rope_scaling llama3 needs factor > 0, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings");
                yield new RopeScaling(type, factor, low, high, original);
            }
            default -> throw new IllegalArgumentException("unsupported rope_scaling type \"" + type + "\" (default, linear, llama3)");
        };
    }

    private static int required(JsonNode c, String key) {
        JsonNode n = c.get(key);
        if (n == null || !n.canConvertToInt()) {
            throw new IllegalArgumentException("missing or non-integer \"" + key + "\"");
        }
        return n.asInt();
    }

    private static int intOf(JsonNode c, String key, int fallback) {
        JsonNode n = c.get(key);
        return n == null || n.isNull() ? fallback : n.asInt(fallback);
    }

    private static boolean bool(JsonNode c, String key, boolean fallback) {
        JsonNode n = c.get(key);
        return n == null || n.isNull() ? fallback : n.asBoolean(fallback);
    }

    private static String text(JsonNode c, String key, String fallback) {
        JsonNode n = c.get(key);
        return n == null || n.isNull() ? fallback : n.asText();
    }

    private static List<Integer> ids(JsonNode node) {
        List<Integer> out = new ArrayList<>();
        if (node == null || node.isNull()) {
            return out;
        }
        if (node.isArray()) {
            node.forEach(n -> out.add(n.asInt()));
        } else {
            out.add(node.asInt());
        }
        return out;
    }
}
