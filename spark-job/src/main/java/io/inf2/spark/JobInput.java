package io.inf2.spark;

import io.inf2.config.ConfigException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/** Reads the job's prompts in one of the four input formats, from any Hadoop file system. */
final class JobInput {
    private static final Map<String, String> FORMAT_OF_EXTENSION = Map.of(
            "parquet", "parquet", "jsonl", "jsonl", "json", "jsonl", "ndjson", "jsonl", "csv", "csv", "txt", "text");

    private JobInput() {
    }

    /** The format to read {@code uri} as: {@code format} unless it is auto, else from the file names. */
    static String resolveFormat(SparkSession spark, String uri, String format) {
        // Spark's reader lists the input again: a given format needs only to know some data is there.
        boolean auto = format.equals("auto");
        List<FileStatus> files = files(spark, uri, auto ? Integer.MAX_VALUE : 1);
        if (!auto) {
            return format;
        }
        TreeSet<String> found = new TreeSet<>();
        for (FileStatus f : files) {
            String name = f.getPath().getName();
            int dot = name.lastIndexOf('.');
            String ext = dot < 0 ? "" : name.substring(dot + 1).toLowerCase(Locale.ROOT);
            String fmt = FORMAT_OF_EXTENSION.get(ext);
            found.add(fmt == null ? "unknown (" + name + ")" : fmt);
        }
        if (found.size() == 1 && !found.first().startsWith("unknown")) {
            return found.first();
        }
        throw new ConfigException(JobSettings.INPUT.name() + " \"" + uri + "\": cannot tell the format from the file names ("
                + (found.isEmpty() ? "no files" : String.join(", ", found)) + "); give "
                + JobSettings.INPUT_FORMAT.cliFlag() + " parquet|jsonl|csv|text");
    }

    /**
     * Reads {@code uri}. Text input gets one row per line in a column named after promptColumn's
     * default, "prompt"; CSV is read with its header line and RFC 4180 quoting, so quoted prompts may
     * span lines; every CSV column is a string. A line that does not parse gives a row of nulls, which
     * becomes an error row, not a failed job.
     */
    static Dataset<Row> read(SparkSession spark, String uri, String format) {
        Dataset<Row> rows = switch (format) {
            case "parquet" -> spark.read().parquet(uri);
            case "jsonl" -> spark.read().json(uri);
            case "csv" -> spark.read().option("header", "true").option("multiLine", "true").option("escape", "\"").csv(uri);
            case "text" -> spark.read().text(uri).withColumnRenamed("value", JobSettings.PROMPT_COLUMN.defaultValue());
            default -> throw new IllegalArgumentException("unknown input format " + format);
        };
        if (rows.schema().isEmpty()) {
            // JSON and CSV take their columns from the data: empty files have none.
            throw new ConfigException(JobSettings.INPUT.name() + " \"" + uri + "\": no " + format
                    + " rows to read columns from (its files are empty)");
        }
        return rows;
    }

    /**
     * {@code status} if it is a file, else the visible files below it at any depth (partitioned
     * layouts such as {@code dt=2026-11-27/part-0.parquet}), as Spark's readers see them: names
     * starting with '_' or '.' (_SUCCESS, _temporary, .crc) are not data. Stops once {@code files}
     * holds {@code limit}.
     */
    private static void addDataFiles(FileSystem fs, FileStatus status, List<FileStatus> files, int limit) throws IOException {
        if (!status.isDirectory()) {
            files.add(status);
            return;
        }
        for (FileStatus child : fs.listStatus(status.getPath())) {
            if (files.size() >= limit) {
                return;
            }
            String name = child.getPath().getName();
            if (!name.startsWith("_") && !name.startsWith(".")) {
                addDataFiles(fs, child, files, limit);
            }
        }
    }

    /**
     * The data files {@code uri} names (a file, the files below a directory, or a glob), the first
     * {@code limit} of them; fails when there are none.
     */
    private static List<FileStatus> files(SparkSession spark, String uri, int limit) {
        try {
            Path path = new Path(uri);
            FileSystem fs = path.getFileSystem(spark.sparkContext().hadoopConfiguration());
            FileStatus[] matched = fs.globStatus(path);
            if (matched == null || matched.length == 0) {
                throw new ConfigException(JobSettings.INPUT.name() + " \"" + uri + "\": no such file or directory");
            }
            List<FileStatus> files = new ArrayList<>();
            for (int i = 0; i < matched.length && files.size() < limit; i++) {
                addDataFiles(fs, matched[i], files, limit);
            }
            if (files.isEmpty()) {
                throw new ConfigException(JobSettings.INPUT.name() + " \"" + uri + "\": no data files in it");
            }
            return files;
        } catch (IOException e) {
            throw new ConfigException(JobSettings.INPUT.name() + " \"" + uri + "\": cannot list it (" + e.getMessage() + ")");
        }
    }
}
