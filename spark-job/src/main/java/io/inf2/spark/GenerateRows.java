package io.inf2.spark;

import io.inf2.engine.GenerationRequest;
import io.inf2.engine.GenerationResult;
import io.inf2.engine.InferenceEngine;
import io.inf2.engine.ProgressListener;
import io.inf2.model.tokenizer.Tokenizer;
import io.inf2.output.ResultArrow;
import io.inf2.output.ResultRow;
import io.inf2.plugin.EngineLease;
import io.inf2.plugin.Inf2ExecutorRuntime;
import io.inf2.plugin.PluginSettings;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/**
 * A partition's work: prepared rows, {@code rowsPerBatch} at a time, become one engine call on the
 * executor's shared engine; the results become an Arrow batch ({@link ResultArrow}) that Spark reads
 * through its columnar vectors, and leave as rows with the kept input columns after them. Rows whose
 * contents cannot become a request leave as error rows; a failure of the engine itself fails the
 * task, so Spark retries it.
 */
final class GenerateRows implements MapPartitionsFunction<Row, Row> {
    private static final long serialVersionUID = 1L;
    /** Arrow memory of this executor JVM's result batches; each batch has a child allocator, closed after it. */
    private static final BufferAllocator ARROW = new RootAllocator();

    private final PreparedRows layout;
    private final int rowsPerBatch;
    private final JobMetrics metrics;
    private final TaskFailureInjection failure;

    /** @param failure the test hook for this commit step, or null */
    GenerateRows(PreparedRows layout, int rowsPerBatch, JobMetrics metrics, TaskFailureInjection failure) {
        this.layout = layout;
        this.rowsPerBatch = rowsPerBatch;
        this.metrics = metrics;
        this.failure = failure;
    }

    /** Arrow bytes this JVM's result batches hold now: zero between batches, since each batch frees its own. */
    static long arrowBytesInUse() {
        return ARROW.getAllocatedMemory();
    }

    @Override
    public Iterator<Row> call(Iterator<Row> input) {
        return new Iterator<>() {
            private Iterator<Row> current = Collections.emptyIterator();
            private long produced;

            @Override
            public boolean hasNext() {
                while (!current.hasNext() && input.hasNext()) {
                    List<Row> chunk = new ArrayList<>(rowsPerBatch);
                    while (chunk.size() < rowsPerBatch && input.hasNext()) {
                        chunk.add(input.next());
                    }
                    current = generate(chunk).iterator();
                }
                return current.hasNext();
            }

            @Override
            public Row next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                Row row = current.next();
                produced++;
                if (failure != null) {
                    failure.check(produced);
                }
                return row;
            }
        };
    }

    private List<Row> generate(List<Row> chunk) {
        Inf2ExecutorRuntime runtime = Inf2ExecutorRuntime.get();
        String executor = runtime.executorId();
        int interval = runtime.config().get(PluginSettings.PROGRESS_INTERVAL_SECONDS);
        int n = chunk.size();
        ResultRow[] results = new ResultRow[n];
        PreparedRows.Prepared[] prepared = new PreparedRows.Prepared[n];
        List<Integer> accepted = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            PreparedRows.Prepared p = layout.prepare(chunk.get(i));
            prepared[i] = p;
            if (p.rejected()) {
                results[i] = new ResultRow(p.prompt(), GenerationResult.failed(p.id(), p.error()), executor, List.of());
            } else {
                accepted.add(i);
            }
        }
        long streamedTokens = 0;
        if (!accepted.isEmpty()) {
            try (EngineLease lease = runtime.acquire()) {
                InferenceEngine engine = lease.engine();
                List<GenerationRequest> requests = new ArrayList<>(accepted.size());
                List<Integer> requestAt = new ArrayList<>(accepted.size());
                for (int row : accepted) {
                    PreparedRows.Prepared p = prepared[row];
                    if (!p.chat()) {
                        requests.add(GenerationRequest.ofText(p.id(), p.prompt(), p.params()));
                        requestAt.add(row);
                        continue;
                    }
                    Tokenizer tokenizer = engine.tokenizer();
                    if (tokenizer == null) {
                        results[row] = new ResultRow(p.prompt(), GenerationResult.failed(p.id(),
                                "the model has no tokenizer.json to tokenize the rendered chat"), executor, List.of());
                        continue;
                    }
                    // The rendered chat already holds the template's special tokens (BOS included).
                    requests.add(GenerationRequest.ofTokens(p.id(), tokenizer.encode(p.prompt(), false), p.params()));
                    requestAt.add(row);
                }
                TokenCounter counter = new TokenCounter(executor, interval);
                List<GenerationResult> generated = engine.generate(requests, counter);
                streamedTokens = counter.tokens;
                for (int k = 0; k < generated.size(); k++) {
                    int row = requestAt.get(k);
                    results[row] = ResultRow.of(prepared[row].prompt(), generated.get(k), executor);
                }
                metrics.kvBytesKeptOffInterconnect.add(KvAccounting.keptOffInterconnectSinceLastCall(engine));
            }
        }
        int errors = 0;
        long completionTokens = 0;
        long promptTokens = 0;
        for (ResultRow r : results) {
            errors += r.isError() ? 1 : 0;
            completionTokens += r.result().completionTokens().length;
            promptTokens += r.result().promptTokens().length;
        }
        metrics.rows.add(n);
        metrics.errorRows.add(errors);
        metrics.completionTokens.add(completionTokens);
        metrics.promptTokens.add(promptTokens);
        ExecutorProgress.get().update(executor, n, errors, completionTokens - streamedTokens, interval);
        return toSparkRows(Arrays.asList(results), chunk);
    }

    /** Result rows through Arrow and Spark's columnar view into Spark rows, kept columns appended. */
    private List<Row> toSparkRows(List<ResultRow> results, List<Row> chunk) {
        int resultColumns = ResultColumns.SCHEMA.fields().length;
        int kept = layout.keptColumns();
        int firstKept = layout.firstKept();
        List<Row> rows = new ArrayList<>(results.size());
        try (BufferAllocator allocator = ARROW.newChildAllocator("inf2 result batch", 0, Long.MAX_VALUE);
             VectorSchemaRoot root = ResultArrow.toRoot(results, allocator)) {
            ColumnarBatch batch = ResultColumns.wrap(root);
            for (int i = 0; i < results.size(); i++) {
                Object[] values = new Object[resultColumns + kept];
                ResultColumns.copyRow(batch, i, values, 0);
                Row in = chunk.get(i);
                for (int k = 0; k < kept; k++) {
                    values[resultColumns + k] = in.get(firstKept + k);
                }
                rows.add(RowFactory.create(values));
            }
        }
        return rows;
    }

    /** Feeds tokens to the executor's progress line while an engine call runs. */
    private static final class TokenCounter implements ProgressListener {
        private final String executor;
        private final int interval;
        private long tokens;

        TokenCounter(String executor, int interval) {
            this.executor = executor;
            this.interval = interval;
        }

        @Override
        public void progress(int sequencesDone, int sequencesTotal, long tokensGenerated, long elapsedNanos) {
            ExecutorProgress.get().update(executor, 0, 0, tokensGenerated - tokens, interval);
            tokens = tokensGenerated;
        }
    }
}
