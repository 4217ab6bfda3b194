package io.inf2.model.presets;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.inf2.model.Architecture;
import io.inf2.model.ModelConfig;
import io.inf2.model.RopeScaling;
import io.inf2.model.checkpoint.ShardedSafetensorsWriter;
import io.inf2.model.tokenizer.TokenizerJsonWriter;
import io.inf2.model.tokenizer.WrittenTokenizer;
import io.inf2.tensor.DType;
import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * Writes a complete HF-style model directory with deterministic random weights: {@code config.json},
 * {@code generation_config.json}, {@code model.safetensors} (or shards and an index),
 * {@code tokenizer.json} and {@code tokenizer_config.json}. HF transformers loads it with
 * {@code AutoModelForCausalLM.from_pretrained(dir)} and {@code AutoTokenizer.from_pretrained(dir)}, and
 * the same preset, seed and dtype always give byte-identical files.
 */
public final class ModelInitializer {

    public static final long DEFAULT_MAX_SHARD_BYTES = ShardedSafetensorsWriter.HF_DEFAULT_MAX_SHARD_BYTES;

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** What was written: the directory, the config as written (the tokenizer's special ids), and the weight files. */
    public record WrittenModel(Path directory, ModelConfig config, List<Path> weightFiles, long weightBytes) {
        public WrittenModel {
            weightFiles = List.copyOf(weightFiles);
        }
    }

    private ModelInitializer() {
    }

    /** {@link #write(ModelPreset, long, DType, Path, long)} with HF's default shard size (5 GB). */
    public static WrittenModel write(ModelPreset preset, long seed, DType dtype, Path outDir) throws IOException {
        return write(preset, seed, dtype, outDir, DEFAULT_MAX_SHARD_BYTES);
    }

    /**
     * Writes {@code preset} with weights from {@code seed} into {@code outDir}, which must be absent or empty.
     * config.json is written last, so a directory interrupted mid-way is not mistaken for a model.
     */
    public static WrittenModel write(ModelPreset preset, long seed, DType dtype, Path outDir, long maxShardBytes)
            throws IOException {
        if (!dtype.isFloatingPoint()) {
            throw new IllegalArgumentException("model weights must be F32, F16 or BF16, not " + dtype);
        }
        Path dir = outDir.toAbsolutePath().normalize();
        requireEmptyDirectory(dir);
        Files.createDirectories(dir);

        WrittenTokenizer tokenizer = TokenizerJsonWriter.write(dir, preset.tokenizerStyle());
        ModelConfig config = withTokenizer(preset.config(), tokenizer, preset.name());
        RandomWeights weights = RandomWeights.of(config, preset.weightScale(), seed, dtype);
        List<Path> files = weights.writeCheckpoint(dir, maxShardBytes);
        writeJson(dir.resolve("generation_config.json"), generationConfigJson(config));
        writeJson(dir.resolve("config.json"), configJson(config, dtype));
        return new WrittenModel(dir, config, files, weights.byteSize());
    }

    /** {@code config} with the tokenizer's BOS, EOS and pad ids, after checking the vocabulary covers the tokenizer. */
    static ModelConfig withTokenizer(ModelConfig c, WrittenTokenizer t, String presetName) {
        if (t.vocabSize() > c.vocabSize()) {
            throw new IllegalStateException(presetName + ": the " + t.vocabSize() + "-token tokenizer does not fit vocab_size "
                    + c.vocabSize());
        }
        return new ModelConfig(c.architecture(), c.vocabSize(), c.hidden(), c.wordEmbedDim(), c.layers(), c.heads(),
                c.kvHeads(), c.headDim(), c.intermediate(), c.maxPositions(), c.normEps(), c.preLayerNorm(), c.activation(),
                c.attentionBias(), c.mlpBias(), c.tieWordEmbeddings(), c.ropeTheta(), c.ropeScaling(), t.bosId(),
                List.of(t.eosId()), t.padId());
    }

    /**
     * config.json as HF transformers 5 writes it for OPTForCausalLM / LlamaForCausalLM (keys sorted).
     * Two 4.x spellings are kept beside their 5.x replacements so either version loads the same model:
     * {@code torch_dtype} (5.x: {@code dtype}) and {@code rope_theta} / {@code rope_scaling}
     * (5.x: {@code rope_parameters}); 5.x reads the legacy keys with the same meaning.
     */
    public static Map<String, Object> configJson(ModelConfig c, DType dtype) {
        Map<String, Object> j = new TreeMap<>();
        Architecture arch = c.architecture();
        j.put("architectures", List.of(arch.hfClassName()));
        j.put("model_type", arch.modelType());
        j.put("vocab_size", c.vocabSize());
        j.put("hidden_size", c.hidden());
        j.put("num_hidden_layers", c.layers());
        j.put("num_attention_heads", c.heads());
        j.put("max_position_embeddings", c.maxPositions());
        j.put("bos_token_id", c.bosTokenId());
        j.put("eos_token_id", eosJson(c));
        j.put("pad_token_id", c.padTokenId() >= 0 ? c.padTokenId() : null);
        j.put("tie_word_embeddings", c.tieWordEmbeddings());
        j.put("use_cache", true);
        j.put("dtype", torchDType(dtype));
        j.put("torch_dtype", torchDType(dtype));
        switch (arch) {
            case OPT -> {
                j.put("ffn_dim", c.intermediate());
                j.put("word_embed_proj_dim", c.wordEmbedDim());
                j.put("do_layer_norm_before", c.preLayerNorm());
                j.put("activation_function", c.activation());
                j.put("enable_bias", c.attentionBias());
                j.put("layer_norm_elementwise_affine", true);
                j.put("dropout", 0.1);
                j.put("attention_dropout", 0.0);
                j.put("layerdrop", 0.0);
                j.put("init_std", 0.02);
            }
            case LLAMA -> {
                j.put("intermediate_size", c.intermediate());
                j.put("num_key_value_heads", c.kvHeads());
                j.put("head_dim", c.headDim());
                j.put("hidden_act", c.activation());
                j.put("rms_norm_eps", c.normEps());
                j.put("attention_bias", c.attentionBias());
                j.put("mlp_bias", c.mlpBias());
                j.put("attention_dropout", 0.0);
                j.put("initializer_range", 0.02);
                j.put("pretraining_tp", 1);
                j.put("rope_theta", c.ropeTheta());
                j.put("rope_scaling", ropeScalingJson(c.ropeScaling(), null));
                Map<String, Object> ropeParameters = ropeScalingJson(c.ropeScaling(), c.ropeTheta());
                j.put("rope_parameters", ropeParameters != null ? ropeParameters
                        : new TreeMap<>(Map.of("rope_type", "default", "rope_theta", c.ropeTheta())));
            }
        }
        return j;
    }

    /** generation_config.json: the special ids only, so generation defaults to greedy. */
    public static Map<String, Object> generationConfigJson(ModelConfig c) {
        Map<String, Object> j = new TreeMap<>();
        j.put("bos_token_id", c.bosTokenId());
        j.put("eos_token_id", eosJson(c));
        if (c.padTokenId() >= 0) {
            j.put("pad_token_id", c.padTokenId());
        }
        return j;
    }

    /** The HF rope_scaling object (with rope_theta inside when {@code theta} is given, as 5.x's rope_parameters), or null. */
    private static Map<String, Object> ropeScalingJson(RopeScaling s, Double theta) {
        if (s.type().equals("default")) {
            return null;
        }
        Map<String, Object> j = new TreeMap<>();
        j.put("rope_type", s.type());
        j.put("factor", s.factor());
        if (s.type().equals("llama3")) {
            j.put("low_freq_factor", s.lowFreqFactor());
            j.put("high_freq_factor", s.highFreqFactor());
            j.put("original_max_position_embeddings", s.originalMaxPositionEmbeddings());
        }
        if (theta != null) {
            j.put("rope_theta", theta);
        }
        return j;
    }

    private static Object eosJson(ModelConfig c) {
        return c.eosTokenIds().size() == 1 ? c.eosTokenIds().getFirst() : c.eosTokenIds();
    }

    /** The {@code torch_dtype} name of a weight type. */
    public static String torchDType(DType dtype) {
        return switch (dtype) {
            case F32 -> "float32";
            case F16 -> "float16";
            case BF16 -> "bfloat16";
            default -> throw new IllegalArgumentException("no torch dtype for model weights of type " + dtype);
        };
    }

    private static void requireEmptyDirectory(Path dir) throws IOException {
        if (Files.exists(dir)) {
            if (!Files.isDirectory(dir)) {
                throw new FileAlreadyExistsException(dir.toString(), null, "exists and is not a directory");
            }
            try (Stream<Path> entries = Files.list(dir)) {
                if (entries.findAny().isPresent()) {
                    throw new FileAlreadyExistsException(dir.toString(), null,
                            "directory is not empty (a new model needs a new or empty directory)");
                }
            }
        }
    }

    private static void writeJson(Path file, Map<String, Object> content) throws IOException {
        byte[] json = JSON.writeValueAsBytes(content);
        byte[] withNewline = Arrays.copyOf(json, json.length + 1);
        withNewline[json.length] = '\n';
        Files.write(file, withNewline);
    }
}
