package io.inf2.engine;

/** Told about progress while the engine works; called from the generating thread. */
@FunctionalInterface
public interface ProgressListener {
    ProgressListener NONE = (done, total, tokens, elapsedNanos) -> { };

    /**
     * @param sequencesDone sequences finished in this generate call
     * @param sequencesTotal requests in this generate call
     * @param tokensGenerated tokens generated so far in this call
     */
    void progress(int sequencesDone, int sequencesTotal, long tokensGenerated, long elapsedNanos);
}
