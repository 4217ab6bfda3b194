package io.inf2.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import io.inf2.compute.cuda.CudaBackend;
import io.inf2.config.ConfigException;
import io.inf2.config.Inf2Config;
import io.inf2.config.Settings;
import io.inf2.model.presets.ModelInitializer;
import io.inf2.model.presets.ModelPreset;
import io.inf2.tensor.DType;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The GPU KV placement where no GPU runs the model: opening an engine with {@code kvCache=gpu} on the
 * CPU backend fails with one line naming the setting (Spark key and flag) and why. The GPU side is
 * {@link CudaKvEngineTest}.
 */
class GpuKvPlacementTest {
    @TempDir
    Path dir;

    @Test
    void theSettingAcceptsGpu() {
        Inf2Config config = Inf2Config.fromNames(Map.of("kvCache", "GPU"), Settings.all(), "");
        assertEquals("gpu", config.get(Settings.KV_CACHE));
        ConfigException wrong = assertThrows(ConfigException.class,
                () -> Inf2Config.fromNames(Map.of("kvCache", "hbm"), Settings.all(), "").get(Settings.KV_CACHE));
        assertTrue(wrong.getMessage().contains("memory, gpu, csd, storage"), wrong.getMessage());
    }

    @Test
    void onTheCpuBackendOpeningFailsNamingTheSetting() throws IOException {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> open("cpu"));
        assertEquals("spark.inf2.kvCache=gpu (--kv-cache gpu) keeps the KV cache in GPU memory and needs the cuda backend, "
                + "but the engine runs on backend=cpu; set spark.inf2.backend / --backend to cuda", e.getMessage());
    }

    @Test
    void whenAutoFallsBackToTheCpuOpeningFailsWithTheReason() throws IOException {
        CudaBackend.Availability cuda = CudaBackend.availability();
        assumeFalse(cuda.available(), "CUDA is available here, so backend=auto does not fall back to the CPU");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> open("auto"));
        assertTrue(e.getMessage().startsWith("spark.inf2.kvCache=gpu (--kv-cache gpu) keeps the KV cache in GPU memory"),
                e.getMessage());
        assertTrue(e.getMessage().endsWith("but backend=auto fell back to the CPU (" + cuda.reason() + ")"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line");
    }

    private void open(String backend) throws IOException {
        Path model = dir.resolve("model");
        ModelInitializer.write(ModelPreset.named("tiny-opt"), 1, DType.F32, model);
        Inf2Config config = Inf2Config.fromNames(Map.of("model", model.toString(), "backend", backend, "kvCache", "gpu",
                "threads", "1"), Settings.all(), "");
        try (InferenceEngine engine = InferenceEngine.open(EngineOptions.from(config))) {
            throw new AssertionError("opened " + engine.describe());
        }
    }
}
