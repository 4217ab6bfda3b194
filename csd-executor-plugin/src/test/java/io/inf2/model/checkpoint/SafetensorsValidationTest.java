package io.inf2.model.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.model.ModelFormatException;
import io.inf2.tensor.DType;
import io.inf2.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every malformed file is refused with one line naming the file (and the tensor), before any tensor is handed out. */
class SafetensorsValidationTest {

    private static final String FC1 = "model.layers.0.mlp.fc1.weight";

    @TempDir
    Path dir;

    private ModelFormatException refused(Path file) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> {
            try (Arena arena = Arena.ofConfined()) {
                SafetensorsFile.open(file, arena);
            }
        });
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        assertTrue(e.getMessage().startsWith(file + ": "), "names the file: " + e.getMessage());
        return e;
    }

    private void assertNamesTensor(ModelFormatException e, String tensor, String problem) {
        assertTrue(e.getMessage().contains("tensor " + tensor + ": "), "names the tensor: " + e.getMessage());
        assertTrue(e.getMessage().contains(problem), "says " + problem + ": " + e.getMessage());
    }

    private Path validFile() throws IOException {
        Path file = dir.resolve("valid.safetensors");
        SafetensorsWriter.write(file, List.of(
                new TensorSpec("a", DType.F32, new long[] {4, 4}),
                new TensorSpec(FC1, DType.BF16, new long[] {8, 3}),
                new TensorSpec("c", DType.F16, new long[] {5})), Map.of("format", "pt"), (spec, first, chunk) -> {
                    for (long i = 0; i < chunk.byteSize(); i++) {
                        chunk.set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, (byte) (first + i));
                    }
                });
        return file;
    }

    @Test
    void truncatedDataIsRefused() throws IOException {
        byte[] whole = Files.readAllBytes(validFile());
        Path cut = Files.write(dir.resolve("cut.safetensors"), Arrays.copyOf(whole, whole.length - 7));
        assertNamesTensor(refused(cut), "c", "end beyond the file's data section");
    }

    @Test
    void fileShorterThanTheLengthFieldIsRefused() throws IOException {
        Path file = Files.write(dir.resolve("tiny.safetensors"), new byte[] {1, 2, 3});
        assertTrue(refused(file).getMessage().contains("too short"));
        assertTrue(refused(Files.write(dir.resolve("empty.safetensors"), new byte[0])).getMessage().contains("0 bytes"));
    }

    @Test
    void headerLengthBeyondTheFileIsRefused() throws IOException {
        byte[] json = "{}".getBytes(StandardCharsets.UTF_8);
        Path file = RawSafetensors.write(dir.resolve("long.safetensors"), 5000, json, 10);
        assertTrue(refused(file).getMessage().contains("header length 5000 runs past the end of the file (20 bytes)"));
    }

    @Test
    void hugeOrNegativeHeaderLengthIsRefusedWithoutAllocating() throws IOException {
        byte[] json = "{}".getBytes(StandardCharsets.UTF_8);
        Path huge = RawSafetensors.write(dir.resolve("huge.safetensors"), 1L << 40, json, 0);
        assertTrue(refused(huge).getMessage().contains("implausible"));
        Path negative = RawSafetensors.write(dir.resolve("neg.safetensors"), -1L, json, 0);
        assertTrue(refused(negative).getMessage().contains("header length 18446744073709551615 is implausible"));
        // A pickle renamed to .safetensors: its first 8 bytes read as a nonsense length.
        Path pickle = Files.write(dir.resolve("pickle.safetensors"), new byte[] {(byte) 0x80, 2, (byte) 0x8a, 0x0a, 0x6c,
                (byte) 0xfc, (byte) 0x9c, 0x46, (byte) 0xf9, 0x20, 0x6a, (byte) 0xa8, 0x50, 0x19});
        assertTrue(refused(pickle).getMessage().contains("not a safetensors file"));
    }

    @Test
    void corruptJsonHeaderIsRefused() throws IOException {
        assertTrue(refused(RawSafetensors.write(dir.resolve("a.safetensors"), "{\"a\": {\"dtype\": \"F32\", ", 0))
                .getMessage().contains("header is not valid JSON"));
        assertTrue(refused(RawSafetensors.write(dir.resolve("b.safetensors"), "[1, 2]", 0))
                .getMessage().contains("does not start with a JSON object"));
        assertTrue(refused(RawSafetensors.write(dir.resolve("c.safetensors"), "{} {}", 0))
                .getMessage().contains("header is not valid JSON"));
        byte[] badUtf8 = {'{', '"', (byte) 0xC3, (byte) 0x28, '"', ':', '1', '}'};
        assertTrue(refused(RawSafetensors.write(dir.resolve("d.safetensors"), badUtf8.length, badUtf8, 0))
                .getMessage().contains("header is not valid JSON"));
        assertTrue(refused(RawSafetensors.write(dir.resolve("e.safetensors"),
                "{\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, \"x\": {}}", 4))
                .getMessage().contains("header is not valid JSON"), "duplicate names are refused");
        String deep = "{\"x\":" + "[".repeat(5000) + "]".repeat(5000) + "}";
        assertTrue(refused(RawSafetensors.write(dir.resolve("f.safetensors"), deep, 0))
                .getMessage().contains("header is not valid JSON"), "deep nesting is refused, not a stack overflow");
    }

    @Test
    void offsetsBeyondTheFileAreRefused() throws IOException {
        String header = "{\"" + FC1 + "\": {\"dtype\": \"F32\", \"shape\": [200], \"data_offsets\": [100, 900]}}";
        Path file = RawSafetensors.write(dir.resolve("model.safetensors"), header, 512);
        ModelFormatException e = refused(file);
        assertEquals(file + ": tensor " + FC1 + ": data_offsets [100, 900] end beyond the file's data section (512 bytes)",
                e.getMessage());
    }

    @Test
    void overlappingTensorsAreRefused() throws IOException {
        String header = "{\"first\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
                + "\"" + FC1 + "\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [8, 24]}}";
        ModelFormatException e = refused(RawSafetensors.write(dir.resolve("o.safetensors"), header, 24));
        assertNamesTensor(e, FC1, "overlap tensor first [0, 16]");
    }

    @Test
    void unusedBytesBetweenOrAfterTheTensorsAreRefused() throws IOException {
        String gap = "{\"first\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
                + "\"" + FC1 + "\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [24, 32]}}";
        assertNamesTensor(refused(RawSafetensors.write(dir.resolve("gap.safetensors"), gap, 32)), FC1,
                "data_offsets [24, 32] leave bytes [16, 24) of the data section unused");
        String late = "{\"" + FC1 + "\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}";
        assertNamesTensor(refused(RawSafetensors.write(dir.resolve("late.safetensors"), late, 16)), FC1,
                "leave bytes [0, 8) of the data section unused");
        String whole = "{\"" + FC1 + "\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}";
        Path tail = RawSafetensors.write(dir.resolve("tail.safetensors"), whole, 12);
        assertEquals(tail + ": the data section has 4 bytes after its last tensor (it is 12 bytes, its tensors end at 8;"
                + " a safetensors file ends with its last tensor, so the file is longer than its header says)", refused(tail).getMessage());
        Path appended = Files.write(dir.resolve("appended.safetensors"), Arrays.copyOf(Files.readAllBytes(validFile()),
                (int) Files.size(validFile()) + 1));
        assertTrue(refused(appended).getMessage().contains("1 bytes after its last tensor"));
        // Empty tensors take no bytes wherever their offsets point.
        String empty = "{\"e\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]},"
                + "\"t\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}";
        try (Arena arena = Arena.ofConfined()) {
            assertEquals(0, SafetensorsFile.open(RawSafetensors.write(dir.resolve("empty.safetensors"), empty, 8), arena)
                    .tensor("e").data().byteSize());
        }
    }

    @Test
    void byteSizeNotMatchingShapeTimesDtypeIsRefused() throws IOException {
        String header = "{\"" + FC1 + "\": {\"dtype\": \"BF16\", \"shape\": [3, 4], \"data_offsets\": [0, 48]}}";
        ModelFormatException e = refused(RawSafetensors.write(dir.resolve("s.safetensors"), header, 48));
        assertNamesTensor(e, FC1, "data_offsets [0, 48] hold 48 bytes but shape [3, 4] of BF16 needs 24");
    }

    @Test
    void unknownDtypeIsRefused() throws IOException {
        String header = "{\"" + FC1 + "\": {\"dtype\": \"F8_E4M3\", \"shape\": [4], \"data_offsets\": [0, 4]}}";
        ModelFormatException e = refused(RawSafetensors.write(dir.resolve("d.safetensors"), header, 4));
        assertNamesTensor(e, FC1, "unsupported dtype \"F8_E4M3\" (readable: F32, F16, BF16, I32, I64)");
    }

    @Test
    void negativeOverflowingAndNonIntegerShapesAreRefused() throws IOException {
        String negative = "{\"t\": {\"dtype\": \"F32\", \"shape\": [-1, 4], \"data_offsets\": [0, 0]}}";
        assertNamesTensor(refused(RawSafetensors.write(dir.resolve("n.safetensors"), negative, 0)), "t",
                "\"shape\" value -1 is not a non-negative 64-bit integer");
        String overflow = "{\"t\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 0]}}";
        assertNamesTensor(refused(RawSafetensors.write(dir.resolve("v.safetensors"), overflow, 0)), "t",
                "overflows a 64-bit byte count");
        String huge = "{\"t\": {\"dtype\": \"F32\", \"shape\": [99999999999999999999], \"data_offsets\": [0, 0]}}";
        assertNamesTensor(refused(RawSafetensors.write(dir.resolve("h.safetensors"), huge, 0)), "t",
                "is not a non-negative 64-bit integer");
        String fractional = "{\"t\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}";
        assertNamesTensor(refused(RawSafetensors.write(dir.resolve("f.safetensors"), fractional, 4)), "t",
                "\"shape\" value 1.5");
        String backwards = "{\"t\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}";
        assertNamesTensor(refused(RawSafetensors.write(dir.resolve("b.safetensors"), backwards, 8)), "t", "end before begin");
        String noName = "{\"\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}";
        assertTrue(refused(RawSafetensors.write(dir.resolve("e.safetensors"), noName, 4)).getMessage().endsWith("empty name"));
        String noOffsets = "{\"t\": {\"dtype\": \"F32\", \"shape\": [1]}}";
        assertNamesTensor(refused(RawSafetensors.write(dir.resolve("m.safetensors"), noOffsets, 8)), "t",
                "missing or non-array \"data_offsets\"");
    }

    @Test
    void controlCharactersInNamesCannotBreakTheOneLineMessage() throws IOException {
        String header = "{\"evil\\nFAKE LOG LINE\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [0, 8]}}";
        ModelFormatException e = refused(RawSafetensors.write(dir.resolve("x.safetensors"), header, 8));
        assertTrue(e.getMessage().contains("tensor evil\\u000aFAKE LOG LINE: unsupported dtype"), e.getMessage());
    }

    @Test
    void metadataAndHeaderPaddingAreTolerated() throws IOException {
        String header = "{\"__metadata__\": {\"format\": \"pt\", \"step\": 7},"
                + "\"t\": {\"dtype\": \"I64\", \"shape\": [2], \"data_offsets\": [0, 16]},"
                + "\"i\": {\"dtype\": \"I32\", \"shape\": [], \"data_offsets\": [16, 20]}}      ";
        Path file = RawSafetensors.write(dir.resolve("ok.safetensors"), header, 20);
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile f = SafetensorsFile.open(file, arena);
            assertEquals("pt", f.metadata().get("format"));
            assertEquals("7", f.metadata().get("step"));
            Tensor t = f.tensor("t");
            assertEquals(DType.I64, t.dtype());
            assertEquals(0x5A5A5A5A5A5A5A5AL, t.data().get(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, 8));
            assertEquals(4, f.tensor("i").data().byteSize());
            ModelFormatException absent = assertThrows(ModelFormatException.class, () -> f.tensor("nope"));
            assertEquals(file + ": no tensor named nope", absent.getMessage());
        }
    }

    /**
     * Thousands of corruptions of a valid file (bit flips in the header, truncation at every kind of
     * boundary, lying header lengths): each is either refused with a one-line ModelFormatException
     * naming the file, or opens with every tensor readable inside the mapping. Nothing else may happen.
     */
    @Test
    void corruptedFilesNeverEscapeValidation() throws IOException {
        byte[] valid = Files.readAllBytes(validFile());
        long headerLength = ByteBuffer.wrap(valid).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        SplittableRandom random = new SplittableRandom(20261127);
        Path file = dir.resolve("fuzz.safetensors");
        int opened = 0;
        for (int round = 0; round < 1200; round++) {
            byte[] bytes = valid.clone();
            switch (round % 4) {
                case 0 -> {
                    for (int k = 0; k < 1 + random.nextInt(4); k++) {
                        int at = 8 + random.nextInt((int) headerLength);
                        bytes[at] ^= (byte) (1 << random.nextInt(8));
                    }
                }
                case 1 -> {
                    int at = 8 + random.nextInt((int) headerLength);
                    bytes[at] = (byte) "0123456789-.e[]{},\" ".charAt(random.nextInt(20));
                }
                case 2 -> bytes = Arrays.copyOf(bytes, random.nextInt(bytes.length));
                default -> ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(0, random.nextLong(headerLength * 2 + 1));
            }
            Files.write(file, bytes);
            try (Arena arena = Arena.ofConfined()) {
                SafetensorsFile f = SafetensorsFile.open(file, arena);
                opened++;
                for (String name : f.names()) {
                    MemorySegment data = f.tensor(name).data();
                    long sum = 0;
                    for (long i = 0; i < data.byteSize(); i++) {
                        sum += data.get(java.lang.foreign.ValueLayout.JAVA_BYTE, i);
                    }
                    assertTrue(sum != Long.MIN_VALUE);
                }
            } catch (ModelFormatException e) {
                assertFalse(e.getMessage().contains("\n"), e.getMessage());
                assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
            }
        }
        assertTrue(opened > 0 && opened < 1200, "some corruptions stay valid (e.g. a flipped name), most do not: " + opened);
    }
}
