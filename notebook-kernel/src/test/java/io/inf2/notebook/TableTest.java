package io.inf2.notebook;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.engine.FinishReason;
import io.inf2.engine.GenerationResult;
import io.inf2.output.ResultArrow;
import io.inf2.output.ResultRow;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.junit.jupiter.api.Test;

class TableTest {

    @Test
    void valuesAreFormattedForReading() {
        assertEquals("null", Table.format(null));
        assertEquals("0.333333", Table.format(1.0 / 3));
        assertEquals("1500", Table.format(1500.0));
        assertEquals("NaN", Table.format(Double.NaN));
        assertEquals("[1, null, 3]", Table.format(Arrays.asList(1, null, 3)));
        assertEquals("{a: 1}", Table.format(java.util.Map.of("a", 1)));
        assertEquals("0x00ff", Table.format(new byte[] {0, (byte) 0xff}));
        assertEquals("[x, y]", Table.format(scala.jdk.javaapi.CollectionConverters.asScala(List.of("x", "y")).toSeq()));
        assertEquals("[7, 8]", Table.format(new Object[] {7, 8}));
    }

    @Test
    void htmlEscapesAndCutsLongValues() {
        String longText = "x".repeat(Table.MAX_HTML_CHARS + 50);
        Table t = Table.of(List.of("name", "note"), List.of(List.of("<b>&\"'", longText)));
        String html = t.html();
        assertTrue(html.contains("<td style=\"text-align:left;white-space:pre-wrap\">&lt;b&gt;&amp;&quot;&#39;</td>"), html);
        assertTrue(html.contains("x".repeat(Table.MAX_HTML_CHARS - 1) + "…</td>"), "long values are cut with an ellipsis");
        assertTrue(!html.contains("x".repeat(Table.MAX_HTML_CHARS)), "and no longer than the limit");
    }

    @Test
    void textAlignsColumnsAndShowsLineBreaks() {
        Table t = Table.of(List.of("id", "completion"), List.of(List.of("a", "one\ntwo"), List.of("bbb", "x")));
        assertEquals("""
                id  | completion
                ----+-----------
                a   | one⏎two
                bbb | x
                """, t.text());
    }

    @Test
    void rowsMustMatchTheColumns() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Table.of(List.of("a", "b"), List.of(List.of(1))));
        assertEquals("row 0 has 1 values for 2 columns [a, b]", e.getMessage());
    }

    @Test
    void anArrowTableShowsItsFirstRowsWithTypesAndCount() {
        List<ResultRow> rows = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            GenerationResult r = new GenerationResult("id" + i, new int[] {1, 2}, new int[] {3, 4, i}, "text " + i,
                    FinishReason.LENGTH, null, 1_000_000, 2_500_000, List.of("cpu", "csd0"));
            rows.add(ResultRow.of("prompt " + i, r, "driver"));
        }
        try (BufferAllocator allocator = new RootAllocator();
             VectorSchemaRoot root = ResultArrow.toRoot(rows, allocator)) {
            Table t = Table.of(root, 3);
            assertEquals(ResultArrow.COLUMNS, t.columns());
            assertEquals(3, t.rows().size());
            assertEquals("first 3 of 5 rows", t.footer());
            List<String> first = t.rows().get(0);
            assertEquals("id0", first.get(ResultArrow.COLUMNS.indexOf(ResultArrow.ID)));
            assertEquals("[3, 4, 0]", first.get(ResultArrow.COLUMNS.indexOf(ResultArrow.COMPLETION_TOKEN_IDS)));
            assertEquals("null", first.get(ResultArrow.COLUMNS.indexOf(ResultArrow.ERROR)));
            assertEquals("2.5", first.get(ResultArrow.COLUMNS.indexOf(ResultArrow.DECODE_MS)));
            assertTrue(t.html().contains("<small style=\"font-weight:normal\">Utf8</small>"), t.html());
            assertEquals("5 rows", Table.of(root).footer());
        }
    }
}
