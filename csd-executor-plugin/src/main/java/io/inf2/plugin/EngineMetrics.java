package io.inf2.plugin;

import com.codahale.metrics.Gauge;
import com.codahale.metrics.MetricRegistry;
import io.inf2.engine.EngineStatistics;
import java.util.function.ToLongFunction;

/**
 * The executor's engine counters as gauges in Spark's metrics system (source
 * {@code plugin.io.inf2.plugin.Inf2SparkPlugin}), read from {@link EngineStatistics} when a sink polls.
 */
final class EngineMetrics {
    private EngineMetrics() {
    }

    static void register(MetricRegistry registry, Inf2ExecutorRuntime runtime) {
        gauge(registry, runtime, "requests", EngineStatistics::requests);
        gauge(registry, runtime, "failedRequests", EngineStatistics::failedRequests);
        gauge(registry, runtime, "promptTokens", EngineStatistics::promptTokens);
        gauge(registry, runtime, "tokensGenerated", EngineStatistics::generatedTokens);
        registry.register("tokensPerSecond", (Gauge<Double>) () -> runtime.statistics().tokensPerSecond());
        gauge(registry, runtime, "prefillTimeMs", s -> s.prefillNanos() / 1_000_000);
        gauge(registry, runtime, "decodeTimeMs", s -> s.decodeNanos() / 1_000_000);
        gauge(registry, runtime, "weightBytesRead", EngineStatistics::weightBytesRead);
        gauge(registry, runtime, "kvDeviceBytesRead", s -> s.kv().deviceReadBytes());
        gauge(registry, runtime, "kvDeviceBytesWritten", s -> s.kv().deviceWriteBytes());
        gauge(registry, runtime, "linkBytes", s -> s.kv().linkBytes());
        gauge(registry, runtime, "writebackBufferedBytes", s -> s.kv().writebackBufferedBytes());
        gauge(registry, runtime, "xcacheRecomputedBytes", s -> s.kv().recomputedXBytes());
        gauge(registry, runtime, "pagesWritten", s -> s.kv().pagesWritten());
        registry.register("activeTasks", (Gauge<Integer>) runtime::activeTasks);
    }

    private static void gauge(MetricRegistry registry, Inf2ExecutorRuntime runtime, String name,
                                ToLongFunction<EngineStatistics> value) {
        registry.register(name, (Gauge<Long>) () -> value.applyAsLong(runtime.statistics()));
    }
}
