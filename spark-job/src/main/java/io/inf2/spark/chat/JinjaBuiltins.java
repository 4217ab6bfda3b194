package io.inf2.spark.chat;

import static io.inf2.spark.chat.JinjaRuntime.Failure;
import static io.inf2.spark.chat.JinjaRuntime.Namespace;
import static io.inf2.spark.chat.JinjaRuntime.Undefined;
import static io.inf2.spark.chat.JinjaRuntime.checkSize;
import static io.inf2.spark.chat.JinjaRuntime.equal;
import static io.inf2.spark.chat.JinjaRuntime.integer;
import static io.inf2.spark.chat.JinjaRuntime.isNumber;
import static io.inf2.spark.chat.JinjaRuntime.iterate;
import static io.inf2.spark.chat.JinjaRuntime.str;
import static io.inf2.spark.chat.JinjaRuntime.truthy;
import static io.inf2.spark.chat.JinjaRuntime.typeName;

import java.time.ZonedDateTime;
import java.time.format.TextStyle;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Filters, tests and methods of the Jinja subset, with Python's behaviour. */
final class JinjaBuiltins {

    private JinjaBuiltins() {
    }

    static Object filter(String name, Object v, List<Object> args, Map<String, Object> kwargs, int line) {
        return switch (name) {
            case "trim" -> strip(str(v), args.isEmpty() ? null : str(args.getFirst()), true, true);
            case "length", "count" -> (long) length(v, line);
            case "tojson" -> Json.dumps(v, kwargs.containsKey("indent") ? kwargs.get("indent")
                    : args.isEmpty() ? null : args.getFirst(), line);
            case "upper" -> str(v).toUpperCase(Locale.ROOT);
            case "lower" -> str(v).toLowerCase(Locale.ROOT);
            case "capitalize" -> capitalize(str(v));
            case "title" -> title(str(v));
            case "string" -> str(v);
            case "default", "d" -> {
                Object fallback = args.isEmpty() ? "" : args.getFirst();
                boolean onFalse = args.size() > 1 ? truthy(args.get(1)) : truthy(kwargs.getOrDefault("boolean", false));
                yield v instanceof Undefined || (onFalse && !truthy(v)) ? fallback : v;
            }
            case "first" -> {
                List<Object> items = iterate(v, line);
                yield items.isEmpty() ? Undefined.VALUE : items.getFirst();
            }
            case "last" -> {
                List<Object> items = iterate(v, line);
                yield items.isEmpty() ? Undefined.VALUE : items.getLast();
            }
            case "join" -> {
                String separator = args.isEmpty() ? str(kwargs.getOrDefault("d", "")) : str(args.getFirst());
                Object attribute = kwargs.get("attribute");
                StringBuilder sb = new StringBuilder();
                List<Object> items = iterate(v, line);
                for (int i = 0; i < items.size(); i++) {
                    Object item = attribute == null ? items.get(i) : JinjaRuntime.item(items.get(i), attribute, line);
                    sb.append(i == 0 ? "" : separator).append(str(item));
                    checkSize(sb.length(), "characters");
                }
                yield sb.toString();
            }
            case "replace" -> replace(str(v), args, line);
            case "list" -> iterate(v, line);
            case "items" -> items(v, line);
            case "reverse" -> {
                if (v instanceof String s) {
                    yield new StringBuilder(s).reverse().toString();
                }
                List<Object> items = iterate(v, line);
                java.util.Collections.reverse(items);
                yield items;
            }
            case "int" -> toInteger(v);
            case "float" -> toFloat(v);
            case "abs" -> v instanceof Long l ? (Object) Math.abs(l) : (Object) Math.abs(JinjaRuntime.number(requireNumber(v, "abs", line)));
            case "map" -> map(v, args, kwargs, line);
            case "select", "reject" -> select(v, args, name.equals("select"), line);
            case "selectattr", "rejectattr" -> selectAttribute(v, args, name.equals("selectattr"), line);
            case "safe" -> v;
            case "indent" -> indent(str(v), args, kwargs, line);
            case "unique" -> {
                List<Object> out = new ArrayList<>();
                for (Object item : iterate(v, line)) {
                    if (out.stream().noneMatch(x -> equal(x, item))) {
                        out.add(item);
                    }
                }
                yield out;
            }
            case "sort" -> {
                List<Object> items = iterate(v, line);
                items.sort((a, b) -> JinjaRuntime.compare(a, b, line));
                if (truthy(kwargs.getOrDefault("reverse", false))) {
                    java.util.Collections.reverse(items);
                }
                yield items;
            }
            default -> throw new IllegalStateException(name);
        };
    }

