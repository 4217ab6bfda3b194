package io.inf2.spark;

import io.inf2.config.Setting;
import io.inf2.plugin.SettingsProvider;
import java.util.List;

/** Makes the job's spark.inf2.* keys known to the INF2 plugin, which checks every such key at start. */
public final class JobSettingsProvider implements SettingsProvider {
    @Override
    public List<Setting<?>> settings() {
        return JobSettings.all();
    }
}
