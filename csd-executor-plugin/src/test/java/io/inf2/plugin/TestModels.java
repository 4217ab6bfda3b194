package io.inf2.plugin;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import io.inf2.model.presets.ModelInitializer;
import io.inf2.model.presets.ModelPreset;
import io.inf2.tensor.DType;
import java.util.Random;

/** Model directories of real files for tests: model-shaped files of random bytes, or a real tiny model. */
final class TestModels {
    private TestModels() {
    }

    /** config.json, tokenizer.json, two weight shards of {@code shardBytes}, a nested file, and two hidden files. */
    static Path write(Path dir, int shardBytes, long seed) throws IOException {
        Files.createDirectories(dir.resolve("extra"));
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"opt\", \"hidden_size\": 64}");
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {\"type\": \"BPE\"}}");
        Random random = new Random(seed);
        for (String shard : new String[] {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}) {
            byte[] bytes = new byte[shardBytes];
            random.nextBytes(bytes);
            Files.write(dir.resolve(shard), bytes);
        }
        Files.writeString(dir.resolve("extra/generation_config.json"), "{\"eos_token_id\": 2}");
        Files.writeString(dir.resolve("_SUCCESS"), "");
        Files.writeString(dir.resolve(".gitattributes"), "*.safetensors filter=lfs");
        return dir;
    }

    /** The tiny-opt preset (random weights, a real tokenizer) written as a Hugging Face model directory. */
    static Path writeTinyOpt(Path dir) throws IOException {
        return ModelInitializer.write(ModelPreset.named("tiny-opt"), 1, DType.F32, dir).directory();
    }
}
