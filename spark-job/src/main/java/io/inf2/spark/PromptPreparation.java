package io.inf2.spark;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.sum;
import static org.apache.spark.sql.functions.when;

import io.inf2.config.ConfigException;
import io.inf2.config.Inf2Config;
import io.inf2.config.Settings;
import io.inf2.spark.chat.ChatTemplate;
import io.inf2.spark.chat.TemplateException;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.AnalysisException;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * Driver side, before any generation: checks the input's columns against the settings (one-line
 * errors naming the setting and the column), loads the chat template when rows carry chats, gives
 * every row its id, and selects the columns tasks need in the layout {@link PreparedRows} reads.
 */
final class PromptPreparation {
    static final String ID = "__inf2_id";
    static final String PROMPT = "__inf2_prompt";
    private static final String SOURCE = "__inf2_source";
    private static final String BLOCK = "__inf2_block";
    /** The block column's value for input not read from files, whose partitions stand in for blocks. */
    private static final long PARTITION_IS_BLOCK = -1;

    /**
     * @param rows         prepared rows: id, prompt or messages, parameter columns, kept columns
     * @param outputSchema the result columns, then the kept columns
     * @param rowCount     rows in the input
     */
    record Prepared(Dataset<Row> rows, PreparedRows layout, StructType outputSchema, long rowCount) {
    }

    private PromptPreparation() {
    }

    static Prepared prepare(SparkSession spark, Dataset<Row> input, Inf2Config config) {
        StructType schema = input.schema();
        String messagesColumn = config.get(JobSettings.MESSAGES_COLUMN);
        boolean chat = !messagesColumn.isEmpty();
        String promptColumn = chat ? messagesColumn : config.get(JobSettings.PROMPT_COLUMN);
        String promptSetting = chat ? JobSettings.MESSAGES_COLUMN.name() : JobSettings.PROMPT_COLUMN.name();
        StructField promptField = field(schema, promptColumn, promptSetting);
        ChatTemplate template = null;
        if (chat) {
            checkMessagesType(promptField);
            template = chatTemplate(spark, config);
        } else if (!promptField.dataType().equals(DataTypes.StringType)) {
            throw new ConfigException(promptSetting + " \"" + promptColumn + "\" has type "
                    + promptField.dataType().simpleString() + "; prompts must be strings");
        }

        String idColumn = config.get(JobSettings.ID_COLUMN);
        if (!idColumn.isEmpty()) {
            field(schema, idColumn, JobSettings.ID_COLUMN.name());
        }
        List<String> keep = config.get(JobSettings.KEEP_COLUMNS);
        Set<String> resultNames = Set.of(ResultColumns.SCHEMA.fieldNames());
        List<StructField> keptFields = new ArrayList<>();
        for (String k : keep) {
            StructField f = field(schema, k, JobSettings.KEEP_COLUMNS.name());
            if (resultNames.contains(k)) {
                throw new ConfigException(JobSettings.KEEP_COLUMNS.name() + ": \"" + k
                        + "\" is also a result column; rename it in the input or leave it out");
            }
            keptFields.add(f);
        }
        if (keep.size() != Set.copyOf(keep).size()) {
            throw new ConfigException(JobSettings.KEEP_COLUMNS.name() + " names a column twice: " + String.join(",", keep));
        }
        RowParameters parameters = RowParameters.plan(schema, config);

        List<Column> payload = new ArrayList<>();
        payload.add(col(quoted(promptColumn)).as(PROMPT));
        parameters.columns().forEach(c -> payload.add(col(quoted(c))));
        keep.forEach(k -> payload.add(col(quoted(k))));
        // Spark's JSON and CSV readers put a line they cannot parse in this column and null in the others.
        String malformedColumn = spark.conf().get("spark.sql.columnNameOfCorruptRecord", "_corrupt_record");
        boolean marksMalformed = schema.getFieldIndex(malformedColumn).isDefined() && !keep.contains(malformedColumn)
                && !malformedColumn.equals(promptColumn);
        if (marksMalformed) {
            payload.add(col(quoted(malformedColumn)).cast(DataTypes.StringType));
        }

        Dataset<Row> rows;
        long count;
        if (idColumn.isEmpty()) {
            GeneratedIds ids = generatedIds(spark, input, payload);
            rows = ids.rows;
            count = ids.rowCount;
        } else {
            List<Column> withId = new ArrayList<>();
            withId.add(col(quoted(idColumn)).cast(DataTypes.StringType).as(ID));
            withId.addAll(payload);
            rows = input.select(withId.toArray(Column[]::new));
            count = checkUserIds(rows, idColumn);
        }

        List<StructField> out = new ArrayList<>(Arrays.asList(ResultColumns.SCHEMA.fields()));
        out.addAll(keptFields);
        PreparedRows layout = new PreparedRows(promptSetting + " \"" + promptColumn + "\"", template, parameters,
                keptFields.size(), marksMalformed);
        return new Prepared(rows, layout, DataTypes.createStructType(out), count);
    }

