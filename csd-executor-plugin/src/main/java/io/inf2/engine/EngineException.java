package io.inf2.engine;

/**
 * A failure of the engine or a device while serving a batch (an I/O error on a CSD, a GPU error),
 * as opposed to a bad request, which becomes an ERROR result. Callers should treat the batch as not
 * done: a Spark task fails and is retried.
 */
public class EngineException extends RuntimeException {
    public EngineException(String message, Throwable cause) {
        super(message, cause);
    }
}
