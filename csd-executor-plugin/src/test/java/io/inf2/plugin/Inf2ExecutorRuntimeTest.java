package io.inf2.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.codahale.metrics.Gauge;
import com.codahale.metrics.MetricRegistry;
import io.inf2.config.ConfigException;
import io.inf2.compute.cpu.CpuBackend;
import io.inf2.config.Inf2Config;
import io.inf2.engine.EngineOptions;
import io.inf2.engine.GenerationRequest;
import io.inf2.engine.GenerationResult;
import io.inf2.engine.InferenceEngine;
import io.inf2.engine.SamplingParams;
import io.inf2.model.ModelConfig;
import io.inf2.model.checkpoint.Checkpoint;
import io.inf2.model.checkpoint.SafetensorsCheckpoint;
import io.inf2.tensor.Tensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The runtime without Spark: lazy opening, permits, metrics, shutdown. The Spark suites cover it inside executors. */
class Inf2ExecutorRuntimeTest {
    @TempDir
    Path tmp;

    private final List<Inf2ExecutorRuntime> runtimes = new ArrayList<>();
    private final AtomicInteger opened = new AtomicInteger();
    private final AtomicInteger resolved = new AtomicInteger();

    @AfterEach
    void closeRuntimes() {
        runtimes.forEach(Inf2ExecutorRuntime::close);
    }

    private Inf2ExecutorRuntime runtime(Map<String, String> sparkConf, Inf2ExecutorRuntime.EngineOpener opener)
            throws IOException {
        Inf2Config config = Inf2Config.fromSparkConf(sparkConf, PluginSettings.catalog());
        DeviceBinding devices = DeviceBinding.bind(config, false, Map.of(), tmp.resolve("work/executor-7"));
        Inf2ExecutorRuntime r = new Inf2ExecutorRuntime("7", config, devices, uri -> {
            resolved.incrementAndGet();
            return Path.of(uri);
        }, options -> {
            opened.incrementAndGet();
            return opener.open(options);
        });
        runtimes.add(r);
        return r;
    }

    /** A runtime over a real tiny model directory, opened the way executors open it. */
    private Inf2ExecutorRuntime tinyRuntime(Map<String, String> sparkConf) throws IOException {
        Map<String, String> conf = new HashMap<>(sparkConf);
        conf.put("spark.inf2.model", tinyModel().toString());
        return runtime(conf, InferenceEngine::open);
    }

    private Path tinyModel() throws IOException {
        Path dir = tmp.resolve("tiny-opt");
        return Files.exists(dir) ? dir : TestModels.writeTinyOpt(dir);
    }

