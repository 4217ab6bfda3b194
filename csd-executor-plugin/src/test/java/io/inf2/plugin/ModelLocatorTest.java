package io.inf2.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.config.ConfigException;
import io.inf2.modelcache.ModelCache;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelLocatorTest {
    @TempDir
    Path tmp;

    private final Configuration hadoop = new Configuration();

    @Test
    void aLocalModelIsUsedInPlace() throws IOException {
        Path model = TestModels.write(tmp.resolve("my model"), 10, 1);
        String qualified = ModelLocator.qualify(model.toString(), hadoop);
        assertTrue(qualified.startsWith("file:/"), qualified);
        ModelCache cache = new ModelCache(tmp.resolve("cache"), ModelCache.Verification.SIZE);
        assertEquals(model, ModelLocator.localDirectory(qualified, hadoop, cache));
        assertFalse(Files.exists(tmp.resolve("cache")), "a local model must not be copied");
    }

    @Test
    void checksTheModelDirectoryWithTheKeyNamed() throws IOException {
        Path model = TestModels.write(tmp.resolve("opt"), 10, 1);
        ModelLocator.checkModelDirectory(ModelLocator.qualify(model.toString(), hadoop), hadoop);

        String missing = ModelLocator.qualify(tmp.resolve("nope").toString(), hadoop);
        ConfigException e = assertThrows(ConfigException.class, () -> ModelLocator.checkModelDirectory(missing, hadoop));
        assertEquals("spark.inf2.model=\"" + missing + "\": no such directory", e.getMessage());

        Files.delete(model.resolve("config.json"));
        String noConfig = ModelLocator.qualify(model.toString(), hadoop);
        e = assertThrows(ConfigException.class, () -> ModelLocator.checkModelDirectory(noConfig, hadoop));
        assertTrue(e.getMessage().endsWith("no config.json in the directory (not a model directory)"), e.getMessage());
    }

    @Test
    void anUnknownSchemeNamesTheKey() {
        ConfigException e = assertThrows(ConfigException.class, () -> ModelLocator.qualify("nosuchfs://x/model", hadoop));
        assertTrue(e.getMessage().startsWith("spark.inf2.model=\"nosuchfs://x/model\": "), e.getMessage());
    }
}
