package io.inf2.engine;

import java.util.List;

/**
 * The outcome of one request. On error, {@code finishReason} is ERROR, {@code error} says why in one
 * line, and the token arrays are empty.
 *
 * @param completionTokens generated ids (a stop or EOS token that ended the sequence included)
 * @param completion       decoded text of the completion, special tokens skipped
 * @param prefillNanos     wall time of the prefill of this request's engine batch
 * @param decodeNanos      wall time of the decode steps this request took part in
 * @param servedBy         backend and devices that served the request, e.g. "cpu(2 threads)", "csd0"
 */
public record GenerationResult(String id, int[] promptTokens, int[] completionTokens, String completion,
                               FinishReason finishReason, String error, long prefillNanos, long decodeNanos,
                               List<String> servedBy) {

    public GenerationResult {
        servedBy = List.copyOf(servedBy);
    }

    public static GenerationResult failed(String id, String error) {
        return new GenerationResult(id, new int[0], new int[0], "", FinishReason.ERROR, error, 0, 0, List.of());
    }

    public boolean isError() {
        return finishReason == FinishReason.ERROR;
    }
}