    static boolean test(String name, Object v, List<Object> args, int line) {
        return switch (name) {
            case "defined" -> !(v instanceof Undefined);
            case "undefined" -> v instanceof Undefined;
            case "none" -> v == null;
            case "string" -> v instanceof String;
            case "number" -> isNumber(v);
            case "integer" -> v instanceof Long;
            case "float" -> v instanceof Double;
            case "boolean" -> v instanceof Boolean;
            case "mapping" -> v instanceof Map || v instanceof Namespace;
            case "sequence" -> v instanceof List || v instanceof String || v instanceof Map;
            case "iterable" -> v instanceof Collection || v instanceof String || v instanceof Map;
            case "true" -> Boolean.TRUE.equals(v);
            case "false" -> Boolean.FALSE.equals(v);
            case "even" -> integer(v, line) % 2 == 0;
            case "odd" -> integer(v, line) % 2 != 0;
            case "divisibleby" -> {
                long divisor = integer(argument(args, name, line), line);
                if (divisor == 0) {
                    throw new Failure("line " + line + ": division by zero in 'divisibleby'");
                }
                yield integer(v, line) % divisor == 0;
            }
            case "equalto", "eq" -> equal(v, argument(args, name, line));
            case "ne" -> !equal(v, argument(args, name, line));
            case "lt" -> JinjaRuntime.compare(v, argument(args, name, line), line) < 0;
            case "gt" -> JinjaRuntime.compare(v, argument(args, name, line), line) > 0;
            case "le" -> JinjaRuntime.compare(v, argument(args, name, line), line) <= 0;
            case "ge" -> JinjaRuntime.compare(v, argument(args, name, line), line) >= 0;
            case "in" -> JinjaRuntime.contains(argument(args, name, line), v, line);
            case "sameas" -> v == argument(args, name, line) || (v == null && argument(args, name, line) == null);
            case "callable" -> v instanceof JinjaRuntime.Callable;
            case "lower" -> v instanceof String s && s.equals(s.toLowerCase(Locale.ROOT));
            case "upper" -> v instanceof String s && s.equals(s.toUpperCase(Locale.ROOT));
            default -> throw new IllegalStateException(name);
        };
    }

    private static Object argument(List<Object> args, String test, int line) {
        if (args.isEmpty()) {
            throw new Failure("line " + line + ": test '" + test + "' needs an argument");
        }
        return args.getFirst();
    }

    static Object method(Object target, String name, List<Object> args, int line) {
        if (target instanceof String s) {
            return switch (name) {
                case "strip" -> strip(s, optionalString(args, 0), true, true);
                case "lstrip" -> strip(s, optionalString(args, 0), true, false);
                case "rstrip" -> strip(s, optionalString(args, 0), false, true);
                case "startswith" -> affix(s, args, true, line);
                case "endswith" -> affix(s, args, false, line);
                case "split" -> split(s, optionalString(args, 0), args.size() > 1 ? integer(args.get(1), line) : -1);
                case "splitlines" -> {
                    List<Object> lines = new ArrayList<>(List.of(s.split("\r\n|\r|\n", -1)));
                    if (lines.getLast().equals("")) {
                        lines.removeLast();
                    }
                    yield lines;
                }
                case "upper" -> s.toUpperCase(Locale.ROOT);
                case "lower" -> s.toLowerCase(Locale.ROOT);
                case "title" -> title(s);
                case "capitalize" -> capitalize(s);
                case "replace" -> replace(s, args, line);
                case "find" -> (long) s.indexOf(str(argument(args, "find", line)));
                case "join" -> {
                    StringBuilder sb = new StringBuilder();
                    List<Object> items = iterate(argument(args, "join", line), line);
                    for (int i = 0; i < items.size(); i++) {
                        sb.append(i == 0 ? "" : s).append(str(items.get(i)));
                        checkSize(sb.length(), "characters");
                    }
                    yield sb.toString();
                }
                default -> throw new Failure("line " + line + ": str has no method " + name + "()");
            };
        }
        if (target instanceof Map<?, ?> m) {
            return switch (name) {
                case "items" -> items(m, line);
                case "keys" -> new ArrayList<Object>(m.keySet());
                case "values" -> new ArrayList<Object>(m.values());
                case "get" -> {
                    Object key = argument(args, "get", line);
                    yield m.containsKey(key) ? m.get(key) : args.size() > 1 ? args.get(1) : null;
                }
                default -> throw new Failure("line " + line + ": dict has no method " + name + "()");
            };
        }
        throw new Failure("line " + line + ": " + typeName(target) + " has no method " + name + "()");
    }