    private static StructField field(StructType schema, String name, String setting) {
        for (StructField f : schema.fields()) {
            if (f.name().equals(name)) {
                return f;
            }
        }
        throw new ConfigException(setting + " \"" + name + "\": no such column in the input (columns: "
                + String.join(", ", schema.fieldNames()) + ")");
    }

    /** A column name as Spark's col() reads it: backquoted, so dots and spaces are part of the name. */
    private static String quoted(String name) {
        return "`" + name.replace("`", "``") + "`";
    }

    private static void checkMessagesType(StructField f) {
        DataType t = f.dataType();
        if (t.equals(DataTypes.StringType)) {
            return;
        }
        if (t instanceof ArrayType a && a.elementType() instanceof StructType s) {
            boolean role = Arrays.stream(s.fields()).anyMatch(x -> x.name().equals("role") && x.dataType().equals(DataTypes.StringType));
            boolean content = Arrays.stream(s.fields()).anyMatch(x -> x.name().equals("content") && x.dataType().equals(DataTypes.StringType));
            if (role && content) {
                return;
            }
        }
        throw new ConfigException(JobSettings.MESSAGES_COLUMN.name() + " \"" + f.name() + "\" has type "
                + t.simpleString() + "; chats must be array<struct<role:string,content:string>> or a JSON string");
    }

