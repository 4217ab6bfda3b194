package io.inf2.spark;

import io.inf2.config.ConfigException;
import io.inf2.config.Setting;
import io.inf2.spark.chat.TemplateException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;

/**
 * The batch inference job, run by spark-submit (bin/inf2-submit does it without a Spark
 * installation): {@code --input URI --output URI --model DIR} and any other setting as
 * {@code --kebab-flag value} or {@code --conf spark.inf2.<name>=value}. Prints a summary and exits 0;
 * exits 2 with a one-line message for a configuration error, 1 when the job fails.
 */
public final class BatchInferenceJob {

    private BatchInferenceJob() {
    }

    public static void main(String[] args) {
        if (List.of(args).contains("--help") || List.of(args).contains("-h")) {
            System.out.println(usage());
            return;
        }
        int status = run(args);
        if (status != 0) {
            System.exit(status);
        }
    }

    /** Runs the job; returns the exit status. */
    static int run(String[] args) {
        Map<String, String> flags;
        try {
            flags = JobConfig.fromArgs(args);
            // Checked here, before Spark starts, so a typo costs no Spark start-up.
            JobConfig.merge(JobConfig.fromSparkConf(new SparkConf()), flags);
        } catch (ConfigException e) {
            System.err.println("inf2 job: " + e.getMessage());
            return 2;
        }
        // Every setting goes into the session's configuration: the plugin reads the engine's settings
        // from there when the SparkContext starts, and checks the job's with them.
        Map<String, String> conf = new LinkedHashMap<>();
        flags.forEach((name, value) -> conf.put(Setting.SPARK_PREFIX + name, value));
        SparkSession spark;
        try {
            spark = Inf2.session(conf);
        } catch (ConfigException e) {
            System.err.println("inf2 job: " + e.getMessage());
            return 2;
        }
        try {
            JobSummary summary = Inf2.run(spark, Map.of());
            System.out.println(summary.describe());
            return 0;
        } catch (ConfigException | TemplateException e) {
            System.err.println("inf2 job: " + e.getMessage());
            return 2;
        } catch (RuntimeException e) {
            System.err.println("inf2 job failed: " + rootMessage(e) + " (details above)");
            e.printStackTrace();
            return 1;
        } finally {
            spark.stop();
        }
    }

    private static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        String m = t.getMessage() == null ? t.getClass().getName() : t.getMessage();
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }

    static String usage() {
        StringBuilder sb = new StringBuilder("""
                Usage: bin/inf2-submit --input URI --output URI --model DIR [options]
                Generates a completion for every row of the input with INF2 on Spark and writes Parquet.
                Every option is also a Spark key: --max-new-tokens 64 is spark.inf2.maxNewTokens=64.
                docs/configuration.md describes each one.
                """);
        String group = "";
        for (Setting<?> s : JobConfig.catalog()) {
            if (!s.group().equals(group)) {
                group = s.group();
                sb.append('\n').append(group).append(":\n");
            }
            sb.append(String.format("  %-28s %s%s%n", s.cliFlag() + " " + s.type().replace(' ', '-'),
                    s.defaultValue() == null ? "(required) " : s.defaultValue().isEmpty() ? "" : "[" + s.defaultValue() + "] ",
                    firstSentence(s.doc())));
        }
        return sb.toString();
    }

    private static String firstSentence(String doc) {
        int dot = doc.indexOf(". ");
        return dot < 0 ? doc : doc.substring(0, dot + 1);
    }
}
