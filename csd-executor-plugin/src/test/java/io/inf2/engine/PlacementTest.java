package io.inf2.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.compute.WeightLayout;
import io.inf2.compute.WeightTier;
import io.inf2.config.ConfigException;
import io.inf2.config.Inf2Config;
import io.inf2.config.Settings;
import io.inf2.model.LayerWeights;
import io.inf2.model.ModelWeights;
import io.inf2.tensor.Tensor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** FlexGen's percent policy, budgets, and the errors of placements that cannot work. */
class PlacementTest {

    private static EngineOptions options(String kvCache, List<Path> csd, List<Integer> percent, long gpu, long host,
                                         int batch) {
        return TestOptions.of("model", "model", "threads", 1, "batchSize", batch, "maxNewTokens", 4, "kvCache", kvCache,
                "csd", csd, "percent", percent, "gpuMemory", gpu, "hostMemory", host);
    }

    private static long bytesIn(WeightLayout layout, WeightTier tier) {
        return layout.tensorsIn(tier).stream().mapToLong(t -> t.data().byteSize()).sum();
    }

    @Test
    void everyLayerSplitsAtTheMidpointsOfItsTensors() {
        try (TestModels.Model m = TestModels.random("opt", 1)) {
            ModelWeights w = ModelWeights.bind(m.config(), m.checkpoint());
            WeightLayout layout = new Placement(30, 40, "memory", true).layout(w.layers());
            for (LayerWeights layer : w.layers()) {
                double total = layer.byteSize();
                double before = 0;
                WeightTier previous = WeightTier.DEVICE;
                for (Tensor t : layer.tensors()) {
                    double mid = (before + t.data().byteSize() / 2.0) * 100 / total;
                    before += t.data().byteSize();
                    WeightTier tier = layout.tierOf(t);
                    assertEquals(mid < 30 ? WeightTier.DEVICE : mid < 70 ? WeightTier.HOST : WeightTier.STORAGE, tier, t.name());
                    assertTrue(tier.compareTo(previous) >= 0, "tiers run gpu, host, storage within a layer");
                    previous = tier;
                }
            }
            long layerBytes = w.layers().stream().mapToLong(LayerWeights::byteSize).sum();
            // The split is by tensors, so each share lands near its percentage, not on it.
            assertEquals(0.3, bytesIn(layout, WeightTier.DEVICE) / (double) layerBytes, 0.2);
            assertEquals(0.3, bytesIn(layout, WeightTier.STORAGE) / (double) layerBytes, 0.2);
            assertEquals(layerBytes, bytesIn(layout, WeightTier.DEVICE) + bytesIn(layout, WeightTier.HOST)
                    + bytesIn(layout, WeightTier.STORAGE));
            assertTrue(new Placement(0, 100, "memory", true).layout(w.layers()).tensorsIn(WeightTier.HOST).size()
                    == w.layers().stream().mapToInt(l -> l.tensors().size()).sum());
        }
    }

    @Test
    void percentDecidesWeightsCacheAndActivations() {
        try (TestModels.Model m = TestModels.random("llama-gqa", 1)) {
            ModelWeights w = ModelWeights.bind(m.config(), m.checkpoint());
            Placement p = PlacementPlanner.resolve(options("memory", List.of(), List.of(20, 80, 100, 0, 0, 100), 0, 0, 4),
                    w, true, 0, true);
            assertEquals(new Placement(20, 80, "gpu", false), p);
            Placement csd = PlacementPlanner.resolve(options("csd", List.of(Path.of("d0")), List.of(0, 100, 0, 0, 100, 0),
                    0, 0, 4), w, true, 0, true);
            assertEquals("csd", csd.kvCache());
        }
    }

