package io.inf2.spark;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.pmod;
import static org.apache.spark.sql.functions.xxhash64;

import io.inf2.config.ConfigException;
import io.inf2.config.Inf2Config;
import io.inf2.config.Setting;
import io.inf2.config.Settings;
import io.inf2.output.ResultArrow;
import java.io.IOException;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.storage.StorageLevel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * INF2 from Spark code and notebooks; the batch job ({@link BatchInferenceJob}) is a thin wrapper
 * around {@link #run}.
 *
 * <pre>{@code
 * SparkSession spark = Inf2.session(Map.of("spark.inf2.model", "/models/opt-1.3b"));
 * Dataset<Row> results = Inf2.generate(spark.read().parquet("prompts.parquet"),
 *         Map.of("promptColumn", "text", "maxNewTokens", "64"));
 * }</pre>
 *
 * <p>The driver JVM (a notebook kernel, a test, an application) must run on JDK 25 with the flags in
 * {@code bin/lib/find-java.sh}'s {@code INF2_JVM_FLAGS}: {@code --add-modules=jdk.incubator.vector
 * --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow} and Spark's
 * {@code --add-opens} list. In {@code local[N]} the engine runs in that JVM; executors that Spark
 * forks get the same flags from {@link #session}.
 */
public final class Inf2 {
    /** The class that spark.plugins must name. */
    public static final String PLUGIN = "io.inf2.plugin.Inf2SparkPlugin";

    private static final Logger LOG = LoggerFactory.getLogger(Inf2.class);
    /** The automatic partition count (see partitions): at most this many per default-parallelism slot ... */
    private static final int PARTITIONS_PER_SLOT = 4;
    /** ... and at least this many engine calls' worth of rows per partition. */
    private static final int CALLS_PER_PARTITION = 8;

    private Inf2() {
    }

    /**
     * A SparkSession with the INF2 plugin. {@code conf} holds Spark keys ({@code spark.master},
     * {@code spark.inf2.model}, ...); without a master (here or from spark-submit) it is
     * {@code local[*]}. The engine's and plugin's settings are fixed for the session's life.
     */
    public static SparkSession session(Map<String, String> conf) {
        SparkConf defaults = new SparkConf();
        SparkSession.Builder builder = SparkSession.builder();
        conf.forEach(builder::config);
        if (!conf.containsKey("spark.master") && !defaults.contains("spark.master")) {
            builder.master("local[*]");
        }
        if (!conf.containsKey("spark.app.name") && !defaults.contains("spark.app.name")) {
            builder.appName("inf2");
        }
        String plugins = conf.getOrDefault("spark.plugins", defaults.get("spark.plugins", ""));
        if (!Arrays.asList(plugins.split(",")).contains(PLUGIN)) {
            builder.config("spark.plugins", plugins.isBlank() ? PLUGIN : plugins + "," + PLUGIN);
        }
        if (!conf.containsKey("spark.ui.showConsoleProgress") && !defaults.contains("spark.ui.showConsoleProgress")) {
            builder.config("spark.ui.showConsoleProgress", "true");
        }
        SparkSession spark = builder.getOrCreate();
        requirePlugin(spark);
        // getOrCreate hands back a running session as it is: the engine settings asked for here would
        // silently not apply.
        SparkConf running = spark.sparkContext().getConf();
        conf.forEach((key, value) -> {
            if (key.startsWith(Setting.SPARK_PREFIX) && !value.equals(running.get(key, null))) {
                throw new ConfigException("a SparkSession is already running with " + key + "="
                        + (running.contains(key) ? "\"" + running.get(key) + "\"" : "unset") + " (asked for \"" + value
                        + "\"); INF2's settings are fixed for a session's life: stop it first (spark.stop())");
            }
        });
        return spark;
    }

    /**
     * Generates for every row of {@code prompts}; lazy like any transformation, apart from a first
     * pass that checks the columns and numbers the rows. The result has the columns of
     * {@link ResultArrow} (id, prompt, completion, ...) and then the kept columns. {@code options}
     * are settings by name or Spark key: the row settings of {@link JobSettings} and the generation
     * settings (maxNewTokens, temperature, ...); the engine's are the session's.
     */
    public static Dataset<Row> generate(Dataset<Row> prompts, Map<String, String> options) {
        SparkSession spark = prompts.sparkSession();
        requirePlugin(spark);
        Map<String, String> session = JobConfig.fromSparkConf(spark.sparkContext().getConf());
        Map<String, String> given = JobConfig.fromOptions(options);
        JobConfig.checkPerCallOptions(session, given);
        Inf2Config config = JobConfig.merge(session, given);
        PromptPreparation.Prepared prepared = PromptPreparation.prepare(spark, prompts, config);
        return generateRows(spark, prepared, prepared.rows(), prepared.rowCount(), config,
                new JobMetrics(spark.sparkContext()), null);
    }

    /**
     * The batch job: reads the input, generates, writes Parquet to the output in commit steps, and
     * returns the summary. {@code options} as for {@link #generate}, plus input, output and the other
     * job settings; engine settings must match the session's.
     */
    public static JobSummary run(SparkSession spark, Map<String, String> options) {
        requirePlugin(spark);
        Map<String, String> session = JobConfig.fromSparkConf(spark.sparkContext().getConf());
        Map<String, String> given = JobConfig.fromOptions(options);
        Map<String, String> perCall = new LinkedHashMap<>(given);
        JobSettings.jobOnly().forEach(s -> perCall.remove(s.name()));
        JobConfig.checkPerCallOptions(session, perCall);
        Inf2Config config = JobConfig.merge(session, given);
        return new BatchInference(spark, config).run();
    }

    private static void requirePlugin(SparkSession spark) {
        String plugins = spark.sparkContext().getConf().get("spark.plugins", "");
        if (!Arrays.asList(plugins.split(",")).contains(PLUGIN)) {
            throw new ConfigException("this SparkSession was started without the INF2 plugin: spark.plugins must include "
                    + PLUGIN + " (start it with Inf2.session(...) or bin/inf2-submit)");
        }
    }

    /** Rows spread over partitions by id, then generated for; the caller writes or returns them. */
    static Dataset<Row> generateRows(SparkSession spark, PromptPreparation.Prepared prepared, Dataset<Row> rows,
                                     long rowCount, Inf2Config config, JobMetrics metrics, TaskFailureInjection failure) {
        int rowsPerBatch = config.get(JobSettings.ROWS_PER_BATCH);
        if (rowsPerBatch == 0) {
            rowsPerBatch = config.get(Settings.BATCH_SIZE);
        }
        int partitions = config.get(JobSettings.PARTITIONS);
        if (partitions == 0) {
            // Rows go to partitions by a hash of their id, so every partition ends with a partly filled
            // engine call; enough calls per partition keep that waste small.
            long byCalls = Math.max(1, rowCount / ((long) CALLS_PER_PARTITION * rowsPerBatch));
            partitions = (int) Math.min(byCalls, (long) PARTITIONS_PER_SLOT * spark.sparkContext().defaultParallelism());
        }
        return rows.repartition(partitions, col(PromptPreparation.ID))
                .mapPartitions(new GenerateRows(prepared.layout(), rowsPerBatch, metrics, failure),
                        Encoders.row(prepared.outputSchema()));
    }

    /** The batch job's steps; one instance per run. */
    private static final class BatchInference {
        private final SparkSession spark;
        private final Inf2Config config;

        BatchInference(SparkSession spark, Inf2Config config) {
            this.spark = spark;
            this.config = config;
        }

        JobSummary run() {
            long runStart = System.nanoTime();
            String input = config.get(JobSettings.INPUT);
            String output = config.get(JobSettings.OUTPUT);
            boolean resume = config.get(JobSettings.RESUME);
            String mode = config.get(JobSettings.OUTPUT_MODE);
            if (resume && mode.equals("overwrite")) {
                throw new ConfigException(JobSettings.RESUME.cliFlag() + " keeps the output and "
                        + JobSettings.OUTPUT_MODE.cliFlag() + " overwrite replaces it: give one of them");
            }
            Path outputPath = new Path(output);
            boolean exists = exists(outputPath);
            if (exists && !resume && mode.equals("error")) {
                throw new ConfigException(JobSettings.OUTPUT.name() + " \"" + output + "\" already exists; give "
                        + JobSettings.OUTPUT_MODE.cliFlag() + " overwrite to replace it or " + JobSettings.RESUME.cliFlag()
                        + " to finish it");
            }
            if (exists && resume) {
                removeUncommitted(outputPath);
            }
            boolean hasRows = exists && hasDataFiles(outputPath);
            String format = JobInput.resolveFormat(spark, input, config.get(JobSettings.INPUT_FORMAT));
            PromptPreparation.Prepared prepared = PromptPreparation.prepare(spark, JobInput.read(spark, input, format), config);
            Dataset<Row> todo = prepared.rows();
            long remaining = prepared.rowCount();
            int commitRows = config.get(JobSettings.COMMIT_ROWS);
            boolean persisted = false;
            try {
                if (resume && hasRows) {
                    Dataset<Row> done = spark.read().parquet(output);
                    checkResumable(done.schema(), prepared.outputSchema(), output);
                    todo = todo.join(done.select(col(ResultArrow.ID).as("__inf2_done")),
                            col(PromptPreparation.ID).equalTo(col("__inf2_done")), "left_anti")
                            .persist(StorageLevel.MEMORY_AND_DISK());
                    persisted = true;
                    remaining = todo.count();
                    if (remaining == prepared.rowCount() && remaining > 0) {
                        long doneRows = done.count();
                        if (doneRows > 0) {
                            // Regenerating everything would put every row in the output twice.
                            throw new ConfigException(JobSettings.OUTPUT.name() + " \"" + output + "\" has " + doneRows
                                    + " rows but none of their ids is in this input (ids of file inputs come from the file's "
                                    + "path and line, or from idColumn): resume with the input and idColumn of the run that "
                                    + "wrote it, or write elsewhere");
                        }
                    }
                    LOG.info("INF2 resume: {} of {} rows are already in {}", prepared.rowCount() - remaining,
                            prepared.rowCount(), output);
                }
                long steps = commitRows == 0 ? 1 : Math.max(1, (remaining + commitRows - 1) / commitRows);
                if (steps > 1 && !persisted) {
                    // Every step reads the prepared rows again: keep them instead of re-reading the input.
                    todo = todo.persist(StorageLevel.MEMORY_AND_DISK());
                    persisted = true;
                }
                JobMetrics metrics = new JobMetrics(spark.sparkContext());
                long start = System.nanoTime();
                // The first step creates the output, replaces it (overwrite, or a resumed output that a
                // failed first step left without data) or adds to it (resume).
                SaveMode firstMode = !exists ? SaveMode.ErrorIfExists
                        : resume && hasRows ? SaveMode.Append : SaveMode.Overwrite;
                if (remaining > 0 || firstMode != SaveMode.Append) {
                    write(prepared, todo, remaining, steps, metrics, firstMode, outputPath);
                }
                double seconds = (System.nanoTime() - start) / 1e9;
                return new JobSummary(metrics.rows.value(), metrics.errorRows.value(), prepared.rowCount() - remaining,
                        metrics.promptTokens.value(), metrics.completionTokens.value(), seconds,
                        (System.nanoTime() - runStart) / 1e9,
                        metrics.kvBytesKeptOffInterconnect.value(), qualified(outputPath));
            } finally {
                if (persisted) {
                    todo.unpersist();
                }
            }
        }

        /**
         * Writes in commit steps of about commitRows rows (rows go to steps by a hash of their id), each
         * a Spark write of its own that appends to the output once it is complete.
         */
        private void write(PromptPreparation.Prepared prepared, Dataset<Row> todo, long remaining, long steps,
                           JobMetrics metrics, SaveMode firstMode, Path output) {
            TaskFailureInjection failure = TaskFailureInjection.fromSession(spark);
            for (int step = 0; step < steps; step++) {
                Dataset<Row> part = steps == 1 ? todo
                        : todo.where(pmod(xxhash64(col(PromptPreparation.ID)), lit(steps)).equalTo(lit(step)));
                long stepRows = remaining / steps + (step < remaining % steps ? 1 : 0);
                Dataset<Row> results = generateRows(spark, prepared, part, stepRows, config, metrics,
                        failure == null ? null : failure.forCommitStep(step));
                SaveMode mode = step == 0 ? firstMode : SaveMode.Append;
                spark.sparkContext().setJobDescription("INF2 generate, commit step " + (step + 1) + " of " + steps);
                results.write().mode(mode).parquet(output.toString());
                LOG.info("INF2 commit step {} of {} written to {}", step + 1, steps, output);
            }
            spark.sparkContext().setJobDescription(null);
        }

        private void checkResumable(StructType existing, StructType expected, String output) {
            List<String> have = Arrays.stream(existing.fields()).map(Inf2.BatchInference::describe).toList();
            List<String> want = Arrays.stream(expected.fields()).map(Inf2.BatchInference::describe).toList();
            if (!have.equals(want)) {
                throw new ConfigException(JobSettings.OUTPUT.name() + " \"" + output + "\" has columns " + have
                        + " but this run writes " + want + "; resume with the same keepColumns, or write elsewhere");
            }
        }

        private static String describe(StructField f) {
            return f.name() + ":" + f.dataType().catalogString();
        }

        /**
         * Deletes what a run that stopped mid-write left uncommitted in the output: task files under
         * {@code _temporary} (the next write's job commit would otherwise merge them in, and rows this
         * resume regenerates would be there twice) and {@code .spark-staging-*} directories. The output
         * belongs to this job, so no other writer's files can be there.
         */
        private void removeUncommitted(Path dir) {
            try {
                FileSystem fs = dir.getFileSystem(spark.sparkContext().hadoopConfiguration());
                for (org.apache.hadoop.fs.FileStatus f : fs.listStatus(dir)) {
                    String name = f.getPath().getName();
                    if (name.equals("_temporary") || name.startsWith(".spark-staging-")) {
                        LOG.info("INF2 resume: removing {}, left uncommitted by an earlier run", f.getPath());
                        if (!fs.delete(f.getPath(), true)) {
                            throw new IOException("delete returned false");
                        }
                    }
                }
            } catch (IOException e) {
                throw new ConfigException(JobSettings.OUTPUT.name() + " \"" + dir + "\": cannot remove what an earlier run "
                        + "left uncommitted (" + e.getMessage() + ")");
            }
        }

        /** Whether a directory holds files other than Spark's hidden ones (_SUCCESS, _temporary, .crc). */
        private boolean hasDataFiles(Path dir) {
            try {
                FileSystem fs = dir.getFileSystem(spark.sparkContext().hadoopConfiguration());
                for (org.apache.hadoop.fs.FileStatus f : fs.listStatus(dir)) {
                    String name = f.getPath().getName();
                    if (!name.startsWith("_") && !name.startsWith(".")) {
                        return true;
                    }
                }
                return false;
            } catch (IOException e) {
                throw new ConfigException(JobSettings.OUTPUT.name() + " \"" + dir + "\": cannot list it (" + e.getMessage() + ")");
            }
        }

        private boolean exists(Path path) {
            try {
                FileSystem fs = path.getFileSystem(spark.sparkContext().hadoopConfiguration());
                return fs.exists(path);
            } catch (IOException e) {
                throw new ConfigException(JobSettings.OUTPUT.name() + " \"" + path + "\": cannot check it (" + e.getMessage() + ")");
            }
        }

        private String qualified(Path path) {
            try {
                return path.getFileSystem(spark.sparkContext().hadoopConfiguration()).makeQualified(path).toString();
            } catch (IOException e) {
                return path.toString();
            }
        }
    }
}
