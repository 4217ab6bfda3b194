package io.inf2.output;

import static io.inf2.output.ResultArrowTest.failed;
import static io.inf2.output.ResultArrowTest.served;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.apache.arrow.dataset.file.FileFormat;
import org.apache.arrow.dataset.file.FileSystemDatasetFactory;
import org.apache.arrow.dataset.jni.NativeMemoryPool;
import org.apache.arrow.dataset.scanner.ScanOptions;
import org.apache.arrow.dataset.scanner.Scanner;
import org.apache.arrow.dataset.source.Dataset;
import org.apache.arrow.dataset.source.DatasetFactory;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.ipc.ArrowReader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ResultFilesTest {

    @TempDir
    Path dir;

    private static List<ResultRow> sampleRows(int n) {
        return IntStream.range(0, n)
                .mapToObj(i -> i % 3 == 1 ? failed("r" + i, "prompt " + i, "row " + i + ": empty prompt")
                        : served("r" + i, "prompt " + i, new int[] {2, i}, new int[] {i, i + 1}, "text " + i))
                .toList();
    }

    /** Reads a Parquet file back through Arrow's native reader: one map of column to value per row. */
    private static List<List<Object>> readParquet(Path file, BufferAllocator allocator) throws Exception {
        List<List<Object>> rows = new ArrayList<>();
        try (DatasetFactory factory = new FileSystemDatasetFactory(allocator, NativeMemoryPool.getDefault(),
                FileFormat.PARQUET, file.toUri().toString());
             Dataset dataset = factory.finish();
             Scanner scanner = dataset.newScan(new ScanOptions(1 << 15));
             ArrowReader reader = scanner.scanBatches()) {
            assertEquals(ResultArrow.COLUMNS,
                    reader.getVectorSchemaRoot().getSchema().getFields().stream().map(f -> f.getName()).toList());
            while (reader.loadNextBatch()) {
                VectorSchemaRoot root = reader.getVectorSchemaRoot();
                for (int i = 0; i < root.getRowCount(); i++) {
                    List<Object> row = new ArrayList<>();
                    for (String c : ResultArrow.COLUMNS) {
                        Object v = root.getVector(c).getObject(i);
                        row.add(v == null ? null : v.toString());
                    }
                    rows.add(row);
                }
            }
        }
        return rows;
    }

    private static List<List<Object>> expected(List<ResultRow> rows) {
        try (RootAllocator allocator = new RootAllocator();
             VectorSchemaRoot root = ResultArrow.toRoot(rows, allocator)) {
            List<List<Object>> out = new ArrayList<>();
            for (int i = 0; i < root.getRowCount(); i++) {
                List<Object> row = new ArrayList<>();
                for (String c : ResultArrow.COLUMNS) {
                    Object v = root.getVector(c).getObject(i);
                    row.add(v == null ? null : v.toString());
                }
                out.add(row);
            }
            return out;
        }
    }

    @Test
    void parquetRoundTripsEveryRowAcrossBatchesWithoutLeaking() throws Exception {
        List<ResultRow> rows = sampleRows(7);
        Path file = dir.resolve("out/results.parquet");
        try (RootAllocator allocator = new RootAllocator()) {
            assertEquals(7, ParquetOutput.write(file, rows, 3, allocator));
            assertEquals(0, allocator.getAllocatedMemory());
            assertEquals(expected(rows), readParquet(file, allocator));
            assertEquals(0, allocator.getAllocatedMemory());
        }
        try (Stream<Path> siblings = Files.list(file.getParent())) {
            assertEquals(List.of(file), siblings.toList(), "no staging files left beside the output");
        }
    }

    @Test
    void parquetWithNoRowsIsAnErrorAndLeavesNothingBehind() throws Exception {
        Path file = dir.resolve("empty.parquet");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ParquetOutput.write(file, List.of()));
        assertTrue(e.getMessage().startsWith(file + ": no rows to write"), e.getMessage());
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(List.of(), left.toList());
        }
    }

    @Test
    void parquetWithAShortLastBatchReleasesEveryBuffer() throws Exception {
        for (int rows : new int[] {1, 2, 5, 8}) {
            try (RootAllocator allocator = new RootAllocator()) {
                ParquetOutput.write(dir.resolve("short-" + rows + ".parquet"), sampleRows(rows), 3, allocator);
                assertEquals(0, allocator.getAllocatedMemory(), rows + " rows");
            }
        }
    }

    @Test
    void parquetReplacesAnExistingFile() throws Exception {
        Path file = dir.resolve("again.parquet");
        ParquetOutput.write(file, sampleRows(5));
        ResultFiles.write(file, sampleRows(2));
        try (RootAllocator allocator = new RootAllocator()) {
            assertEquals(2, readParquet(file, allocator).size());
        }
    }

    @Test
    void aFailureWhileProducingRowsReachesTheCallerAndLeavesNoFile() throws Exception {
        Path file = dir.resolve("broken.parquet");
        Iterable<ResultRow> rows = () -> IntStream.range(0, 10).mapToObj(i -> {
            if (i == 6) {
                throw new IllegalStateException("engine stopped at row 6");
            }
            return sampleRows(1).getFirst();
        }).iterator();
        try (RootAllocator allocator = new RootAllocator()) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> ParquetOutput.write(file, rows, 4, allocator));
            assertEquals("engine stopped at row 6", e.getMessage());
            assertEquals(0, allocator.getAllocatedMemory());
        }
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(List.of(), left.toList());
        }
    }

    @Test
    void jsonlHasTheSameFieldsAsParquet() throws IOException {
        List<ResultRow> rows = sampleRows(3);
        Path file = dir.resolve("results.jsonl");
        assertEquals(3, ResultFiles.write(file, rows));
        List<String> lines = Files.readAllLines(file);
        assertEquals(3, lines.size());
        ObjectMapper json = new ObjectMapper();
        JsonNode first = json.readTree(lines.get(0));
        List<String> names = new ArrayList<>();
        first.fieldNames().forEachRemaining(names::add);
        assertEquals(ResultArrow.COLUMNS, names);
        assertEquals("r0", first.get("id").asText());
        assertEquals("text 0", first.get("completion").asText());
        assertEquals("[0,1]", first.get("completion_token_ids").toString());
        assertEquals(2, first.get("prompt_tokens").asInt());
        assertEquals("length", first.get("finish_reason").asText());
        assertTrue(first.get("error").isNull());
        assertEquals(2.5, first.get("prefill_ms").asDouble(), 1e-12);
        assertEquals("[\"cpu(2 threads)\",\"csd0\"]", first.get("devices").toString());
        JsonNode failedRow = json.readTree(lines.get(1));
        assertTrue(failedRow.get("completion").isNull());
        assertTrue(failedRow.get("completion_token_ids").isNull());
        assertEquals("row 1: empty prompt", failedRow.get("error").asText());
        assertEquals("error", failedRow.get("finish_reason").asText());
        assertFalse(json.readTree(lines.get(2)).get("error").isTextual());
    }

    @Test
    void anUnknownExtensionIsAOneLineError() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ResultFiles.write(dir.resolve("out.csv"), sampleRows(1)));
        assertTrue(e.getMessage().contains("out.csv") && e.getMessage().contains(".parquet or .jsonl"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }
}
