package io.inf2.modelcache;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * What a complete cache entry holds: the source it came from and, per file, the remote size and
 * modification time (to tell whether the source changed) and the CRC32C of the bytes copied (to tell
 * whether the local copy is intact). Written into the entry after every file is copied and synced, so
 * an entry with a manifest is complete.
 */
record CacheManifest(int format, String source, List<FileEntry> files) {

    static final int FORMAT = 1;
    static final String FILE_NAME = ".inf2-cache-manifest.json";

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    CacheManifest {
        files = List.copyOf(files);
    }

    record FileEntry(String path, long size, long modifiedMillis, String crc32c) {
    }

    static CacheManifest read(Path file) throws IOException {
        CacheManifest m = JSON.readValue(file.toFile(), CacheManifest.class);
        if (m.format() != FORMAT || m.source() == null || m.files() == null) {
            throw new IOException(file + ": not a format-" + FORMAT + " cache manifest");
        }
        return m;
    }

    void write(Path file) throws IOException {
        JSON.writeValue(file.toFile(), this);
    }
}
