package io.inf2.engine;

import io.inf2.config.Inf2Config;
import io.inf2.config.Settings;
import java.nio.file.Path;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Engine options for tests, written the way a user gives them: setting names and values, parsed and
 * validated by the same catalog as the command line and Spark. On top of the catalog's defaults:
 * the CPU backend on 2 threads, a model named "in-memory", and no X-cache.
 */
public final class TestOptions {
    private static final Map<String, String> DEFAULTS = Map.of("model", "in-memory", "backend", "cpu", "threads", "2",
            "xcacheFraction", "0");

    private TestOptions() {
    }

    /** {@code of("batchSize", "4", "kvCache", "csd", ...)}: pairs of setting name and value. */
    public static EngineOptions of(Object... namesAndValues) {
        if (namesAndValues.length % 2 != 0) {
            throw new IllegalArgumentException("names and values come in pairs");
        }
        Map<String, String> given = new LinkedHashMap<>(DEFAULTS);
        for (int i = 0; i < namesAndValues.length; i += 2) {
            given.put((String) namesAndValues[i], text(namesAndValues[i + 1]));
        }
        return EngineOptions.from(Inf2Config.fromNames(given, Settings.all(), ""));
    }

    private static String text(Object value) {
        if (value instanceof Collection<?> list) {
            return list.stream().map(String::valueOf).collect(Collectors.joining(","));
        }
        if (value instanceof Double d && d.isNaN()) {
            return "auto";
        }
        return value instanceof Path p ? p.toString() : String.valueOf(value);
    }
}