    /** The model's chat template, read on the driver from tokenizer_config.json on any Hadoop file system. */
    private static ChatTemplate chatTemplate(SparkSession spark, Inf2Config config) {
        if (!config.isSet(Settings.MODEL)) {
            throw new ConfigException(JobSettings.MESSAGES_COLUMN.name() + " needs the model's chat template, but "
                    + Settings.MODEL.sparkKey() + " is not set");
        }
        Path file = new Path(new Path(config.get(Settings.MODEL)), "tokenizer_config.json");
        String json;
        try {
            FileSystem fs = file.getFileSystem(spark.sparkContext().hadoopConfiguration());
            try (InputStream in = fs.open(file)) {
                json = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
        } catch (FileNotFoundException e) {
            throw new TemplateException(file + ": missing, so the model has no chat template (give plain prompts with "
                    + JobSettings.PROMPT_COLUMN.name() + " instead)");
        } catch (IOException e) {
            throw new TemplateException(file + ": cannot read it (" + e.getMessage() + ")");
        }
        return ChatTemplate.fromTokenizerConfig(json, file.toString());
    }

    /** The id column's values must be unique and present; returns the row count (one Spark job when they are). */
    private static long checkUserIds(Dataset<Row> rows, String idColumn) {
        Row stats = rows.groupBy(col(ID)).count()
                .agg(sum(col("count")), sum(when(col(ID).isNull(), col("count")).otherwise(0L)),
                        sum(when(col("count").gt(1), 1L).otherwise(0L)))
                .first();
        long total = stats.isNullAt(0) ? 0 : stats.getLong(0);
        long nulls = stats.isNullAt(1) ? 0 : stats.getLong(1);
        long duplicated = stats.isNullAt(2) ? 0 : stats.getLong(2);
        if (nulls > 0) {
            throw new ConfigException(JobSettings.ID_COLUMN.name() + " \"" + idColumn + "\" is null in " + nulls
                    + " row(s); every row needs an id");
        }
        if (duplicated > 0) {
            List<Row> examples = rows.groupBy(col(ID)).count().where(col("count").gt(1)).limit(3).collectAsList();
            throw new ConfigException(JobSettings.ID_COLUMN.name() + " \"" + idColumn + "\" is not unique: " + duplicated
                    + " value(s) repeat, e.g. " + examples.stream().map(r -> "\"" + r.getString(0) + "\" (" + r.getLong(1) + " times)")
                    .collect(Collectors.joining(", ")));
        }
        return total;
    }

    private record GeneratedIds(Dataset<Row> rows, long rowCount) {
    }

    /**
     * Ids from the input file and the row's position in it: one pass counts the rows of every file
     * block (Spark's unit of reading), the driver turns the counts into each block's first row number,
     * and a second pass numbers the rows of each block from there. The numbers are the rows' positions
     * in their files, whatever the split size. Input not read straight from files is checkpointed on
     * the executors and numbered in the order of its partitions, each partition standing in for a block.
     */
    private static GeneratedIds generatedIds(SparkSession spark, Dataset<Row> input, List<Column> payload) {
        List<Column> cols = new ArrayList<>();
        Dataset<Row> located;
        try {
            cols.add(col("_metadata.file_path").as(SOURCE));
            cols.add(col("_metadata.file_block_start").as(BLOCK));
            cols.addAll(payload);
            located = input.select(cols.toArray(Column[]::new));
        } catch (Exception e) {
            // Scala does not declare AnalysisException, so javac cannot catch it by name here.
            if (!(e instanceof AnalysisException)) {
                throw e;
            }
            cols.clear();
            cols.add(lit("").as(SOURCE));
            cols.add(lit(PARTITION_IS_BLOCK).as(BLOCK));
            cols.addAll(payload);
            // The order of rows in a partition after a shuffle (a join, an aggregation) may differ each
            // time Spark computes it: both passes, and any recomputation after a lost executor, must see
            // one order, or ids would move between rows. A lost checkpoint fails the job instead.
            located = input.select(cols.toArray(Column[]::new)).localCheckpoint(true);
        }
        StructType countSchema = DataTypes.createStructType(List.of(
                DataTypes.createStructField(SOURCE, DataTypes.StringType, false),
                DataTypes.createStructField(BLOCK, DataTypes.LongType, false),
                DataTypes.createStructField("rows", DataTypes.LongType, false)));
        TreeMap<String, TreeMap<Long, Long>> blockRows = new TreeMap<>();
        for (Row r : located.mapPartitions(new CountBlockRows(), Encoders.row(countSchema)).collectAsList()) {
            blockRows.computeIfAbsent(r.getString(0), k -> new TreeMap<>()).merge(r.getLong(1), r.getLong(2), Long::sum);
        }
        HashMap<String, Long> firstRow = new HashMap<>();
        long total = 0;
        for (var source : blockRows.entrySet()) {
            long next = 0;
            for (var block : source.getValue().entrySet()) {
                firstRow.put(blockKey(source.getKey(), block.getKey()), next);
                next += block.getValue();
            }
            total += next;
        }
        Broadcast<HashMap<String, Long>> shared = JavaSparkContext.fromSparkContext(spark.sparkContext()).broadcast(firstRow);
        List<StructField> fields = new ArrayList<>();
        fields.add(DataTypes.createStructField(ID, DataTypes.StringType, false));
        StructField[] locatedFields = located.schema().fields();
        fields.addAll(Arrays.asList(locatedFields).subList(2, locatedFields.length));
        Dataset<Row> numbered = located.mapPartitions(new NumberRows(shared),
                Encoders.row(DataTypes.createStructType(fields)));
        return new GeneratedIds(numbered, total);
    }

    /**
     * The block a located row belongs to: its file block, or for input not read from files, the
     * partition it is in. Taken inside the task: Spark folds a partition-id expression over an
     * in-memory relation into a constant on the driver.
     */
    private static long block(Row located) {
        long block = located.getLong(1);
        return block == PARTITION_IS_BLOCK ? TaskContext.getPartitionId() : block;
    }

    /** First pass of the generated ids: rows per (source, block) in one partition. */
    private static final class CountBlockRows implements MapPartitionsFunction<Row, Row> {
        private static final long serialVersionUID = 1L;

        @Override
        public Iterator<Row> call(Iterator<Row> input) {
            LinkedHashMap<String, long[]> counts = new LinkedHashMap<>();
            LinkedHashMap<String, Object[]> keys = new LinkedHashMap<>();
            while (input.hasNext()) {
                Row r = input.next();
                long block = block(r);
                String key = blockKey(r.getString(0), block);
                counts.computeIfAbsent(key, k -> new long[1])[0]++;
                keys.putIfAbsent(key, new Object[] {r.getString(0), block});
            }
            List<Row> out = new ArrayList<>();
            counts.forEach((key, n) -> out.add(RowFactory.create(keys.get(key)[0], keys.get(key)[1], n[0])));
            return out.iterator();
        }
    }

    private static String blockKey(String source, long block) {
        return source + '\n' + block;
    }

    /** 16 hex digits of the SHA-256 of a source file's path; empty for input not read from files. */
    static String sourceHash(String source) {
        if (source.isEmpty()) {
            return "";
        }
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(source.getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(digest, 0, 8);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }

    /** The generated id of a row: the source's hash and the row's position in the source. */
    static String rowId(String sourceHash, long row) {
        return sourceHash.isEmpty() ? Long.toString(row) : sourceHash + ":" + row;
    }

    /** Second pass of the generated ids: replaces (source, block) by the row's id. */
    private static final class NumberRows implements MapPartitionsFunction<Row, Row> {
        private static final long serialVersionUID = 1L;
        private final Broadcast<HashMap<String, Long>> firstRow;

        NumberRows(Broadcast<HashMap<String, Long>> firstRow) {
            this.firstRow = firstRow;
        }

        @Override
        public Iterator<Row> call(Iterator<Row> input) {
            HashMap<String, Long> next = new HashMap<>();
            HashMap<String, String> sourceHashes = new HashMap<>();
            return new Iterator<>() {
                @Override
                public boolean hasNext() {
                    return input.hasNext();
                }

                @Override
                public Row next() {
                    Row r = input.next();
                    String source = r.getString(0);
                    String key = blockKey(source, block(r));
                    Long row = next.get(key);
                    if (row == null) {
                        row = firstRow.value().get(key);
                        if (row == null) {
                            throw new IllegalStateException("input block " + key.replace('\n', '@')
                                    + " was not seen when counting rows: the input changed while the job read it");
                        }
                    }
                    next.put(key, row + 1);
                    Object[] values = new Object[r.length() - 1];
                    values[0] = rowId(sourceHashes.computeIfAbsent(source, PromptPreparation::sourceHash), row);
                    for (int i = 2; i < r.length(); i++) {
                        values[i - 1] = r.get(i);
                    }
                    return RowFactory.create(values);
                }
            };
        }
    }
}
