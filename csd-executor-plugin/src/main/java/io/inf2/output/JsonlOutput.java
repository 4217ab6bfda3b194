package io.inf2.output;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.util.MinimalPrettyPrinter;
import io.inf2.engine.GenerationResult;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Writes results as JSON Lines, one object per row with the fields (and names) of
 * {@link ResultArrow#SCHEMA}. Like {@link ParquetOutput}, the file appears complete or not at all.
 */
public final class JsonlOutput {

    private static final JsonFactory JSON = new JsonFactory();

    private JsonlOutput() {
    }

    /** Writes {@code rows} to {@code file}, replacing it; returns the number of rows written. */
    public static long write(Path file, Iterable<ResultRow> rows) {
        Path target = file.toAbsolutePath();
        Path staging = null;
        try {
            Files.createDirectories(target.getParent());
            staging = Files.createTempFile(target.getParent(), "." + target.getFileName() + ".writing-", "");
            long count;
            try (OutputStream out = Files.newOutputStream(staging)) {
                count = write(out, rows);
            }
            try {
                Files.move(staging, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(staging, target, StandardCopyOption.REPLACE_EXISTING);
            }
            staging = null;
            return count;
        } catch (IOException e) {
            throw new UncheckedIOException(target + ": cannot write JSON Lines (" + e.getMessage() + ")", e);
        } finally {
            if (staging != null) {
                staging.toFile().delete();
            }
        }
    }

    /** Writes {@code rows} to {@code out} (left open), one line each; returns the number of rows. */
    public static long write(OutputStream out, Iterable<ResultRow> rows) throws IOException {
        long count = 0;
        try (JsonGenerator g = JSON.createGenerator(out, JsonEncoding.UTF8)) {
            g.disable(JsonGenerator.Feature.AUTO_CLOSE_TARGET);
            g.setPrettyPrinter(new MinimalPrettyPrinter("\n"));
            for (ResultRow row : rows) {
                writeRow(g, row);
                count++;
            }
            if (count > 0) {
                g.writeRaw('\n');
            }
        }
        return count;
    }

    private static void writeRow(JsonGenerator g, ResultRow row) throws IOException {
        GenerationResult r = row.result();
        g.writeStartObject();
        g.writeStringField(ResultArrow.ID, r.id());
        g.writeStringField(ResultArrow.PROMPT, row.prompt());
        if (r.isError()) {
            g.writeNullField(ResultArrow.COMPLETION);
            g.writeNullField(ResultArrow.COMPLETION_TOKEN_IDS);
        } else {
            g.writeStringField(ResultArrow.COMPLETION, r.completion());
            g.writeFieldName(ResultArrow.COMPLETION_TOKEN_IDS);
            int[] ids = r.completionTokens();
            g.writeArray(ids, 0, ids.length);
        }
        g.writeNumberField(ResultArrow.PROMPT_TOKENS, r.promptTokens().length);
        g.writeNumberField(ResultArrow.COMPLETION_TOKENS, r.completionTokens().length);
        g.writeStringField(ResultArrow.FINISH_REASON, r.finishReason().label());
        g.writeStringField(ResultArrow.ERROR, row.error());
        g.writeNumberField(ResultArrow.PREFILL_MS, ResultRow.millis(r.prefillNanos()));
        g.writeNumberField(ResultArrow.DECODE_MS, ResultRow.millis(r.decodeNanos()));
        g.writeStringField(ResultArrow.EXECUTOR, row.executor());
        g.writeArrayFieldStart(ResultArrow.DEVICES);
        for (String d : row.devices()) {
            g.writeString(d);
        }
        g.writeEndArray();
        g.writeEndObject();
    }
}
