package io.inf2.spark;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.inf2.config.ConfigException;
import io.inf2.config.Inf2Config;
import io.inf2.config.Setting;
import io.inf2.config.Settings;
import io.inf2.engine.EngineOptions;
import io.inf2.engine.GenerationRequest;
import io.inf2.engine.GenerationResult;
import io.inf2.engine.InferenceEngine;
import io.inf2.engine.ProgressListener;
import io.inf2.engine.SamplingParams;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * What Spark costs on top of the engine: the same prompts and model through the standalone engine
 * and through the batch job in local[2], each after a warm-up that opens the engine, greedy so both
 * must give the same tokens; timed runs alternate between the two and the best of each is compared. The job's time is the whole {@link Inf2#run} call: reading the input,
 * numbering the rows, generating, writing Parquet. Prints one JSON object. Not a test: the figures
 * depend on the machine.
 *
 * <p>Usage: {@code JobOverheadBench --model DIR [--rows 64] [--warmup-rows 4] [--repeats 3] [--work-dir DIR]
 * [--max-new-tokens 32] [--batch-size 16] [--kv-cache memory] [other engine settings]}
 */
public final class JobOverheadBench {
    private static final Setting<Integer> ROWS = Settings.integer("bench", "rows", "64", "Prompts in the timed run.", 1, 1 << 20);
    private static final Setting<Integer> WARMUP_ROWS = Settings.integer("bench", "warmupRows", "4",
            "Prompts of the untimed run that opens the engine.", 1, 1 << 20);
    private static final Setting<Integer> REPEATS = Settings.integer("bench", "repeats", "3",
            "Timed runs of each side, alternating; the best of each is compared.", 1, 100);
    private static final Setting<String> WORK_DIR = new Setting<>("bench", "workDir", "directory", "",
            "Where inputs and outputs go; empty: a new directory under java.io.tmpdir.", Function.identity(), s -> true, "a path");
    private static final String MASTER = "local[2]";

    private JobOverheadBench() {
    }