    private static String optionalString(List<Object> args, int i) {
        return args.size() > i && args.get(i) != null ? str(args.get(i)) : null;
    }

    static String strip(String s, String chars, boolean left, boolean right) {
        int start = 0;
        int end = s.length();
        while (left && start < end && stripped(s.charAt(start), chars)) {
            start++;
        }
        while (right && end > start && stripped(s.charAt(end - 1), chars)) {
            end--;
        }
        return s.substring(start, end);
    }

    private static boolean stripped(char c, String chars) {
        return chars == null ? isSpace(c) : chars.indexOf(c) >= 0;
    }

    /** Python's str.isspace for one character, which unlike Java's isWhitespace includes no-break spaces. */
    private static boolean isSpace(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == '\u0085';
    }

    private static boolean affix(String s, List<Object> args, boolean prefix, int line) {
        Object a = argument(args, prefix ? "startswith" : "endswith", line);
        List<Object> options = a instanceof List<?> l ? new ArrayList<>(l) : List.of(a);
        for (Object o : options) {
            String t = str(o);
            if (prefix ? s.startsWith(t) : s.endsWith(t)) {
                return true;
            }
        }
        return false;
    }

    private static List<Object> split(String s, String separator, long maxSplit) {
        List<Object> out = new ArrayList<>();
        if (separator == null) {
            String rest = strip(s, null, true, true);
            while (!rest.isEmpty()) {
                if (maxSplit >= 0 && out.size() == maxSplit) {
                    out.add(rest);
                    return out;
                }
                int i = 0;
                while (i < rest.length() && !isSpace(rest.charAt(i))) {
                    i++;
                }
                out.add(rest.substring(0, i));
                rest = strip(rest.substring(i), null, true, false);
            }
            return out;
        }
        if (separator.isEmpty()) {
            throw new Failure("split(): empty separator");
        }
        int from = 0;
        while (maxSplit < 0 || out.size() < maxSplit) {
            int at = s.indexOf(separator, from);
            if (at < 0) {
                break;
            }
            out.add(s.substring(from, at));
            from = at + separator.length();
        }
        out.add(s.substring(from));
        return out;
    }

    private static String replace(String s, List<Object> args, int line) {
        if (args.size() < 2) {
            throw new Failure("line " + line + ": replace() needs the old and the new text");
        }
        String old = str(args.get(0));
        String replacement = str(args.get(1));
        long count = args.size() > 2 ? integer(args.get(2), line) : -1;
        long limit = count < 0 ? Long.MAX_VALUE : count;
        StringBuilder sb = new StringBuilder();
        if (old.isEmpty()) {
            // Python puts the replacement before each character and after the last, up to count times.
            int i = 0;
            for (long n = 0; n < limit; n++) {
                sb.append(replacement);
                checkSize(sb.length(), "characters");
                if (i == s.length()) {
                    return sb.toString();
                }
                int next = s.offsetByCodePoints(i, 1);
                sb.append(s, i, next);
                i = next;
            }
            return sb.append(s, i, s.length()).toString();
        }
        int from = 0;
        for (long n = 0; n < limit; n++) {
            int at = s.indexOf(old, from);
            if (at < 0) {
                break;
            }
            sb.append(s, from, at).append(replacement);
            checkSize(sb.length(), "characters");
            from = at + old.length();
        }
        return sb.append(s, from, s.length()).toString();
    }

    private static String capitalize(String s) {
        return s.isEmpty() ? s : s.substring(0, 1).toUpperCase(Locale.ROOT) + s.substring(1).toLowerCase(Locale.ROOT);
    }

    private static String title(String s) {
        StringBuilder sb = new StringBuilder();
        boolean startOfWord = true;
        for (char c : s.toCharArray()) {
            sb.append(startOfWord ? Character.toUpperCase(c) : Character.toLowerCase(c));
            startOfWord = !Character.isLetterOrDigit(c);
        }
        return sb.toString();
    }

    private static int length(Object v, int line) {
        return switch (v) {
            case String s -> s.codePointCount(0, s.length());
            case Collection<?> c -> c.size();
            case Map<?, ?> m -> m.size();
            case Undefined u -> 0;
            case null, default -> throw new Failure("line " + line + ": " + typeName(v) + " has no length");
        };
    }

