package io.inf2.model.checkpoint;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.inf2.model.ModelFormatException;
import io.inf2.tensor.DType;
import io.inf2.tensor.Tensor;
import io.inf2.util.StrictJson;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * One {@code .safetensors} file, validated completely and then memory-mapped (no copy, no 2 GB limit).
 *
 * <p>Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping each tensor name to
 * {@code {"dtype", "shape", "data_offsets": [begin, end]}} (offsets relative to the data section that
 * starts at byte 8 + N), an optional {@code "__metadata__"} object of strings, then the data.
 *
 * <p>Every tensor is checked before any is handed out: a known dtype, a shape of non-negative integers
 * whose byte size fits, offsets inside the data section that hold exactly shape × dtype bytes, and the
 * tensors filling the data section back to back (no overlap, no gap, nothing after the last). So a
 * tensor's segment can never reach outside the mapping, whatever the file says. Every problem is a
 * one-line {@link ModelFormatException} naming the file (and tensor).
 *
 * <p>The mapping lives in the caller's arena (a checkpoint maps all its shards into one arena and
 * unmaps them together by closing it). A file truncated by another process <em>after</em> it was
 * mapped cannot be guarded against; reading the lost pages then fails with an InternalError.
 */
public final class SafetensorsFile {

    /** Headers are a few KB to a few MB even for 1000-shard checkpoints; anything past this is not a header. */
    public static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;

    static final String METADATA_KEY = "__metadata__";

    private static final ObjectMapper JSON = StrictJson.MAPPER;

    private final Path path;
    private final long dataStart;
    private final Map<String, String> metadata;
    private final Map<String, Entry> entries;
    private final Map<String, Tensor> tensors;

    /** Where a tensor's bytes are in the file (offsets absolute from the file's start). */
    private record Entry(TensorSpec spec, long begin, long end) { }

    private SafetensorsFile(Path path, long dataStart, Map<String, String> metadata, Map<String, Entry> entries,
                            Map<String, Tensor> tensors) {
        this.path = path;
        this.dataStart = dataStart;
        this.metadata = metadata;
        this.entries = entries;
        this.tensors = tensors;
    }

