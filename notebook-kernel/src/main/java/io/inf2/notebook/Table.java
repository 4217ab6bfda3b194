package io.inf2.notebook;

import java.math.BigDecimal;
import java.math.MathContext;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.StringJoiner;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.StructField;
import org.dflib.jjava.jupyter.kernel.display.DisplayDataRenderable;
import org.dflib.jjava.jupyter.kernel.display.RenderContext;
import org.dflib.jjava.jupyter.kernel.display.mime.MIMEType;

/**
 * The first rows of a table, shown as HTML in notebooks and as aligned text elsewhere. Made from a
 * Spark Dataset (which runs a job for the first rows only), an Arrow VectorSchemaRoot, or plain
 * lists. Values are formatted once, when the table is made; long values are cut.
 */
public final class Table implements DisplayDataRenderable {
    /** Rows shown when none are asked for. */
    public static final int DEFAULT_ROWS = 20;
    /** Longest value shown in HTML, in characters. */
    static final int MAX_HTML_CHARS = 300;
    /** Widest column of the text form, in characters. */
    static final int MAX_TEXT_CHARS = 40;

    private final List<String> columns;
    private final List<String> types;
    private final List<List<String>> rows;
    private final String footer;

    private Table(List<String> columns, List<String> types, List<List<String>> rows, String footer) {
        this.columns = List.copyOf(columns);
        this.types = types == null ? null : List.copyOf(types);
        this.rows = rows.stream().map(List::copyOf).toList();
        this.footer = footer;
    }

    /** The first {@link #DEFAULT_ROWS} rows of a Dataset. */
    public static Table of(Dataset<?> data) {
        return of(data, DEFAULT_ROWS);
    }

    /** The first {@code maxRows} rows of a Dataset; runs a Spark job that reads no more than it needs. */
    public static Table of(Dataset<?> data, int maxRows) {
        checkMaxRows(maxRows);
        Dataset<Row> frame = data.toDF();
        List<String> names = new ArrayList<>();
        List<String> typeNames = new ArrayList<>();
        for (StructField f : frame.schema().fields()) {
            names.add(f.name());
            typeNames.add(f.dataType().simpleString());
        }
        List<Row> taken = frame.takeAsList(maxRows + 1);
        List<List<String>> rows = new ArrayList<>();
        for (Row row : taken.subList(0, Math.min(maxRows, taken.size()))) {
            List<String> cells = new ArrayList<>(row.size());
            for (int i = 0; i < row.size(); i++) {
                cells.add(format(row.get(i)));
            }
            rows.add(cells);
        }
        String footer = taken.size() > maxRows ? "first " + maxRows + " rows" : rows(taken.size());
        return new Table(names, typeNames, rows, footer);
    }

    /** The first {@link #DEFAULT_ROWS} rows of an Arrow table. */
    public static Table of(VectorSchemaRoot root) {
        return of(root, DEFAULT_ROWS);
    }

    /** The first {@code maxRows} rows of an Arrow table. */
    public static Table of(VectorSchemaRoot root, int maxRows) {
        checkMaxRows(maxRows);
        List<String> names = new ArrayList<>();
        List<String> typeNames = new ArrayList<>();
        for (Field f : root.getSchema().getFields()) {
            names.add(f.getName());
            typeNames.add(f.getType().toString());
        }
        int shown = Math.min(maxRows, root.getRowCount());
        List<List<String>> rows = new ArrayList<>();
        for (int r = 0; r < shown; r++) {
            List<String> cells = new ArrayList<>();
            for (FieldVector v : root.getFieldVectors()) {
                cells.add(format(v.isNull(r) ? null : v.getObject(r)));
            }
            rows.add(cells);
        }
        String footer = shown < root.getRowCount()
                ? String.format(Locale.ROOT, "first %d of %,d rows", shown, root.getRowCount())
                : rows(shown);
        return new Table(names, typeNames, rows, footer);
    }

    /** A table of the given rows, each as long as {@code columns}. */
    public static Table of(List<String> columns, List<? extends List<?>> rows) {
        List<List<String>> cells = new ArrayList<>();
        for (int r = 0; r < rows.size(); r++) {
            List<?> row = rows.get(r);
            if (row.size() != columns.size()) {
                throw new IllegalArgumentException("row " + r + " has " + row.size() + " values for " + columns.size()
                        + " columns " + columns);
            }
            cells.add(row.stream().map(Table::format).toList());
        }
        return new Table(columns, null, cells, "");
    }

    private static void checkMaxRows(int maxRows) {
        if (maxRows < 1) {
            throw new IllegalArgumentException("a table shows at least 1 row, not " + maxRows);
        }
    }

    private static String rows(int n) {
        return n == 1 ? "1 row" : String.format(Locale.ROOT, "%,d rows", n);
    }

    public List<String> columns() {
        return columns;
    }

    /** The shown rows, each value as formatted for display. */
    public List<List<String>> rows() {
        return rows;
    }

    /** How many rows are shown of how many ("first 20 rows", "3 rows"). */
    public String footer() {
        return footer;
    }

    // ---- values

