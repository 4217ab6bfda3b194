package io.inf2.plugin;

import io.inf2.config.Setting;
import io.inf2.config.Settings;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.function.Function;

/**
 * Settings of the Spark executor plugin ({@code spark.inf2.<name>}). The driver validates them together
 * with the engine's {@link Settings} before any task runs.
 */
public final class PluginSettings {
    private static final List<Setting<?>> ALL = new ArrayList<>();

    private PluginSettings() {
    }

    public static final Setting<String> MODEL_CACHE_DIR = add(new Setting<>("spark", "modelCacheDir", "path", "",
            "Host-local directory where executors keep copies of models read from remote file systems (hdfs, s3a, ...), "
                    + "shared by the executors of a host and reused by later jobs. Empty: inf2-model-cache under the first "
                    + "spark.local.dir, else under java.io.tmpdir. Local models (file: or a path on the default local file "
                    + "system) are used in place.",
            Function.identity(), v -> true, "a path"));
    public static final Setting<String> MODEL_CACHE_VERIFY = add(Settings.choice("spark", "modelCacheVerify", "checksum",
            "How a cached model copy is checked before reuse: checksum (size and CRC32C of every file; reads the copy once "
                    + "per executor start) or size (sizes only).",
            "checksum", "size"));
    public static final Setting<String> WORK_DIR = add(new Setting<>("spark", "workDir", "path", "",
            "Directory under which an executor creates its emulated CSDs when no device is configured (one subdirectory "
                    + "per application and executor, deleted at shutdown). Needs a file system that supports O_DIRECT "
                    + "(not tmpfs). Empty: inf2-work under the first spark.local.dir, else under java.io.tmpdir.",
            Function.identity(), v -> true, "a path"));
    public static final Setting<Integer> EMULATED_CSDS = add(Settings.integer("spark", "emulatedCsds", "2",
            "Emulated CSDs an executor creates under workDir when neither the cluster (csd resource) nor spark.inf2.csd "
                    + "gives it devices.", 0, 64));
    public static final Setting<Integer> MAX_CONCURRENT_TASKS = add(Settings.integer("spark", "maxConcurrentTasks", "1",
            "Tasks of one executor that generate at the same time on its shared engine; others wait for a permit. "
                    + "One engine batch at a time keeps the whole GPU and CSD bandwidth for it (batchSize sets its width).",
            1, 1024));
    public static final Setting<Integer> PROGRESS_INTERVAL_SECONDS = add(Settings.integer("spark", "progressIntervalSeconds",
            "30", "How often a generating task logs its progress (sequences, tokens, tokens/s); 0 disables.", 0, 86400));

    /** The plugin's own settings. */
    public static List<Setting<?>> all() {
        return Collections.unmodifiableList(ALL);
    }

    /** The settings executors run with: the engine's and the plugin's. */
    public static List<Setting<?>> catalog() {
        List<Setting<?>> c = new ArrayList<>(Settings.all());
        c.addAll(ALL);
        return List.copyOf(c);
    }

    /**
     * Every setting an application may give under spark.inf2.: {@link #catalog()} plus those of the
     * {@link SettingsProvider}s that {@code loader} finds. A name defined twice is an error naming both.
     */
    public static List<Setting<?>> applicationCatalog(ClassLoader loader) {
        Map<String, Setting<?>> byName = new LinkedHashMap<>();
        Map<String, String> definedBy = new LinkedHashMap<>();
        catalog().forEach(s -> {
            byName.put(s.name(), s);
            definedBy.put(s.name(), "the engine and plugin settings");
        });
        for (SettingsProvider provider : ServiceLoader.load(SettingsProvider.class, loader)) {
            for (Setting<?> s : provider.settings()) {
                Setting<?> previous = byName.putIfAbsent(s.name(), s);
                if (previous != null && previous != s) {
                    throw new IllegalStateException("setting " + s.sparkKey() + " is defined by " + definedBy.get(s.name())
                            + " and by " + provider.getClass().getName());
                }
                definedBy.putIfAbsent(s.name(), provider.getClass().getName());
            }
        }
        return List.copyOf(byName.values());
    }

    private static <T> Setting<T> add(Setting<T> s) {
        ALL.add(s);
        return s;
    }
}
