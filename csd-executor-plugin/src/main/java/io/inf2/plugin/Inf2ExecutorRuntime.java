package io.inf2.plugin;

import io.inf2.config.ConfigException;
import io.inf2.config.Inf2Config;
import io.inf2.config.Settings;
import io.inf2.engine.EngineOptions;
import io.inf2.engine.EngineStatistics;
import io.inf2.engine.InferenceEngine;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.System.Logger.Level;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import org.apache.hadoop.fs.FileUtil;

/**
 * What the INF2 plugin gives the tasks of one executor: its devices and one inference engine, opened
 * on first use and shared by all tasks, with at most {@code spark.inf2.maxConcurrentTasks} of them
 * generating at once.
 *
 * <pre>{@code
 * try (EngineLease lease = Inf2ExecutorRuntime.get().acquire()) {
 *     List<GenerationResult> results = lease.engine().generate(requests, lease.progressListener("partition 3"));
 * }
 * }</pre>
 *
 * In {@code local[N]} the executor is the driver JVM and {@link #executorId()} is "driver".
 */
public final class Inf2ExecutorRuntime implements AutoCloseable {

    /** Opens the model directory the engine reads: in place or copied into the host's model cache. */
    @FunctionalInterface
    interface ModelDirectory {
        Path resolve(String modelUri) throws IOException;
    }

    /** Opens an engine on a local model directory with this executor's devices. */
    @FunctionalInterface
    interface EngineOpener {
        InferenceEngine open(EngineOptions options);
    }

    private static final System.Logger LOG = System.getLogger(Inf2ExecutorRuntime.class.getName());
    private static final AtomicReference<Inf2ExecutorRuntime> CURRENT = new AtomicReference<>();
    /** How long shutdown waits for generating tasks to hand the engine back before closing it anyway. */
    private static final long DRAIN_SECONDS = 30;

    private final String executorId;
    private final Inf2Config config;
    private final DeviceBinding devices;
    private final ModelDirectory modelDirectory;
    private final EngineOpener opener;
    private final int maxConcurrentTasks;
    private final Semaphore permits;
    private final long progressIntervalNanos;
    private final Object engineLock = new Object();
    private final AtomicBoolean closed = new AtomicBoolean();
    private volatile InferenceEngine engine;
    private volatile EngineStatistics finalStatistics = EngineStatistics.ZERO;

    Inf2ExecutorRuntime(String executorId, Inf2Config config, DeviceBinding devices, ModelDirectory modelDirectory,
                        EngineOpener opener) {
        this.executorId = executorId;
        this.config = config;
        this.devices = devices;
        this.modelDirectory = modelDirectory;
        this.opener = opener;
        this.maxConcurrentTasks = config.get(PluginSettings.MAX_CONCURRENT_TASKS);
        this.permits = new Semaphore(maxConcurrentTasks, true);
        this.progressIntervalNanos = TimeUnit.SECONDS.toNanos(config.get(PluginSettings.PROGRESS_INTERVAL_SECONDS));
    }

    /** The runtime of this JVM's executor; fails in one line when the plugin is not loaded. */
    public static Inf2ExecutorRuntime get() {
        Inf2ExecutorRuntime runtime = CURRENT.get();
        if (runtime == null) {
            throw new IllegalStateException("no INF2 executor runtime in this JVM: spark.plugins must include "
                    + Inf2SparkPlugin.class.getName());
        }
        return runtime;
    }

    /** Makes this the runtime {@link #get()} returns; called by the executor plugin once it is ready. */
    void install() {
        Inf2ExecutorRuntime previous = CURRENT.getAndSet(this);
        if (previous != null) {
            LOG.log(Level.WARNING, "executor {0}: replacing an INF2 runtime that was never shut down (executor {1})",
                    executorId, previous.executorId);
        }
    }

    /**
     * Waits for a generation permit and returns the shared engine, opening it (and copying the model
     * into the host's cache) if this is the executor's first use. Close the lease to hand the permit back.
     */
    public EngineLease acquire() {
        checkOpen();
        try {
            permits.acquire();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("executor " + executorId + ": interrupted while waiting for an engine permit");
        }
        try {
            checkOpen();
            return new EngineLease(this, engine(), progressIntervalNanos);
        } catch (RuntimeException | Error e) {
            permits.release();
            throw e;
        }
    }

    public String executorId() {
        return executorId;
    }

    /** The backend ("cpu", "cuda", "auto", or "gpu:ADDRESS" for a GPU Spark assigned), then "csd:DIRECTORY" per CSD. */
    public List<String> deviceNames() {
        return devices.deviceNames();
    }

