package io.inf2.kv;

import io.inf2.model.ModelConfig;
import java.util.List;

/**
 * Opens KV caches for engine batches. A factory lives as long as its engine and owns what is shared
 * between batches (opened devices, their threads, buffers); each cache it creates belongs to one
 * batch.
 */
public interface KvCacheFactory extends AutoCloseable {

    /**
     * A cache for up to {@code slots} sequences of up to {@code maxTokens} tokens each.
     *
     * @param projector recomputes K and V from X for places that keep X (may be unused)
     * @param traffic   where the cache counts its bytes
     */
    KvCache create(ModelConfig model, int slots, int maxTokens, KvProjector projector, KvTraffic traffic);

    /** Names of the devices that hold caches, for results and metrics ("host" for memory). */
    List<String> deviceNames();

    /** One line for logs: placement, devices, writeback threshold, X-cache fraction. */
    String describe();

    @Override
    void close();

    /** What opens one batch's cache, for {@link #perBatch}. */
    @FunctionalInterface
    interface BatchCacheOpener {
        KvCache create(ModelConfig model, int slots, int maxTokens, KvProjector projector, KvTraffic traffic);
    }

    /**
     * A factory for places that share nothing between batches: each cache owns all it holds, so the
     * factory has nothing to close.
     *
     * @param deviceName  the one device name the place reports
     * @param description its line for logs
     */
    static KvCacheFactory perBatch(String deviceName, String description, BatchCacheOpener opener) {
        return new KvCacheFactory() {
            @Override
            public KvCache create(ModelConfig model, int slots, int maxTokens, KvProjector projector, KvTraffic traffic) {
                return opener.create(model, slots, maxTokens, projector, traffic);
            }

            @Override
            public List<String> deviceNames() {
                return List.of(deviceName);
            }

            @Override
            public String describe() {
                return description;
            }

            @Override
            public void close() {
            }
        };
    }
}
