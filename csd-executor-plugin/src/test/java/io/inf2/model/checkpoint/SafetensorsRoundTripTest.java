package io.inf2.model.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.inf2.tensor.DType;
import io.inf2.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class SafetensorsRoundTripTest {

    @TempDir
    Path dir;

    /** A value that differs per tensor and element and exercises signs, fractions and magnitudes. */
    private static float sample(String name, long i) {
        return (float) Math.sin(name.hashCode() * 0.001 + i * 0.37) * (1 + i % 7) * 0.5f;
    }

    private static final TensorSource SAMPLES = (spec, first, chunk) -> {
        long n = chunk.byteSize() / spec.dtype().byteSize();
        for (long i = 0; i < n; i++) {
            spec.dtype().setFloat(chunk, i, sample(spec.name(), first + i));
        }
    };

    private static List<TensorSpec> specs(DType dtype) {
        return List.of(
                new TensorSpec("model.embed_tokens.weight", dtype, new long[] {37, 16}),
                new TensorSpec("model.layers.0.input_layernorm.weight", dtype, new long[] {16}),
                new TensorSpec("scalar", dtype, new long[] {}),
                new TensorSpec("empty", dtype, new long[] {0, 16}),
                // Bigger than the writer's 8 MiB chunk, so the source is asked for several chunks.
                new TensorSpec("model.layers.0.mlp.big.weight", dtype, new long[] {1031, 2053}));
    }

    private static float roundTo(DType dtype, float value) {
        MemorySegment one = MemorySegment.ofArray(new byte[8]);
        dtype.setFloat(one, 0, value);
        return dtype.getFloat(one, 0);
    }

    @ParameterizedTest
    @EnumSource(names = {"F32", "F16", "BF16"})
    void writtenTensorsReadBackBitForBit(DType dtype) throws IOException {
        Path file = dir.resolve("model.safetensors");
        SafetensorsWriter.write(file, specs(dtype), SafetensorsWriter.PYTORCH_METADATA, SAMPLES);
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile f = SafetensorsFile.open(file, arena);
            assertEquals(Map.of("format", "pt"), f.metadata());
            assertEquals(specs(dtype).stream().map(TensorSpec::name).toList(), List.copyOf(f.names()));
            assertEquals(0, f.dataStart() % 8, "data section is 8-byte aligned");
            for (TensorSpec spec : specs(dtype)) {
                Tensor t = f.tensor(spec.name());
                assertEquals(dtype, t.dtype());
                assertArrayEquals(spec.shape(), t.shape());
                for (long i = 0; i < t.elementCount(); i += 1 + i / 3) {
                    assertEquals(roundTo(dtype, sample(spec.name(), i)), t.getFloat(i), spec.name() + "[" + i + "]");
                }
                if (t.elementCount() > 0) {
                    long last = t.elementCount() - 1;
                    assertEquals(roundTo(dtype, sample(spec.name(), last)), t.getFloat(last));
                }
            }
        }
    }

    @Test
    void headerIsWhatHfWritesAndOffsetsAreContiguous() throws IOException {
        Path file = dir.resolve("model.safetensors");
        SafetensorsWriter.write(file, specs(DType.BF16), SafetensorsWriter.PYTORCH_METADATA, SAMPLES);
        ByteBuffer head = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        long n = head.getLong(0);
        JsonNode header = new ObjectMapper().readTree(new String(head.array(), 8, (int) n, java.nio.charset.StandardCharsets.UTF_8));
        assertEquals("pt", header.get("__metadata__").get("format").asText());
        assertEquals("BF16", header.get("scalar").get("dtype").asText());
        long expectedBegin = 0;
        for (TensorSpec spec : specs(DType.BF16)) {
            JsonNode offsets = header.get(spec.name()).get("data_offsets");
            assertEquals(expectedBegin, offsets.get(0).asLong(), spec.name());
            expectedBegin += spec.byteSize();
            assertEquals(expectedBegin, offsets.get(1).asLong(), spec.name());
        }
        assertEquals(8 + n + expectedBegin, Files.size(file));
    }

    @Test
    void writesHeapAndNativeSegmentsAndChecksOrderAndSize() throws IOException {
        Path file = dir.resolve("m.safetensors");
        float[] a = {1f, -2f, 3.5f};
        List<TensorSpec> specs = List.of(new TensorSpec("a", DType.F32, new long[] {3}), new TensorSpec("b", DType.F32, new long[] {2}));
        try (SafetensorsWriter w = SafetensorsWriter.create(file, specs, Map.of())) {
            assertThrows(IllegalStateException.class, () -> w.write("b", MemorySegment.ofArray(new float[2])), "out of order");
            assertThrows(IllegalArgumentException.class, () -> w.write("a", MemorySegment.ofArray(new float[2])), "wrong size");
            w.write("a", MemorySegment.ofArray(a));
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment b = arena.allocate(8);
                DType.F32.setFloat(b, 0, 7f);
                DType.F32.setFloat(b, 1, 8f);
                w.write("b", b);
            }
        }
        try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(file)) {
            assertEquals(3.5f, c.tensor("a").getFloat(2));
            assertEquals(8f, c.tensor("b").getFloat(1));
            assertTrue(c.names().containsAll(List.of("a", "b")));
        }
    }

    @Test
    void anIncompleteWriteLeavesNoFile() throws IOException {
        Path file = dir.resolve("model.safetensors");
        List<TensorSpec> specs = List.of(new TensorSpec("a", DType.F32, new long[] {3}), new TensorSpec("b", DType.F32, new long[] {2}));
        SafetensorsWriter w = SafetensorsWriter.create(file, specs, Map.of());
        w.write("a", MemorySegment.ofArray(new float[3]));
        IllegalStateException e = assertThrows(IllegalStateException.class, w::close);
        assertTrue(e.getMessage().contains("next expected b"), e.getMessage());
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(List.of(), left.toList());
        }
    }

    @Test
    void shardedWriteSplitsLikeHfAndReadsBack() throws IOException {
        List<TensorSpec> specs = List.of(
                new TensorSpec("t0", DType.F16, new long[] {100}),    // 200 B
                new TensorSpec("t1", DType.F16, new long[] {100}),    // 200 B -> shard 1 = 400 B
                new TensorSpec("t2", DType.F16, new long[] {300}),    // 600 B alone (over the limit)
                new TensorSpec("t3", DType.F16, new long[] {50}),     // 100 B
                new TensorSpec("t4", DType.F16, new long[] {50}));    // 100 B
        List<Path> files = ShardedSafetensorsWriter.write(dir, specs, 450, SAMPLES);
        assertEquals(List.of("model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                "model-00003-of-00003.safetensors"), files.stream().map(p -> p.getFileName().toString()).toList());
        JsonNode index = new ObjectMapper().readTree(dir.resolve("model.safetensors.index.json").toFile());
        assertEquals(1200, index.get("metadata").get("total_size").asLong());
        assertEquals("model-00002-of-00003.safetensors", index.get("weight_map").get("t2").asText());
        assertEquals("model-00003-of-00003.safetensors", index.get("weight_map").get("t4").asText());
        assertFalse(Files.exists(dir.resolve("model.safetensors")));

        try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(dir)) {
            assertEquals(specs.stream().map(TensorSpec::name).toList(), List.copyOf(c.names()));
            for (TensorSpec s : specs) {
                Tensor t = c.tensor(s.name());
                assertEquals(roundTo(DType.F16, sample(s.name(), 49)), t.getFloat(49));
                SafetensorsCheckpoint.FileRegion region = c.region(s.name());
                assertEquals(s.byteSize(), region.length());
                // The region really is where the bytes are: read them with plain file I/O.
                try (FileChannel ch = FileChannel.open(region.file())) {
                    ByteBuffer raw = ByteBuffer.allocate((int) region.length()).order(ByteOrder.LITTLE_ENDIAN);
                    ch.read(raw, region.offset());
                    assertEquals(t.data().get(DType.I16_LE, 98), raw.getShort(98));
                }
            }
        }
    }

    @Test
    void everythingInOneShardIsASingleModelFile() throws IOException {
        List<TensorSpec> specs = List.of(new TensorSpec("t0", DType.F32, new long[] {4}));
        List<Path> files = ShardedSafetensorsWriter.write(dir, specs, 1 << 20, SAMPLES);
        assertEquals(List.of(dir.resolve("model.safetensors")), files);
        assertFalse(Files.exists(dir.resolve("model.safetensors.index.json")));
    }

    @Test
    void copyOfACheckpointReproducesIt() throws IOException {
        Path src = Files.createDirectory(dir.resolve("src"));
        Path dst = Files.createDirectory(dir.resolve("dst"));
        ShardedSafetensorsWriter.write(src, specs(DType.F16), 1 << 30, SAMPLES);
        try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(src)) {
            ShardedSafetensorsWriter.write(dst, specs(DType.F16), 1 << 30, TensorSource.copyOf(c));
        }
        assertEquals(-1, Files.mismatch(src.resolve("model.safetensors"), dst.resolve("model.safetensors")));
    }

    @Test
    void closingTheCheckpointUnmapsItsTensors() throws IOException {
        Path file = dir.resolve("model.safetensors");
        SafetensorsWriter.write(file, specs(DType.F32), Map.of(), SAMPLES);
        SafetensorsCheckpoint c = SafetensorsCheckpoint.open(dir);
        Tensor t = c.tensor("scalar");
        t.getFloat(0);
        c.close();
        assertThrows(IllegalStateException.class, () -> t.getFloat(0), "segment of a closed arena");
        assertThrows(IllegalStateException.class, () -> c.tensor("scalar"));
        c.close(); // idempotent
    }
}
