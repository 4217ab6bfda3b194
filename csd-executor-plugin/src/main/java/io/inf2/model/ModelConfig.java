package io.inf2.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.inf2.util.StrictJson;
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

    private static final ObjectMapper JSON = StrictJson.MAPPER;

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
        } catch (InGenerationConfig e) {
            throw new ModelFormatException(genFile + ": " + e.getMessage(), e);
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
        } catch (JsonProcessingException e) {
            throw new ModelFormatException(file + ": not valid JSON at " + StrictJson.problem(e), e);
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot read it (" + firstLine(e.getMessage()) + ")", e);
        }
    }

    /** A problem with a value that came from generation_config.json, so that the error names that file. */
    private static final class InGenerationConfig extends IllegalArgumentException {
        InGenerationConfig(String message) {
            super(message);
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
        int vocab = required(c, "vocab_size");
        check(vocab > 0, "vocab_size must be positive");
        int bos = generationId(c, gen, "bos_token_id");
        List<Integer> eos = eosIds(c, gen, vocab);
        int pad = generationId(c, gen, "pad_token_id");
        int hidden = required(c, "hidden_size");
        int heads = required(c, "num_attention_heads");
        check(hidden > 0 && heads > 0, "hidden_size and num_attention_heads must be positive");
        return switch (arch) {
            case OPT -> {
                check(hidden % heads == 0, "hidden_size " + hidden + " is not divisible by num_attention_heads " + heads);
                String act = text(c, "activation_function", "relu");
                check(act.equals("relu") || act.equals("gelu"), "unsupported activation_function \"" + act + "\" (relu, gelu)");
                int positions = required(c, "max_position_embeddings");
                check(positions <= Integer.MAX_VALUE - OPT_POSITION_OFFSET, "max_position_embeddings " + positions + " is too large");
                yield new ModelConfig(arch, vocab, hidden, intOf(c, "word_embed_proj_dim", hidden),
                        required(c, "num_hidden_layers"), heads, heads, hidden / heads, required(c, "ffn_dim"),
                        positions, 1e-5, bool(c, "do_layer_norm_before", true), act,
                        bool(c, "enable_bias", true), bool(c, "enable_bias", true), true, 0, RopeScaling.NONE, bos, eos, pad);
            }
            case LLAMA -> {
                String act = text(c, "hidden_act", "silu");
                check(act.equals("silu"), "unsupported hidden_act \"" + act + "\" (silu)");
                check(c.hasNonNull("head_dim") || hidden % heads == 0, "hidden_size " + hidden
                        + " is not divisible by num_attention_heads " + heads + " (and no head_dim is given)");
                int headDim = intOf(c, "head_dim", hidden / heads);
                double eps = number(c, "rms_norm_eps", 1e-6);
                check(eps > 0, "rms_norm_eps must be positive, got " + eps);
                yield new ModelConfig(arch, vocab, hidden, hidden, required(c, "num_hidden_layers"),
                        heads, intOf(c, "num_key_value_heads", heads), headDim, required(c, "intermediate_size"),
                        required(c, "max_position_embeddings"), eps, true, act,
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
        double theta = rope != null && rope.isObject() && rope.hasNonNull("rope_theta") ? number(rope, "rope_theta", Double.NaN)
                : number(c, "rope_theta", 10000.0);
        check(theta > 0, "rope_theta must be positive, got " + theta);
        return theta;
    }

    private static RopeScaling ropeScaling(JsonNode node) {
        if (node == null || node.isNull()) {
            return RopeScaling.NONE;
        }
        check(node.isObject(), "rope_scaling must be an object or null");
        String type = text(node, "rope_type", text(node, "type", "default"));
        double factor = number(node, "factor", 1.0);
        return switch (type) {
            case "default" -> RopeScaling.NONE;
            case "linear" -> {
                check(factor > 0, "rope_scaling.factor must be positive");
                yield new RopeScaling(type, factor, 0, 0, 0);
            }
            case "llama3" -> {
                double low = number(node, "low_freq_factor", Double.NaN);
                double high = number(node, "high_freq_factor", Double.NaN);
                int original = intOf(node, "original_max_position_embeddings", 0);
                check(factor > 0 && low > 0 && high > low && original > 0,
                        "rope_scaling llama3 needs factor > 0, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings");
                yield new RopeScaling(type, factor, low, high, original);
            }
            default -> throw new IllegalArgumentException("unsupported rope_scaling type \"" + type + "\" (default, linear, llama3)");
        };
    }

    private static int required(JsonNode c, String key) {
        JsonNode n = c.get(key);
        if (n == null || n.isNull()) {
            throw new IllegalArgumentException("missing \"" + key + "\"");
        }
        return integer(n, key);
    }

    private static int intOf(JsonNode c, String key, int fallback) {
        JsonNode n = c.get(key);
        return n == null || n.isNull() ? fallback : integer(n, key);
    }

    /** A whole number that fits an int: 4.9 heads or 10^12 positions are corrupt, not something to round. */
    private static int integer(JsonNode n, String key) {
        if (!n.isIntegralNumber() || !n.canConvertToInt()) {
            throw new IllegalArgumentException("\"" + key + "\" must be an integer, got " + n);
        }
        return n.intValue();
    }

    private static double number(JsonNode c, String key, double fallback) {
        JsonNode n = c.get(key);
        if (n == null || n.isNull()) {
            return fallback;
        }
        if (!n.isNumber() || !Double.isFinite(n.doubleValue())) {
            throw new IllegalArgumentException("\"" + key + "\" must be a finite number, got " + n);
        }
        return n.doubleValue();
    }

    private static boolean bool(JsonNode c, String key, boolean fallback) {
        JsonNode n = c.get(key);
        if (n == null || n.isNull()) {
            return fallback;
        }
        if (!n.isBoolean()) {
            throw new IllegalArgumentException("\"" + key + "\" must be true or false, got " + n);
        }
        return n.booleanValue();
    }

    private static String text(JsonNode c, String key, String fallback) {
        JsonNode n = c.get(key);
        if (n == null || n.isNull()) {
            return fallback;
        }
        if (!n.isTextual()) {
            throw new IllegalArgumentException("\"" + key + "\" must be a string, got " + n);
        }
        return n.textValue();
    }

    /**
     * bos_token_id or pad_token_id: from generation_config.json when it has the key, else from
     * config.json; -1 when neither gives one. Generation uses neither, and published configs hold
     * pad ids past the vocabulary (a pad token added to the tokenizer only), so only the type is checked.
     */
    private static int generationId(JsonNode c, JsonNode gen, String key) {
        boolean fromGen = gen.hasNonNull(key);
        try {
            return intOf(fromGen ? gen : c, key, -1);
        } catch (IllegalArgumentException e) {
            throw fromGen ? new InGenerationConfig(e.getMessage()) : e;
        }
    }

    /** eos_token_id, one id or a list, as {@link #generationId} finds it; every id a token of the vocabulary. */
    private static List<Integer> eosIds(JsonNode c, JsonNode gen, int vocab) {
        String key = "eos_token_id";
        boolean fromGen = gen.has(key);
        JsonNode node = fromGen ? gen.get(key) : c.get(key);
        List<Integer> out = new ArrayList<>();
        try {
            if (node == null || node.isNull()) {
                return out;
            }
            for (JsonNode n : node.isArray() ? node : List.of(node)) {
                int id = integer(n, key);
                check(id >= 0 && id < vocab, "\"" + key + "\" " + id + " is outside the vocabulary of " + vocab);
                out.add(id);
            }
            return out;
        } catch (IllegalArgumentException e) {
            throw fromGen ? new InGenerationConfig(e.getMessage()) : e;
        }
    }
}
