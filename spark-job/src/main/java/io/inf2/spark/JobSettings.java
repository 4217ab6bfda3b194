package io.inf2.spark;

import io.inf2.config.Setting;
import io.inf2.config.Settings;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.function.Function;

/**
 * Settings of the batch job and of {@link Inf2#generate}: where the prompts come from and how rows
 * become requests and output. Each gives a {@code --kebab-flag} of the job and a
 * {@code spark.inf2.<name>} key, like the engine's {@link Settings}.
 */
public final class JobSettings {
    private static final List<Setting<?>> ALL = new ArrayList<>();
    private static final List<Setting<?>> JOB_ONLY = new ArrayList<>();

    private JobSettings() {
    }

    // ---- what the job reads and writes (the batch job only; Inf2.generate takes and returns Datasets)
    public static final Setting<String> INPUT = jobOnly(new Setting<>("job", "input", "URI", null,
            "Prompts to read: a file, directory or glob on any Hadoop file system.",
            Function.identity(), s -> !s.isBlank(), "a non-empty URI"));
    public static final Setting<String> OUTPUT = jobOnly(new Setting<>("job", "output", "URI", null,
            "Directory the results are written to, as Parquet (one row per input row).",
            Function.identity(), s -> !s.isBlank(), "a non-empty URI"));
    public static final Setting<String> INPUT_FORMAT = jobOnly(Settings.choice("job", "inputFormat", "auto",
            "Format of the input: parquet, jsonl (one JSON object per line), csv (with a header line), text (one "
                    + "prompt per line), or auto: from the file name's extension (.parquet, .jsonl/.json/.ndjson, .csv, "
                    + ".txt), for a directory from the files in it.",
            "auto", "parquet", "jsonl", "csv", "text"));
    public static final Setting<String> OUTPUT_MODE = jobOnly(Settings.choice("job", "outputMode", "error",
            "What to do when the output directory exists: error (stop before any work) or overwrite (replace it).",
            "error", "overwrite"));
    public static final Setting<Boolean> RESUME = jobOnly(Settings.flag("job", "resume", "false",
            "Keep the existing output and generate only for rows whose id is not in it yet; for finishing a run that "
                    + "stopped part-way, or for new rows added to the input. Ids must be stable: see idColumn."));
    public static final Setting<Integer> COMMIT_ROWS = jobOnly(Settings.integer("job", "commitRows", "10000",
            "The job writes its output in steps of about this many rows, each committed on its own, so a run that "
                    + "stops loses at most the step in progress (finish it with resume). 0 commits everything at the end.",
            0, Integer.MAX_VALUE));

    // ---- how rows become requests and output rows (the job and Inf2.generate)
    public static final Setting<String> PROMPT_COLUMN = add(new Setting<>("job", "promptColumn", "column", "prompt",
            "Column holding the prompt text (for text input, each line is the prompt and this is ignored).",
            Function.identity(), s -> !s.isBlank(), "a column name"));
    public static final Setting<String> MESSAGES_COLUMN = add(new Setting<>("job", "messagesColumn", "column", "",
            "Column holding a chat (an array of {role, content} structs, or the same as a JSON string); when set, "
                    + "each row's prompt is the chat rendered with the model's chat template from tokenizer_config.json, "
                    + "and promptColumn is not used.",
            Function.identity(), s -> true, "a column name"));
    public static final Setting<String> ID_COLUMN = add(new Setting<>("job", "idColumn", "column", "",
            "Column whose values identify the rows (unique, not null). Empty: ids are generated from the input file "
                    + "and the row's position in it (\"<16 hex digits of the file's hash>:<row>\"), stable across runs and "
                    + "task retries as long as the input files stay where they are.",
            Function.identity(), s -> true, "a column name"));
    public static final Setting<List<String>> KEEP_COLUMNS = add(new Setting<>("job", "keepColumns",
            "comma-separated columns", "", "Input columns copied unchanged into the output, after the result columns.",
            JobSettings::names, v -> true, "column names"));
    public static final Setting<String> PARAMETER_COLUMNS = add(new Setting<>("job", "parameterColumns",
            "auto or comma-separated columns", "auto",
            "Columns giving a row its own generation parameters, named after them: max_new_tokens, temperature, top_k, "
                    + "top_p, repetition_penalty, seed, stop_token_ids. auto: every input column with one of these names; "
                    + "empty: none. A null value means the job-wide setting; an invalid one makes that row an error row.",
            Function.identity(), JobSettings::validParameterColumns, "auto, empty, or names among "
                    + String.join(", ", RowParameters.COLUMNS)));
    public static final Setting<Integer> ROWS_PER_BATCH = add(Settings.integer("job", "rowsPerBatch", "0",
            "Rows handed to the engine in one call (and written as one Arrow batch); 0 means batchSize.", 0, 1 << 20));
    public static final Setting<Integer> PARTITIONS = add(Settings.integer("job", "partitions", "0",
            "Spark partitions the prompts are spread over before generating. 0: one per 8 engine calls' worth of rows "
                    + "(8 × rowsPerBatch), so that each partition's last, partly filled call costs little, and at most 4 per "
                    + "default-parallelism slot (spark.default.parallelism).", 0, 1 << 20));

    /** The job's own settings. */
    public static List<Setting<?>> all() {
        return Collections.unmodifiableList(ALL);
    }

    /** Settings that only the batch job takes (it reads and writes files; Inf2.generate works on Datasets). */
    public static List<Setting<?>> jobOnly() {
        return Collections.unmodifiableList(JOB_ONLY);
    }

    private static <T> Setting<T> add(Setting<T> s) {
        ALL.add(s);
        return s;
    }

    private static <T> Setting<T> jobOnly(Setting<T> s) {
        JOB_ONLY.add(s);
        return add(s);
    }

    static List<String> names(String s) {
        return Arrays.stream(s.split(",")).map(String::trim).filter(n -> !n.isEmpty()).toList();
    }

    private static boolean validParameterColumns(String s) {
        return s.equals("auto") || RowParameters.COLUMNS.containsAll(names(s));
    }
}