    /**
     * One value as text: null as "null", Spark arrays and maps (Scala collections), Java
     * collections and Spark structs element by element, numbers to six significant digits, bytes
     * as hex.
     */
    static String format(Object value) {
        return switch (value) {
            case null -> "null";
            case String s -> s;
            case Double d -> decimal(d);
            case Float f -> decimal(f.doubleValue());
            case byte[] bytes -> "0x" + HexFormat.of().formatHex(bytes, 0, Math.min(bytes.length, 32))
                    + (bytes.length > 32 ? "…" : "");
            case Row row -> {
                StringJoiner j = new StringJoiner(", ", "{", "}");
                for (int i = 0; i < row.size(); i++) {
                    j.add(format(row.get(i)));
                }
                yield j.toString();
            }
            case scala.collection.Map<?, ?> m -> {
                StringJoiner j = new StringJoiner(", ", "{", "}");
                scala.collection.Iterator<? extends scala.Tuple2<?, ?>> it = m.iterator();
                while (it.hasNext()) {
                    scala.Tuple2<?, ?> e = it.next();
                    j.add(format(e._1()) + ": " + format(e._2()));
                }
                yield j.toString();
            }
            case scala.collection.Iterable<?> seq -> {
                StringJoiner j = new StringJoiner(", ", "[", "]");
                scala.collection.Iterator<?> it = seq.iterator();
                while (it.hasNext()) {
                    j.add(format(it.next()));
                }
                yield j.toString();
            }
            case Map<?, ?> m -> {
                StringJoiner j = new StringJoiner(", ", "{", "}");
                m.forEach((k, v) -> j.add(format(k) + ": " + format(v)));
                yield j.toString();
            }
            case Collection<?> c -> {
                StringJoiner j = new StringJoiner(", ", "[", "]");
                for (Iterator<?> it = c.iterator(); it.hasNext(); ) {
                    j.add(format(it.next()));
                }
                yield j.toString();
            }
            case Object[] array -> format(Arrays.asList(array));
            default -> value.toString();
        };
    }

    private static String decimal(double d) {
        if (!Double.isFinite(d)) {
            return Double.toString(d);
        }
        return new BigDecimal(d).round(new MathContext(6)).stripTrailingZeros().toPlainString();
    }

    private static String cut(String s, int max) {
        return s.length() <= max ? s : s.substring(0, max - 1) + "…";
    }

    // ---- forms

    /** An HTML table with the column types under the names and the footer below. */
    public String html() {
        StringBuilder h = new StringBuilder("<div class=\"inf2-table\"><table>\n<thead><tr>");
        for (int c = 0; c < columns.size(); c++) {
            h.append("<th style=\"text-align:left\">").append(escape(columns.get(c)));
            if (types != null) {
                h.append("<br><small style=\"font-weight:normal\">").append(escape(types.get(c))).append("</small>");
            }
            h.append("</th>");
        }
        h.append("</tr></thead>\n<tbody>\n");
        for (List<String> row : rows) {
            h.append("<tr>");
            for (String cell : row) {
                h.append("<td style=\"text-align:left;white-space:pre-wrap\">")
                        .append(escape(cut(cell, MAX_HTML_CHARS))).append("</td>");
            }
            h.append("</tr>\n");
        }
        h.append("</tbody></table>");
        if (!footer.isEmpty()) {
            h.append("\n<p><small>").append(escape(footer)).append("</small></p>");
        }
        return h.append("</div>").toString();
    }

    /** Aligned columns separated by " | ", line breaks in values shown as "⏎". */
    public String text() {
        List<List<String>> lines = new ArrayList<>();
        lines.add(columns);
        for (List<String> row : rows) {
            lines.add(row.stream().map(v -> cut(v.replace("\r\n", "⏎").replace('\n', '⏎'), MAX_TEXT_CHARS)).toList());
        }
        int[] widths = new int[columns.size()];
        for (List<String> line : lines) {
            for (int c = 0; c < line.size(); c++) {
                widths[c] = Math.max(widths[c], line.get(c).codePointCount(0, line.get(c).length()));
            }
        }
        StringBuilder t = new StringBuilder();
        for (int l = 0; l < lines.size(); l++) {
            List<String> line = lines.get(l);
            StringJoiner j = new StringJoiner(" | ");
            for (int c = 0; c < line.size(); c++) {
                String v = line.get(c);
                j.add(v + " ".repeat(widths[c] - v.codePointCount(0, v.length())));
            }
            t.append(j.toString().stripTrailing()).append('\n');
            if (l == 0) {
                StringJoiner rule = new StringJoiner("-+-");
                for (int w : widths) {
                    rule.add("-".repeat(w));
                }
                t.append(rule).append('\n');
            }
        }
        if (!footer.isEmpty()) {
            t.append('(').append(footer).append(")\n");
        }
        return t.toString();
    }

    static String escape(String s) {
        StringBuilder out = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char ch = s.charAt(i);
            switch (ch) {
                case '<' -> out.append("&lt;");
                case '>' -> out.append("&gt;");
                case '&' -> out.append("&amp;");
                case '"' -> out.append("&quot;");
                case '\'' -> out.append("&#39;");
                default -> out.append(ch);
            }
        }
        return out.toString();
    }

    @Override
    public Set<MIMEType> getSupportedRenderTypes() {
        return Set.of(MIMEType.TEXT_HTML, MIMEType.TEXT_PLAIN);
    }

    @Override
    public Set<MIMEType> getPreferredRenderTypes() {
        return Set.of(MIMEType.TEXT_HTML, MIMEType.TEXT_PLAIN);
    }

    @Override
    public void render(RenderContext context) {
        context.renderIfRequested(MIMEType.TEXT_HTML, this::html);
        context.renderIfRequested(MIMEType.TEXT_PLAIN, this::text);
    }

    @Override
    public String toString() {
        return text();
    }
}
