package io.inf2.spark;

import io.inf2.config.ConfigException;
import io.inf2.config.Inf2Config;
import io.inf2.config.Setting;
import io.inf2.config.Settings;
import io.inf2.engine.SamplingParams;
import java.io.Serializable;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.NumericType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import scala.jdk.javaapi.CollectionConverters;

/**
 * A row's own generation parameters: input columns named after a parameter (max_new_tokens,
 * temperature, ...) override the job-wide value for that row, with the same checks as the flag. A
 * null value means the job-wide value.
 */
final class RowParameters implements Serializable {
    private static final long serialVersionUID = 1L;

    /** Parameter column names and the setting whose checks each one gets, in SamplingParams order. */
    static final Map<String, Setting<?>> SETTINGS = settings();
    static final List<String> COLUMNS = List.copyOf(SETTINGS.keySet());

    /** Job-wide values as text, by parameter column name. */
    private final LinkedHashMap<String, String> defaults;
    /** Parameter columns present, in the order they follow the prompt column in the prepared rows. */
    private final ArrayList<String> columns;

    private RowParameters(LinkedHashMap<String, String> defaults, ArrayList<String> columns) {
        this.defaults = defaults;
        this.columns = columns;
    }

    private static Map<String, Setting<?>> settings() {
        Map<String, Setting<?>> m = new LinkedHashMap<>();
        m.put("max_new_tokens", Settings.MAX_NEW_TOKENS);
        m.put("temperature", Settings.TEMPERATURE);
        m.put("top_k", Settings.TOP_K);
        m.put("top_p", Settings.TOP_P);
        m.put("repetition_penalty", Settings.REPETITION_PENALTY);
        m.put("seed", Settings.SEED);
        m.put("stop_token_ids", Settings.STOP_TOKEN_IDS);
        return java.util.Collections.unmodifiableMap(m);
    }

    /**
     * The parameter columns of {@code input} this job uses ({@code parameterColumns}: auto, empty or a
     * list), with their types checked; fails in one line naming the column.
     */
    static RowParameters plan(StructType input, Inf2Config config) {
        String spec = config.get(JobSettings.PARAMETER_COLUMNS);
        List<String> wanted = spec.equals("auto")
                ? COLUMNS.stream().filter(c -> hasField(input, c)).toList()
                : JobSettings.names(spec);
        for (String c : wanted) {
            if (!hasField(input, c)) {
                throw new ConfigException(JobSettings.PARAMETER_COLUMNS.name() + " \"" + c
                        + "\": no such column in the input (columns: " + String.join(", ", input.fieldNames()) + ")");
            }
            DataType type = input.apply(c).dataType();
            boolean ok = type.equals(DataTypes.StringType) || type instanceof NumericType
                    || (c.equals("stop_token_ids") && type instanceof ArrayType a && a.elementType() instanceof NumericType);
            if (!ok) {
                throw new ConfigException("column " + c + " has type " + type.simpleString()
                        + "; a generation parameter column holds numbers or text"
                        + (c.equals("stop_token_ids") ? " (or an array of token ids)" : ""));
            }
        }
        LinkedHashMap<String, String> defaults = new LinkedHashMap<>();
        SETTINGS.forEach((column, setting) -> defaults.put(column, config.asText().get(setting.name())));
        return new RowParameters(defaults, new ArrayList<>(wanted));
    }

    private static boolean hasField(StructType schema, String name) {
        for (StructField f : schema.fields()) {
            if (f.name().equals(name)) {
                return true;
            }
        }
        return false;
    }

    /** Parameter columns in use, in prepared-row order. */
    List<String> columns() {
        return columns;
    }

    /**
     * The sampling parameters of row {@code id}, whose parameter values start at {@code first}; a row
     * without a seed of its own gets one derived from the job's seed and its id
     * ({@link SamplingParams#seedFor}). Throws ConfigException (a one-line reason naming the column)
     * for an invalid value.
     */
    SamplingParams of(Row row, int first, String id) {
        Map<String, String> text = new LinkedHashMap<>(defaults);
        Map<String, String> source = new LinkedHashMap<>();
        for (int i = 0; i < columns.size(); i++) {
            Object v = row.get(first + i);
            if (v != null) {
                String column = columns.get(i);
                text.put(column, asText(v));
                source.put(column, "column " + column);
            }
        }
        Object[] values = new Object[COLUMNS.size()];
        for (int i = 0; i < COLUMNS.size(); i++) {
            String column = COLUMNS.get(i);
            values[i] = SETTINGS.get(column).parse(text.get(column), source.getOrDefault(column, "spark.inf2." + SETTINGS.get(column).name()));
        }
        @SuppressWarnings("unchecked")
        List<Integer> stopIds = (List<Integer>) values[6];
        long seed = source.containsKey("seed") ? (Long) values[5] : SamplingParams.seedFor((Long) values[5], id);
        try {
            return new SamplingParams((Integer) values[0], (Double) values[1], (Integer) values[2], (Double) values[3],
                    (Double) values[4], seed, stopIds);
        } catch (IllegalArgumentException e) {
            throw new ConfigException("generation parameters: " + e.getMessage());
        }
    }

    /** A cell as the text a flag would carry: numbers as written, arrays joined by commas. */
    private static String asText(Object v) {
        if (v instanceof scala.collection.Seq<?> seq) {
            return CollectionConverters.asJava(seq).stream().map(RowParameters::asText).collect(Collectors.joining(","));
        }
        // A JSON or CSV reader may give 64 as 64.0, which the integer settings would refuse; decimal
        // text (not a cast) keeps 1e19 from turning into Long.MAX_VALUE on the way.
        if (v instanceof Double d) {
            return Double.isFinite(d) ? plain(BigDecimal.valueOf(d)) : v.toString();
        }
        if (v instanceof Float f) {
            return Float.isFinite(f) ? plain(new BigDecimal(Float.toString(f))) : v.toString();
        }
        if (v instanceof BigDecimal d) {
            return plain(d);
        }
        return v.toString();
    }

    private static String plain(BigDecimal d) {
        return d.signum() == 0 ? "0" : d.stripTrailingZeros().toPlainString();
    }
}
