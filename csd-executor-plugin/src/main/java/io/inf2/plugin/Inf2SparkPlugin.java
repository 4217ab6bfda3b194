package io.inf2.plugin;

import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.SparkPlugin;

/**
 * INF2's Spark plugin: {@code spark.plugins=io.inf2.plugin.Inf2SparkPlugin}. The driver side validates
 * every spark.inf2.* setting before any task runs; the executor side binds the executor's devices,
 * registers its metrics and gives tasks one shared engine through {@link Inf2ExecutorRuntime#get()}.
 */
public final class Inf2SparkPlugin implements SparkPlugin {

    @Override
    public DriverPlugin driverPlugin() {
        return new Inf2DriverPlugin();
    }

    @Override
    public ExecutorPlugin executorPlugin() {
        return new Inf2ExecutorPlugin();
    }
}