    @Test
    void placementsThatCannotWorkAreRefusedWithTheReason() {
        try (TestModels.Model m = TestModels.random("opt", 1)) {
            ModelWeights w = ModelWeights.bind(m.config(), m.checkpoint());
            Map<String, EngineOptions> bad = Map.of(
                    "GPU memory, but the backend is the CPU", options("memory", List.of(), List.of(10, 90, 0, 100, 100, 0), 0, 0, 4),
                    "KV cache in GPU memory, but the backend is the CPU", options("memory", List.of(), List.of(0, 100, 100, 0, 100, 0), 0, 0, 4),
                    "set kvCache to csd", options("memory", List.of(), List.of(0, 100, 0, 0, 100, 0), 0, 0, 4),
                    "but kvCache=csd", options("csd", List.of(Path.of("d")), List.of(0, 100, 0, 100, 100, 0), 0, 0, 4));
            bad.forEach((reason, o) -> {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> PlacementPlanner.resolve(o, w, false, 0, true));
                assertTrue(e.getMessage().contains(reason), e.getMessage());
            });
            IllegalArgumentException notOnDisk = assertThrows(IllegalArgumentException.class, () -> PlacementPlanner.resolve(
                    options("memory", List.of(), List.of(0, 50, 0, 100, 100, 0), 0, 0, 4), w, false, 0, false));
            assertTrue(notOnDisk.getMessage().contains("not a safetensors file on disk"), notOnDisk.getMessage());
        }
    }

    @Test
    void budgetsPutWeightsOnTheGpuFirstThenTheCacheThenHostMemory() {
        try (TestModels.Model m = TestModels.random("opt", 1)) {
            ModelWeights w = ModelWeights.bind(m.config(), m.checkpoint());
            long layerBytes = w.layers().stream().mapToLong(LayerWeights::byteSize).sum();
            long globals = w.byteSize() - layerBytes;
            long workspace = PlacementPlanner.GPU_WORKSPACE_BYTES;
            long hostCache = 4L * m.config().maxPositions() * m.config().layers() * m.config().kvBytesPerTokenPerLayer(4);
            // Everything fits on the GPU.
            Placement all = PlacementPlanner.resolve(options("memory", List.of(), List.of(), 64L << 30, 0, 4), w, true, 0, true);
            assertEquals(new Placement(100, 0, "gpu", true), all);
            // The GPU holds the globals and a bit more: no layer weights fit, they all go to host memory with the cache.
            Placement tight = PlacementPlanner.resolve(options("memory", List.of(), List.of(), globals + workspace, 0, 4), w,
                    true, 0, true);
            assertEquals(new Placement(0, 100, "memory", true), tight);
            // Host memory holds the cache and half the weights: the rest is read from storage.
            Placement host = PlacementPlanner.resolve(options("memory", List.of(), List.of(), 0, hostCache + layerBytes / 2, 4),
                    w, false, 0, true);
            assertEquals(0, host.weightsGpuPercent());
            assertEquals(50, host.weightsHostPercent(), 1);
            assertEquals("memory", host.kvCache());
            // No room for the cache anywhere and no devices: refused, saying so.
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PlacementPlanner.resolve(
                    options("memory", List.of(), List.of(), 0, 1024, 4), w, false, 0, true));
            assertTrue(e.getMessage().contains("fits neither"), e.getMessage());
            assertEquals("csd", PlacementPlanner.resolve(options("memory", List.of(Path.of("d")), List.of(), 0, 1024, 4), w,
                    false, 0, true).kvCache());
        }
    }

    @Test
    void budgetsSizeTheCacheForContextTokensWhenGiven() {
        try (TestModels.Model m = TestModels.random("opt", 1)) {
            ModelWeights w = ModelWeights.bind(m.config(), m.checkpoint());
            int batch = 4;
            int contextTokens = m.config().maxPositions() / 4;
            long perToken = (long) batch * m.config().layers() * m.config().kvBytesPerTokenPerLayer(2);
            // Room for every weight and a cache of contextTokens per sequence, not of the whole context window.
            long gpu = w.byteSize() + PlacementPlanner.GPU_WORKSPACE_BYTES + perToken * contextTokens;
            Placement whole = PlacementPlanner.resolve(options("memory", List.of(), List.of(), gpu, 0, batch), w, true, 0, true);
            assertEquals(new Placement(100, 0, "memory", true), whole);
            EngineOptions planned = TestOptions.of("model", "model", "threads", 1, "batchSize", batch, "gpuMemory", gpu,
                    "contextTokens", contextTokens);
            assertEquals(new Placement(100, 0, "gpu", true), PlacementPlanner.resolve(planned, w, true, 0, true));
            EngineOptions beyond = TestOptions.of("model", "model", "threads", 1, "batchSize", batch, "gpuMemory", gpu,
                    "contextTokens", contextTokens + 1);
            assertEquals("memory", PlacementPlanner.resolve(beyond, w, true, 0, true).kvCache());
        }
    }

    @Test
    void thePercentSettingIsValidatedWhereItIsGiven() {
        for (String bad : new String[] {"10,20,30", "60,50,0,100,100,0", "0,100,50,50,100,0", "0,100,0,100,50,50", "x"}) {
            ConfigException e = assertThrows(ConfigException.class,
                    () -> Inf2Config.fromNames(Map.of("percent", bad), Settings.all(), "--"));
            assertTrue(e.getMessage().contains("percent"), e.getMessage());
        }
        Inf2Config ok = Inf2Config.fromNames(Map.of("percent", "20,80,0,100,100,0", "gpuMemory", "40g"), Settings.all(), "--");
        assertEquals(List.of(20, 80, 0, 100, 100, 0), ok.get(Settings.PERCENT));
        assertEquals(40L << 30, ok.get(Settings.GPU_MEMORY));
    }
}
