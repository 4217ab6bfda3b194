package io.inf2.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.config.ConfigException;
import io.inf2.config.Inf2Config;
import io.inf2.config.Setting;
import io.inf2.config.Settings;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class PluginSettingsTest {

    @Test
    void catalogHoldsEngineAndPluginSettingsOnceEachWithDocs() {
        Set<String> names = new HashSet<>();
        for (Setting<?> s : PluginSettings.catalog()) {
            assertTrue(names.add(s.name()), "defined twice: " + s.name());
            assertFalse(s.doc().isBlank(), s.name());
        }
        assertTrue(PluginSettings.catalog().containsAll(Settings.all()));
        assertTrue(PluginSettings.catalog().containsAll(PluginSettings.all()));
        assertEquals(Set.of("modelCacheDir", "modelCacheVerify", "workDir", "emulatedCsds", "maxConcurrentTasks",
                "progressIntervalSeconds"), PluginSettings.all().stream().map(Setting::name).collect(java.util.stream.Collectors.toSet()));
    }

    @Test
    void defaultsParse() {
        Inf2Config c = Inf2Config.fromSparkConf(Map.of("spark.master", "local[2]"), PluginSettings.catalog());
        assertEquals(1, c.get(PluginSettings.MAX_CONCURRENT_TASKS));
        assertEquals(2, c.get(PluginSettings.EMULATED_CSDS));
        assertEquals(30, c.get(PluginSettings.PROGRESS_INTERVAL_SECONDS));
        assertEquals("checksum", c.get(PluginSettings.MODEL_CACHE_VERIFY));
        assertEquals("", c.get(PluginSettings.MODEL_CACHE_DIR));
        assertEquals("spark.inf2.maxConcurrentTasks", PluginSettings.MAX_CONCURRENT_TASKS.sparkKey());
        assertEquals("--model-cache-dir", PluginSettings.MODEL_CACHE_DIR.cliFlag());
    }

    @Test
    void badValuesAndUnknownKeysNameTheKey() {
        ConfigException bad = assertThrows(ConfigException.class, () -> Inf2Config.fromSparkConf(
                Map.of("spark.inf2.maxConcurrentTasks", "0"), PluginSettings.catalog()));
        assertEquals("spark.inf2.maxConcurrentTasks=\"0\": must be from 1 to 1024", bad.getMessage());

        ConfigException verify = assertThrows(ConfigException.class, () -> Inf2Config.fromSparkConf(
                Map.of("spark.inf2.modelCacheVerify", "md5"), PluginSettings.catalog()));
        assertTrue(verify.getMessage().startsWith("spark.inf2.modelCacheVerify=\"md5\""), verify.getMessage());

        ConfigException typo = assertThrows(ConfigException.class, () -> Inf2Config.fromSparkConf(
                Map.of("spark.inf2.maxConcurentTasks", "2"), PluginSettings.catalog()));
        assertEquals("unknown setting spark.inf2.maxConcurentTasks (did you mean maxConcurrentTasks?)", typo.getMessage());
    }
}
