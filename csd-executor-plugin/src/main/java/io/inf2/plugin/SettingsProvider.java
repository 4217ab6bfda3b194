package io.inf2.plugin;

import io.inf2.config.Setting;
import java.util.List;

/**
 * Settings that a front end running on Spark (the batch job, the notebook API) takes under
 * {@code spark.inf2.}, made known to the plugin through {@link java.util.ServiceLoader}: list the
 * implementing class in {@code META-INF/services/io.inf2.plugin.SettingsProvider}. The driver then
 * accepts and checks those keys with the rest instead of rejecting them as unknown.
 */
public interface SettingsProvider {

    List<Setting<?>> settings();
}