    /**
     * Validates {@code file} and maps it into {@code arena}; its tensors stay valid until the arena is
     * closed. The arena must be shared if tensors are read from several threads.
     */
    public static SafetensorsFile open(Path file, Arena arena) {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            long fileSize = channel.size();
            if (fileSize < Long.BYTES) {
                throw fail(file, "file is " + fileSize + " bytes, too short for the 8-byte header length (truncated, or not a safetensors file)");
            }
            long headerLength = readLong(channel, file);
            if (headerLength < 0 || headerLength > MAX_HEADER_BYTES) {
                throw fail(file, "header length " + Long.toUnsignedString(headerLength) + " is implausible (limit "
                        + MAX_HEADER_BYTES + " bytes): not a safetensors file");
            }
            if (headerLength > fileSize - Long.BYTES) {
                throw fail(file, "header length " + headerLength + " runs past the end of the file (" + fileSize
                        + " bytes): truncated file");
            }
            byte[] header = new byte[(int) headerLength];
            readFully(channel, ByteBuffer.wrap(header), Long.BYTES, file);
            long dataStart = Long.BYTES + headerLength;
            long dataSize = fileSize - dataStart;

            JsonNode root = parseHeader(file, header);
            Map<String, String> metadata = new LinkedHashMap<>();
            Map<String, Entry> entries = new LinkedHashMap<>();
            for (Map.Entry<String, JsonNode> field : root.properties()) {
                if (field.getKey().equals(METADATA_KEY)) {
                    readMetadata(file, field.getValue(), metadata);
                } else {
                    entries.put(field.getKey(), readEntry(file, field.getKey(), field.getValue(), dataStart, dataSize));
                }
            }
            checkBackToBack(file, entries.values(), dataStart, dataSize);

            MemorySegment mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, fileSize, arena);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (Entry e : entries.values()) {
                MemorySegment data = mapping.asSlice(e.begin(), e.end() - e.begin());
                tensors.put(e.spec().name(), new Tensor(e.spec().name(), e.spec().dtype(), e.spec().shape(), data));
            }
            return new SafetensorsFile(file, dataStart, Collections.unmodifiableMap(metadata),
                    Collections.unmodifiableMap(entries), Collections.unmodifiableMap(tensors));
        } catch (IOException e) {
            throw fail(file, "cannot read (" + oneLine(e.toString()) + ")", e);
        }
    }

    public Path path() {
        return path;
    }

    /** The {@code __metadata__} strings (empty if absent); HF writes {@code {"format": "pt"}}. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Tensor names in header order. */
    public Set<String> names() {
        return tensors.keySet();
    }

    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    /** The named tensor, a view of the mapping. */
    public Tensor tensor(String name) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw fail(path, "no tensor named " + printable(name));
        }
        return t;
    }

    public TensorSpec spec(String name) {
        return entry(name).spec();
    }

    /** Byte offset of the tensor's data from the start of the file (for readers that bypass the mapping). */
    public long fileOffset(String name) {
        return entry(name).begin();
    }

    /** Byte offset of the data section (8 + header length). */
    public long dataStart() {
        return dataStart;
    }

    private Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) {
            throw fail(path, "no tensor named " + printable(name));
        }
        return e;
    }

    private static JsonNode parseHeader(Path file, byte[] header) {
        int first = 0;
        while (first < header.length && header[first] == ' ') {
            first++;
        }
        if (first == header.length || header[first] != '{') {
            throw fail(file, "header does not start with a JSON object (corrupt header, or not a safetensors file)");
        }
        JsonNode root;
        try {
            root = JSON.readTree(header);
        } catch (JsonProcessingException e) {
            long at = e.getLocation() == null ? -1 : e.getLocation().getByteOffset();
            throw fail(file, "header is not valid JSON (" + oneLine(e.getOriginalMessage())
                    + (at >= 0 ? " at header byte " + at : "") + ")", e);
        } catch (IOException e) {
            throw fail(file, "header is not valid JSON (" + oneLine(e.getMessage()) + ")", e);
        }
        if (root == null || !root.isObject()) {
            throw fail(file, "header is not a JSON object");
        }
        return root;
    }

    private static void readMetadata(Path file, JsonNode node, Map<String, String> out) {
        if (node.isNull()) {
            return;
        }
        if (!node.isObject()) {
            throw fail(file, METADATA_KEY + " is " + node.getNodeType().toString().toLowerCase(Locale.ROOT)
                    + ", expected an object of strings");
        }
        // The format says string values; other writers sometimes store numbers. They carry nothing the engine needs.
        for (Map.Entry<String, JsonNode> m : node.properties()) {
            if (m.getValue().isValueNode()) {
                out.put(m.getKey(), m.getValue().asText());
            }
        }
    }

    private static Entry readEntry(Path file, String name, JsonNode node, long dataStart, long dataSize) {
        if (name.isEmpty()) {
            throw fail(file, "a tensor has an empty name");
        }
        if (!node.isObject()) {
            throw failTensor(file, name, "header entry is not an object with dtype, shape and data_offsets");
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw failTensor(file, name, "missing or non-string \"dtype\"");
        }
        DType dtype = DType.fromSafetensorsName(dtypeNode.asText());
        if (dtype == null) {
            throw failTensor(file, name, "unsupported dtype \"" + oneLine(dtypeNode.asText()) + "\" (readable: "
                    + Arrays.stream(DType.values()).map(DType::safetensorsName).collect(Collectors.joining(", ")) + ")");
        }
        long[] shape = nonNegativeLongs(file, name, node.get("shape"), "shape", -1);
        long[] offsets = nonNegativeLongs(file, name, node.get("data_offsets"), "data_offsets", 2);
        long begin = offsets[0];
        long end = offsets[1];
        String offsetsText = "data_offsets [" + begin + ", " + end + "]";
        if (begin > end) {
            throw failTensor(file, name, offsetsText + " end before begin");
        }
        if (end > dataSize) {
            throw failTensor(file, name, offsetsText + " end beyond the file's data section (" + dataSize + " bytes)");
        }
        long expected;
        try {
            expected = Math.multiplyExact(Tensor.elementCount(shape), (long) dtype.byteSize());
        } catch (ArithmeticException e) {
            throw failTensor(file, name, "shape " + Arrays.toString(shape) + " of " + dtype + " overflows a 64-bit byte count");
        }
        if (end - begin != expected) {
            throw failTensor(file, name, offsetsText + " hold " + (end - begin) + " bytes but shape "
                    + Arrays.toString(shape) + " of " + dtype + " needs " + expected);
        }
        return new Entry(new TensorSpec(name, dtype, shape), dataStart + begin, dataStart + end);
    }

    private static long[] nonNegativeLongs(Path file, String tensor, JsonNode node, String key, int requiredLength) {
        if (node == null || !node.isArray()) {
            throw failTensor(file, tensor, "missing or non-array \"" + key + "\"");
        }
        if (requiredLength >= 0 && node.size() != requiredLength) {
            throw failTensor(file, tensor, "\"" + key + "\" has " + node.size() + " values, expected " + requiredLength);
        }
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.asLong() < 0) {
                throw failTensor(file, tensor, "\"" + key + "\" value " + oneLine(v.toString())
                        + " is not a non-negative 64-bit integer");
            }
            out[i] = v.asLong();
        }
        return out;
    }

    /**
     * The tensors must fill the data section back to back, as the format requires ("entirely indexed,
     * no holes"; Hugging Face's reader refuses anything else): no two overlapping, no unused bytes
     * between them or after the last. A gap or a tail is not unsafe to map, but a file whose header
     * does not account for all its bytes was not written by a conforming writer, and loading it here
     * would only move the failure to the next tool that reads it.
     */
    private static void checkBackToBack(Path file, java.util.Collection<Entry> entries, long dataStart, long dataSize) {
        List<Entry> byBegin = new ArrayList<>(entries);
        byBegin.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        Entry previous = null;
        long next = dataStart;
        for (Entry e : byBegin) {
            if (e.begin() == e.end()) {
                continue; // an empty tensor occupies no bytes
            }
            // Offsets start at the data section, so only a tensor after another can begin before next.
            if (e.begin() < next) {
                throw failTensor(file, e.spec().name(), "data_offsets [" + (e.begin() - dataStart) + ", " + (e.end() - dataStart)
                        + "] overlap tensor " + previous.spec().name() + " [" + (previous.begin() - dataStart) + ", "
                        + (previous.end() - dataStart) + "]");
            }
            if (e.begin() > next) {
                throw failTensor(file, e.spec().name(), "data_offsets [" + (e.begin() - dataStart) + ", " + (e.end() - dataStart)
                        + "] leave bytes [" + (next - dataStart) + ", " + (e.begin() - dataStart) + ") of the data section unused"
                        + " (a safetensors file holds its tensors back to back)");
            }
            previous = e;
            next = e.end();
        }
        if (next - dataStart != dataSize) {
            throw fail(file, "the data section has " + (dataSize - (next - dataStart)) + " bytes after its last tensor (it is "
                    + dataSize + " bytes, its tensors end at " + (next - dataStart)
                    + "; a safetensors file ends with its last tensor, so the file is longer than its header says)");
        }
    }

    private static long readLong(FileChannel channel, Path file) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        readFully(channel, b, 0, file);
        return b.getLong(0);
    }

    private static void readFully(FileChannel channel, ByteBuffer buffer, long position, Path file) throws IOException {
        long pos = position;
        while (buffer.hasRemaining()) {
            int n = channel.read(buffer, pos);
            if (n < 0) {
                throw fail(file, "file ended while reading the header at byte " + pos + " (truncated file)");
            }
            pos += n;
        }
    }

    /** The first line of {@code s}, for quoting exception messages. */
    static String oneLine(String s) {
        if (s == null) {
            return "no detail";
        }
        String line = s.strip();
        int nl = line.indexOf('\n');
        return printable(nl < 0 ? line : line.substring(0, nl).strip());
    }

    /**
     * {@code s} safe to quote in a one-line message: control characters escaped, at most 200 characters.
     * Names come from the file, and a hostile file must not be able to forge extra log lines.
     */
    static String printable(String s) {
        StringBuilder out = new StringBuilder(Math.min(s.length(), 210));
        for (int i = 0; i < s.length() && out.length() < 200; i++) {
            char ch = s.charAt(i);
            if (Character.isISOControl(ch) || Character.getType(ch) == Character.LINE_SEPARATOR
                    || Character.getType(ch) == Character.PARAGRAPH_SEPARATOR) {
                out.append(String.format("\\u%04x", (int) ch));
            } else {
                out.append(ch);
            }
        }
        return out.length() < 200 || out.length() == s.length() ? out.toString() : out + "...";
    }

    private static ModelFormatException fail(Path file, String problem) {
        return new ModelFormatException(file + ": " + problem);
    }

    private static ModelFormatException fail(Path file, String problem, Throwable cause) {
        return new ModelFormatException(file + ": " + problem, cause);
    }

    private static ModelFormatException failTensor(Path file, String tensor, String problem) {
        return new ModelFormatException(file + ": tensor " + printable(tensor) + ": " + problem);
    }
}
