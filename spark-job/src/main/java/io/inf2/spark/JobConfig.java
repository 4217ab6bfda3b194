package io.inf2.spark;

import io.inf2.config.ConfigException;
import io.inf2.config.Inf2Config;
import io.inf2.config.Setting;
import io.inf2.config.Settings;
import io.inf2.plugin.PluginSettings;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.SparkConf;
import scala.Tuple2;

/**
 * Where the job's settings come from: one catalog (the engine's, the plugin's and the job's
 * settings), given as {@code --kebab-flags} on the job's command line, as {@code spark.inf2.*} keys in
 * Spark's configuration, or as an options map in notebooks. A flag or option wins over a Spark key.
 */
final class JobConfig {
    private JobConfig() {
    }

    /** Every setting the job understands. */
    static List<Setting<?>> catalog() {
        List<Setting<?>> all = new ArrayList<>(PluginSettings.catalog());
        all.addAll(JobSettings.all());
        return List.copyOf(all);
    }

    /** Parsed command line: settings by name, checked. */
    static Map<String, String> fromArgs(String[] args) {
        List<Setting<?>> catalog = catalog();
        Inf2Config.Parsed parsed = Inf2Config.fromArgs(args, catalog);
        if (!parsed.positional().isEmpty()) {
            throw new ConfigException("unexpected argument \"" + parsed.positional().getFirst()
                    + "\" (options are --name value; --help lists them)");
        }
        Map<String, Setting<?>> byFlag = new LinkedHashMap<>();
        catalog.forEach(s -> byFlag.put(s.cliFlag(), s));
        Map<String, String> given = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            int eq = a.indexOf('=');
            String flag = eq > 0 ? a.substring(0, eq) : a;
            Setting<?> s = byFlag.get(flag);
            if (s != null) {
                given.put(s.name(), eq > 0 ? a.substring(eq + 1) : args[++i]);
            }
        }
        return given;
    }

    /** The spark.inf2.* entries of a Spark configuration, by setting name. */
    static Map<String, String> fromSparkConf(SparkConf conf) {
        Map<String, String> names = new LinkedHashMap<>();
        for (Tuple2<String, String> e : conf.getAll()) {
            if (e._1().startsWith(Setting.SPARK_PREFIX)) {
                names.put(e._1().substring(Setting.SPARK_PREFIX.length()), e._2());
            }
        }
        return names;
    }

    /**
     * Options of {@link Inf2#generate} or {@link Inf2#run}: keys are setting names ("maxNewTokens") or
     * Spark keys ("spark.inf2.maxNewTokens").
     */
    static Map<String, String> fromOptions(Map<String, String> options) {
        Map<String, String> names = new LinkedHashMap<>();
        options.forEach((k, v) -> names.put(k.startsWith(Setting.SPARK_PREFIX) ? k.substring(Setting.SPARK_PREFIX.length()) : k, v));
        return names;
    }

    /** The session's values overlaid with {@code given}, checked against the catalog. */
    static Inf2Config merge(Map<String, String> session, Map<String, String> given) {
        Map<String, String> merged = new LinkedHashMap<>(session);
        merged.putAll(given);
        // Keys of other front ends (registered with the plugin) may be in the session; they are not ours.
        Map<String, Setting<?>> ours = Settings.byName(catalog());
        merged.keySet().removeIf(k -> session.containsKey(k) && !given.containsKey(k) && !ours.containsKey(k));
        return Inf2Config.fromNames(merged, catalog(), Setting.SPARK_PREFIX);
    }

    /**
     * Options of one {@link Inf2#generate} call on a running session: generation and row settings
     * only. The engine, devices and plugin are set when the session starts; a different value here
     * would silently not apply, so it is an error.
     */
    static void checkPerCallOptions(Map<String, String> session, Map<String, String> given) {
        Map<String, Setting<?>> byName = Settings.byName(catalog());
        for (Map.Entry<String, String> e : given.entrySet()) {
            Setting<?> s = byName.get(e.getKey());
            if (s == null) {
                continue;
            }
            if (JobSettings.jobOnly().contains(s)) {
                throw new ConfigException(s.name() + " is a setting of the batch job (Inf2.run, bin/inf2-submit); "
                        + "Inf2.generate takes the prompts as a Dataset and returns the results as one");
            }
            boolean perCall = s.group().equals("generation") || JobSettings.all().contains(s);
            if (!perCall) {
                Object wanted = s.parse(e.getValue(), s.name());
                String current = session.containsKey(s.name()) ? session.get(s.name()) : s.defaultValue();
                Object running = current == null ? null : s.parse(current, s.sparkKey());
                if (!wanted.equals(running)) {
                    throw new ConfigException(s.name() + "=\"" + e.getValue() + "\": " + s.sparkKey()
                            + " is fixed when the session starts (it is " + (current == null ? "unset" : "\"" + current + "\"")
                            + "); give it to Inf2.session instead");
                }
            }
        }
    }
}
