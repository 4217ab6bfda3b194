package io.inf2.model.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Streams tensors into one {@code .safetensors} file: the header (all names, dtypes, shapes and offsets)
 * is written first, then each tensor's bytes in the listed order, through a small staging buffer, so
 * no more than one chunk of the model is ever in memory.
 *
 * <p>The file appears under its final name only when every tensor has been written ({@link #close()}
 * renames a {@code .partial} file); an interrupted write leaves no file that looks complete.
 * The header is padded with spaces so the data section starts 8-byte aligned, as HF's writer does.
 */
public final class SafetensorsWriter implements AutoCloseable {

    /** What HF transformers checks in {@code __metadata__} before loading a safetensors file as PyTorch weights. */
    public static final Map<String, String> PYTORCH_METADATA = Map.of("format", "pt");

    static final int CHUNK_BYTES = 8 << 20;
    private static final long MAX_WRITE_BYTES = 1L << 30;
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path target;
    private final Path partial;
    private final List<TensorSpec> tensors;
    private final FileChannel channel;
    // Shared: a source may fill one chunk from several threads.
    private final Arena stagingArena = Arena.ofShared();
    private final MemorySegment staging;
    private int next;
    private boolean closed;

    private SafetensorsWriter(Path target, Path partial, List<TensorSpec> tensors, FileChannel channel) {
        this.target = target;
        this.partial = partial;
        this.tensors = tensors;
        this.channel = channel;
        this.staging = stagingArena.allocate(CHUNK_BYTES, 64);
    }

    /**
     * Starts {@code file} and writes its header. The tensors must then be written in exactly this order.
     *
     * @param metadata the {@code __metadata__} strings; use {@link #PYTORCH_METADATA} for files HF should load
     */
    public static SafetensorsWriter create(Path file, List<TensorSpec> tensors, Map<String, String> metadata) throws IOException {
        List<TensorSpec> ordered = List.copyOf(tensors);
        byte[] header = header(ordered, metadata);
        Path partial = file.resolveSibling(file.getFileName() + ".partial");
        FileChannel channel = FileChannel.open(partial, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE);
        try {
            ByteBuffer length = ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
            writeFully(channel, length);
            writeFully(channel, ByteBuffer.wrap(header));
        } catch (IOException | RuntimeException e) {
            channel.close();
            Files.deleteIfExists(partial);
            throw e;
        }
        return new SafetensorsWriter(file, partial, ordered, channel);
    }

    /** Writes a whole file from {@code source}, tensor after tensor. */
    public static void write(Path file, List<TensorSpec> tensors, Map<String, String> metadata, TensorSource source) throws IOException {
        try (SafetensorsWriter writer = create(file, tensors, metadata)) {
            for (TensorSpec spec : tensors) {
                writer.write(spec.name(), source);
            }
        }
    }

    /** Writes the next tensor from bytes already encoded as its dtype (a mapped or native tensor, or a heap array). */
    public void write(String name, MemorySegment bytes) throws IOException {
        TensorSpec spec = expectNext(name);
        if (bytes.byteSize() != spec.byteSize()) {
            throw new IllegalArgumentException("tensor " + name + ": " + bytes.byteSize() + " bytes given, " + spec + " needs "
                    + spec.byteSize());
        }
        if (bytes.isNative()) {
            for (long pos = 0; pos < bytes.byteSize(); pos += MAX_WRITE_BYTES) {
                long n = Math.min(MAX_WRITE_BYTES, bytes.byteSize() - pos);
                writeFully(channel, bytes.asSlice(pos, n).asByteBuffer());
            }
        } else {
            for (long pos = 0; pos < bytes.byteSize(); pos += CHUNK_BYTES) {
                long n = Math.min(CHUNK_BYTES, bytes.byteSize() - pos);
                MemorySegment.copy(bytes, pos, staging, 0, n);
                writeFully(channel, staging.asSlice(0, n).asByteBuffer());
            }
        }
        next++;
    }

    /** Writes the next tensor, asking {@code source} for it one chunk at a time. */
    public void write(String name, TensorSource source) throws IOException {
        TensorSpec spec = expectNext(name);
        int elementBytes = spec.dtype().byteSize();
        long elementsPerChunk = CHUNK_BYTES / elementBytes;
        long total = spec.elementCount();
        for (long first = 0; first < total; first += elementsPerChunk) {
            long count = Math.min(elementsPerChunk, total - first);
            MemorySegment chunk = staging.asSlice(0, count * elementBytes);
            source.fill(spec, first, chunk);
            writeFully(channel, chunk.asByteBuffer());
        }
        next++;
    }

    /**
     * Finishes the file: flushes it to disk and gives it its final name. If not every tensor was written,
     * the partial file is deleted and an IllegalStateException says which tensor was missing.
     */
    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        boolean complete = next == tensors.size();
        try {
            if (complete) {
                channel.force(true);
            }
        } finally {
            channel.close();
            stagingArena.close();
        }
        if (!complete) {
            Files.deleteIfExists(partial);
            throw new IllegalStateException(target + ": closed after " + next + " of " + tensors.size()
                    + " tensors; next expected " + tensors.get(next).name() + " (file not written)");
        }
        Files.move(partial, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private TensorSpec expectNext(String name) {
        if (closed) {
            throw new IllegalStateException(target + ": writer is closed");
        }
        if (next >= tensors.size()) {
            throw new IllegalStateException(target + ": tensor " + name + " written after all " + tensors.size()
                    + " declared tensors");
        }
        TensorSpec spec = tensors.get(next);
        if (!spec.name().equals(name)) {
            throw new IllegalStateException(target + ": tensor " + name + " written out of order; the header declares "
                    + spec.name() + " next");
        }
        return spec;
    }

    /** The JSON header, padded with spaces to a multiple of 8 bytes (counting the 8-byte length before it). */
    static byte[] header(List<TensorSpec> tensors, Map<String, String> metadata) {
        ObjectNode root = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject(SafetensorsFile.METADATA_KEY);
            metadata.entrySet().stream().sorted(Map.Entry.comparingByKey()).forEach(e -> meta.put(e.getKey(), e.getValue()));
        }
        Set<String> seen = new HashSet<>();
        long offset = 0;
        for (TensorSpec spec : tensors) {
            if (spec.name().equals(SafetensorsFile.METADATA_KEY) || !seen.add(spec.name())) {
                throw new IllegalArgumentException("tensor name " + spec.name() + " is reserved or listed twice");
            }
            ObjectNode entry = root.putObject(spec.name());
            entry.put("dtype", spec.dtype().safetensorsName());
            ArrayNode shape = entry.putArray("shape");
            for (long d : spec.shape()) {
                shape.add(d);
            }
            long end = Math.addExact(offset, spec.byteSize());
            entry.putArray("data_offsets").add(offset).add(end);
            offset = end;
        }
        byte[] json;
        try {
            json = JSON.writeValueAsBytes(root);
        } catch (IOException e) {
            throw new IllegalStateException("cannot serialise a safetensors header", e);
        }
        int padded = (json.length + 7) & ~7;
        byte[] out = Arrays.copyOf(json, padded);
        Arrays.fill(out, json.length, padded, (byte) ' ');
        return out;
    }

    private static void writeFully(FileChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }
}
