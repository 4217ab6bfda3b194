package io.inf2.cli;

import io.inf2.config.Inf2Config;
import io.inf2.engine.EngineOptions;
import io.inf2.engine.EngineStatistics;
import io.inf2.engine.GenerationRequest;
import io.inf2.engine.GenerationResult;
import io.inf2.engine.InferenceEngine;
import io.inf2.engine.ProgressListener;
import io.inf2.kv.KvTraffic;
import io.inf2.output.ResultFiles;
import io.inf2.output.ResultRow;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** {@code inf2 generate}: prompts file in, results file out, progress and a summary on stderr. */
final class GenerateCommand {
    private static final long PROGRESS_INTERVAL_NANOS = 500_000_000L;

    private GenerateCommand() {
    }

    static void run(Inf2Config config, PrintStream out, PrintStream err) {
        EngineOptions options = EngineOptions.from(config);
        Path promptsFile = config.get(CliSettings.PROMPTS);
        Path outputFile = config.get(CliSettings.OUTPUT);
        List<GenerationRequest> requests = PromptFile.read(promptsFile, options.defaults());
        try (InferenceEngine engine = InferenceEngine.open(options)) {
            err.println("inf2: " + engine.describe());
            long start = System.nanoTime();
            List<GenerationResult> results = engine.generate(requests, new ProgressLine(err));
            double seconds = (System.nanoTime() - start) / 1e9;
            List<ResultRow> rows = new ArrayList<>(results.size());
            String host = hostName();
            for (int i = 0; i < results.size(); i++) {
                GenerationRequest r = requests.get(i);
                rows.add(ResultRow.of(r.prompt(), results.get(i), host));
            }
            long written = ResultFiles.write(outputFile, rows);
            err.println();
            err.print(summary(engine.statistics(), results, seconds));
            out.println(outputFile.toAbsolutePath() + " (" + written + " rows)");
        }
    }

    static String summary(EngineStatistics s, List<GenerationResult> results, double seconds) {
        long errors = results.stream().filter(GenerationResult::isError).count();
        long tokens = results.stream().mapToLong(r -> r.completionTokens().length).sum();
        KvTraffic.Snapshot kv = s.kv();
        return String.format("""
                inf2 summary: %d sequences (%d errors), %d tokens generated in %.2f s: %.1f tokens/s
                  prompt tokens %d; prefill %.2f s, decode %.2f s
                  KV traffic: interconnect %s, read inside devices %s, written inside devices %s, pages written %d,
                              writeback buffer peak %s, X recomputed from %s
                """, results.size(), errors, tokens, seconds, tokens / Math.max(seconds, 1e-9), s.promptTokens(),
                s.prefillNanos() / 1e9, s.decodeNanos() / 1e9, bytes(kv.linkBytes()), bytes(kv.deviceReadBytes()),
                bytes(kv.deviceWriteBytes()), kv.pagesWritten(), bytes(kv.writebackBufferedPeakBytes()),
                bytes(kv.recomputedXBytes()));
    }

    static String bytes(long b) {
        if (b < 1024) {
            return b + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double v = b;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format("%.1f %s", v, units[u]);
    }

    private static String hostName() {
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (java.io.IOException e) {
            return "localhost";
        }
    }

    /** A single updating progress line on stderr: sequences done, tokens, tokens/s. */
    private static final class ProgressLine implements ProgressListener {
        private final PrintStream err;
        private long lastPrint;

        ProgressLine(PrintStream err) {
            this.err = err;
        }

        @Override
        public void progress(int done, int total, long tokens, long elapsedNanos) {
            if (elapsedNanos - lastPrint < PROGRESS_INTERVAL_NANOS && done < total) {
                return;
            }
            lastPrint = elapsedNanos;
            err.printf("\rinf2: %d/%d sequences, %d tokens, %.1f tokens/s   ", done, total, tokens,
                    tokens * 1e9 / Math.max(elapsedNanos, 1));
            err.flush();
        }
    }
}
