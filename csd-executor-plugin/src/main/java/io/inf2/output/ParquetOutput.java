package io.inf2.output;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.stream.Stream;
import org.apache.arrow.dataset.file.DatasetFileWriter;
import org.apache.arrow.dataset.file.FileFormat;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.ipc.ArrowReader;
import org.apache.arrow.vector.types.pojo.Schema;

/**
 * Writes results to one Parquet file through Arrow's native dataset writer. Rows are pulled from
 * the iterable lazily, {@link #DEFAULT_ROWS_PER_BATCH} at a time, so a caller can hand in results as
 * the engine produces them. The file appears complete or not at all: it is written beside the
 * target and moved into place.
 */
public final class ParquetOutput {

    public static final int DEFAULT_ROWS_PER_BATCH = 1024;
    private static final long NATIVE_RELEASE_TIMEOUT_NANOS = 10_000_000_000L;

    private ParquetOutput() {
    }

    /**
     * Writes {@code rows} to {@code file}, replacing it; returns the number of rows written. An empty
     * {@code rows} is an error: Arrow's writer cannot make a Parquet file without rows.
     */
    public static long write(Path file, Iterable<ResultRow> rows) {
        try (BufferAllocator allocator = new RootAllocator()) {
            return write(file, rows, DEFAULT_ROWS_PER_BATCH, allocator);
        }
    }

    /** As {@link #write(Path, Iterable)}, with Arrow memory taken from {@code allocator}. */
    public static long write(Path file, Iterable<ResultRow> rows, int rowsPerBatch, BufferAllocator allocator) {
        if (rowsPerBatch < 1) {
            throw new IllegalArgumentException("rowsPerBatch must be at least 1, got " + rowsPerBatch);
        }
        Path target = file.toAbsolutePath();
        Path parent = target.getParent();
        Path staging;
        try {
            Files.createDirectories(parent);
            staging = Files.createTempDirectory(parent, "." + target.getFileName() + ".writing-");
        } catch (IOException e) {
            throw new UncheckedIOException(target + ": cannot create the output directory (" + e.getMessage() + ")", e);
        }
        try {
            ResultReader reader;
            try (BufferAllocator batches = allocator.newChildAllocator("parquet-output", 0, Long.MAX_VALUE)) {
                reader = new ResultReader(batches, rows.iterator(), rowsPerBatch);
                try (reader) {
                    DatasetFileWriter.write(batches, reader, FileFormat.PARQUET, staging.toUri().toString(),
                            new String[0], 1, "part-{i}.parquet");
                } catch (RuntimeException e) {
                    if (reader.sourceFailure != null) {
                        // The rows' own failure (say, the engine's) reached the native writer as text;
                        // the caller gets the original.
                        throw reader.sourceFailure;
                    }
                    throw new IllegalStateException(target + ": Arrow's Parquet writer failed (" + e.getMessage() + ")", e);
                } finally {
                    // Also when the rows failed: the allocator must not close while native threads hold a batch.
                    awaitNativeRelease(batches, target);
                }
            }
            if (reader.rowsRead == 0) {
                throw new IllegalArgumentException(target + ": no rows to write (Arrow's Parquet writer makes no file "
                        + "for an empty table)");
            }
            Path written = singleFile(staging, target);
            moveIntoPlace(written, target);
            return reader.rowsRead;
        } catch (IOException e) {
            throw new UncheckedIOException(target + ": cannot write Parquet (" + e.getMessage() + ")", e);
        } finally {
            deleteTree(staging);
        }
    }

    /**
     * The native writer can return before its worker threads drop the last batch they were handed
     * (seen with Arrow 18.3 when the final batch is short); the batch's buffers stay charged to the
     * allocator until then, and closing it earlier would report a leak.
     */
    private static void awaitNativeRelease(BufferAllocator batches, Path target) {
        long deadline = System.nanoTime() + NATIVE_RELEASE_TIMEOUT_NANOS;
        while (batches.getAllocatedMemory() != 0 && System.nanoTime() < deadline) {
            try {
                Thread.sleep(2);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(target + ": interrupted while Arrow's Parquet writer released its batches", e);
            }
        }
    }

    private static Path singleFile(Path staging, Path target) throws IOException {
        List<Path> files = new ArrayList<>();
        try (DirectoryStream<Path> dir = Files.newDirectoryStream(staging)) {
            dir.forEach(files::add);
        }
        if (files.size() != 1) {
            throw new IOException("the Arrow dataset writer produced " + files.size() + " files instead of one for " + target);
        }
        return files.getFirst();
    }

    private static void moveIntoPlace(Path written, Path target) throws IOException {
        try {
            Files.move(written, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(written, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> paths = Files.walk(dir)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // The staging directory is hidden beside the output; a leftover does not affect the result.
        }
    }

    /**
     * Feeds result rows to the native writer batch by batch. The native side reads through
     * Arrow's C stream interface, so each batch lives in this reader's root only until the next one.
     */
    private static final class ResultReader extends ArrowReader {
        private final Iterator<ResultRow> rows;
        private final int rowsPerBatch;
        private long rowsRead;
        private RuntimeException sourceFailure;

        ResultReader(BufferAllocator allocator, Iterator<ResultRow> rows, int rowsPerBatch) {
            super(allocator);
            this.rows = rows;
            this.rowsPerBatch = rowsPerBatch;
        }

        @Override
        public boolean loadNextBatch() throws IOException {
            List<ResultRow> batch = new ArrayList<>(rowsPerBatch);
            try {
                while (batch.size() < rowsPerBatch && rows.hasNext()) {
                    batch.add(rows.next());
                }
            } catch (RuntimeException e) {
                sourceFailure = e;
                throw e;
            }
            if (batch.isEmpty()) {
                return false;
            }
            ResultArrow.fill(getVectorSchemaRoot(), batch);
            rowsRead += batch.size();
            return true;
        }

        @Override
        public long bytesRead() {
            return 0;
        }

        @Override
        protected void closeReadSource() {
        }

        @Override
        protected Schema readSchema() {
            return ResultArrow.SCHEMA;
        }
    }
}
