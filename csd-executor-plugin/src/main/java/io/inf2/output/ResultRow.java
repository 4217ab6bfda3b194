package io.inf2.output;

import io.inf2.engine.GenerationResult;
import java.util.List;
import java.util.Objects;

/**
 * One output row: an engine result together with what the engine does not know about it.
 *
 * @param prompt   the prompt as given to the engine (after chat-template rendering), or null when the
 *                 input row had none
 * @param executor where it ran: a Spark executor id, or a name the standalone CLI picks
 * @param devices  devices that served it (empty when it never reached the engine)
 */
public record ResultRow(String prompt, GenerationResult result, String executor, List<String> devices) {

    public ResultRow {
        Objects.requireNonNull(result, "result");
        devices = List.copyOf(devices);
    }

    /** A row whose devices are the ones the engine reports for the result. */
    public static ResultRow of(String prompt, GenerationResult result, String executor) {
        return new ResultRow(prompt, result, executor, result.servedBy());
    }

    public String id() {
        return result.id();
    }

    public boolean isError() {
        return result.isError();
    }

    /** The error column's value: why the row failed, or null for a served row. */
    public String error() {
        if (!result.isError()) {
            return null;
        }
        return result.error() == null || result.error().isBlank() ? "the engine gave no reason" : result.error();
    }

    /** Milliseconds, the unit of the prefill_ms and decode_ms columns. */
    static double millis(long nanos) {
        return nanos / 1e6;
    }
}
