package io.inf2.engine;

import io.inf2.model.ModelConfig;
import io.inf2.model.tokenizer.Tokenizer;
import java.util.List;

/**
 * The engine's public face: open a model with options, generate for batches of requests, close.
 * Thread-safe for concurrent {@link #generate} calls (each runs its own engine batches).
 */
public final class InferenceEngine implements AutoCloseable {

    private InferenceEngine() {
    }

    public static InferenceEngine open(EngineOptions options) {
        throw new UnsupportedOperationException("being written");
    }

    /** Results in request order; a request that cannot be served gets an ERROR result, never an exception. */
    public List<GenerationResult> generate(List<GenerationRequest> requests, ProgressListener progress) {
        throw new UnsupportedOperationException("being written");
    }

    public ModelConfig model() {
        throw new UnsupportedOperationException("being written");
    }

    public Tokenizer tokenizer() {
        throw new UnsupportedOperationException("being written");
    }

    public EngineStatistics statistics() {
        throw new UnsupportedOperationException("being written");
    }

    /** Backend, placement and devices in one line. */
    public String describe() {
        throw new UnsupportedOperationException("being written");
    }

    @Override
    public void close() {
    }
}
