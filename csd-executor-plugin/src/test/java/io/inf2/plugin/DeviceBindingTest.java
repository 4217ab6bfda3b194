package io.inf2.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.config.ConfigException;
import io.inf2.config.Inf2Config;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DeviceBindingTest {
    @TempDir
    Path tmp;

    private static Inf2Config config(Map<String, String> sparkConf) {
        return Inf2Config.fromSparkConf(sparkConf, PluginSettings.catalog());
    }

    @Test
    void withNothingConfiguredCreatesEmulatedCsdsOnTheCpu() throws IOException {
        Path root = tmp.resolve("work/app/executor-driver");
        DeviceBinding b = DeviceBinding.bind(config(Map.of()), false, Map.of(), root);
        assertEquals("cpu", b.backend());
        assertEquals(List.of(root.resolve("csd0"), root.resolve("csd1")), b.csdDirectories());
        assertTrue(Files.isDirectory(root.resolve("csd1")));
        assertEquals(Optional.of(root), b.ownedDirectory());
        assertEquals(List.of("cpu", "csd:" + root.resolve("csd0"), "csd:" + root.resolve("csd1")), b.deviceNames());
    }

    @Test
    void configuredDirectoriesAndBackendWinOverTheDefault() throws IOException {
        Path a = Files.createDirectories(tmp.resolve("a"));
        Path c = Files.createDirectories(tmp.resolve("c"));
        DeviceBinding b = DeviceBinding.bind(config(Map.of("spark.inf2.csd", a + "," + c, "spark.inf2.backend", "auto")),
                true, Map.of(), tmp.resolve("unused"));
        assertEquals("auto", b.backend());
        assertEquals(List.of(a, c), b.csdDirectories());
        assertEquals(Optional.empty(), b.ownedDirectory());
        assertTrue(Files.notExists(tmp.resolve("unused")));
    }

    @Test
    void sparkResourcesWinOverConfiguration() throws IOException {
        Path a = Files.createDirectories(tmp.resolve("dev-a"));
        Path configured = Files.createDirectories(tmp.resolve("configured"));
        DeviceBinding b = DeviceBinding.bind(config(Map.of("spark.inf2.csd", configured.toString())), false,
                Map.of("csd", List.of(a.toString()), "gpu", List.of("3")), tmp.resolve("unused"));
        assertEquals("cuda", b.backend());
        assertEquals(List.of(a), b.csdDirectories());
        assertEquals(List.of("gpu:3", "csd:" + a), b.deviceNames());
        assertEquals("Spark resource csd", b.csdOrigin());
    }

    @Test
    void anExplicitCpuBackendKeepsAnAssignedGpuIdle() throws IOException {
        DeviceBinding b = DeviceBinding.bind(config(Map.of("spark.inf2.backend", "cpu")), true,
                Map.of("gpu", List.of("0")), tmp.resolve("w"));
        assertEquals("cpu", b.backend());
        assertEquals("cpu", b.deviceNames().getFirst());
    }

    @Test
    void badDevicesFailWithTheDeviceNamed() {
        Path missing = tmp.resolve("missing");
        ConfigException fromResource = assertThrows(ConfigException.class, () -> DeviceBinding.bind(config(Map.of()),
                false, Map.of("csd", List.of(missing.toString())), tmp.resolve("w")));
        assertEquals("csd resource address " + missing + ": no such directory", fromResource.getMessage());

        ConfigException relative = assertThrows(ConfigException.class, () -> DeviceBinding.bind(config(Map.of()),
                false, Map.of("csd", List.of("relative/dir")), tmp.resolve("w")));
        assertTrue(relative.getMessage().contains("absolute"), relative.getMessage());

        ConfigException fromConf = assertThrows(ConfigException.class, () -> DeviceBinding.bind(
                config(Map.of("spark.inf2.csd", missing.toString())), false, Map.of(), tmp.resolve("w")));
        assertEquals("spark.inf2.csd entry " + missing + ": no such directory", fromConf.getMessage());
    }

    @Test
    void csdPlacementWithoutDevicesFailsAtBinding() {
        ConfigException e = assertThrows(ConfigException.class, () -> DeviceBinding.bind(
                config(Map.of("spark.inf2.kvCache", "csd", "spark.inf2.emulatedCsds", "0")), false, Map.of(), tmp.resolve("w")));
        assertTrue(e.getMessage().startsWith("spark.inf2.kvCache=csd needs devices"), e.getMessage());
    }

    @Test
    void memoryAndGpuPlacementsNeedNoStorageDevices() throws IOException {
        for (String placement : new String[] {"memory", "gpu"}) {
            DeviceBinding b = DeviceBinding.bind(config(Map.of("spark.inf2.kvCache", placement, "spark.inf2.emulatedCsds", "0")),
                    false, Map.of("gpu", List.of("1")), tmp.resolve("w"));
            assertEquals(List.of(), b.csdDirectories(), placement);
            assertEquals(List.of("gpu:1"), b.deviceNames(), placement);
        }
    }
}
