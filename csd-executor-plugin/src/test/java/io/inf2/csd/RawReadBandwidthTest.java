package io.inf2.csd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The raw direct-read probe on real files: a rate, no files left behind, a clear error for a bad directory. */
class RawReadBandwidthTest {
    @TempDir
    Path dir;

    @Test
    void readsEveryDirectoryTogetherAndCleansUp() throws IOException {
        List<Path> dirs = List.of(dir.resolve("a"), dir.resolve("b"));
        double bytesPerSecond = RawReadBandwidth.measure(dirs, 3 << 20);
        assertTrue(bytesPerSecond > 1e6 && Double.isFinite(bytesPerSecond), bytesPerSecond + " B/s");
        for (Path d : dirs) {
            try (Stream<Path> left = Files.list(d)) {
                assertEquals(0, left.count(), "scratch file left in " + d);
            }
        }
    }

    @Test
    void aPathThatIsAFileFailsNamingIt() throws IOException {
        Path file = Files.writeString(dir.resolve("plain"), "x");
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> RawReadBandwidth.measure(List.of(dir.resolve("ok"), file), 4 << 20));
        assertTrue(e.getMessage().startsWith("raw direct read of " + file.resolve("inf2-bench-raw.bin")), e.getMessage());
        assertEquals(1, e.getMessage().lines().count());
    }
}
