package io.inf2.engine;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.inf2.compute.cpu.CpuBackend;
import io.inf2.model.ModelConfig;
import io.inf2.model.checkpoint.Checkpoint;
import io.inf2.model.ModelFormatException;
import io.inf2.tensor.DType;
import io.inf2.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/** Small random models built in memory for engine tests that hold for any weights. */
final class TestModels {
    private static final ObjectMapper JSON = new ObjectMapper();

    private TestModels() {
    }

    record Model(ModelConfig config, Checkpoint checkpoint) implements AutoCloseable {
        InferenceEngine engine(int batchSize) {
            EngineOptions options = new EngineOptions(Path.of("in-memory"), "cpu", 2, batchSize,
                    SamplingParams.greedy(8), "memory", List.of(), 16, 0, 1);
            CpuBackend cpu = new CpuBackend(2);
            return InferenceEngine.assemble(options, config, new Unclosed(checkpoint), null, cpu, cpu,
                    InferenceEngine.memoryPlacement());
        }

        @Override
        public void close() {
            checkpoint.close();
        }
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
            default -> throw new IllegalArgumentException(kind);
        };
        try {
            ModelConfig c = ModelConfig.parse(JSON.readTree(json));
            return new Model(c, new RandomCheckpoint(c, seed));
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Lets several engines share one checkpoint in a test. */
    private record Unclosed(Checkpoint inner) implements Checkpoint {
        public Set<String> names() {
            return inner.names();
        }

        public boolean contains(String name) {
            return inner.contains(name);
        }

        public Tensor tensor(String name) {
            return inner.tensor(name);
        }

        public String location() {
            return inner.location();
        }

        public void close() {
        }
    }

    /** Tensors named as in Hugging Face checkpoints, filled with N(0, 0.3) (norm weights around 1). */
    private static final class RandomCheckpoint implements Checkpoint {
        private final Arena arena = Arena.ofShared();
        private final Map<String, Tensor> tensors = new LinkedHashMap<>();
        private final Random random;

        RandomCheckpoint(ModelConfig c, long seed) {
            random = new Random(seed);
            int h = c.hidden();
            if (c.architecture() == io.inf2.model.Architecture.OPT) {
                String p = "model.decoder.";
                add(p + "embed_tokens.weight", c.vocabSize(), c.wordEmbedDim());
                add(p + "embed_positions.weight", c.maxPositions() + 2, h);
                if (c.wordEmbedDim() != h) {
                    add(p + "project_in.weight", h, c.wordEmbedDim());
                    add(p + "project_out.weight", c.wordEmbedDim(), h);
                } 
                if (c.preLayerNorm()) {
                    norm(p + "final_layer_norm", h, true);
                }
                for (int i = 0; i < c.layers(); i++) {
                    String l = p + "layers." + i + ".";
                    norm(l + "self_attn_layer_norm", h, true);
                    for (String proj : new String[] {"q_proj", "k_proj", "v_proj", "out_proj"}) {
                        add(l + "self_attn." + proj + ".weight", h, h);
                        add(l + "self_attn." + proj + ".bias", h);
                    }
                    norm(l + "final_layer_norm", h, true);
                    add(l + "fc1.weight", c.intermediate(), h);
                    add(l + "fc1.bias", c.intermediate());
                    add(l + "fc2.weight", h, c.intermediate());
                    add(l + "fc2.bias", h);
                }
            } else {
                add("model.embed_tokens.weight", c.vocabSize(), h);
                for (int i = 0; i < c.layers(); i++) {
                    String l = "model.layers." + i + ".";
                    norm(l + "input_layernorm", h, false);
                    add(l + "self_attn.q_proj.weight", c.qDim(), h);
                    add(l + "self_attn.k_proj.weight", c.kvDim(), h);
                    add(l + "self_attn.v_proj.weight", c.kvDim(), h);
                    add(l + "self_attn.o_proj.weight", h, c.qDim());
                    norm(l + "post_attention_layernorm", h, false);
                    add(l + "mlp.gate_proj.weight", c.intermediate(), h);
                    add(l + "mlp.up_proj.weight", c.intermediate(), h);
                    add(l + "mlp.down_proj.weight", h, c.intermediate());
                }
                norm("model.norm", h, false);
                if (!c.tieWordEmbeddings()) {
                    add("lm_head.weight", c.vocabSize(), h);
                }
            }
        }

        private void norm(String prefix, int h, boolean withBias) {
            Tensor w = add(prefix + ".weight", h);
            for (int i = 0; i < h; i++) {
                DType.F32.setFloat(w.data(), i, 1f + 0.1f * (float) random.nextGaussian());
            }
            if (withBias) {
                add(prefix + ".bias", h);
            }
        }

        private Tensor add(String name, long... shape) {
            long n = Tensor.elementCount(shape);
            MemorySegment seg = arena.allocate(n * 4, 64);
            for (long i = 0; i < n; i++) {
                DType.F32.setFloat(seg, i, 0.3f * (float) random.nextGaussian());
            }
            Tensor t = new Tensor(name, DType.F32, shape, seg);
            tensors.put(name, t);
            return t;
        }

        @Override
        public Set<String> names() {
            return tensors.keySet();
        }

        @Override
        public boolean contains(String name) {
            return tensors.containsKey(name);
        }

        @Override
        public Tensor tensor(String name) {
            Tensor t = tensors.get(name);
            if (t == null) {
                throw new ModelFormatException("in-memory test checkpoint: missing tensor " + name);
            }
            return t;
        }

        @Override
        public String location() {
            return "in-memory test checkpoint";
        }

        @Override
        public void close() {
            arena.close();
        }
    }
}
