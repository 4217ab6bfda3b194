package io.inf2.plugin;

import io.inf2.config.Inf2Config;
import io.inf2.config.Setting;
import io.inf2.config.Settings;
import io.inf2.engine.InferenceEngine;
import io.inf2.modelcache.ModelCache;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.System.Logger.Level;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileUtil;
import org.apache.spark.SparkConf;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;

/**
 * Sets up an executor's INF2 runtime when the executor starts: binds its devices, registers its
 * metrics, and prepares (but does not open) the engine, which the first task that needs it opens.
 */
final class Inf2ExecutorPlugin implements ExecutorPlugin {
    private static final System.Logger LOG = System.getLogger(Inf2ExecutorPlugin.class.getName());

    private static final String EXECUTOR_CORES = "spark.executor.cores";

    private Inf2ExecutorRuntime runtime;

    @Override
    public void init(PluginContext ctx, Map<String, String> extraConf) {
        SparkConf conf = ctx.conf();
        String executorId = ctx.executorID();
        // The driver validated these; parsing them again gives the typed values.
        Inf2Config config = Inf2Config.fromNames(extraConf, PluginSettings.catalog(), Setting.SPARK_PREFIX);
        if (config.get(Settings.THREADS) == 0 && conf.contains(EXECUTOR_CORES)) {
            // "All cores" means this executor's cores: other executors may share the host.
            config = config.with(Settings.THREADS, conf.get(EXECUTOR_CORES), PluginSettings.catalog());
        }

        Path base = defaultBaseDirectory(conf);
        Path workDir = directory(config.get(PluginSettings.WORK_DIR), base, "inf2-work")
                .resolve(safeName(applicationId(conf)))
                .resolve("executor-" + safeName(executorId));
        Map<String, List<String>> resources = new LinkedHashMap<>();
        ctx.resources().forEach((name, info) -> resources.put(name, List.of(info.addresses())));
        DeviceBinding devices;
        try {
            devices = DeviceBinding.bind(config, conf.contains(Settings.BACKEND.sparkKey()), resources, workDir);
        } catch (IOException e) {
            throw new UncheckedIOException("executor " + executorId + ": cannot create emulated CSDs under " + workDir
                    + ": " + e.getMessage(), e);
        }

        try {
            ModelCache cache = new ModelCache(directory(config.get(PluginSettings.MODEL_CACHE_DIR), base, "inf2-model-cache"),
                    ModelCache.Verification.valueOf(config.get(PluginSettings.MODEL_CACHE_VERIFY).toUpperCase(Locale.ROOT)));
            Configuration hadoop = ModelLocator.hadoopConfiguration(conf);
            runtime = new Inf2ExecutorRuntime(executorId, config, devices,
                    modelUri -> ModelLocator.localDirectory(modelUri, hadoop, cache), InferenceEngine::open);
            EngineMetrics.register(ctx.metricRegistry(), runtime);
            runtime.install();
            // Not ctx.hostname(): in executors Spark forks it fails (their RPC environment has no address).
            LOG.log(Level.INFO, "executor {0}: INF2 devices {1} (CSDs from {2}), model cache {3}", executorId,
                    runtime.deviceNames(), devices.csdOrigin(), cache.root());
        } catch (RuntimeException | Error e) {
            // Spark does not call shutdown() for a plugin whose init failed: remove the devices made above.
            if (runtime != null) {
                try {
                    runtime.close();
                } catch (RuntimeException closing) {
                    e.addSuppressed(closing);
                }
                runtime = null;
            } else {
                devices.ownedDirectory().ifPresent(dir -> FileUtil.fullyDelete(dir.toFile()));
            }
            throw e;
        }
    }

    @Override
    public void shutdown() {
        if (runtime == null) {
            return;
        }
        try {
            runtime.close();
        } catch (RuntimeException e) {
            LOG.log(Level.ERROR, "executor " + runtime.executorId() + ": INF2 shutdown incomplete", e);
        }
    }

    /**
     * Where the defaults of workDir and modelCacheDir live: the first spark.local.dir (a host-wide
     * scratch disk, so the model cache outlives the application), else java.io.tmpdir.
     */
    private static Path defaultBaseDirectory(SparkConf conf) {
        String localDirs = conf.get("spark.local.dir", "").trim();
        if (!localDirs.isEmpty()) {
            return Path.of(localDirs.split(",")[0].trim());
        }
        return Path.of(System.getProperty("java.io.tmpdir"));
    }

    /**
     * In local[N] the executor starts before Spark has named the application, so this JVM's process id
     * stands in for it there.
     */
    private static String applicationId(SparkConf conf) {
        return conf.get("spark.app.id", "local-pid" + ProcessHandle.current().pid());
    }

    private static Path directory(String configured, Path base, String defaultName) {
        return (configured.isBlank() ? base.resolve(defaultName) : Path.of(configured)).toAbsolutePath();
    }

    private static String safeName(String s) {
        return s.replaceAll("[^A-Za-z0-9._-]", "_");
    }
}
