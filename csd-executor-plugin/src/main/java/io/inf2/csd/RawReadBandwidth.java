package io.inf2.csd;

import io.inf2.nativeio.LibC;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The disks' own sequential read bandwidth with O_DIRECT, the physical bound the storage tier's KV
 * reads are judged against: one scratch file per directory, written, synced, then read back in
 * {@value #IO_BYTES}-byte reads by all directories at once (directories on one disk share it, as the
 * devices do in use). The files are deleted afterwards.
 */
public final class RawReadBandwidth {
    /** Size of each read and write: large enough that per-call overhead does not count. */
    public static final int IO_BYTES = 4 << 20;
    private static final String SCRATCH_NAME = "inf2-bench-raw.bin";

    private RawReadBandwidth() {
    }

    /**
     * Bytes per second read from all of {@code directories} together (created if absent), each reading
     * {@code bytesPerDirectory} rounded up to whole {@value #IO_BYTES}-byte reads; timed from the moment
     * all start to the moment the slowest finishes.
     */
    public static double measure(List<Path> directories, long bytesPerDirectory) {
        if (directories.isEmpty()) {
            throw new IllegalArgumentException("raw read bandwidth: no directories given");
        }
        long size = Math.max(1, (bytesPerDirectory + IO_BYTES - 1) / IO_BYTES) * IO_BYTES;
        CountDownLatch readTogether = new CountDownLatch(directories.size());
        List<CompletableFuture<Long>> readers = new ArrayList<>();
        try (ExecutorService pool = Executors.newThreadPerTaskExecutor(Thread.ofPlatform().factory())) {
            for (Path dir : directories) {
                readers.add(CompletableFuture.supplyAsync(() -> read(dir, size, readTogether), pool));
            }
            long slowest = 0;
            for (CompletableFuture<Long> r : readers) {
                try {
                    slowest = Math.max(slowest, r.join());
                } catch (CompletionException e) {
                    throw e.getCause() instanceof RuntimeException c ? c : e;
                }
            }
            return directories.size() * (double) size * 1e9 / slowest;
        }
    }

    /** Nanoseconds to read {@code size} bytes of a scratch file in {@code dir}, after all readers are ready. */
    private static long read(Path dir, long size, CountDownLatch readTogether) {
        Path file = dir.resolve(SCRATCH_NAME);
        String name = file.toString();
        boolean ready = false;
        try (LibC.AlignedBuffer buffer = LibC.allocateAligned(4096, IO_BYTES)) {
            Files.createDirectories(dir);
            Files.deleteIfExists(file);
            int fd = LibC.open(file, LibC.O_RDWR | LibC.O_CREAT | LibC.O_EXCL | LibC.O_DIRECT, 0600);
            try {
                buffer.segment().fill((byte) 7);
                for (long pos = 0; pos < size; pos += IO_BYTES) {
                    LibC.pwrite(fd, buffer.segment(), pos, name);
                }
                LibC.fdatasync(fd, name);
                ready = true;
                readTogether.countDown();
                readTogether.await();
                long t0 = System.nanoTime();
                for (long pos = 0; pos < size; pos += IO_BYTES) {
                    if (LibC.pread(fd, buffer.segment(), pos, name) != IO_BYTES) {
                        throw new IOException("short read of " + name + " at " + pos);
                    }
                }
                return System.nanoTime() - t0;
            } finally {
                LibC.close(fd, name);
                Files.deleteIfExists(file);
            }
        } catch (Exception e) {
            if (!ready) {
                // The other readers wait until every reader is ready: count this one so that none waits forever.
                readTogether.countDown();
            }
            throw new IllegalStateException("raw direct read of " + name + ": " + e.getMessage(), e);
        }
    }
}
