package io.inf2.engine;

import io.inf2.kv.KvTraffic;

/**
 * Cumulative counters of an engine since it was opened.
 *
 * @param weightBytesRead bytes of layer weights read from storage (weights=storage)
 * @param kv where KV-cache bytes went (interconnect, inside devices, writeback, X-cache)
 */
public record EngineStatistics(long requests, long failedRequests, long promptTokens, long generatedTokens,
                               long prefillNanos, long decodeNanos, long weightBytesRead, KvTraffic.Snapshot kv) {

    /** Before any request: every counter zero. */
    public static final EngineStatistics ZERO = new EngineStatistics(0, 0, 0, 0, 0, 0, 0, KvTraffic.Snapshot.ZERO);

    /** Generated tokens per second of prefill plus decode time. */
    public double tokensPerSecond() {
        long nanos = prefillNanos + decodeNanos;
        return nanos == 0 ? 0 : generatedTokens * 1e9 / nanos;
    }
}
