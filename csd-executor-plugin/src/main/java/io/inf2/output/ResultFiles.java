package io.inf2.output;

import java.nio.file.Path;
import java.util.Locale;

/** Picks the result writer from a file name: {@code .parquet} or {@code .jsonl}. */
public final class ResultFiles {

    private ResultFiles() {
    }

    /** Writes {@code rows} to {@code file} in the format its extension names; returns the row count. */
    public static long write(Path file, Iterable<ResultRow> rows) {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        if (name.endsWith(".parquet")) {
            return ParquetOutput.write(file, rows);
        }
        if (name.endsWith(".jsonl")) {
            return JsonlOutput.write(file, rows);
        }
        throw new IllegalArgumentException(file + ": unknown output format (the file name must end in .parquet or .jsonl)");
    }
}
