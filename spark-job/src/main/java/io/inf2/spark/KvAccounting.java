package io.inf2.spark;

import io.inf2.engine.InferenceEngine;
import io.inf2.kv.KvTraffic;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * Per executor JVM: how much KV traffic each shared engine produced since a task last asked. Tasks
 * of one executor share an engine and may generate at once, so each task takes the growth since the
 * previous reading, whoever caused it; summed over tasks that is the engine's total, counted once.
 */
final class KvAccounting {
    private static final Map<InferenceEngine, KvTraffic.Snapshot> LAST = new WeakHashMap<>();

    private KvAccounting() {
    }

    /** KV bytes kept off the interconnect by {@code engine} since the previous call for it. */
    static synchronized long keptOffInterconnectSinceLastCall(InferenceEngine engine) {
        KvTraffic.Snapshot now = engine.statistics().kv();
        KvTraffic.Snapshot before = LAST.getOrDefault(engine, KvTraffic.Snapshot.ZERO);
        LAST.put(engine, now);
        return keptOffInterconnect(now) - keptOffInterconnect(before);
    }

    /**
     * Bytes the storage devices moved on their own media that never crossed the host interconnect:
     * what they read and wrote, less what went over the link. With attention near storage the cache
     * is read inside the devices and only queries and partial results cross; with the plain-storage
     * baseline every byte read crosses, so this stays near zero.
     */
    static long keptOffInterconnect(KvTraffic.Snapshot s) {
        return Math.max(0, s.deviceReadBytes() + s.deviceWriteBytes() - s.linkBytes());
    }
}