    private static List<Object> items(Object v, int line) {
        if (!(v instanceof Map<?, ?> m)) {
            throw new Failure("line " + line + ": items() needs a dict, got " + typeName(v));
        }
        List<Object> out = new ArrayList<>();
        m.forEach((k, x) -> out.add(new ArrayList<>(java.util.Arrays.asList(k, x))));
        return out;
    }

    private static Object toInteger(Object v) {
        return switch (v) {
            case Long l -> l;
            case Double d -> (long) d.doubleValue();
            case Boolean b -> b ? 1L : 0L;
            case String s -> {
                try {
                    yield Long.parseLong(s.strip());
                } catch (NumberFormatException e) {
                    yield 0L;
                }
            }
            case null, default -> 0L;
        };
    }

    private static Object toFloat(Object v) {
        return switch (v) {
            case Long l -> l.doubleValue();
            case Double d -> d;
            case String s -> {
                try {
                    yield Double.parseDouble(s.strip());
                } catch (NumberFormatException e) {
                    yield 0.0;
                }
            }
            case null, default -> 0.0;
        };
    }

    private static Object requireNumber(Object v, String filter, int line) {
        if (!isNumber(v)) {
            throw new Failure("line " + line + ": |" + filter + " needs a number, got " + typeName(v));
        }
        return v;
    }

    private static List<Object> map(Object v, List<Object> args, Map<String, Object> kwargs, int line) {
        List<Object> out = new ArrayList<>();
        Object attribute = kwargs.get("attribute");
        for (Object item : iterate(v, line)) {
            if (attribute != null) {
                Object got = JinjaRuntime.item(item, attribute, line);
                out.add(got instanceof Undefined && kwargs.containsKey("default") ? kwargs.get("default") : got);
            } else if (!args.isEmpty()) {
                String filter = str(args.getFirst());
                if (!JinjaRuntime.FILTERS.contains(filter)) {
                    throw new Failure("line " + line + ": map() names filter '" + filter + "', which is not supported");
                }
                out.add(filter(filter, item, args.subList(1, args.size()), Map.of(), line));
            } else {
                throw new Failure("line " + line + ": map() needs a filter name or attribute=");
            }
        }
        return out;
    }

    private static List<Object> select(Object v, List<Object> args, boolean keep, int line) {
        List<Object> out = new ArrayList<>();
        for (Object item : iterate(v, line)) {
            boolean ok = args.isEmpty() ? truthy(item) : applyTest(item, args, 0, line);
            if (ok == keep) {
                out.add(item);
            }
        }
        return out;
    }

    private static List<Object> selectAttribute(Object v, List<Object> args, boolean keep, int line) {
        if (args.isEmpty()) {
            throw new Failure("line " + line + ": selectattr/rejectattr need an attribute name");
        }
        Object attribute = args.getFirst();
        List<Object> out = new ArrayList<>();
        for (Object item : iterate(v, line)) {
            Object value = JinjaRuntime.item(item, attribute, line);
            boolean ok = args.size() == 1 ? truthy(value) : applyTest(value, args, 1, line);
            if (ok == keep) {
                out.add(item);
            }
        }
        return out;
    }

    private static boolean applyTest(Object value, List<Object> args, int at, int line) {
        String test = str(args.get(at));
        if (!JinjaRuntime.TESTS.contains(test)) {
            throw new Failure("line " + line + ": test '" + test + "' is not supported");
        }
        return test(test, value, args.subList(at + 1, args.size()), line);
    }

