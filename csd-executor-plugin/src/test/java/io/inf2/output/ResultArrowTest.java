package io.inf2.output;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.engine.FinishReason;
import io.inf2.engine.GenerationResult;
import java.util.List;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.Float8Vector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.types.pojo.Schema;
import org.apache.arrow.vector.util.Text;
import org.junit.jupiter.api.Test;

class ResultArrowTest {

    static ResultRow served(String id, String prompt, int[] promptTokens, int[] completion, String text) {
        GenerationResult r = new GenerationResult(id, promptTokens, completion, text, FinishReason.LENGTH, null,
                2_500_000, 7_000_000, List.of("cpu(2 threads)", "csd0"));
        return ResultRow.of(prompt, r, "exec-1");
    }

    static ResultRow failed(String id, String prompt, String why) {
        return new ResultRow(prompt, GenerationResult.failed(id, why), "exec-2", List.of());
    }

    @Test
    void schemaHasTheDocumentedColumnsInOrder() {
        Schema s = ResultArrow.SCHEMA;
        assertEquals(ResultArrow.COLUMNS, s.getFields().stream().map(f -> f.getName()).toList());
        assertEquals("List", s.findField(ResultArrow.COMPLETION_TOKEN_IDS).getType().getTypeID().name());
        assertEquals("Int", s.findField(ResultArrow.COMPLETION_TOKEN_IDS).getChildren().getFirst().getType().getTypeID().name());
        assertEquals("Utf8", s.findField(ResultArrow.DEVICES).getChildren().getFirst().getType().getTypeID().name());
        assertTrue(s.findField(ResultArrow.ERROR).isNullable());
        assertTrue(!s.findField(ResultArrow.ID).isNullable());
    }

    @Test
    void servedAndFailedRowsFillEveryColumn() {
        List<ResultRow> rows = List.of(
                served("a", "Hello", new int[] {2, 31414}, new int[] {5, 6, 7}, " world"),
                failed("b", null, "row 2: prompt is null"),
                served("c", "Grüße ✓", new int[] {2}, new int[0], ""));
        try (RootAllocator allocator = new RootAllocator()) {
            try (VectorSchemaRoot root = ResultArrow.toRoot(rows, allocator)) {
                assertEquals(3, root.getRowCount());
                VarCharVector id = (VarCharVector) root.getVector(ResultArrow.ID);
                VarCharVector prompt = (VarCharVector) root.getVector(ResultArrow.PROMPT);
                VarCharVector completion = (VarCharVector) root.getVector(ResultArrow.COMPLETION);
                ListVector tokenIds = (ListVector) root.getVector(ResultArrow.COMPLETION_TOKEN_IDS);
                IntVector promptTokens = (IntVector) root.getVector(ResultArrow.PROMPT_TOKENS);
                IntVector completionTokens = (IntVector) root.getVector(ResultArrow.COMPLETION_TOKENS);
                VarCharVector finish = (VarCharVector) root.getVector(ResultArrow.FINISH_REASON);
                VarCharVector error = (VarCharVector) root.getVector(ResultArrow.ERROR);
                Float8Vector prefill = (Float8Vector) root.getVector(ResultArrow.PREFILL_MS);
                Float8Vector decode = (Float8Vector) root.getVector(ResultArrow.DECODE_MS);
                VarCharVector executor = (VarCharVector) root.getVector(ResultArrow.EXECUTOR);
                ListVector devices = (ListVector) root.getVector(ResultArrow.DEVICES);

                assertEquals("a", id.getObject(0).toString());
                assertEquals("Hello", prompt.getObject(0).toString());
                assertEquals(" world", completion.getObject(0).toString());
                assertEquals(List.of(5, 6, 7), tokenIds.getObject(0));
                assertEquals(2, promptTokens.get(0));
                assertEquals(3, completionTokens.get(0));
                assertEquals("length", finish.getObject(0).toString());
                assertTrue(error.isNull(0));
                assertEquals(2.5, prefill.get(0), 1e-12);
                assertEquals(7.0, decode.get(0), 1e-12);
                assertEquals("exec-1", executor.getObject(0).toString());
                assertEquals(List.of(new Text("cpu(2 threads)"), new Text("csd0")), devices.getObject(0));

                assertEquals("b", id.getObject(1).toString());
                assertTrue(prompt.isNull(1));
                assertTrue(completion.isNull(1));
                assertTrue(tokenIds.isNull(1));
                assertEquals(0, completionTokens.get(1));
                assertEquals("error", finish.getObject(1).toString());
                assertEquals("row 2: prompt is null", error.getObject(1).toString());
                assertEquals(List.of(), devices.getObject(1));

                assertEquals("Grüße ✓", prompt.getObject(2).toString());
                assertEquals("", completion.getObject(2).toString());
                assertEquals(List.of(), tokenIds.getObject(2));
            }
            assertEquals(0, allocator.getAllocatedMemory());
        }
    }

    @Test
    void refillingARootReplacesItsRows() {
        try (RootAllocator allocator = new RootAllocator()) {
            try (VectorSchemaRoot root = VectorSchemaRoot.create(ResultArrow.SCHEMA, allocator)) {
                ResultArrow.fill(root, List.of(served("a", "p", new int[] {1}, new int[] {1, 2}, "x"),
                        served("b", "q", new int[] {1}, new int[] {3}, "y")));
                ResultArrow.fill(root, List.of(failed("c", "r", "too long")));
                assertEquals(1, root.getRowCount());
                assertEquals("c", root.getVector(ResultArrow.ID).getObject(0).toString());
                assertTrue(root.getVector(ResultArrow.COMPLETION_TOKEN_IDS).isNull(0));
            }
            assertEquals(0, allocator.getAllocatedMemory());
        }
    }

    @Test
    void aRootOfAnotherSchemaIsRefused() {
        try (RootAllocator allocator = new RootAllocator();
             VectorSchemaRoot root = VectorSchemaRoot.create(new Schema(List.of()), allocator)) {
            assertThrows(IllegalArgumentException.class, () -> ResultArrow.fill(root, List.of()));
        }
    }
}
