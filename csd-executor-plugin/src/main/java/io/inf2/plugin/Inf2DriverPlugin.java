package io.inf2.plugin;

import io.inf2.config.ConfigException;
import io.inf2.config.Inf2Config;
import io.inf2.config.Setting;
import io.inf2.config.Settings;
import java.lang.System.Logger.Level;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.PluginContext;
import scala.Tuple2;

/**
 * Checks the whole INF2 configuration when the SparkContext starts, so a wrong key or value fails the
 * application at once with the key named instead of failing every task later, and hands executors
 * the validated values.
 */
final class Inf2DriverPlugin implements DriverPlugin {
    private static final System.Logger LOG = System.getLogger(Inf2DriverPlugin.class.getName());
    private static final String TASK_RESOURCE_PREFIX = "spark.task.resource.";

    /**
     * Validates every spark.inf2.* key against the engine's, the plugin's and the registered
     * {@link SettingsProvider}s' settings; returns the executors' extraConf: the engine and plugin
     * values by name, the model URI qualified.
     */
    @Override
    public Map<String, String> init(SparkContext sc, PluginContext pluginContext) {
        SparkConf conf = sc.getConf();
        Map<String, String> given = new LinkedHashMap<>();
        for (Tuple2<String, String> entry : conf.getAll()) {
            given.put(entry._1(), entry._2());
        }
        Inf2Config config = Inf2Config.fromSparkConf(given,
                PluginSettings.applicationCatalog(Thread.currentThread().getContextClassLoader()));
        checkLocalModeResources(sc.master(), given);

        // Executors get the engine's and the plugin's settings; front-end settings stay with their front end.
        Map<String, String> forExecutors = new LinkedHashMap<>();
        for (Setting<?> s : PluginSettings.catalog()) {
            String text = config.asText().get(s.name());
            if (text != null) {
                forExecutors.put(s.name(), text);
            }
        }
        if (config.isSet(Settings.MODEL)) {
            String model = ModelLocator.qualify(config.get(Settings.MODEL), sc.hadoopConfiguration());
            ModelLocator.checkModelDirectory(model, sc.hadoopConfiguration());
            forExecutors.put(Settings.MODEL.name(), model);
            LOG.log(Level.INFO, "INF2: model {0}, kvCache={1}, batchSize={2}", model, config.get(Settings.KV_CACHE),
                    config.get(Settings.BATCH_SIZE));
        } else {
            LOG.log(Level.INFO, "INF2: {0} is not set; tasks that generate will fail until it is", Settings.MODEL.sparkKey());
        }
        return forExecutors;
    }

    /**
     * Spark's local[N] backend gives tasks no custom resources, so a task that asks for one is never
     * scheduled and the job hangs without a word; say so now instead.
     */
    private static void checkLocalModeResources(String master, Map<String, String> conf) {
        if (!(master.equals("local") || master.startsWith("local["))) {
            return;
        }
        for (String key : conf.keySet()) {
            if (key.startsWith(TASK_RESOURCE_PREFIX) && key.endsWith(".amount")) {
                throw new ConfigException(key + "=" + conf.get(key) + ": master " + master + " gives tasks no resources, so "
                        + "no task would ever run; remove it (devices come from " + Settings.CSD.sparkKey() + " in local "
                        + "mode) or use local-cluster or a cluster manager");
            }
        }
    }
}
