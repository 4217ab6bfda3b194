package io.inf2.engine;

import java.util.Objects;

/**
 * One sequence to complete: a prompt as text (tokenized by the engine, with the model's BOS
 * convention) or as token ids (used as given), and its sampling settings.
 */
public record GenerationRequest(String id, String prompt, int[] promptTokens, SamplingParams params) {

    public GenerationRequest {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(params, "params");
        if ((prompt == null) == (promptTokens == null)) {
            throw new IllegalArgumentException("request " + id + ": give either a prompt or prompt tokens");
        }
    }

    public static GenerationRequest ofText(String id, String prompt, SamplingParams params) {
        return new GenerationRequest(id, prompt, null, params);
    }

    public static GenerationRequest ofTokens(String id, int[] tokens, SamplingParams params) {
        return new GenerationRequest(id, null, tokens.clone(), params);
    }
}
