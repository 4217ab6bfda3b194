package io.inf2.engine;

/** Why a sequence stopped. */
public enum FinishReason {
    /** The model produced an end-of-sequence token. */
    EOS,
    /** A requested stop token id was produced. */
    STOP_TOKEN,
    /** max_new_tokens were generated. */
    LENGTH,
    /** The context window is full. */
    CONTEXT_FULL,
    /** The request could not be served; the result's error says why. */
    ERROR;

    public String label() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
