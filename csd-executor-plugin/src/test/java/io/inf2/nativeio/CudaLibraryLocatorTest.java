package io.inf2.nativeio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Runs everywhere: library search order and the one-line error for a missing library. */
class CudaLibraryLocatorTest {

    @Test
    void configuredPathComesFirstThenPropertyThenStandardDirectories(@TempDir Path dir) {
        String previous = System.getProperty(CudaLibraryLocator.PATH_PROPERTY);
        System.setProperty(CudaLibraryLocator.PATH_PROPERTY, "/opt/from-property");
        try {
            CudaLibraryLocator locator = CudaLibraryLocator.create(dir + ":/opt/second");
            assertEquals(dir, locator.directories().get(0));
            assertEquals(Path.of("/opt/second"), locator.directories().get(1));
            assertEquals(Path.of("/opt/from-property"), locator.directories().get(2));
            assertTrue(locator.directories().contains(Path.of("/usr/local/cuda/targets/x86_64-linux/lib")));
            assertTrue(locator.directories().contains(Path.of("/usr/local/nvidia/lib64")));
        } finally {
            if (previous == null) {
                System.clearProperty(CudaLibraryLocator.PATH_PROPERTY);
            } else {
                System.setProperty(CudaLibraryLocator.PATH_PROPERTY, previous);
            }
        }
    }

    @Test
    void missingLibraryIsOneLineNamingTheSonameAndTheSearch(@TempDir Path dir) {
        CudaException e = assertThrows(CudaException.class,
                () -> CudaLibraryLocator.create(dir.toString()).load("libinf2-no-such-library.so.7"));
        assertEquals("LIBRARY_NOT_FOUND", e.errorName());
        assertTrue(e.getMessage().startsWith("libinf2-no-such-library.so.7 not found (searched [" + dir), e.getMessage());
        assertTrue(!e.getMessage().contains("\n"), e.getMessage());
    }

    @Test
    void aFileThatIsNotALibraryIsReportedByTheLoader(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("libfake.so.1"), "not an ELF file");
        CudaException e = assertThrows(CudaException.class, () -> CudaLibraryLocator.create(dir.toString()).load("libfake.so.1"));
        assertEquals("LIBRARY_LOAD_FAILED", e.errorName());
        assertTrue(e.getMessage().startsWith(dir.resolve("libfake.so.1") + " cannot be loaded: "), e.getMessage());
    }
}
