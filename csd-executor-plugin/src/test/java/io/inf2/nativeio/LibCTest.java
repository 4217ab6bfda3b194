package io.inf2.nativeio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class LibCTest {
    private static final Path DIR = Path.of("target", "libc-tests").toAbsolutePath();

    private static Path file(String name) throws IOException {
        Files.createDirectories(DIR);
        Path p = DIR.resolve(name);
        Files.deleteIfExists(p);
        return p;
    }

    @Test
    void directWriteAndReadRoundTripThroughAlignedMemory() throws IOException {
        Path path = file("roundtrip");
        int fd = LibC.open(path, LibC.O_RDWR | LibC.O_CREAT | LibC.O_EXCL | LibC.O_DIRECT, 0600);
        try (LibC.AlignedBuffer out = LibC.allocateAligned(4096, 8192);
             LibC.AlignedBuffer in = LibC.allocateAligned(4096, 8192)) {
            assertEquals(0, out.segment().address() % 4096, "posix_memalign honours the alignment");
            for (int i = 0; i < 2048; i++) {
                out.segment().setAtIndex(ValueLayout.JAVA_INT, i, i * 7);
            }
            LibC.fallocate(fd, 0, 16384, path.toString());
            assertEquals(8192, LibC.pwrite(fd, out.segment(), 4096, path.toString()));
            LibC.fdatasync(fd, path.toString());
            LibC.fsync(fd, path.toString());
            assertEquals(8192, LibC.pread(fd, in.segment(), 4096, path.toString()));
            assertEquals(-1, in.segment().mismatch(out.segment()));
            assertEquals(16384, Files.size(path), "fallocate extended the file");
            LibC.ftruncate(fd, 4096, path.toString());
            assertEquals(0, LibC.pread(fd, in.segment(), 4096, path.toString()), "end of file after truncation");
        } finally {
            LibC.close(fd, path.toString());
        }
    }

    @Test
    void misalignedDirectIoFailsWithErrnoTextOperationAndFile() throws IOException {
        Path path = file("misaligned");
        int fd = LibC.open(path, LibC.O_RDWR | LibC.O_CREAT | LibC.O_DIRECT, 0600);
        try (LibC.AlignedBuffer buffer = LibC.allocateAligned(4096, 8192)) {
            MemorySegment misaligned = buffer.segment().asSlice(1, 4096);
            LibC.ErrnoException e = assertThrows(LibC.ErrnoException.class,
                    () -> LibC.pwrite(fd, misaligned, 0, path.toString()));
            assertEquals(LibC.EINVAL, e.errno());
            assertEquals("pwrite", e.operation());
            assertTrue(e.getMessage().startsWith("pwrite " + path + " at offset 0 (4096 bytes): Invalid argument (errno 22)"),
                    e.getMessage());
        } finally {
            LibC.close(fd, path.toString());
        }
    }

    @Test
    void openOfAMissingDirectoryNamesThePath() {
        Path path = DIR.resolve("no-such-dir").resolve("file");
        LibC.ErrnoException e = assertThrows(LibC.ErrnoException.class,
                () -> LibC.open(path, LibC.O_RDWR | LibC.O_CREAT, 0600));
        assertEquals("open " + path + ": No such file or directory (errno 2)", e.getMessage());
    }

    @Test
    void closingABadDescriptorIsAnError() {
        LibC.ErrnoException e = assertThrows(LibC.ErrnoException.class, () -> LibC.close(1 << 20, "nothing"));
        assertEquals("close", e.operation());
        assertEquals("Bad file descriptor", LibC.strerror(e.errno()));
    }

    @Test
    void strerrorGivesTheCLibraryText() {
        assertEquals("No space left on device", LibC.strerror(LibC.ENOSPC));
        assertEquals("Input/output error", LibC.strerror(LibC.EIO));
    }

    @Test
    void alignedBuffersAreCountedFreedOnceAndUnusableAfterClose() {
        long before = LibC.liveAlignedBuffers();
        LibC.AlignedBuffer buffer = LibC.allocateAligned(4096, 1 << 20);
        assertEquals(before + 1, LibC.liveAlignedBuffers());
        buffer.segment().fill((byte) 3);
        buffer.close();
        buffer.close();
        assertEquals(before, LibC.liveAlignedBuffers());
        assertThrows(IllegalStateException.class, () -> buffer.segment().get(ValueLayout.JAVA_BYTE, 0));
        assertThrows(IllegalArgumentException.class, () -> LibC.allocateAligned(3000, 4096));
    }
}