    /** The validated spark.inf2.* configuration (engine and plugin settings) this executor runs with. */
    public Inf2Config config() {
        return config;
    }

    /** Counters of the engine since it opened; all zero before the first task opened it. */
    public EngineStatistics statistics() {
        InferenceEngine e = engine;
        return e != null ? e.statistics() : finalStatistics;
    }

    /** Tasks holding an engine lease now. */
    public int activeTasks() {
        return maxConcurrentTasks - permits.availablePermits();
    }

    void release() {
        permits.release();
    }

    private InferenceEngine engine() {
        InferenceEngine e = engine;
        if (e != null) {
            return e;
        }
        synchronized (engineLock) {
            checkOpen();
            if (engine == null) {
                engine = open();
            }
            return engine;
        }
    }

    private InferenceEngine open() {
        if (!config.isSet(Settings.MODEL)) {
            throw new ConfigException(Settings.MODEL.sparkKey() + " is not set: executor " + executorId
                    + " has no model to open");
        }
        String modelUri = config.get(Settings.MODEL);
        Path local;
        try {
            local = modelDirectory.resolve(modelUri);
        } catch (IOException e) {
            throw new UncheckedIOException("executor " + executorId + ": cannot read model " + modelUri + ": "
                    + e.getMessage(), e);
        }
        long start = System.nanoTime();
        InferenceEngine opened = opener.open(engineOptions(local));
        LOG.log(Level.INFO, "executor {0}: engine opened in {1} s: {2}", executorId,
                String.format("%.1f", (System.nanoTime() - start) / 1e9), opened.describe());
        return opened;
    }

    /**
     * The engine's options: the configuration with this executor's devices in place of the configured
     * ones, the GPU Spark assigned (its address is the CUDA ordinal) included.
     */
    EngineOptions engineOptions(Path localModel) {
        String csds = devices.csdDirectories().stream().map(Path::toString).collect(Collectors.joining(","));
        Inf2Config bound = config.with(Settings.BACKEND, devices.backend(), PluginSettings.catalog())
                .with(Settings.CSD, csds, PluginSettings.catalog())
                .with(Settings.MODEL, localModel.toString(), PluginSettings.catalog());
        if (!devices.gpuAddresses().isEmpty()) {
            bound = bound.with(Settings.CUDA_DEVICE, devices.gpuAddresses().getFirst(), PluginSettings.catalog());
        }
        return EngineOptions.from(bound);
    }

    private void checkOpen() {
        if (closed.get()) {
            throw new IllegalStateException("executor " + executorId + " is shutting down: its INF2 engine is closed");
        }
    }

    /**
     * Stops handing out the engine, waits up to 30 s for generating tasks, then closes the engine and
     * deletes the emulated devices this executor created. Every step runs even when an earlier one
     * fails; the failures come back as one exception with the others suppressed.
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        CURRENT.compareAndSet(this, null);
        List<Throwable> failures = new ArrayList<>();
        try {
            if (permits.tryAcquire(maxConcurrentTasks, DRAIN_SECONDS, TimeUnit.SECONDS)) {
                // Hand them back at once: a task that passed checkOpen before the flag was set and now
                // waits for a permit must wake, see the closed runtime and fail, not wait forever.
                permits.release(maxConcurrentTasks);
            } else {
                LOG.log(Level.WARNING, "executor {0}: {1} task(s) still generating after {2} s; closing the engine anyway",
                        executorId, activeTasks(), DRAIN_SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            failures.add(e);
        }
        synchronized (engineLock) {
            InferenceEngine e = engine;
            engine = null;
            if (e != null) {
                try {
                    finalStatistics = e.statistics();
                } catch (RuntimeException | Error t) {
                    failures.add(t);
                }
                try {
                    e.close();
                } catch (RuntimeException | Error t) {
                    failures.add(t);
                }
            }
        }
        devices.ownedDirectory().ifPresent(dir -> {
            if (!FileUtil.fullyDelete(dir.toFile())) {
                failures.add(new IOException("cannot delete the emulated devices' directory " + dir));
            }
        });
        if (!failures.isEmpty()) {
            IllegalStateException failure = new IllegalStateException("executor " + executorId + ": " + failures.size()
                    + " failure(s) while shutting down INF2, first: " + failures.getFirst());
            failures.forEach(failure::addSuppressed);
            throw failure;
        }
        LOG.log(Level.INFO, "executor {0}: INF2 runtime closed", executorId);
    }
}