    private static String indent(String s, List<Object> args, Map<String, Object> kwargs, int line) {
        Object width = args.isEmpty() ? kwargs.getOrDefault("width", 4L) : args.getFirst();
        String pad;
        if (width instanceof String w) {
            pad = w;
        } else {
            // As Python's " " * width: a bool counts as 0 or 1, a negative width as 0.
            long spaces = Math.max(0, integer(width, line));
            checkSize(spaces, "characters");
            pad = " ".repeat((int) spaces);
        }
        boolean first = truthy(args.size() > 1 ? args.get(1) : kwargs.getOrDefault("first", false));
        boolean blank = truthy(args.size() > 2 ? args.get(2) : kwargs.getOrDefault("blank", false));
        String[] lines = s.split("\n", -1);
        checkSize(s.length() + (long) pad.length() * lines.length, "characters");
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < lines.length; i++) {
            if (i > 0) {
                sb.append('\n');
            }
            boolean indentThis = (i > 0 || first) && (blank || !lines[i].isBlank());
            sb.append(indentThis ? pad : "").append(lines[i]);
        }
        return sb.toString();
    }

    /** Python's strftime for the codes chat templates use to print a date. */
    static String strftime(String format, ZonedDateTime t) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                sb.append(c);
                continue;
            }
            char code = format.charAt(++i);
            switch (code) {
                case 'd' -> sb.append(String.format("%02d", t.getDayOfMonth()));
                case 'm' -> sb.append(String.format("%02d", t.getMonthValue()));
                case 'Y' -> sb.append(t.getYear());
                case 'y' -> sb.append(String.format("%02d", t.getYear() % 100));
                case 'b' -> sb.append(t.getMonth().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'B' -> sb.append(t.getMonth().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'a' -> sb.append(t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'A' -> sb.append(t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'H' -> sb.append(String.format("%02d", t.getHour()));
                case 'M' -> sb.append(String.format("%02d", t.getMinute()));
                case 'S' -> sb.append(String.format("%02d", t.getSecond()));
                case 'j' -> sb.append(String.format("%03d", t.getDayOfYear()));
                case '%' -> sb.append('%');
                default -> throw new Failure("strftime_now: format code %" + code + " is not supported");
            }
        }
        return sb.toString();
    }

    /** Python's json.dumps as Hugging Face's tojson filter calls it (ensure_ascii off, keys in order). */
    static final class Json {
        private Json() {
        }

        static String dumps(Object v, Object indent, int line) {
            StringBuilder sb = new StringBuilder();
            long spaces = indent == null ? -1 : integer(indent, line);
            checkSize(spaces, "characters");
            int width = (int) spaces;
            write(sb, v, width, 0, line);
            return sb.toString();
        }

        private static void write(StringBuilder sb, Object v, int indent, int depth, int line) {
            switch (v) {
                case null -> sb.append("null");
                case Undefined u -> throw new Failure("line " + line + ": tojson of an undefined value");
                case Boolean b -> sb.append(b ? "true" : "false");
                case Long l -> sb.append(l);
                case Double d -> sb.append(Double.isFinite(d) ? JinjaRuntime.pythonFloat(d) : d > 0 ? "Infinity"
                        : d < 0 ? "-Infinity" : "NaN");
                case String s -> quote(sb, s);
                case List<?> l -> container(sb, '[', ']', l.size(), indent, depth, i -> write(sb, l.get(i), indent, depth + 1, line));
                case Map<?, ?> m -> {
                    List<Map.Entry<?, ?>> entries = new ArrayList<>(m.entrySet());
                    container(sb, '{', '}', entries.size(), indent, depth, i -> {
                        quote(sb, str(entries.get(i).getKey()));
                        sb.append(": ");
                        write(sb, entries.get(i).getValue(), indent, depth + 1, line);
                    });
                }
                case Namespace ns -> write(sb, new LinkedHashMap<Object, Object>(ns.values), indent, depth, line);
                default -> throw new Failure("line " + line + ": tojson cannot write " + typeName(v));
            }
        }

        private static void container(StringBuilder sb, char open, char close, int n, int indent, int depth,
                                      java.util.function.IntConsumer element) {
            sb.append(open);
            if (n == 0) {
                sb.append(close);
                return;
            }
            for (int i = 0; i < n; i++) {
                if (indent >= 0) {
                    checkSize(sb.length() + (long) indent * (depth + 1), "characters");
                    sb.append(i == 0 ? "" : ",").append('\n').append(" ".repeat(indent * (depth + 1)));
                } else if (i > 0) {
                    sb.append(", ");
                }
                element.accept(i);
                checkSize(sb.length(), "characters");
            }
            if (indent >= 0) {
                sb.append('\n').append(" ".repeat(indent * depth));
            }
            sb.append(close);
        }

        private static void quote(StringBuilder sb, String s) {
            sb.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> sb.append("\\\"");
                    case '\\' -> sb.append("\\\\");
                    case '\n' -> sb.append("\\n");
                    case '\r' -> sb.append("\\r");
                    case '\t' -> sb.append("\\t");
                    case '\b' -> sb.append("\\b");
                    case '\f' -> sb.append("\\f");
                    default -> {
                        if (c < 0x20) {
                            sb.append(String.format("\\u%04x", (int) c));
                        } else {
                            sb.append(c);
                        }
                    }
                }
            }
            sb.append('"');
        }
    }
}
