package io.inf2.model.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.model.ModelFormatException;
import io.inf2.tensor.DType;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Opening model directories: single file, shards with an index, and every way a directory can be wrong. */
class SafetensorsCheckpointTest {

    @TempDir
    Path dir;

    private static final TensorSource ZEROS = (spec, first, chunk) -> chunk.fill((byte) 0);

    private static final List<TensorSpec> SPECS = List.of(
            new TensorSpec("model.embed_tokens.weight", DType.F16, new long[] {10, 8}),
            new TensorSpec("model.layers.0.self_attn.q_proj.weight", DType.F16, new long[] {8, 8}),
            new TensorSpec("model.norm.weight", DType.F16, new long[] {8}));

    private ModelFormatException refused(Path path) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> SafetensorsCheckpoint.open(path).close());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        return e;
    }

    /** Three shards of one tensor each. */
    private Path sharded() throws IOException {
        ShardedSafetensorsWriter.write(dir, SPECS, 100, ZEROS);
        return dir;
    }

    @Test
    void missingDirectoryAndDirectoryWithoutWeights() throws IOException {
        Path absent = dir.resolve("no-such-model");
        assertEquals(absent + ": model directory does not exist", refused(absent).getMessage());
        Files.writeString(dir.resolve("config.json"), "{}");
        assertEquals(dir + ": no model weights (expected model.safetensors or model.safetensors.index.json)",
                refused(dir).getMessage());
        Files.write(dir.resolve("consolidated.safetensors"), new byte[0]);
        assertTrue(refused(dir).getMessage().contains("found consolidated.safetensors; a single file must be named model.safetensors"));
    }

    @Test
    void pickleOnlyDirectoryIsRefusedWithHowToConvert() throws IOException {
        Files.write(dir.resolve("pytorch_model.bin"), new byte[] {(byte) 0x80, 2});
        Files.write(dir.resolve("training_args.pt"), new byte[] {1});
        String m = refused(dir).getMessage();
        assertTrue(m.startsWith(dir + ": only pickle checkpoints found (pytorch_model.bin, training_args.pt)"), m);
        assertTrue(m.contains("pickle files can execute arbitrary code when loaded"), m);
        assertTrue(m.contains("save_pretrained('OUT_DIR', safe_serialization=True)"), m);
        assertTrue(m.contains("from_pretrained('" + dir + "')"), m);
    }

    @Test
    void safetensorsWinsOverPickleBesideIt() throws IOException {
        ShardedSafetensorsWriter.write(dir, SPECS, 1 << 20, ZEROS);
        Files.write(dir.resolve("pytorch_model.bin"), new byte[] {(byte) 0x80, 2});
        try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(dir)) {
            assertEquals(3, c.names().size());
        }
    }

    @Test
    void shardedCheckpointOpensEveryShard() throws IOException {
        try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(sharded())) {
            assertEquals(3, c.files().size());
            assertEquals(SPECS.stream().map(TensorSpec::name).toList(), List.copyOf(c.names()));
            assertEquals(dir.resolve("model-00003-of-00003.safetensors"), c.region("model.norm.weight").file());
            assertEquals(dir.toString(), c.location());
        }
    }

    @Test
    void missingShardIsRefused() throws IOException {
        Files.delete(sharded().resolve("model-00002-of-00003.safetensors"));
        assertEquals(dir.resolve("model.safetensors.index.json") + ": shard model-00002-of-00003.safetensors (listed for tensor "
                + "model.layers.0.self_attn.q_proj.weight) does not exist", refused(dir).getMessage());
    }

    @Test
    void indexPointingToTheWrongShardIsRefused() throws IOException {
        Path index = sharded().resolve("model.safetensors.index.json");
        Files.writeString(index, Files.readString(index).replace(
                "\"model.norm.weight\" : \"model-00003-of-00003.safetensors\"",
                "\"model.norm.weight\" : \"model-00001-of-00003.safetensors\""));
        assertEquals(index + ": tensor model.norm.weight: the index says model-00001-of-00003.safetensors, but no listed "
                + "shard holds it", refused(dir).getMessage());
    }

    @Test
    void tensorMissingFromTheIndexIsRefused() throws IOException {
        // Shard 1: the embedding alone (over the limit); shard 2: q_proj and the norm.
        ShardedSafetensorsWriter.write(dir, SPECS, 150, ZEROS);
        Path index = dir.resolve("model.safetensors.index.json");
        Files.writeString(index, Files.readString(index).replaceAll(",\\s*\"model.norm.weight\" : \"[^\"]*\"", ""));
        assertEquals(dir.resolve("model-00002-of-00002.safetensors") + ": tensor model.norm.weight is not listed in "
                + "model.safetensors.index.json", refused(dir).getMessage());
    }

    @Test
    void tensorInTheWrongShardIsNamedWithBothShards() throws IOException {
        // Two shards whose tensors are swapped relative to the index.
        ShardedSafetensorsWriter.write(dir, SPECS.subList(0, 2), 100, ZEROS);
        Path index = dir.resolve("model.safetensors.index.json");
        String json = Files.readString(index);
        String swapped = json.replace("model-00001-of-00002", "SWAP").replace("model-00002-of-00002", "model-00001-of-00002")
                .replace("SWAP", "model-00002-of-00002");
        Files.writeString(index, swapped);
        String m = refused(dir).getMessage();
        assertTrue(m.contains("tensor model.embed_tokens.weight: the index says model-00002-of-00002.safetensors, but it is in "
                + "model-00001-of-00002.safetensors"), m);
    }

    @Test
    void indexCannotReachOutsideTheModelDirectory() throws IOException {
        Files.writeString(dir.resolve("model.safetensors.index.json"),
                "{\"weight_map\": {\"w\": \"../elsewhere/model.safetensors\"}}", StandardCharsets.UTF_8);
        String m = refused(dir).getMessage();
        assertTrue(m.contains("tensor w: shard \"../elsewhere/model.safetensors\" is not a file name inside the model directory"), m);
        Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"weight_map\": {}}");
        assertTrue(refused(dir).getMessage().contains("no \"weight_map\""));
        Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"weight_map\": ");
        assertTrue(refused(dir).getMessage().contains("model.safetensors.index.json: not valid JSON"));
    }

    @Test
    void aBadShardIsReportedByItsFileName() throws IOException {
        Path shard = sharded().resolve("model-00002-of-00003.safetensors");
        byte[] bytes = Files.readAllBytes(shard);
        Files.write(shard, java.util.Arrays.copyOf(bytes, bytes.length - 2));
        String m = refused(dir).getMessage();
        assertTrue(m.startsWith(shard + ": tensor model.layers.0.self_attn.q_proj.weight: data_offsets"), m);
    }

    @Test
    void absentTensorNamesTheDirectoryAndTensor() throws IOException {
        try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(sharded())) {
            assertFalse(c.contains("lm_head.weight"));
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> c.tensor("lm_head.weight"));
            assertEquals(dir + ": no tensor named lm_head.weight", e.getMessage());
        }
    }
}
