package io.inf2.plugin;

import io.inf2.config.Setting;
import io.inf2.config.Settings;
import java.util.List;
import java.util.function.Function;

/** Settings providers as a front end would register them, for {@link PluginSettingsTest}. */
final class ExampleSettingsProviders {
    private ExampleSettingsProviders() {
    }

    /** A front end with one setting of its own and one it shares with the engine. */
    public static final class FrontEnd implements SettingsProvider {
        static final Setting<String> PROMPT_COLUMN = new Setting<>("job", "promptColumn", "column", "prompt",
                "Column holding the prompt.", Function.identity(), s -> !s.isBlank(), "a column name");

        @Override
        public List<Setting<?>> settings() {
            return List.of(PROMPT_COLUMN, Settings.BATCH_SIZE);
        }
    }

    /** A front end that defines a name the engine already has. */
    public static final class Clashing implements SettingsProvider {
        @Override
        public List<Setting<?>> settings() {
            return List.of(Settings.integer("job", "batchSize", "4", "Rows per batch.", 1, 100));
        }
    }
}
