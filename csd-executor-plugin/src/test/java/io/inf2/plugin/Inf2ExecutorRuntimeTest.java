package io.inf2.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.config.ConfigException;
import io.inf2.config.Inf2Config;
import io.inf2.engine.EngineOptions;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The runtime without Spark: lazy opening, permits, shutdown. The Spark suites cover it inside executors. */
class Inf2ExecutorRuntimeTest {
    @TempDir
    Path tmp;

    private Inf2ExecutorRuntime runtime;

    @AfterEach
    void closeRuntime() {
        if (runtime != null) {
            runtime.close();
        }
    }

    private Inf2ExecutorRuntime runtime(Map<String, String> sparkConf, Inf2ExecutorRuntime.ModelDirectory models)
            throws IOException {
        Inf2Config config = Inf2Config.fromSparkConf(sparkConf, PluginSettings.catalog());
        DeviceBinding devices = DeviceBinding.bind(config, false, Map.of(), tmp.resolve("work/executor-7"));
        runtime = new Inf2ExecutorRuntime("7", config, devices, models);
        return runtime;
    }

    @Test
    void getFailsInOneLineWhenThePluginIsNotLoaded() {
        IllegalStateException e = assertThrows(IllegalStateException.class, Inf2ExecutorRuntime::get);
        assertEquals("no INF2 executor runtime in this JVM: spark.plugins must include io.inf2.plugin.Inf2SparkPlugin",
                e.getMessage());
    }

    @Test
    void installedUntilClosed() throws IOException {
        Inf2ExecutorRuntime r = runtime(Map.of(), uri -> Path.of(uri));
        r.install();
        assertSame(r, Inf2ExecutorRuntime.get());
        assertEquals("7", Inf2ExecutorRuntime.get().executorId());
        r.close();
        assertThrows(IllegalStateException.class, Inf2ExecutorRuntime::get);
    }

    @Test
    void opensNothingUntilATaskAsksAndReleasesThePermitWhenOpeningFails() throws IOException {
        AtomicInteger resolved = new AtomicInteger();
        Path model = TestModels.write(tmp.resolve("not-really-a-model"), 16, 1);
        Inf2ExecutorRuntime r = runtime(Map.of("spark.inf2.model", model.toString()), uri -> {
            resolved.incrementAndGet();
            return Path.of(uri);
        });
        assertEquals(0, resolved.get());
        assertEquals(0, r.statistics().generatedTokens());

        assertThrows(RuntimeException.class, r::acquire);
        assertEquals(1, resolved.get());
        assertEquals(0, r.activeTasks(), "a failed open must hand its permit back");
        assertThrows(RuntimeException.class, r::acquire);
        assertEquals(2, resolved.get(), "a failed open is retried by the next task");
    }

    @Test
    void aMissingModelOrAnUnreadableOneIsNamed() throws IOException {
        Inf2ExecutorRuntime noModel = runtime(Map.of(), uri -> Path.of(uri));
        ConfigException e = assertThrows(ConfigException.class, noModel::acquire);
        assertEquals("spark.inf2.model is not set: executor 7 has no model to open", e.getMessage());
        noModel.close();

        Inf2ExecutorRuntime unreadable = runtime(Map.of("spark.inf2.model", "hdfs://nn/models/opt"), uri -> {
            throw new IOException("connection refused");
        });
        UncheckedIOException io = assertThrows(UncheckedIOException.class, unreadable::acquire);
        assertEquals("executor 7: cannot read model hdfs://nn/models/opt: connection refused", io.getMessage());
        assertEquals(0, unreadable.activeTasks());
    }

    @Test
    void theEngineGetsThisExecutorsDevices() throws IOException {
        Inf2ExecutorRuntime r = runtime(Map.of("spark.inf2.model", "hdfs://nn/m", "spark.inf2.kvCache", "csd",
                "spark.inf2.batchSize", "8"), uri -> Path.of(uri));
        EngineOptions options = r.engineOptions(tmp.resolve("cached"));
        assertEquals(tmp.resolve("cached"), options.model());
        assertEquals("cpu", options.backend());
        assertEquals("csd", options.kvCache());
        assertEquals(8, options.batchSize());
        assertEquals(List.of(tmp.resolve("work/executor-7/csd0"), tmp.resolve("work/executor-7/csd1")),
                options.csdDirectories());
    }

    @Test
    void closeDeletesTheEmulatedDevicesAndRefusesNewLeases() throws IOException {
        Inf2ExecutorRuntime r = runtime(Map.of("spark.inf2.model", "/m"), uri -> Path.of(uri));
        Path device = tmp.resolve("work/executor-7/csd0");
        Files.writeString(device.resolve("kv-layer0.bin"), "pages");
        r.close();
        assertFalse(Files.exists(tmp.resolve("work/executor-7")));
        IllegalStateException e = assertThrows(IllegalStateException.class, r::acquire);
        assertEquals("executor 7 is shutting down: its INF2 engine is closed", e.getMessage());
        r.close();
        assertTrue(Files.exists(tmp.resolve("work")));
    }
}
