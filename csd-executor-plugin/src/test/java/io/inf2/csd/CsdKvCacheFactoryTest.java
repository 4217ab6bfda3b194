package io.inf2.csd;

import io.inf2.engine.TestOptions;
import static io.inf2.csd.CsdTestSupport.freshDirectory;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.engine.EngineOptions;
import io.inf2.kv.KvCache;
import io.inf2.kv.KvTraffic;
import io.inf2.model.ModelConfig;
import io.inf2.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

class CsdKvCacheFactoryTest {

    private static EngineOptions options(String kvCache, List<Path> dirs, double xcacheFraction) {
        return TestOptions.of("model", "model", "batchSize", 4, "maxNewTokens", 4, "kvCache", kvCache, "csd", dirs,
                "xcacheFraction", xcacheFraction, "csdThreads", 2);
    }

    @Test
    void opensOneEmulatedDevicePerDirectoryFromEngineOptions() throws IOException {
        Path a = freshDirectory("factory-a");
        Path b = freshDirectory("factory-b");
        ModelConfig mha = CsdTestSupport.model(2, 4, 4, 32, 128);
        try (CsdKvCacheFactory factory = CsdKvCacheFactory.open(options("csd", List.of(a, b), 0.25), mha)) {
            assertEquals(List.of("csd0", "csd1"), factory.deviceNames());
            assertEquals(CsdKvCacheFactory.Placement.CSD, factory.placement());
            assertEquals(0.25, factory.xcacheFraction());
            assertEquals(16, factory.writebackTokens());
            String line = factory.describe();
            assertTrue(line.startsWith("kv-cache=csd (attention near storage) on 2 device(s)"), line);
            assertTrue(line.contains("X-cache 1/4 (configured)"), line);
            try (KvCache cache = factory.create(mha, 2, 32, (l, x, p, k, v) -> {
            }, new KvTraffic())) {
                cache.writePrompt(0, 0, new FloatMatrix(3, 128), new FloatMatrix(3, 128), new FloatMatrix(3, 128));
                assertEquals(0, cache.length(0), "length counts completed layers (the last one)");
            }
            assertEquals(2, factory.deviceStatistics().size());
            assertTrue(factory.deviceStatistics().get(0).directIo());
        }
        for (Path dir : List.of(a, b)) {
            try (Stream<Path> files = Files.list(dir)) {
                assertEquals(0, files.count(), "closing the factory removes the devices' files");
            }
        }
    }

    @Test
    void automaticXCacheFractionFollowsTheRuleOrIsZeroWhenXIsLarger() {
        Path dir = freshDirectory("factory-auto");
        ModelConfig mha = CsdTestSupport.model(1, 4, 4, 32, 128);
        try (CsdKvCacheFactory factory = CsdKvCacheFactory.open(options("csd", List.of(dir), Double.NaN), mha)) {
            double alpha = factory.xcacheFraction();
            assertTrue(alpha > 0 && alpha <= 0.5, "measured rule gives a power of two up to 1/2: " + alpha);
            assertEquals(alpha, Math.scalb(1.0, Math.getExponent(alpha)), "a power of two");
            assertTrue(factory.describe().contains("auto: B_storage"), factory.describe());
        }
        // Grouped-query attention with hidden > 2·kvDim: X is larger than K plus V.
        ModelConfig gqa = CsdTestSupport.model(1, 8, 1, 32, 256);
        assertFalse(XCachePolicy.xNoLargerThanKv(gqa));
        try (CsdKvCacheFactory factory = CsdKvCacheFactory.open(options("csd", List.of(dir), Double.NaN), gqa)) {
            assertEquals(0, factory.xcacheFraction());
            assertTrue(factory.describe().contains("is larger than K plus V"), factory.describe());
        }
    }

    @Test
    void theStorageBaselineKeepsNoX() {
        Path dir = freshDirectory("factory-storage");
        ModelConfig mha = CsdTestSupport.model(1, 4, 4, 32, 128);
        try (CsdKvCacheFactory factory = CsdKvCacheFactory.open(options("storage", List.of(dir), 0.5), mha)) {
            assertEquals(CsdKvCacheFactory.Placement.STORAGE, factory.placement());
            assertEquals(0, factory.xcacheFraction());
            assertTrue(factory.describe().startsWith("kv-cache=storage (pages read back to the host)"));
        }
    }

    @Test
    void memoryPlacementIsNotAStoragePlacement() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CsdKvCacheFactory.Placement.of("memory"));
        assertEquals("kv cache \"memory\" is not a storage placement (csd, storage)", e.getMessage());
    }

    @Test
    void inf2RuleRoundsToAPowerOfTwoCappedAtOneHalf() {
        assertEquals(0.5, XCachePolicy.rule(48e9, 25e9), "the paper's regime: 0.68 rounds to 1/2");
        assertEquals(0.5, XCachePolicy.rule(1e9, 10e9), "a link faster than storage is capped at 1/2");
        assertEquals(0.25, XCachePolicy.rule(7e9, 1e9), "2/8 = 1/4");
        assertEquals(1.0 / 64, XCachePolicy.rule(100e9, 1e9), "0.0198 rounds to 1/64");
        assertThrows(IllegalArgumentException.class, () -> XCachePolicy.rule(0, 1e9));
        assertThrows(IllegalArgumentException.class, () -> XCachePolicy.configured(1.5));
    }
}
