package io.inf2.spark;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One progress line per executor (not per task) every interval: rows done, errors, tokens and the
 * token rate since the previous line. All tasks of the executor JVM report here.
 */
final class ExecutorProgress {
    private static final Logger LOG = LoggerFactory.getLogger(ExecutorProgress.class);
    private static final ExecutorProgress INSTANCE = new ExecutorProgress();

    private long rows;
    private long errors;
    private long tokens;
    private long lastLogNanos = System.nanoTime();
    private long tokensAtLastLog;

    private ExecutorProgress() {
    }

    static ExecutorProgress get() {
        return INSTANCE;
    }

    /**
     * Adds finished rows, error rows and generated tokens; logs when {@code intervalSeconds} (0: never)
     * passed since the last line.
     */
    synchronized void update(String executorId, int rowCount, int errorCount, long tokenCount, int intervalSeconds) {
        rows += rowCount;
        errors += errorCount;
        tokens += tokenCount;
        long now = System.nanoTime();
        double seconds = (now - lastLogNanos) / 1e9;
        if (intervalSeconds > 0 && seconds >= intervalSeconds) {
            LOG.info("INF2 executor {}: {} rows done ({} errors), {} tokens generated, {} tokens/s over the last {} s",
                    executorId, rows, errors, tokens, String.format("%.1f", (tokens - tokensAtLastLog) / seconds),
                    String.format("%.0f", seconds));
            lastLogNanos = now;
            tokensAtLastLog = tokens;
        }
    }
}
