package io.inf2.plugin;

import io.inf2.engine.InferenceEngine;
import io.inf2.engine.ProgressListener;
import java.lang.System.Logger.Level;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A task's turn on its executor's shared engine: holds one of the executor's generation permits
 * until closed. The engine stays open after the lease closes; the executor closes it at shutdown.
 */
public final class EngineLease implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(EngineLease.class.getName());

    private final Inf2ExecutorRuntime runtime;
    private final InferenceEngine engine;
    private final long progressIntervalNanos;
    private final AtomicBoolean released = new AtomicBoolean();

    EngineLease(Inf2ExecutorRuntime runtime, InferenceEngine engine, long progressIntervalNanos) {
        this.runtime = runtime;
        this.engine = engine;
        this.progressIntervalNanos = progressIntervalNanos;
    }

    /** The executor's engine; usable until this lease is closed. */
    public InferenceEngine engine() {
        if (released.get()) {
            throw new IllegalStateException("executor " + runtime.executorId() + ": engine lease used after close");
        }
        return engine;
    }

    /**
     * A listener that logs one line about {@code what} (e.g. "stage 2 partition 7") at most every
     * spark.inf2.progressIntervalSeconds and once when the last sequence finishes; silent when the
     * interval is 0.
     */
    public ProgressListener progressListener(String what) {
        if (progressIntervalNanos == 0) {
            return ProgressListener.NONE;
        }
        String executorId = runtime.executorId();
        return new ProgressListener() {
            private long lastLoggedNanos;

            @Override
            public void progress(int sequencesDone, int sequencesTotal, long tokensGenerated, long elapsedNanos) {
                boolean finished = sequencesDone == sequencesTotal;
                if (!finished && elapsedNanos - lastLoggedNanos < progressIntervalNanos) {
                    return;
                }
                lastLoggedNanos = elapsedNanos;
                double seconds = elapsedNanos / 1e9;
                LOG.log(Level.INFO, "executor {0}, {1}: {2}/{3} sequences, {4} tokens in {5} s ({6} tokens/s)",
                        executorId, what, sequencesDone, sequencesTotal, tokensGenerated, String.format("%.1f", seconds),
                        String.format("%.1f", seconds > 0 ? tokensGenerated / seconds : 0));
            }
        };
    }

    /** Hands the permit back; later calls do nothing. */
    @Override
    public void close() {
        if (released.compareAndSet(false, true)) {
            runtime.release();
        }
    }
}
