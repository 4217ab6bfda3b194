package io.inf2.config;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Validated values of a catalog of settings. Built from command-line flags or from Spark's
 * {@code spark.inf2.*} keys; an unknown key or a bad value fails at once with the key named.
 */
public final class Inf2Config {
    private final Map<String, Object> values;
    private final Map<String, String> raw;

    private Inf2Config(Map<String, Object> values, Map<String, String> raw) {
        this.values = values;
        this.raw = raw;
    }

    /** The engine catalog's defaults. */
    public static Inf2Config defaults() {
        return fromNames(Map.of(), Settings.all(), "");
    }

    /**
     * From a map of camelCase names to text; {@code sourcePrefix} is put before a name in errors
     * ("spark.inf2." or "--").
     */
    public static Inf2Config fromNames(Map<String, String> given, List<Setting<?>> catalog, String sourcePrefix) {
        Map<String, Setting<?>> byName = Settings.byName(catalog);
        for (String key : given.keySet()) {
            if (!byName.containsKey(key)) {
                throw new ConfigException("unknown setting " + sourcePrefix + key + suggestion(key, byName.keySet()));
            }
        }
        Map<String, Object> values = new LinkedHashMap<>();
        Map<String, String> raw = new LinkedHashMap<>();
        for (Setting<?> s : catalog) {
            String text = given.containsKey(s.name()) ? given.get(s.name()) : s.defaultValue();
            if (text != null) {
                String source = sourcePrefix.equals("--") ? s.cliFlag() : sourcePrefix + s.name();
                values.put(s.name(), s.parse(text, source));
                raw.put(s.name(), text);
            }
        }
        return new Inf2Config(values, raw);
    }

    /** From Spark configuration entries; keys outside {@code spark.inf2.} are ignored. */
    public static Inf2Config fromSparkConf(Map<String, String> sparkConf, List<Setting<?>> catalog) {
        Map<String, String> names = new LinkedHashMap<>();
        sparkConf.forEach((k, v) -> {
            if (k.startsWith(Setting.SPARK_PREFIX)) {
                names.put(k.substring(Setting.SPARK_PREFIX.length()), v);
            }
        });
        return fromNames(names, catalog, Setting.SPARK_PREFIX);
    }

    /**
     * Parses {@code --flag value} and {@code --flag=value} pairs. Flags of the catalog become
     * settings; anything else is an error naming the flag. Returns the config and the positional
     * arguments left over.
     */
    public static Parsed fromArgs(String[] args, List<Setting<?>> catalog) {
        Map<String, Setting<?>> byFlag = new LinkedHashMap<>();
        catalog.forEach(s -> byFlag.put(s.cliFlag(), s));
        Map<String, String> names = new LinkedHashMap<>();
        List<String> positional = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--")) {
                positional.add(a);
                continue;
            }
            String flag = a;
            String value = null;
            int eq = a.indexOf('=');
            if (eq > 0) {
                flag = a.substring(0, eq);
                value = a.substring(eq + 1);
            }
            Setting<?> s = byFlag.get(flag);
            if (s == null) {
                throw new ConfigException("unknown option " + flag + suggestion(flag, byFlag.keySet()));
            }
            if (value == null) {
                if (i + 1 >= args.length) {
                    throw new ConfigException("option " + flag + " needs a value (" + s.type() + ")");
                }
                value = args[++i];
            }
            names.put(s.name(), value);
        }
        return new Parsed(fromNames(names, catalog, "--"), positional);
    }

    /** A parsed command line. */
    public record Parsed(Inf2Config config, List<String> positional) {
    }

    @SuppressWarnings("unchecked")
    public <T> T get(Setting<T> s) {
        if (!values.containsKey(s.name())) {
            throw new ConfigException("missing required setting " + s.cliFlag() + " (Spark: " + s.sparkKey() + ")");
        }
        return (T) values.get(s.name());
    }

    public boolean isSet(Setting<?> s) {
        return values.containsKey(s.name());
    }

    /** The values as text by camelCase name, for handing to another process (Spark executors). */
    public Map<String, String> asText() {
        return Collections.unmodifiableMap(raw);
    }

    /** A copy with {@code s} set to {@code text}. */
    public Inf2Config with(Setting<?> s, String text, List<Setting<?>> catalog) {
        Map<String, String> m = new LinkedHashMap<>(raw);
        m.put(s.name(), text);
        return fromNames(m, catalog, "");
    }

    private static String suggestion(String key, java.util.Collection<String> known) {
        String best = null;
        int bestDistance = Integer.MAX_VALUE;
        for (String k : known) {
            int d = distance(key.toLowerCase(), k.toLowerCase());
            if (d < bestDistance) {
                bestDistance = d;
                best = k;
            }
        }
        return best != null && bestDistance <= 3 ? " (did you mean " + best + "?)" : "";
    }

    private static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }
}