    private static List<GenerationRequest> requests(int n) {
        List<GenerationRequest> rs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            rs.add(GenerationRequest.ofText("r" + i, "The cache number " + i + " is", SamplingParams.greedy(4)));
        }
        return rs;
    }

    private static long generatedTokens(List<GenerationResult> results) {
        return results.stream().mapToLong(r -> r.completionTokens().length).sum();
    }

    @Test
    void getFailsInOneLineWhenThePluginIsNotLoaded() {
        IllegalStateException e = assertThrows(IllegalStateException.class, Inf2ExecutorRuntime::get);
        assertEquals("no INF2 executor runtime in this JVM: spark.plugins must include io.inf2.plugin.Inf2SparkPlugin",
                e.getMessage());
    }

    @Test
    void installedUntilClosed() throws IOException {
        Inf2ExecutorRuntime r = tinyRuntime(Map.of());
        r.install();
        assertSame(r, Inf2ExecutorRuntime.get());
        assertEquals("7", Inf2ExecutorRuntime.get().executorId());
        r.close();
        assertThrows(IllegalStateException.class, Inf2ExecutorRuntime::get);
    }

    @Test
    void opensTheEngineOnFirstUseOnceAndSharesIt() throws IOException {
        Inf2ExecutorRuntime r = tinyRuntime(Map.of("spark.inf2.maxConcurrentTasks", "2"));
        assertEquals(0, opened.get());
        InferenceEngine first;
        long generated;
        try (EngineLease a = r.acquire(); EngineLease b = r.acquire()) {
            first = a.engine();
            assertSame(first, b.engine());
            assertEquals(2, r.activeTasks());
            List<GenerationResult> results = a.engine().generate(requests(3), a.progressListener("test"));
            assertEquals(3, results.size());
            results.forEach(res -> assertFalse(res.isError(), res.error()));
            generated = generatedTokens(results);
            assertTrue(generated > 0);
        }
        assertEquals(0, r.activeTasks());
        try (EngineLease c = r.acquire()) {
            assertSame(first, c.engine());
        }
        assertEquals(1, opened.get());
        assertEquals(1, resolved.get());
        assertEquals(generated, r.statistics().generatedTokens());
    }

    @Test
    void permitsLimitHowManyTasksGenerateAtOnce() throws Exception {
        Inf2ExecutorRuntime r = tinyRuntime(Map.of());
        EngineLease held = r.acquire();
        CompletableFuture<Integer> second = CompletableFuture.supplyAsync(() -> {
            try (EngineLease lease = r.acquire()) {
                return lease.engine().generate(requests(1), lease.progressListener("second")).size();
            }
        });
        Thread.sleep(300);
        assertFalse(second.isDone(), "a second task must wait while maxConcurrentTasks=1 is in use");
        held.close();
        held.close();
        assertEquals(1, second.get(30, TimeUnit.SECONDS));
        assertThrows(IllegalStateException.class, held::engine);
        assertEquals(0, r.activeTasks());
    }

    @Test
    void metricsReadTheEngineStatistics() throws IOException {
        Inf2ExecutorRuntime r = tinyRuntime(Map.of());
        MetricRegistry registry = new MetricRegistry();
        EngineMetrics.register(registry, r);
        assertEquals(List.of("activeTasks", "decodeTimeMs", "failedRequests", "kvDeviceBytesRead", "kvDeviceBytesWritten",
                "linkBytes", "pagesWritten", "prefillTimeMs", "promptTokens", "requests", "tokensGenerated",
                "tokensPerSecond", "weightBytesRead", "writebackBufferedBytes", "xcacheRecomputedBytes"), List.copyOf(registry.getGauges().keySet()));
        assertEquals(0L, gauge(registry, "tokensGenerated"));
        long generated;
        long prompt;
        try (EngineLease lease = r.acquire()) {
            List<GenerationResult> results = lease.engine().generate(requests(2), lease.progressListener("metrics"));
            generated = generatedTokens(results);
            prompt = results.stream().mapToLong(res -> res.promptTokens().length).sum();
            assertEquals(1, gauge(registry, "activeTasks"));
        }
        assertEquals(generated, gauge(registry, "tokensGenerated"));
        assertEquals(2L, gauge(registry, "requests"));
        assertEquals(prompt, gauge(registry, "promptTokens"));
        assertTrue((Double) gauge(registry, "tokensPerSecond") > 0);
        assertTrue((Long) gauge(registry, "decodeTimeMs") + (Long) gauge(registry, "prefillTimeMs") >= 0);
        r.close();
        assertEquals(generated, gauge(registry, "tokensGenerated"), "the last counts stay readable after shutdown");
    }

    /** The engine on the model directory, its checkpoint failing to close (after releasing its files). */
    private static InferenceEngine openWithFailingClose(EngineOptions options) {
        Checkpoint files = SafetensorsCheckpoint.open(options.model());
        Checkpoint failing = new Checkpoint() {
            @Override
            public Set<String> names() {
                return files.names();
            }

            @Override
            public boolean contains(String name) {
                return files.contains(name);
            }

            @Override
            public Tensor tensor(String name) {
                return files.tensor(name);
            }

            @Override
            public String location() {
                return files.location();
            }

            @Override
            public void close() {
                files.close();
                throw new IllegalStateException("checkpoint close failed on purpose");
            }
        };
        CpuBackend cpu = new CpuBackend(1);
        return InferenceEngine.assemble(options, ModelConfig.load(options.model()), failing, null, cpu, cpu,
                InferenceEngine.memoryPlacement());
    }

    private static Object gauge(MetricRegistry registry, String name) {
        Gauge<?> g = registry.getGauges().get(name);
        return g.getValue();
    }

    @Test
    void aFailedOpenHandsThePermitBackAndIsRetried() throws IOException {
        Inf2ExecutorRuntime r = runtime(Map.of("spark.inf2.model", "/models/tiny"), options -> {
            throw new IllegalStateException("no such model");
        });
        assertThrows(IllegalStateException.class, r::acquire);
        assertEquals(0, r.activeTasks());
        assertThrows(IllegalStateException.class, r::acquire);
        assertEquals(2, opened.get());
    }

    @Test
    void aMissingModelOrAnUnreadableOneIsNamed() throws IOException {
        Inf2ExecutorRuntime noModel = runtime(Map.of(), InferenceEngine::open);
        ConfigException e = assertThrows(ConfigException.class, noModel::acquire);
        assertEquals("spark.inf2.model is not set: executor 7 has no model to open", e.getMessage());
        noModel.close();

        Inf2Config config = Inf2Config.fromSparkConf(Map.of("spark.inf2.model", "hdfs://nn/models/opt"),
                PluginSettings.catalog());
        Inf2ExecutorRuntime unreadable = new Inf2ExecutorRuntime("7", config,
                DeviceBinding.bind(config, false, Map.of(), tmp.resolve("w")), uri -> {
                    throw new IOException("connection refused");
                }, InferenceEngine::open);
        runtimes.add(unreadable);
        UncheckedIOException io = assertThrows(UncheckedIOException.class, unreadable::acquire);
        assertEquals("executor 7: cannot read model hdfs://nn/models/opt: connection refused", io.getMessage());
        assertEquals(0, unreadable.activeTasks());
    }

    @Test
    void theEngineGetsThisExecutorsDevices() throws IOException {
        Inf2ExecutorRuntime r = runtime(Map.of("spark.inf2.model", "hdfs://nn/m", "spark.inf2.kvCache", "csd",
                "spark.inf2.batchSize", "8"), InferenceEngine::open);
        EngineOptions options = r.engineOptions(tmp.resolve("cached"));
        assertEquals(tmp.resolve("cached"), options.model());
        assertEquals("cpu", options.backend());
        assertEquals("csd", options.kvCache());
        assertEquals(8, options.batchSize());
        assertEquals(List.of(tmp.resolve("work/executor-7/csd0"), tmp.resolve("work/executor-7/csd1")),
                options.csdDirectories());
    }

    @Test
    void closeClosesTheEngineDeletesEmulatedDevicesAndRefusesNewLeases() throws IOException {
        Inf2ExecutorRuntime r = tinyRuntime(Map.of());
        InferenceEngine engine;
        try (EngineLease lease = r.acquire()) {
            engine = lease.engine();
        }
        Files.writeString(tmp.resolve("work/executor-7/csd0/kv-layer0.bin"), "pages");
        r.close();
        assertThrows(IllegalStateException.class, () -> engine.generate(requests(1), null));
        assertFalse(Files.exists(tmp.resolve("work/executor-7")));
        IllegalStateException e = assertThrows(IllegalStateException.class, r::acquire);
        assertEquals("executor 7 is shutting down: its INF2 engine is closed", e.getMessage());
        r.close();
    }

    @Test
    void closeFinishesEveryStepWhenOneFails() throws IOException {
        Inf2ExecutorRuntime r = runtime(Map.of("spark.inf2.model", tinyModel().toString()),
                Inf2ExecutorRuntimeTest::openWithFailingClose);
        r.acquire().close();
        IllegalStateException e = assertThrows(IllegalStateException.class, r::close);
        assertTrue(e.getMessage().startsWith("executor 7: 1 failure(s) while shutting down INF2"), e.getMessage());
        assertEquals(1, e.getSuppressed().length);
        assertFalse(Files.exists(tmp.resolve("work/executor-7")), "devices are deleted although the engine failed to close");
    }
}
