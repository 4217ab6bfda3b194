package io.inf2.spark;

import java.util.Locale;

/**
 * What a batch job did.
 *
 * @param rows                       rows generated for in this run (error rows included)
 * @param errorRows                  rows written with their error set
 * @param skippedRows                rows left out because the output already had their id (resume)
 * @param seconds                    wall time of generating and writing: from the first commit step's start to
 *                                   the last one's end
 * @param totalSeconds               wall time of the whole run, reading the input and numbering its rows included
 * @param kvBytesKeptOffInterconnect KV-cache bytes the storage devices moved on their own media
 *                                   without crossing the host interconnect
 */
public record JobSummary(long rows, long errorRows, long skippedRows, long promptTokens, long completionTokens,
                         double seconds, double totalSeconds, long kvBytesKeptOffInterconnect, String output) {

    /** Generated tokens per second of generating and writing. */
    public double tokensPerSecond() {
        return seconds > 0 ? completionTokens / seconds : 0;
    }

    /** The summary the job prints: a few lines, numbers first. */
    public String describe() {
        return String.format(Locale.ROOT,
                "INF2 job done: %d rows (%d errors%s) in %.1f s (%.1f s generating and writing)%n"
                        + "  tokens: %d generated (%.1f tokens/s), %d in prompts%n"
                        + "  KV bytes kept off the interconnect: %s%n"
                        + "  output: %s",
                rows, errorRows, skippedRows > 0 ? ", " + skippedRows + " skipped as already in the output" : "", totalSeconds,
                seconds,
                completionTokens, tokensPerSecond(), promptTokens, bytes(kvBytesKeptOffInterconnect), output);
    }

    private static String bytes(long b) {
        if (b < 1024) {
            return b + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB"};
        double v = b;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.1f %s (%d bytes)", v, units[u], b);
    }
}
