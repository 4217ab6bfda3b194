package io.inf2.model.presets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.inf2.model.ModelConfig;
import io.inf2.model.ModelFormatException;
import io.inf2.model.ModelWeights;
import io.inf2.model.checkpoint.SafetensorsCheckpoint;
import io.inf2.model.checkpoint.SafetensorsWriter;
import io.inf2.model.checkpoint.TensorSource;
import io.inf2.model.checkpoint.TensorSpec;
import io.inf2.tensor.DType;
import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Tiny presets written as HF directories load through the engine's own config and weight binding. */
class ModelInitializerTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"tiny-opt", "tiny-opt-postln", "tiny-llama", "tiny-llama-rope", "tiny-llama3"})
    void everyTinyPresetLoadsAndBinds(String name) throws IOException {
        ModelPreset preset = ModelPreset.named(name);
        Path dir = tmp.resolve(name);
        ModelInitializer.WrittenModel written = ModelInitializer.write(preset, 11, DType.F32, dir);

        for (String file : List.of("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                "tokenizer_config.json")) {
            assertTrue(Files.isRegularFile(dir.resolve(file)), file);
        }
        ModelConfig loaded = ModelConfig.load(dir);
        assertEquals(written.config(), loaded, "config.json reads back as the config that was written");
        ModelConfig p = preset.config();
        assertEquals(List.of(p.hidden(), p.layers(), p.heads(), p.kvHeads(), p.headDim(), p.intermediate(), p.vocabSize()),
                List.of(loaded.hidden(), loaded.layers(), loaded.heads(), loaded.kvHeads(), loaded.headDim(),
                        loaded.intermediate(), loaded.vocabSize()));
        assertEquals(p.ropeScaling(), loaded.ropeScaling());
        assertEquals(p.ropeTheta(), loaded.ropeTheta());

        try (SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.open(dir)) {
            ModelWeights weights = ModelWeights.bind(loaded, checkpoint);
            assertEquals(written.weightBytes(), weights.byteSize());
            assertEquals(preset.weightBytes(DType.F32), weights.byteSize());
            assertEquals(p.layers(), weights.layers().size());
            assertEquals(p.tieWordEmbeddings(), weights.lmHead() == weights.tokenEmbedding());
            RandomWeights expected = RandomWeights.of(preset, 11, DType.F32);
            String name0 = weights.layers().get(2).qWeight().name();
            assertEquals(expected.value(name0, 77), weights.layers().get(2).qWeight().getFloat(77));
        }
    }

    @Test
    void configJsonHasWhatTransformersExpects() throws IOException {
        Path dir = tmp.resolve("rope");
        ModelInitializer.WrittenModel written = ModelInitializer.write(ModelPreset.named("tiny-llama-rope"), 1, DType.BF16, dir);
        JsonNode c = JSON.readTree(dir.resolve("config.json").toFile());
        assertEquals("LlamaForCausalLM", c.get("architectures").get(0).asText());
        assertEquals("llama", c.get("model_type").asText());
        assertEquals("bfloat16", c.get("torch_dtype").asText());
        assertEquals("bfloat16", c.get("dtype").asText());
        assertEquals(16, c.get("head_dim").asInt());
        assertEquals(2, c.get("num_key_value_heads").asInt());
        assertTrue(c.get("tie_word_embeddings").asBoolean());
        assertEquals(written.config().bosTokenId(), c.get("bos_token_id").asInt());
        assertTrue(c.get("pad_token_id").isNull());
        JsonNode rope = c.get("rope_parameters");
        assertEquals("llama3", rope.get("rope_type").asText());
        assertEquals(500000.0, rope.get("rope_theta").asDouble());
        assertEquals(64, rope.get("original_max_position_embeddings").asInt());
        assertEquals(8.0, c.get("rope_scaling").get("factor").asDouble());
        JsonNode gen = JSON.readTree(dir.resolve("generation_config.json").toFile());
        assertEquals(written.config().eosTokenIds().getFirst().intValue(), gen.get("eos_token_id").asInt());

        Path opt = tmp.resolve("opt");
        ModelInitializer.write(ModelPreset.named("tiny-opt"), 1, DType.F16, opt);
        JsonNode o = JSON.readTree(opt.resolve("config.json").toFile());
        assertEquals("OPTForCausalLM", o.get("architectures").get(0).asText());
        assertEquals("float16", o.get("torch_dtype").asText());
        assertEquals(256, o.get("ffn_dim").asInt());
        assertEquals(64, o.get("word_embed_proj_dim").asInt());
        assertTrue(o.get("do_layer_norm_before").asBoolean());
        assertEquals(List.of(2, 2, 1), List.of(o.get("bos_token_id").asInt(), o.get("eos_token_id").asInt(),
                o.get("pad_token_id").asInt()));
        try (SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.open(opt)) {
            assertSame(DType.F16, checkpoint.tensor("model.decoder.layers.0.fc1.weight").dtype());
        }
    }

    private static void assertSameFiles(Path a, Path b) throws IOException {
        List<String> names;
        try (Stream<Path> files = Files.list(a)) {
            names = files.map(p -> p.getFileName().toString()).sorted().toList();
        }
        try (Stream<Path> files = Files.list(b)) {
            assertEquals(names, files.map(p -> p.getFileName().toString()).sorted().toList());
        }
        for (String n : names) {
            assertEquals(-1, Files.mismatch(a.resolve(n), b.resolve(n)), n + " differs");
        }
    }

    @Test
    void samePresetSeedAndDtypeGiveByteIdenticalDirectories() throws IOException {
        ModelPreset preset = ModelPreset.named("tiny-llama");
        ModelInitializer.write(preset, 3, DType.BF16, tmp.resolve("a"));
        ModelInitializer.write(preset, 3, DType.BF16, tmp.resolve("b"));
        assertSameFiles(tmp.resolve("a"), tmp.resolve("b"));

        ModelInitializer.write(preset, 4, DType.BF16, tmp.resolve("c"));
        assertNotEquals(-1, Files.mismatch(tmp.resolve("a/model.safetensors"), tmp.resolve("c/model.safetensors")));
        assertEquals(-1, Files.mismatch(tmp.resolve("a/config.json"), tmp.resolve("c/config.json")));
    }

    @Test
    void largeModelsAreShardedAndStillBind() throws IOException {
        Path dir = tmp.resolve("sharded");
        ModelInitializer.WrittenModel written = ModelInitializer.write(ModelPreset.named("tiny-opt"), 2, DType.F16, dir, 60_000);
        assertTrue(written.weightFiles().size() > 2, written.weightFiles().toString());
        assertTrue(Files.isRegularFile(dir.resolve("model.safetensors.index.json")));
        assertFalse(Files.exists(dir.resolve("model.safetensors")));
        try (SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.open(dir)) {
            ModelWeights.bind(ModelConfig.load(dir), checkpoint);
        }
        ModelInitializer.write(ModelPreset.named("tiny-opt"), 2, DType.F16, tmp.resolve("again"), 60_000);
        assertSameFiles(dir, tmp.resolve("again"));
    }

    @Test
    void refusesToWriteIntoANonEmptyDirectory() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("used"));
        Files.writeString(dir.resolve("notes.txt"), "mine");
        FileAlreadyExistsException e = assertThrows(FileAlreadyExistsException.class,
                () -> ModelInitializer.write(ModelPreset.named("tiny-opt"), 1, DType.F32, dir));
        assertTrue(e.getMessage().contains(dir + ": directory is not empty"), e.getMessage());
    }

    /** Rewrites a model's weights without one tensor. */
    private static void dropTensor(Path dir, String name) throws IOException {
        Path file = dir.resolve("model.safetensors");
        Path moved = dir.resolve("original.bin-not-a-model");
        Files.move(file, moved);
        try (SafetensorsCheckpoint original = SafetensorsCheckpoint.open(moved)) {
            List<TensorSpec> kept = original.names().stream().filter(n -> !n.equals(name))
                    .map(n -> TensorSpec.of(original.tensor(n))).toList();
            SafetensorsWriter.write(file, kept, SafetensorsWriter.PYTORCH_METADATA, TensorSource.copyOf(original));
        }
        Files.delete(moved);
    }

    @Test
    void bindingNamesTheMissingTensor() throws IOException {
        Path dir = tmp.resolve("missing");
        ModelInitializer.write(ModelPreset.named("tiny-llama"), 1, DType.F32, dir);
        dropTensor(dir, "model.layers.2.mlp.up_proj.weight");
        try (SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.open(dir)) {
            ModelFormatException e = assertThrows(ModelFormatException.class,
                    () -> ModelWeights.bind(ModelConfig.load(dir), checkpoint));
            assertEquals(dir + ": missing tensor model.layers.2.mlp.up_proj.weight required by llama config.json", e.getMessage());
        }
    }

    @Test
    void bindingNamesAShapeThatContradictsConfigJson() throws IOException {
        Path dir = tmp.resolve("shape");
        ModelInitializer.write(ModelPreset.named("tiny-llama"), 1, DType.F32, dir);
        Path config = dir.resolve("config.json");
        Files.writeString(config, Files.readString(config).replace("\"intermediate_size\" : 320", "\"intermediate_size\" : 336"));
        try (SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.open(dir)) {
            ModelFormatException e = assertThrows(ModelFormatException.class,
                    () -> ModelWeights.bind(ModelConfig.load(dir), checkpoint));
            assertEquals(dir + ": tensor model.layers.0.mlp.gate_proj.weight has shape [320, 128], config.json implies [336, 128]",
                    e.getMessage());
        }
    }

    @Test
    void unknownArchitectureNamesConfigJson() throws IOException {
        Path dir = tmp.resolve("neox");
        ModelInitializer.write(ModelPreset.named("tiny-opt"), 1, DType.F32, dir);
        Path config = dir.resolve("config.json");
        Files.writeString(config, Files.readString(config).replace("\"model_type\" : \"opt\"", "\"model_type\" : \"gpt_neox\""));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelConfig.load(dir));
        assertEquals(config + ": unknown architecture model_type=\"gpt_neox\" (supported: opt, llama)", e.getMessage());
    }

    @Test
    void transformers5RopeParametersAloneAreRead() throws IOException {
        Path dir = tmp.resolve("v5");
        ModelInitializer.WrittenModel written = ModelInitializer.write(ModelPreset.named("tiny-llama-rope"), 1, DType.F32, dir);
        Path config = dir.resolve("config.json");
        ObjectMapper mapper = new ObjectMapper();
        var node = (com.fasterxml.jackson.databind.node.ObjectNode) mapper.readTree(config.toFile());
        node.remove(List.of("rope_theta", "rope_scaling", "torch_dtype"));
        Files.write(config, mapper.writeValueAsBytes(node));
        assertEquals(written.config(), ModelConfig.load(dir), "a config.json saved by transformers 5 means the same model");
    }
}
