package io.inf2.plugin;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.inf2.compute.cpu.CpuBackend;
import io.inf2.engine.EngineOptions;
import io.inf2.engine.InferenceEngine;
import io.inf2.model.ModelConfig;
import io.inf2.model.ModelFormatException;
import io.inf2.model.checkpoint.Checkpoint;
import io.inf2.tensor.DType;
import io.inf2.tensor.Tensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * Real engines on a tiny random OPT model held in memory, for runtime tests that must generate before
 * the engine can open model directories.
 */
final class TinyEngines {
    private static final String CONFIG = "{\"model_type\":\"opt\",\"vocab_size\":61,\"hidden_size\":16,"
            + "\"num_hidden_layers\":2,\"num_attention_heads\":2,\"ffn_dim\":32,\"max_position_embeddings\":64,"
            + "\"eos_token_id\":2}";

    private TinyEngines() {
    }

    /** Opens an engine with the given options (backend, batch size, sampling defaults) on the tiny model. */
    static InferenceEngine open(EngineOptions options) {
        return open(options, false);
    }

    /** As {@link #open(EngineOptions)}; with {@code failOnClose} the model's memory fails to close, after freeing it. */
    static InferenceEngine open(EngineOptions options, boolean failOnClose) {
        ModelConfig config;
        try {
            config = ModelConfig.parse(new ObjectMapper().readTree(CONFIG));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        CpuBackend cpu = new CpuBackend(1);
        return InferenceEngine.assemble(options, config, new RandomOptCheckpoint(config, failOnClose), null, cpu, cpu,
                InferenceEngine.memoryPlacement());
    }

    /** OPT tensors named as in Hugging Face checkpoints; weights N(0, 0.3), norm scales 1. */
    private static final class RandomOptCheckpoint implements Checkpoint {
        private final Arena arena = Arena.ofShared();
        private final Map<String, Tensor> tensors = new LinkedHashMap<>();
        private final Random random = new Random(7);
        private final boolean failOnClose;

        RandomOptCheckpoint(ModelConfig c, boolean failOnClose) {
            this.failOnClose = failOnClose;
            int h = c.hidden();
            String p = "model.decoder.";
            add(p + "embed_tokens.weight", 0.3f, c.vocabSize(), h);
            add(p + "embed_positions.weight", 0.3f, c.maxPositions() + 2, h);
            norm(p + "final_layer_norm", h);
            for (int i = 0; i < c.layers(); i++) {
                String l = p + "layers." + i + ".";
                norm(l + "self_attn_layer_norm", h);
                for (String proj : new String[] {"q_proj", "k_proj", "v_proj", "out_proj"}) {
                    add(l + "self_attn." + proj + ".weight", 0.3f, h, h);
                    add(l + "self_attn." + proj + ".bias", 0.3f, h);
                }
                norm(l + "final_layer_norm", h);
                add(l + "fc1.weight", 0.3f, c.intermediate(), h);
                add(l + "fc1.bias", 0.3f, c.intermediate());
                add(l + "fc2.weight", 0.3f, h, c.intermediate());
                add(l + "fc2.bias", 0.3f, h);
            }
        }

        private void norm(String prefix, int h) {
            Tensor w = add(prefix + ".weight", 0, h);
            for (int i = 0; i < h; i++) {
                DType.F32.setFloat(w.data(), i, 1f);
            }
            add(prefix + ".bias", 0, h);
        }

        private Tensor add(String name, float scale, long... shape) {
            long n = Tensor.elementCount(shape);
            MemorySegment seg = arena.allocate(n * 4, 64);
            for (long i = 0; i < n; i++) {
                DType.F32.setFloat(seg, i, scale * (float) random.nextGaussian());
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
                throw new ModelFormatException("tiny test checkpoint: missing tensor " + name);
            }
            return t;
        }

        @Override
        public String location() {
            return "tiny test checkpoint";
        }

        @Override
        public void close() {
            arena.close();
            if (failOnClose) {
                throw new IllegalStateException("tiny test checkpoint: close failed on purpose");
            }
        }
    }
}
