package io.inf2.engine;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.inf2.compute.cpu.CpuBackend;
import io.inf2.model.ModelConfig;
import io.inf2.model.checkpoint.Checkpoint;
import io.inf2.model.presets.RandomWeights;
import io.inf2.model.presets.WeightScale;
import io.inf2.tensor.DType;
import java.nio.file.Path;

/** Small random models built in memory for engine tests that hold for any weights. */
final class TestModels {
    private static final ObjectMapper JSON = new ObjectMapper();

    private TestModels() {
    }

    record Model(ModelConfig config, Checkpoint checkpoint) implements AutoCloseable {
        InferenceEngine engine(int batchSize) {
            return engine(batchSize, 0);
        }

        /** An engine over this model's weights with the memory KV cache and the given block schedule. */
        InferenceEngine engine(int batchSize, int gpuBatchSize) {
            return engine(TestOptions.of("batchSize", batchSize, "maxNewTokens", 8, "gpuBatchSize", gpuBatchSize));
        }

        /** An engine over this model's weights with the memory KV cache and the given options. */
        InferenceEngine engine(EngineOptions options) {
            CpuBackend cpu = new CpuBackend(2);
            return InferenceEngine.assemble(options, config, Checkpoint.borrowed(checkpoint), null, cpu, cpu,
                    InferenceEngine.memoryPlacement());
        }

        @Override
        public void close() {
            checkpoint.close();
        }
    }

    /** The same random weights as {@link #random}, written as safetensors under {@code dir}. */
    static void writeSafetensors(String kind, long seed, Path dir) throws java.io.IOException {
        ModelConfig c = random(kind, seed).config();
        RandomWeights.of(c, WeightScale.PEAKED, seed, DType.F32).writeCheckpoint(dir, 1L << 40);
    }

    static Model random(String kind, long seed) {
        String json = switch (kind) {
            case "opt" -> "{\"model_type\":\"opt\",\"vocab_size\":97,\"hidden_size\":32,\"num_hidden_layers\":2,"
                    + "\"num_attention_heads\":4,\"ffn_dim\":64,\"max_position_embeddings\":40,\"eos_token_id\":2}";
            case "opt-post-ln" -> "{\"model_type\":\"opt\",\"vocab_size\":97,\"hidden_size\":32,\"word_embed_proj_dim\":16,"
                    + "\"do_layer_norm_before\":false,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"ffn_dim\":64,"
                    + "\"max_position_embeddings\":40,\"eos_token_id\":2}";
            case "llama-gqa" -> "{\"model_type\":\"llama\",\"vocab_size\":89,\"hidden_size\":32,\"num_hidden_layers\":2,"
                    + "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":48,"
                    + "\"max_position_embeddings\":40,\"eos_token_id\":2,\"rms_norm_eps\":1e-5}";
            case "llama-rope-scaled" -> "{\"model_type\":\"llama\",\"vocab_size\":89,\"hidden_size\":32,\"num_hidden_layers\":2,"
                    + "\"num_attention_heads\":4,\"num_key_value_heads\":1,\"intermediate_size\":48,\"tie_word_embeddings\":true,"
                    + "\"max_position_embeddings\":40,\"eos_token_id\":2,\"rope_theta\":500000,"
                    + "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":1,\"high_freq_factor\":4,"
                    + "\"original_max_position_embeddings\":16}}";
            // Deeper than the two buffers a streamed schedule cycles through, so layers really stream.
            case "opt-5-layers" -> "{\"model_type\":\"opt\",\"vocab_size\":97,\"hidden_size\":32,\"num_hidden_layers\":5,"
                    + "\"num_attention_heads\":4,\"ffn_dim\":64,\"max_position_embeddings\":40,\"eos_token_id\":2}";
            case "llama-gqa-5-layers" -> "{\"model_type\":\"llama\",\"vocab_size\":89,\"hidden_size\":32,\"num_hidden_layers\":5,"
                    + "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":48,"
                    + "\"max_position_embeddings\":40,\"eos_token_id\":2,\"rms_norm_eps\":1e-5}";
            default -> throw new IllegalArgumentException(kind);
        };
        try {
            ModelConfig c = ModelConfig.parse(JSON.readTree(json));
            return new Model(c, RandomWeights.of(c, WeightScale.PEAKED, seed, DType.F32).inMemory());
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
