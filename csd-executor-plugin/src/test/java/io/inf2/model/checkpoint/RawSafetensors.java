package io.inf2.model.checkpoint;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Hand-made safetensors files for tests of malformed input: any header text, any header length, any data size. */
final class RawSafetensors {

    private RawSafetensors() {
    }

    /** Writes {@code header} with its true length, followed by {@code dataBytes} bytes of 0x5A. */
    static Path write(Path file, String header, int dataBytes) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        return write(file, json.length, json, dataBytes);
    }

    /** Writes a header length field that may lie about the JSON that follows. */
    static Path write(Path file, long declaredHeaderLength, byte[] json, int dataBytes) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8 + json.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(declaredHeaderLength).put(json);
        while (b.hasRemaining()) {
            b.put((byte) 0x5A);
        }
        Files.write(file, b.array());
        return file;
    }
}
