package io.inf2.spark;

import java.io.Serializable;
import org.apache.spark.SparkContext;
import org.apache.spark.util.LongAccumulator;

/**
 * Counters the tasks add to and the driver reads for the summary. Spark applies a task's updates
 * once, for its successful attempt only, so retried tasks are not counted twice.
 */
final class JobMetrics implements Serializable {
    private static final long serialVersionUID = 1L;

    final LongAccumulator rows;
    final LongAccumulator errorRows;
    final LongAccumulator promptTokens;
    final LongAccumulator completionTokens;
    final LongAccumulator kvBytesKeptOffInterconnect;

    JobMetrics(SparkContext sc) {
        rows = sc.longAccumulator("inf2 rows");
        errorRows = sc.longAccumulator("inf2 error rows");
        promptTokens = sc.longAccumulator("inf2 prompt tokens");
        completionTokens = sc.longAccumulator("inf2 completion tokens");
        kvBytesKeptOffInterconnect = sc.longAccumulator("inf2 KV bytes kept off the interconnect");
    }
}
