package io.inf2.output;

import io.inf2.engine.GenerationResult;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.Float8Vector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.types.FloatingPointPrecision;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;

/**
 * The result table's Arrow form, shared by every front end: the Spark job wraps these vectors for
 * Spark, the CLI writes them to Parquet. Columns, in order: id, prompt, completion,
 * completion_token_ids, prompt_tokens, completion_tokens, finish_reason, error, prefill_ms,
 * decode_ms, executor, devices. On an error row, completion and completion_token_ids are null and
 * error says why; error is null on every other row.
 */
public final class ResultArrow {

    public static final String ID = "id";
    public static final String PROMPT = "prompt";
    public static final String COMPLETION = "completion";
    public static final String COMPLETION_TOKEN_IDS = "completion_token_ids";
    public static final String PROMPT_TOKENS = "prompt_tokens";
    public static final String COMPLETION_TOKENS = "completion_tokens";
    public static final String FINISH_REASON = "finish_reason";
    public static final String ERROR = "error";
    public static final String PREFILL_MS = "prefill_ms";
    public static final String DECODE_MS = "decode_ms";
    public static final String EXECUTOR = "executor";
    public static final String DEVICES = "devices";

    /** Column names in schema order. */
    public static final List<String> COLUMNS = List.of(ID, PROMPT, COMPLETION, COMPLETION_TOKEN_IDS, PROMPT_TOKENS,
            COMPLETION_TOKENS, FINISH_REASON, ERROR, PREFILL_MS, DECODE_MS, EXECUTOR, DEVICES);

    public static final Schema SCHEMA = new Schema(List.of(
            string(ID, false),
            string(PROMPT, true),
            string(COMPLETION, true),
            list(COMPLETION_TOKEN_IDS, true, new ArrowType.Int(32, true)),
            new Field(PROMPT_TOKENS, FieldType.notNullable(new ArrowType.Int(32, true)), null),
            new Field(COMPLETION_TOKENS, FieldType.notNullable(new ArrowType.Int(32, true)), null),
            string(FINISH_REASON, false),
            string(ERROR, true),
            new Field(PREFILL_MS, FieldType.notNullable(new ArrowType.FloatingPoint(FloatingPointPrecision.DOUBLE)), null),
            new Field(DECODE_MS, FieldType.notNullable(new ArrowType.FloatingPoint(FloatingPointPrecision.DOUBLE)), null),
            string(EXECUTOR, true),
            list(DEVICES, false, ArrowType.Utf8.INSTANCE)));

    private ResultArrow() {
    }

    /** A new root holding {@code rows}; the caller closes it (before closing {@code allocator}). */
    public static VectorSchemaRoot toRoot(List<ResultRow> rows, BufferAllocator allocator) {
        VectorSchemaRoot root = VectorSchemaRoot.create(SCHEMA, allocator);
        try {
            fill(root, rows);
            return root;
        } catch (RuntimeException e) {
            root.close();
            throw e;
        }
    }

    /** Replaces the contents of {@code root} (which must have {@link #SCHEMA}) with {@code rows}. */
    public static void fill(VectorSchemaRoot root, List<ResultRow> rows) {
        if (!root.getSchema().equals(SCHEMA)) {
            throw new IllegalArgumentException("root does not have the result schema: " + root.getSchema());
        }
        root.clear();
        root.allocateNew();
        VarCharVector id = varChar(root, ID);
        VarCharVector prompt = varChar(root, PROMPT);
        VarCharVector completion = varChar(root, COMPLETION);
        ListVector tokenIds = (ListVector) root.getVector(COMPLETION_TOKEN_IDS);
        IntVector tokenIdValues = (IntVector) tokenIds.getDataVector();
        IntVector promptTokens = (IntVector) root.getVector(PROMPT_TOKENS);
        IntVector completionTokens = (IntVector) root.getVector(COMPLETION_TOKENS);
        VarCharVector finishReason = varChar(root, FINISH_REASON);
        VarCharVector error = varChar(root, ERROR);
        Float8Vector prefill = (Float8Vector) root.getVector(PREFILL_MS);
        Float8Vector decode = (Float8Vector) root.getVector(DECODE_MS);
        VarCharVector executor = varChar(root, EXECUTOR);
        ListVector devices = (ListVector) root.getVector(DEVICES);
        VarCharVector deviceValues = (VarCharVector) devices.getDataVector();

        for (int i = 0; i < rows.size(); i++) {
            ResultRow row = rows.get(i);
            GenerationResult r = row.result();
            setString(id, i, r.id());
            setString(prompt, i, row.prompt());
            if (r.isError()) {
                completion.setNull(i);
                tokenIds.setNull(i);
                error.setSafe(i, utf8(row.error()));
            } else {
                setString(completion, i, r.completion());
                int start = tokenIds.startNewValue(i);
                int[] ids = r.completionTokens();
                for (int j = 0; j < ids.length; j++) {
                    tokenIdValues.setSafe(start + j, ids[j]);
                }
                tokenIds.endValue(i, ids.length);
                error.setNull(i);
            }
            promptTokens.setSafe(i, r.promptTokens().length);
            completionTokens.setSafe(i, r.completionTokens().length);
            finishReason.setSafe(i, utf8(r.finishReason().label()));
            prefill.setSafe(i, ResultRow.millis(r.prefillNanos()));
            decode.setSafe(i, ResultRow.millis(r.decodeNanos()));
            setString(executor, i, row.executor());
            int start = devices.startNewValue(i);
            List<String> names = row.devices();
            for (int j = 0; j < names.size(); j++) {
                deviceValues.setSafe(start + j, utf8(names.get(j)));
            }
            devices.endValue(i, names.size());
        }
        root.setRowCount(rows.size());
    }

    private static Field string(String name, boolean nullable) {
        return new Field(name, new FieldType(nullable, ArrowType.Utf8.INSTANCE, null), null);
    }

    private static Field list(String name, boolean nullable, ArrowType element) {
        Field item = new Field("element", FieldType.notNullable(element), null);
        return new Field(name, new FieldType(nullable, ArrowType.List.INSTANCE, null), List.of(item));
    }

    private static VarCharVector varChar(VectorSchemaRoot root, String name) {
        FieldVector v = root.getVector(name);
        return (VarCharVector) v;
    }

    private static void setString(VarCharVector v, int i, String s) {
        if (s == null) {
            v.setNull(i);
        } else {
            v.setSafe(i, utf8(s));
        }
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
