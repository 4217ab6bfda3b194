package io.inf2.spark;

import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.SparkSession;

/**
 * A test hook, not a user setting: makes the first attempt (or every attempt) of one partition fail
 * after it produced some rows, so tests can show that a retried task or a resumed job loses and
 * duplicates nothing. Set in the session's runtime configuration as
 * {@code spark.inf2test.failTask=partition=P,afterRows=R[,commitStep=S][,attempts=first|all]}: outside
 * spark.inf2., so the plugin does not check it and the settings documentation does not list it.
 */
record TaskFailureInjection(int partition, long afterRows, int commitStep, boolean everyAttempt) implements Serializable {

    static final String KEY = "spark.inf2test.failTask";
    private static final Set<String> PARTS = Set.of("partition", "afterRows", "commitStep", "attempts");

    /** The hook as the session's configuration sets it now, or null. */
    static TaskFailureInjection fromSession(SparkSession spark) {
        String spec = spark.conf().get(KEY, "");
        if (spec.isBlank()) {
            return null;
        }
        Map<String, String> parts = new LinkedHashMap<>();
        for (String part : spec.split(",")) {
            String[] kv = part.split("=", 2);
            if (kv.length != 2 || !PARTS.contains(kv[0].trim())) {
                throw malformed(spec);
            }
            parts.put(kv[0].trim(), kv[1].trim());
        }
        String attempts = parts.getOrDefault("attempts", "first");
        if (!attempts.equals("first") && !attempts.equals("all")) {
            throw malformed(spec);
        }
        try {
            return new TaskFailureInjection(Integer.parseInt(parts.get("partition")), Long.parseLong(parts.get("afterRows")),
                    Integer.parseInt(parts.getOrDefault("commitStep", "-1")), attempts.equals("all"));
        } catch (RuntimeException e) {
            throw malformed(spec);
        }
    }

    private static IllegalArgumentException malformed(String spec) {
        return new IllegalArgumentException(KEY + "=\"" + spec
                + "\": expected partition=P,afterRows=R[,commitStep=S][,attempts=first|all]");
    }

    /** The hook as it applies to commit step {@code step}: itself, or null when it aims at another step. */
    TaskFailureInjection forCommitStep(int step) {
        return commitStep < 0 || commitStep == step ? this : null;
    }

    /** Throws when this is a targeted attempt of the partition and it has just produced its afterRows-th row. */
    void check(long rowsProduced) {
        TaskContext task = TaskContext.get();
        if (task != null && task.partitionId() == partition && (everyAttempt || task.attemptNumber() == 0)
                && rowsProduced == afterRows) {
            throw new IllegalStateException("injected failure (" + KEY + ") in partition " + partition + ", attempt "
                    + task.attemptNumber() + ", after " + afterRows + " rows");
        }
    }
}
