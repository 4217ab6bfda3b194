package io.inf2.config;

import java.util.Locale;
import java.util.Objects;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * One typed setting: its name, type, default, check and documentation. The same definition gives
 * the Spark key ({@code spark.inf2.<name>}), the command-line flag ({@code --kebab-name}) and the
 * row in docs/configuration.md.
 *
 * @param name       camelCase name, e.g. {@code maxNewTokens}
 * @param type       what the value is, for documentation ("int", "path", "memory|csd|storage", ...)
 * @param defaultValue the default as text, or null when the setting is required or has no default
 * @param parser     text to value; throws IllegalArgumentException with a reason
 * @param check      validity of a parsed value
 * @param requirement what {@code check} requires, for messages and docs
 */
public record Setting<T>(String group, String name, String type, String defaultValue, String doc,
                         Function<String, T> parser, Predicate<T> check, String requirement) {

    public static final String SPARK_PREFIX = "spark.inf2.";

    public Setting {
        Objects.requireNonNull(name);
        Objects.requireNonNull(parser);
        Objects.requireNonNull(check);
    }

    public String sparkKey() {
        return SPARK_PREFIX + name;
    }

    public String cliFlag() {
        StringBuilder sb = new StringBuilder("--");
        for (char ch : name.toCharArray()) {
            if (Character.isUpperCase(ch)) {
                sb.append('-').append(Character.toLowerCase(ch));
            } else {
                sb.append(ch);
            }
        }
        return sb.toString();
    }

    /**
     * Parses and checks {@code text}; {@code source} names where it came from (a flag, a Spark key)
     * for the one-line error.
     */
    public T parse(String text, String source) {
        T value;
        try {
            value = parser.apply(text.trim());
        } catch (RuntimeException e) {
            throw new ConfigException(source + "=" + quote(text) + ": " + reason(e) + " (expected " + type + ")");
        }
        if (!check.test(value)) {
            throw new ConfigException(source + "=" + quote(text) + ": must be " + requirement);
        }
        return value;
    }

    private static String reason(RuntimeException e) {
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    private static String quote(String text) {
        return "\"" + text + "\"";
    }

    static String lower(String s) {
        return s.toLowerCase(Locale.ROOT);
    }
}
