package io.inf2.model.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;

/**
 * Writes a model's tensors the way HF's {@code save_pretrained(safe_serialization=True)} lays them out:
 * one {@code model.safetensors} when everything fits in one shard, otherwise
 * {@code model-00001-of-0000N.safetensors} ... plus {@code model.safetensors.index.json} mapping each
 * tensor to its shard. Shards are filled in tensor order and a new one starts when the next tensor
 * would push the current shard past the limit (a tensor larger than the limit gets a shard of its own),
 * so a layer's tensors stay together.
 */
public final class ShardedSafetensorsWriter {

    /** HF's default {@code max_shard_size} ("5GB", decimal). */
    public static final long HF_DEFAULT_MAX_SHARD_BYTES = 5_000_000_000L;

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private ShardedSafetensorsWriter() {
    }

    /**
     * Writes {@code tensors} (bytes from {@code source}) into {@code dir}, which must exist.
     *
     * @return the weight files written, in shard order
     */
    public static List<Path> write(Path dir, List<TensorSpec> tensors, long maxShardBytes, TensorSource source) throws IOException {
        List<List<TensorSpec>> shards = planShards(tensors, maxShardBytes);
        if (shards.size() == 1) {
            Path file = dir.resolve(SafetensorsCheckpoint.SINGLE_FILE_NAME);
            SafetensorsWriter.write(file, shards.getFirst(), SafetensorsWriter.PYTORCH_METADATA, source);
            return List.of(file);
        }
        List<Path> files = new ArrayList<>();
        TreeMap<String, String> weightMap = new TreeMap<>();
        long totalBytes = 0;
        for (int i = 0; i < shards.size(); i++) {
            String name = shardFileName(i + 1, shards.size());
            Path file = dir.resolve(name);
            SafetensorsWriter.write(file, shards.get(i), SafetensorsWriter.PYTORCH_METADATA, source);
            files.add(file);
            for (TensorSpec spec : shards.get(i)) {
                weightMap.put(spec.name(), name);
                totalBytes += spec.byteSize();
            }
        }
        ObjectNode index = JSON.createObjectNode();
        index.putObject("metadata").put("total_size", totalBytes);
        ObjectNode map = index.putObject("weight_map");
        weightMap.forEach(map::put);
        // The index goes last: a directory whose index exists has all its shards.
        Files.write(dir.resolve(SafetensorsCheckpoint.INDEX_FILE_NAME), JSON.writeValueAsBytes(index));
        return files;
    }

    /** HF's shard name: {@code model-00002-of-00005.safetensors}. */
    public static String shardFileName(int shard, int shardCount) {
        return String.format("model-%05d-of-%05d.safetensors", shard, shardCount);
    }

    /** Splits tensors, in order, into shards of at most {@code maxShardBytes} (a larger tensor alone in its shard). */
    static List<List<TensorSpec>> planShards(List<TensorSpec> tensors, long maxShardBytes) {
        if (maxShardBytes <= 0) {
            throw new IllegalArgumentException("max shard size must be positive, got " + maxShardBytes);
        }
        List<List<TensorSpec>> shards = new ArrayList<>();
        List<TensorSpec> current = new ArrayList<>();
        long currentBytes = 0;
        for (TensorSpec spec : tensors) {
            if (!current.isEmpty() && currentBytes + spec.byteSize() > maxShardBytes) {
                shards.add(current);
                current = new ArrayList<>();
                currentBytes = 0;
            }
            current.add(spec);
            currentBytes += spec.byteSize();
        }
        shards.add(current);
        return shards;
    }
}
