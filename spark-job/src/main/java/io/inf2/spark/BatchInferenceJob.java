package io.inf2.spark;

import io.inf2.config.ConfigException;
import io.inf2.config.Inf2Config;
import io.inf2.config.Setting;
import io.inf2.config.Settings;
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
            // Checked here, before Spark starts, so a typo or a missing option costs no Spark start-up.
            Inf2Config checked = JobConfig.merge(JobConfig.fromSparkConf(new SparkConf()), flags);
            checked.get(JobSettings.INPUT);
            checked.get(JobSettings.OUTPUT);
            checked.get(Settings.MODEL);
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
        int status;
        String outcome;
        try {
            status = 0;
            outcome = Inf2.run(spark, Map.of()).describe();
        } catch (Exception e) {
            // Spark's own failures (SparkException) are checked exceptions that Scala throws undeclared.
            Throwable userError = causeOf(e, ConfigException.class, TemplateException.class);
            if (userError != null) {
                status = 2;
                outcome = "inf2 job: " + userError.getMessage();
            } else {
                e.printStackTrace();
                status = 1;
                outcome = "inf2 job failed: " + oneLine(e) + " (stack trace above)";
            }
        } finally {
            spark.stop();
        }
        // After Spark has stopped, so that its shutdown log does not bury the outcome.
        (status == 0 ? System.out : System.err).println(outcome);
        return status;
    }

    /** The first throwable of one of {@code types} in e's cause chain, or null. */
    @SafeVarargs
    private static Throwable causeOf(Throwable e, Class<? extends Throwable>... types) {
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            for (Class<? extends Throwable> type : types) {
                if (type.isInstance(t)) {
                    return t;
                }
            }
        }
        return null;
    }

    /**
     * The outermost message (Spark's names the file or stage) and, when it says something else, the
     * innermost one (what actually went wrong), each cut to its first line.
     */
    private static String oneLine(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String outer = firstLine(e);
        String inner = firstLine(root);
        return root == e || outer.contains(inner) ? outer : outer + ": " + inner;
    }

    private static String firstLine(Throwable t) {
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
