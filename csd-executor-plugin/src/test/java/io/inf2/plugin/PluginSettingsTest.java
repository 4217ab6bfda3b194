package io.inf2.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.config.ConfigException;
import io.inf2.config.Inf2Config;
import io.inf2.config.Setting;
import io.inf2.config.Settings;
import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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
    void settingsOfRegisteredProvidersAreAcceptedAndChecked(@TempDir Path services) throws IOException {
        try (URLClassLoader loader = withProvider(services, ExampleSettingsProviders.FrontEnd.class)) {
            List<Setting<?>> catalog = PluginSettings.applicationCatalog(loader);
            assertEquals(PluginSettings.catalog().size() + 1, catalog.size());
            Inf2Config c = Inf2Config.fromSparkConf(Map.of("spark.inf2.promptColumn", "text"), catalog);
            assertEquals("text", c.get(ExampleSettingsProviders.FrontEnd.PROMPT_COLUMN));
            ConfigException e = assertThrows(ConfigException.class,
                    () -> Inf2Config.fromSparkConf(Map.of("spark.inf2.promptColumn", " "), catalog));
            assertEquals("spark.inf2.promptColumn=\" \": must be a column name", e.getMessage());
        }
        assertThrows(ConfigException.class, () -> Inf2Config.fromSparkConf(Map.of("spark.inf2.promptColumn", "text"),
                PluginSettings.applicationCatalog(getClass().getClassLoader())));
    }

    @Test
    void aNameDefinedTwiceIsNamed(@TempDir Path services) throws IOException {
        try (URLClassLoader loader = withProvider(services, ExampleSettingsProviders.Clashing.class)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> PluginSettings.applicationCatalog(loader));
            assertEquals("setting spark.inf2.batchSize is defined by the engine and plugin settings and by "
                    + ExampleSettingsProviders.Clashing.class.getName(), e.getMessage());
        }
    }

    private static URLClassLoader withProvider(Path dir, Class<? extends SettingsProvider> provider) throws IOException {
        Path file = dir.resolve("META-INF/services/" + SettingsProvider.class.getName());
        Files.createDirectories(file.getParent());
        Files.writeString(file, provider.getName() + "\n");
        return new URLClassLoader(new URL[] {dir.toUri().toURL()}, PluginSettingsTest.class.getClassLoader());
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