    public static void main(String[] args) throws IOException {
        List<Setting<?>> catalog = new ArrayList<>(Settings.all());
        catalog.addAll(List.of(ROWS, WARMUP_ROWS, REPEATS, WORK_DIR));
        Inf2Config config;
        try {
            config = Inf2Config.fromArgs(args, catalog).config();
            config.get(Settings.MODEL);
        } catch (ConfigException e) {
            System.err.println("JobOverheadBench: " + e.getMessage());
            System.exit(2);
            return;
        }
        Path work = config.get(WORK_DIR).isEmpty() ? Files.createTempDirectory("inf2-job-bench-") : Path.of(config.get(WORK_DIR));
        int rows = config.get(ROWS);
        int warmupRows = config.get(WARMUP_ROWS);
        List<String> prompts = prompts(rows, 0);
        List<String> warmup = prompts(warmupRows, rows);
        Map<String, String> engineSettings = new LinkedHashMap<>();
        for (Setting<?> s : Settings.all()) {
            String text = config.asText().get(s.name());
            if (text != null) {
                engineSettings.put(s.name(), text);
            }
        }

        // Both sides are set up and warmed up first (the plugin opens its engine in the first task of the
        // warm-up job); then the timed runs alternate, so that load from other processes on the machine
        // falls on both alike.
        Inf2Config engineConfig = Inf2Config.fromNames(engineSettings, Settings.all(), "--");
        EngineOptions options = EngineOptions.from(engineConfig);
        Path input = writeJsonl(work.resolve("input/prompts.jsonl"), prompts);
        Path warmupInput = writeJsonl(work.resolve("warmup/prompts.jsonl"), warmup);
        Map<String, String> conf = new HashMap<>();
        conf.put("spark.master", MASTER);
        conf.put("spark.ui.showConsoleProgress", "false");
        conf.put("spark.local.dir", work.resolve("spark-local").toString());
        conf.put("spark.inf2.workDir", work.resolve("inf2-work").toString());
        engineSettings.forEach((k, v) -> conf.put(Setting.SPARK_PREFIX + k, v));

        long t0 = System.nanoTime();
        InferenceEngine engine = InferenceEngine.open(options);
        double standaloneOpen = seconds(t0);
        long t1 = System.nanoTime();
        SparkSession spark = Inf2.session(conf);
        double sessionStart = seconds(t1);
        int repeats = config.get(REPEATS);
        List<Double> standaloneRuns = new ArrayList<>();
        List<Double> jobRuns = new ArrayList<>();
        List<Double> generateAndWriteRuns = new ArrayList<>();
        List<GenerationResult> standalone = null;
        JobSummary job = null;
        double warmupJob;
        boolean same = true;
        String engineDescription = engine.describe();
        try {
            engine.generate(requests(warmup, options.defaults()), ProgressListener.NONE);
            long t2 = System.nanoTime();
            Inf2.run(spark, Map.of("input", warmupInput.toString(), "output", work.resolve("warmup-out").toString(),
                    "outputMode", "overwrite"));
            warmupJob = seconds(t2);
            for (int r = 0; r < repeats; r++) {
                long t3 = System.nanoTime();
                standalone = engine.generate(requests(prompts, options.defaults()), ProgressListener.NONE);
                standaloneRuns.add(round(seconds(t3)));
                Path output = work.resolve("output-" + r);
                long t4 = System.nanoTime();
                job = Inf2.run(spark, Map.of("input", input.toString(), "output", output.toString(), "outputMode", "overwrite"));
                jobRuns.add(round(seconds(t4)));
                generateAndWriteRuns.add(round(job.seconds()));
                same &= sameCompletions(spark, output, prompts, standalone);
            }
        } finally {
            spark.stop();
            engine.close();
        }
        long tokens = standalone.stream().mapToLong(r -> r.completionTokens().length).sum();
        double standaloneBest = standaloneRuns.stream().mapToDouble(Double::doubleValue).min().orElseThrow();
        double jobBest = jobRuns.stream().mapToDouble(Double::doubleValue).min().orElseThrow();

        ObjectMapper json = new ObjectMapper();
        ObjectNode out = json.createObjectNode();
        out.put("benchmark", "spark-job-overhead");
        out.put("model", options.model().toString());
        out.put("engine", engineDescription);
        out.put("rows", rows);
        out.put("max_new_tokens", options.defaults().maxNewTokens());
        out.put("batch_size", options.batchSize());
        out.put("kv_cache", options.kvCache());
        out.put("repeats", repeats);
        out.put("same_completions", same);
        ObjectNode standaloneNode = out.putObject("standalone");
        standaloneNode.put("engine_open_s", round(standaloneOpen));
        standaloneNode.putPOJO("generate_s", standaloneRuns);
        standaloneNode.put("tokens", tokens);
        standaloneNode.put("tokens_per_s_best", round(tokens / standaloneBest));
        ObjectNode sparkNode = out.putObject("spark");
        sparkNode.put("master", MASTER);
        sparkNode.put("session_start_s", round(sessionStart));
        sparkNode.put("warmup_job_s", round(warmupJob));
        sparkNode.putPOJO("job_s", jobRuns);
        sparkNode.putPOJO("of_which_generate_and_write_s", generateAndWriteRuns);
        sparkNode.put("tokens", job.completionTokens());
        sparkNode.put("tokens_per_s_best", round(job.completionTokens() / jobBest));
        sparkNode.put("error_rows", job.errorRows());
        ObjectNode overhead = out.putObject("overhead_best_of_runs");
        overhead.put("job_over_standalone_generate", round(jobBest / standaloneBest));
        overhead.put("extra_s", round(jobBest - standaloneBest));
        overhead.put("extra_s_per_row", round((jobBest - standaloneBest) / rows));
        System.out.println(json.writerWithDefaultPrettyPrinter().writeValueAsString(out));
    }

    private static List<String> prompts(int n, int offset) {
        List<String> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add("Prompt number " + (offset + i) + " of the benchmark: the quick brown fox jumps over the lazy dog");
        }
        return out;
    }

    private static List<GenerationRequest> requests(List<String> prompts, SamplingParams params) {
        List<GenerationRequest> out = new ArrayList<>(prompts.size());
        for (int i = 0; i < prompts.size(); i++) {
            out.add(GenerationRequest.ofText("r" + i, prompts.get(i), params));
        }
        return out;
    }

    private static Path writeJsonl(Path file, List<String> prompts) throws IOException {
        Files.createDirectories(file.getParent());
        ObjectMapper json = new ObjectMapper();
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < prompts.size(); i++) {
            sb.append(json.writeValueAsString(Map.of("id", "r" + i, "prompt", prompts.get(i)))).append('\n');
        }
        Files.writeString(file, sb.toString(), StandardCharsets.UTF_8);
        return file;
    }

    /** Whether the job wrote, for every prompt, the tokens the standalone engine generated. */
    private static boolean sameCompletions(SparkSession spark, Path output, List<String> prompts, List<GenerationResult> standalone) {
        Map<String, List<Integer>> byPrompt = new HashMap<>();
        for (Row r : spark.read().parquet(output.toString()).select("prompt", "completion_token_ids").collectAsList()) {
            byPrompt.put(r.getString(0), r.isNullAt(1) ? null : r.getList(1));
        }
        for (int i = 0; i < prompts.size(); i++) {
            List<Integer> expected = new ArrayList<>();
            for (int t : standalone.get(i).completionTokens()) {
                expected.add(t);
            }
            if (!expected.equals(byPrompt.get(prompts.get(i)))) {
                return false;
            }
        }
        return true;
    }

    private static double seconds(long startNanos) {
        return (System.nanoTime() - startNanos) / 1e9;
    }

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }
}
