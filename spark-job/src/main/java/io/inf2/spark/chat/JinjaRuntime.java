package io.inf2.spark.chat;

import io.inf2.spark.chat.JinjaNode.Expr;
import java.math.BigInteger;
import java.time.ZonedDateTime;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Deque;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Renders parsed templates with Python's value semantics as Jinja has them: None, booleans,
 * integers (Long), floats (Double), strings, lists and dicts; undefined values print as nothing and
 * are false. Not thread-safe: one instance renders one template call.
 */
final class JinjaRuntime {

    static final Set<String> FUNCTIONS = Set.of("range", "raise_exception", "namespace", "strftime_now", "dict");
    static final Set<String> METHODS = Set.of("strip", "lstrip", "rstrip", "startswith", "endswith", "split", "upper",
            "lower", "title", "capitalize", "replace", "find", "join", "splitlines", "items", "keys", "values", "get");
    static final Set<String> FILTERS = Set.of("trim", "length", "count", "tojson", "upper", "lower", "capitalize",
            "title", "string", "default", "d", "first", "last", "join", "replace", "list", "items", "reverse", "int",
            "float", "abs", "map", "select", "reject", "selectattr", "rejectattr", "safe", "indent", "unique", "sort");
    static final Set<String> TESTS = Set.of("defined", "undefined", "none", "string", "number", "integer", "float",
            "boolean", "mapping", "sequence", "iterable", "true", "false", "even", "odd", "divisibleby", "equalto", "eq",
            "ne", "lt", "gt", "le", "ge", "in", "sameas", "callable", "lower", "upper");

    /**
     * Templates come from model files and render once per row in an executor, so one render may do
     * at most this many loop iterations and macro calls: a runaway template fails its rows instead
     * of hanging the task.
     */
    static final long MAX_STEPS = 10_000_000;
    /** The most characters (or list items) one render may produce in any value, so it cannot exhaust the heap. */
    static final int MAX_SIZE = 16 << 20;

    /** Jinja's undefined value. */
    enum Undefined { VALUE }

    /** A value created by {@code namespace(...)}: the one kind of object a template may change. */
    static final class Namespace {
        final Map<String, Object> values = new LinkedHashMap<>();
    }

    @FunctionalInterface
    interface Callable {
        Object call(List<Object> args, Map<String, Object> kwargs);
    }

    /** An error while rendering: the template raised, or used a value in a way Python would refuse. */
    static final class Failure extends RuntimeException {
        Failure(String message) {
            super(message, null, false, false);
        }
    }

    /**
     * A value would exceed MAX_SIZE; thrown by helpers that do not know the template line, and turned
     * into a {@link Failure} by the innermost expression being evaluated.
     */
    private static final class TooLarge extends RuntimeException {
        TooLarge(String what) {
            super(what, null, false, false);
        }
    }

    private static final class BreakSignal extends RuntimeException {
        BreakSignal() {
            super(null, null, false, false);
        }
    }

    private static final class ContinueSignal extends RuntimeException {
        ContinueSignal() {
            super(null, null, false, false);
        }
    }

    private final Deque<Map<String, Object>> scopes = new ArrayDeque<>();
    private final StringBuilder out = new StringBuilder();
    private int loopDepth;
    private long steps;

    private JinjaRuntime(Map<String, Object> variables) {
        scopes.push(new HashMap<>(variables));
    }

    static String render(List<JinjaNode> template, Map<String, Object> variables) {
        JinjaRuntime r = new JinjaRuntime(variables);
        r.run(template, r.out);
        return r.out.toString();
    }

    // ---- statements

    private void run(List<JinjaNode> nodes, StringBuilder sink) {
        for (JinjaNode n : nodes) {
            run(n, sink);
        }
    }

    private void run(JinjaNode node, StringBuilder sink) {
        switch (node) {
            case JinjaNode.Text t -> sink.append(t.text());
            case JinjaNode.Output o -> {
                try {
                    sink.append(str(eval(o.expr())));
                } catch (TooLarge t) {
                    throw tooLarge(t.getMessage(), o.line());
                }
                checkOutput(sink, o.line());
            }
            case JinjaNode.If i -> {
                for (int k = 0; k < i.conditions().size(); k++) {
                    if (truthy(eval(i.conditions().get(k)))) {
                        run(i.bodies().get(k), sink);
                        return;
                    }
                }
                run(i.otherwise(), sink);
            }
            case JinjaNode.For f -> runFor(f, sink);
            case JinjaNode.Set s -> {
                Object value = eval(s.value());
                if (s.attribute() != null) {
                    Object target = lookup(s.targets().getFirst());
                    if (!(target instanceof Namespace ns)) {
                        throw new Failure("line " + s.line() + ": cannot set ." + s.attribute() + " on "
                                + typeName(target) + " (only on a namespace())");
                    }
                    ns.values.put(s.attribute(), value);
                } else {
                    assign(s.targets(), value, s.line());
                }
            }
            case JinjaNode.SetBlock s -> {
                StringBuilder captured = new StringBuilder();
                run(s.body(), captured);
                scopes.peek().put(s.target(), captured.toString());
            }
            case JinjaNode.Macro m -> scopes.peek().put(m.name(), macro(m));
            case JinjaNode.Break b -> {
                if (loopDepth == 0) {
                    throw new Failure("line " + b.line() + ": break outside a for loop");
                }
                throw new BreakSignal();
            }
            case JinjaNode.Continue c -> {
                if (loopDepth == 0) {
                    throw new Failure("line " + c.line() + ": continue outside a for loop");
                }
                throw new ContinueSignal();
            }
            case JinjaNode.Block b -> run(b.body(), sink);
        }
    }

    private void step(int line) {
        if (++steps > MAX_STEPS) {
            throw new Failure("line " + line + ": the template ran more than " + MAX_STEPS + " steps");
        }
    }

    private static void checkOutput(StringBuilder sink, int line) {
        if (sink.length() > MAX_SIZE) {
            throw tooLarge("characters", line);
        }
    }

    /** Refuses to build a value of {@code size} characters or items ({@code what}) beyond MAX_SIZE. */
    static void checkSize(long size, String what) {
        if (size > MAX_SIZE) {
            throw new TooLarge(what);
        }
    }

    private static Failure tooLarge(String what, int line) {
        return new Failure("line " + line + ": the template produces more than " + MAX_SIZE + " " + what);
    }

    private void assign(List<String> targets, Object value, int line) {
        if (targets.size() == 1) {
            scopes.peek().put(targets.getFirst(), value);
            return;
        }
        List<Object> parts = iterate(value, line);
        if (parts.size() != targets.size()) {
            throw new Failure("line " + line + ": cannot unpack " + parts.size() + " values into " + targets.size() + " names");
        }
        for (int i = 0; i < targets.size(); i++) {
            scopes.peek().put(targets.get(i), parts.get(i));
        }
    }

    private void runFor(JinjaNode.For f, StringBuilder sink) {
        List<Object> items = iterate(eval(f.iterable()), f.line());
        if (f.filter() != null) {
            List<Object> kept = new ArrayList<>();
            for (Object item : items) {
                step(f.line());
                scopes.push(new HashMap<>());
                try {
                    assign(f.targets(), item, f.line());
                    if (truthy(eval(f.filter()))) {
                        kept.add(item);
                    }
                } finally {
                    scopes.pop();
                }
            }
            items = kept;
        }
        if (items.isEmpty()) {
            run(f.otherwise(), sink);
            return;
        }
        loopDepth++;
        try {
            for (int i = 0; i < items.size(); i++) {
                step(f.line());
                checkOutput(sink, f.line());
                Map<String, Object> scope = new HashMap<>();
                scope.put("loop", loopInfo(items, i));
                scopes.push(scope);
                try {
                    assign(f.targets(), items.get(i), f.line());
                    run(f.body(), sink);
                } catch (ContinueSignal c) {
                    // next item
                } catch (BreakSignal b) {
                    break;
                } finally {
                    scopes.pop();
                }
            }
        } finally {
            loopDepth--;
        }
    }

    private static Map<String, Object> loopInfo(List<Object> items, int i) {
        Map<String, Object> loop = new LinkedHashMap<>();
        int n = items.size();
        loop.put("index", (long) i + 1);
        loop.put("index0", (long) i);
        loop.put("revindex", (long) (n - i));
        loop.put("revindex0", (long) (n - i - 1));
        loop.put("first", i == 0);
        loop.put("last", i == n - 1);
        loop.put("length", (long) n);
        loop.put("previtem", i > 0 ? items.get(i - 1) : Undefined.VALUE);
        loop.put("nextitem", i + 1 < n ? items.get(i + 1) : Undefined.VALUE);
        loop.put("cycle", (Callable) (args, kw) -> args.isEmpty() ? Undefined.VALUE : args.get(i % args.size()));
        return loop;
    }

    private Callable macro(JinjaNode.Macro m) {
        Map<String, Object> root = scopes.peekLast();
        return (args, kwargs) -> {
            if (args.size() > m.parameters().size()) {
                throw new Failure("macro " + m.name() + " takes " + m.parameters().size() + " arguments, got " + args.size());
            }
            Map<String, Object> scope = new HashMap<>();
            for (int i = 0; i < m.parameters().size(); i++) {
                String p = m.parameters().get(i);
                Object v;
                if (i < args.size()) {
                    v = args.get(i);
                } else if (kwargs.containsKey(p)) {
                    v = kwargs.get(p);
                } else if (m.defaults().get(i) != null) {
                    v = eval(m.defaults().get(i));
                } else {
                    v = Undefined.VALUE;
                }
                scope.put(p, v);
            }
            Deque<Map<String, Object>> saved = new ArrayDeque<>(scopes);
            scopes.clear();
            scopes.push(root);
            scopes.push(scope);
            int savedDepth = loopDepth;
            loopDepth = 0;
            try {
                StringBuilder sb = new StringBuilder();
                run(m.body(), sb);
                return sb.toString();
            } finally {
                scopes.clear();
                scopes.addAll(saved);
                loopDepth = savedDepth;
            }
        };
    }

    private Object lookup(String name) {
        for (Map<String, Object> scope : scopes) {
            if (scope.containsKey(name)) {
                return scope.get(name);
            }
        }
        return Undefined.VALUE;
    }

    // ---- expressions

    private Object eval(Expr e) {
        Object v;
        try {
            v = evaluate(e);
        } catch (TooLarge t) {
            throw tooLarge(t.getMessage(), e.line());
        }
        // A backstop for any operation that grows a value without checking its size first.
        if (v instanceof String s && s.length() > MAX_SIZE) {
            throw tooLarge("characters", e.line());
        }
        if (v instanceof Collection<?> c && c.size() > MAX_SIZE) {
            throw tooLarge("items", e.line());
        }
        return v;
    }

    private Object evaluate(Expr e) {
        return switch (e) {
            case JinjaNode.Literal l -> l.value();
            case JinjaNode.Name n -> lookup(n.name());
            case JinjaNode.ListExpr l -> {
                List<Object> items = new ArrayList<>();
                l.items().forEach(x -> items.add(eval(x)));
                yield items;
            }
            case JinjaNode.DictExpr d -> {
                Map<Object, Object> m = new LinkedHashMap<>();
                for (int i = 0; i < d.keys().size(); i++) {
                    m.put(eval(d.keys().get(i)), eval(d.values().get(i)));
                }
                yield m;
            }
            case JinjaNode.Attribute a -> attribute(eval(a.target()), a.name(), a.line());
            case JinjaNode.Item i -> item(eval(i.target()), eval(i.key()), i.line());
            case JinjaNode.Slice s -> slice(eval(s.target()), s);
            case JinjaNode.Call c -> call(c);
            case JinjaNode.Filter f -> JinjaBuiltins.filter(f.name(), eval(f.target()), evalAll(f.args()),
                    keywords(f.keywordNames(), f.keywordValues()), f.line());
            case JinjaNode.Test t -> {
                boolean r = JinjaBuiltins.test(t.name(), eval(t.target()), evalAll(t.args()), t.line());
                yield t.negated() != r;
            }
            case JinjaNode.Unary u -> switch (u.op()) {
                case "not" -> !truthy(eval(u.operand()));
                case "-" -> negate(eval(u.operand()), u.line());
                default -> throw new IllegalStateException(u.op());
            };
            case JinjaNode.Binary b -> binary(b);
            case JinjaNode.Conditional c -> truthy(eval(c.condition())) ? eval(c.then())
                    : c.otherwise() == null ? Undefined.VALUE : eval(c.otherwise());
        };
    }

    private List<Object> evalAll(List<Expr> exprs) {
        List<Object> out = new ArrayList<>(exprs.size());
        exprs.forEach(x -> out.add(eval(x)));
        return out;
    }

    private Map<String, Object> keywords(List<String> names, List<Expr> values) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            m.put(names.get(i), eval(values.get(i)));
        }
        return m;
    }

    private Object call(JinjaNode.Call c) {
        List<Object> args = evalAll(c.args());
        Map<String, Object> kwargs = keywords(c.keywordNames(), c.keywordValues());
        if (c.callee() instanceof JinjaNode.Attribute a) {
            Object target = eval(a.target());
            if (!(target instanceof Namespace) && !(target instanceof Map<?, ?> m && m.get(a.name()) instanceof Callable)) {
                return JinjaBuiltins.method(target, a.name(), args, a.line());
            }
        }
        if (c.callee() instanceof JinjaNode.Name n && FUNCTIONS.contains(n.name())
                && !(lookup(n.name()) instanceof Callable)) {
            return function(n.name(), args, kwargs, c.line());
        }
        Object callee = eval(c.callee());
        if (callee instanceof Callable f) {
            step(c.line());
            return f.call(args, kwargs);
        }
        throw new Failure("line " + c.line() + ": " + describe(c.callee()) + " is not callable");
    }

    private static String describe(Expr e) {
        return e instanceof JinjaNode.Name n ? "'" + n.name() + "'" : "the value";
    }

    private static Object function(String name, List<Object> args, Map<String, Object> kwargs, int line) {
        switch (name) {
            case "raise_exception" -> throw new Failure(args.isEmpty() ? "the chat template raised an error" : str(args.getFirst()));
            case "namespace" -> {
                Namespace ns = new Namespace();
                if (!args.isEmpty() && args.getFirst() instanceof Map<?, ?> m) {
                    m.forEach((k, v) -> ns.values.put(str(k), v));
                }
                ns.values.putAll(kwargs);
                return ns;
            }
            case "dict" -> {
                Map<Object, Object> m = new LinkedHashMap<>(kwargs);
                return m;
            }
            case "range" -> {
                long start = 0;
                long stop;
                long step = 1;
                if (args.size() == 1) {
                    stop = integer(args.get(0), line);
                } else if (args.size() >= 2) {
                    start = integer(args.get(0), line);
                    stop = integer(args.get(1), line);
                    if (args.size() > 2) {
                        step = integer(args.get(2), line);
                    }
                } else {
                    throw new Failure("line " + line + ": range() needs at least one argument");
                }
                if (step == 0) {
                    throw new Failure("line " + line + ": range() step must not be zero");
                }
                // Python's len(range(...)), exactly: the long arithmetic could overflow.
                BigInteger bigStep = BigInteger.valueOf(step);
                long count = BigInteger.valueOf(stop).subtract(BigInteger.valueOf(start)).add(bigStep)
                        .subtract(BigInteger.valueOf(Long.signum(step))).divide(bigStep)
                        .max(BigInteger.ZERO).min(BigInteger.valueOf(MAX_SIZE + 1L)).longValue();
                checkSize(count, "items");
                List<Object> out = new ArrayList<>((int) count);
                for (long k = 0; k < count; k++) {
                    out.add(start + k * step);
                }
                return out;
            }
            case "strftime_now" -> {
                if (args.isEmpty()) {
                    throw new Failure("line " + line + ": strftime_now() needs a format");
                }
                return JinjaBuiltins.strftime(str(args.getFirst()), ZonedDateTime.now());
            }
            default -> throw new IllegalStateException(name);
        }
    }

    private Object binary(JinjaNode.Binary b) {
        String op = b.op();
        if (op.equals("and")) {
            Object left = eval(b.left());
            return truthy(left) ? eval(b.right()) : left;
        }
        if (op.equals("or")) {
            Object left = eval(b.left());
            return truthy(left) ? left : eval(b.right());
        }
        Object l = eval(b.left());
        Object r = eval(b.right());
        int line = b.line();
        return switch (op) {
            case "==" -> equal(l, r);
            case "!=" -> !equal(l, r);
            case "<", ">", "<=", ">=" -> {
                int c = compare(l, r, line);
                yield switch (op) {
                    case "<" -> c < 0;
                    case ">" -> c > 0;
                    case "<=" -> c <= 0;
                    default -> c >= 0;
                };
            }
            case "in" -> contains(r, l, line);
            case "not in" -> !contains(r, l, line);
            case "~" -> {
                String a = str(l);
                String c = str(r);
                checkSize((long) a.length() + c.length(), "characters");
                yield a + c;
            }
            case "+" -> add(l, r, line);
            case "-", "*", "/", "//", "%", "**" -> arithmetic(op, l, r, line);
            default -> throw new IllegalStateException(op);
        };
    }

    private static Object add(Object l, Object r, int line) {
        if (l instanceof String a && r instanceof String c) {
            checkSize((long) a.length() + c.length(), "characters");
            return a + c;
        }
        if (l instanceof List<?> a && r instanceof List<?> c) {
            checkSize((long) a.size() + c.size(), "items");
            List<Object> out = new ArrayList<>(a);
            out.addAll(c);
            return out;
        }
        if (isNumber(l) && isNumber(r)) {
            return arithmetic("+", l, r, line);
        }
        throw new Failure("line " + line + ": cannot add " + typeName(l) + " and " + typeName(r));
    }

    private static Object arithmetic(String op, Object l, Object r, int line) {
        if (op.equals("*") && l instanceof String s && r instanceof Long n) {
            if (n <= 0 || s.isEmpty()) {
                return "";
            }
            checkSize(n > MAX_SIZE ? n : s.length() * n, "characters");
            return s.repeat((int) (long) n);
        }
        if (!isNumber(l) || !isNumber(r)) {
            throw new Failure("line " + line + ": cannot apply " + op + " to " + typeName(l) + " and " + typeName(r));
        }
        if (l instanceof Long a && r instanceof Long c && !op.equals("/")) {
            // Python's integers do not overflow; failing is better than a silently wrapped result.
            try {
                return switch (op) {
                    case "+" -> Math.addExact(a, c);
                    case "-" -> Math.subtractExact(a, c);
                    case "*" -> Math.multiplyExact(a, c);
                    case "//" -> {
                        if (c == 0) {
                            throw new Failure("line " + line + ": division by zero");
                        }
                        yield Math.floorDivExact(a, c);
                    }
                    case "%" -> {
                        if (c == 0) {
                            throw new Failure("line " + line + ": division by zero");
                        }
                        yield Math.floorMod(a, c);
                    }
                    case "**" -> c >= 0 ? (Object) power(a, c) : (Object) Math.pow(a, c);
                    default -> throw new IllegalStateException(op);
                };
            } catch (ArithmeticException e) {
                throw new Failure("line " + line + ": integer result of " + op + " is too large");
            }
        }
        double a = number(l);
        double c = number(r);
        return switch (op) {
            case "+" -> a + c;
            case "-" -> a - c;
            case "*" -> a * c;
            case "/" -> {
                if (c == 0) {
                    throw new Failure("line " + line + ": division by zero");
                }
                yield a / c;
            }
            case "//" -> Math.floor(a / c);
            case "%" -> a - Math.floor(a / c) * c;
            case "**" -> Math.pow(a, c);
            default -> throw new IllegalStateException(op);
        };
    }

    private static long power(long base, long exponent) {
        long result = 1;
        while (exponent > 0) {
            if ((exponent & 1) == 1) {
                result = Math.multiplyExact(result, base);
            }
            exponent >>= 1;
            if (exponent > 0) {
                base = Math.multiplyExact(base, base);
            }
        }
        return result;
    }

    private static Object negate(Object v, int line) {
        if (v instanceof Long l) {
            if (l == Long.MIN_VALUE) {
                throw new Failure("line " + line + ": integer result of - is too large");
            }
            return -l;
        }
        if (v instanceof Double d) {
            return -d;
        }
        throw new Failure("line " + line + ": cannot negate " + typeName(v));
    }

    // ---- value semantics shared with the builtins

    static boolean truthy(Object v) {
        return switch (v) {
            case null -> false;
            case Undefined u -> false;
            case Boolean b -> b;
            case Long l -> l != 0;
            case Double d -> d != 0;
            case String s -> !s.isEmpty();
            case Collection<?> c -> !c.isEmpty();
            case Map<?, ?> m -> !m.isEmpty();
            default -> true;
        };
    }

    static boolean isNumber(Object v) {
        return v instanceof Long || v instanceof Double;
    }

    static double number(Object v) {
        return v instanceof Long l ? l : (Double) v;
    }

    static long integer(Object v, int line) {
        if (v instanceof Long l) {
            return l;
        }
        if (v instanceof Boolean b) {
            return b ? 1 : 0;
        }
        throw new Failure("line " + line + ": expected an integer, got " + typeName(v));
    }

    static boolean equal(Object a, Object b) {
        if (a instanceof Undefined || b instanceof Undefined) {
            return a == b;
        }
        if (isNumber(a) && isNumber(b)) {
            return number(a) == number(b);
        }
        if (a instanceof Boolean && isNumber(b) || isNumber(a) && b instanceof Boolean) {
            return number(a instanceof Boolean x ? (x ? 1L : 0L) : a) == number(b instanceof Boolean y ? (y ? 1L : 0L) : b);
        }
        if (a instanceof List<?> x && b instanceof List<?> y) {
            if (x.size() != y.size()) {
                return false;
            }
            for (int i = 0; i < x.size(); i++) {
                if (!equal(x.get(i), y.get(i))) {
                    return false;
                }
            }
            return true;
        }
        return Objects.equals(a, b);
    }

    static int compare(Object a, Object b, int line) {
        if (isNumber(a) && isNumber(b)) {
            return Double.compare(number(a), number(b));
        }
        if (a instanceof String x && b instanceof String y) {
            return x.compareTo(y);
        }
        throw new Failure("line " + line + ": cannot compare " + typeName(a) + " with " + typeName(b));
    }

    static boolean contains(Object container, Object item, int line) {
        return switch (container) {
            case String s when item instanceof String t -> s.contains(t);
            case String s -> throw new Failure("line " + line + ": 'in <string>' needs a string, got " + typeName(item));
            case Collection<?> c -> c.stream().anyMatch(x -> equal(x, item));
            case Map<?, ?> m -> m.containsKey(item);
            case Namespace ns -> ns.values.containsKey(String.valueOf(item));
            case Undefined u -> false;
            case null -> throw new Failure("line " + line + ": 'in None' is not allowed");
            default -> throw new Failure("line " + line + ": 'in' needs a string, list or dict, got " + typeName(container));
        };
    }

    /** The items a for loop visits: a list's elements, a dict's keys, a string's characters. */
    static List<Object> iterate(Object v, int line) {
        return switch (v) {
            case List<?> l -> new ArrayList<>(l);
            case Collection<?> c -> new ArrayList<>(c);
            case Map<?, ?> m -> new ArrayList<>(m.keySet());
            case String s -> {
                List<Object> chars = new ArrayList<>();
                s.codePoints().forEach(cp -> chars.add(new String(Character.toChars(cp))));
                yield chars;
            }
            case Undefined u -> new ArrayList<>();
            case null, default -> throw new Failure("line " + line + ": " + typeName(v) + " is not iterable");
        };
    }

    static Object attribute(Object target, String name, int line) {
        return switch (target) {
            case Map<?, ?> m -> m.containsKey(name) ? m.get(name) : Undefined.VALUE;
            case Namespace ns -> ns.values.containsKey(name) ? ns.values.get(name) : Undefined.VALUE;
            case Undefined u -> throw new Failure("line " + line + ": undefined value has no attribute '" + name + "'");
            case null -> throw new Failure("line " + line + ": None has no attribute '" + name + "'");
            default -> Undefined.VALUE;
        };
    }

    static Object item(Object target, Object key, int line) {
        switch (target) {
            case Map<?, ?> m -> {
                return m.containsKey(key) ? m.get(key) : Undefined.VALUE;
            }
            case Namespace ns -> {
                Object k = String.valueOf(key);
                return ns.values.containsKey(k) ? ns.values.get(k) : Undefined.VALUE;
            }
            case List<?> l when key instanceof Long i -> {
                long at = i < 0 ? l.size() + i : i;
                return at >= 0 && at < l.size() ? l.get((int) at) : Undefined.VALUE;
            }
            case String s when key instanceof Long i -> {
                List<Object> chars = iterate(s, line);
                long at = i < 0 ? chars.size() + i : i;
                return at >= 0 && at < chars.size() ? chars.get((int) at) : Undefined.VALUE;
            }
            case Undefined u -> throw new Failure("line " + line + ": undefined value has no item " + repr(key));
            case null -> throw new Failure("line " + line + ": None has no item " + repr(key));
            default -> {
                if (key instanceof String name) {
                    return attribute(target, name, line);
                }
                return Undefined.VALUE;
            }
        }
    }

    private Object slice(Object target, JinjaNode.Slice s) {
        int line = s.line();
        boolean isString = target instanceof String;
        List<Object> items = switch (target) {
            case String str -> iterate(str, line);
            case List<?> l -> new ArrayList<>(l);
            case null, default -> throw new Failure("line " + line + ": cannot slice " + typeName(target));
        };
        int n = items.size();
        long step = s.step() == null ? 1 : integer(eval(s.step()), line);
        if (step == 0) {
            throw new Failure("line " + line + ": slice step must not be zero");
        }
        Object startValue = s.start() == null ? null : eval(s.start());
        Object stopValue = s.stop() == null ? null : eval(s.stop());
        long start;
        long stop;
        if (step > 0) {
            start = startValue == null ? 0 : clamp(integer(startValue, line), n, 0, n);
            stop = stopValue == null ? n : clamp(integer(stopValue, line), n, 0, n);
        } else {
            start = startValue == null ? n - 1 : clamp(integer(startValue, line), n, -1, n - 1);
            stop = stopValue == null ? -1 : clamp(integer(stopValue, line), n, -1, n - 1);
        }
        // Indexes stay within [-1, n]; a step longer than that takes one item, as does n + 1, and cannot overflow.
        long stride = Math.max(-(n + 1L), Math.min(n + 1L, step));
        List<Object> out = new ArrayList<>();
        for (long i = start; stride > 0 ? i < stop : i > stop; i += stride) {
            out.add(items.get((int) i));
        }
        if (isString) {
            StringBuilder sb = new StringBuilder();
            out.forEach(sb::append);
            return sb.toString();
        }
        return out;
    }

    private static long clamp(long index, int n, long low, long high) {
        long i = index < 0 ? index + n : index;
        return Math.max(low, Math.min(high, i));
    }

    /** Python's str(): what {{ }} prints. */
    static String str(Object v) {
        return switch (v) {
            case null -> "None";
            case Undefined u -> "";
            case String s -> s;
            default -> repr(v);
        };
    }

    /** Python's repr(), as str() shows values inside lists and dicts. */
    static String repr(Object v) {
        return switch (v) {
            case null -> "None";
            case Undefined u -> "";
            case Boolean b -> b ? "True" : "False";
            case Long l -> Long.toString(l);
            case Double d -> pythonFloat(d);
            case String s -> "'" + s.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'";
            case List<?> l -> {
                StringBuilder sb = new StringBuilder("[");
                for (int i = 0; i < l.size(); i++) {
                    sb.append(i == 0 ? "" : ", ").append(repr(l.get(i)));
                    checkSize(sb.length(), "characters");
                }
                yield sb.append(']').toString();
            }
            case Map<?, ?> m -> {
                StringBuilder sb = new StringBuilder("{");
                Iterator<? extends Map.Entry<?, ?>> it = m.entrySet().iterator();
                while (it.hasNext()) {
                    Map.Entry<?, ?> e = it.next();
                    sb.append(repr(e.getKey())).append(": ").append(repr(e.getValue()));
                    checkSize(sb.length(), "characters");
                    if (it.hasNext()) {
                        sb.append(", ");
                    }
                }
                yield sb.append('}').toString();
            }
            case Namespace ns -> "<Namespace " + repr(ns.values) + ">";
            default -> v.toString();
        };
    }

    static String pythonFloat(double d) {
        if (Double.isNaN(d)) {
            return "nan";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "inf" : "-inf";
        }
        if (d == Math.rint(d) && Math.abs(d) < 1e16) {
            return String.format(Locale.ROOT, "%.1f", d);
        }
        return Double.toString(d).replace("E", "e");
    }

    static String typeName(Object v) {
        return switch (v) {
            case null -> "None";
            case Undefined u -> "an undefined value";
            case Boolean b -> "bool";
            case Long l -> "int";
            case Double d -> "float";
            case String s -> "str";
            case List<?> l -> "list";
            case Map<?, ?> m -> "dict";
            case Namespace ns -> "namespace";
            case Callable c -> "function";
            default -> v.getClass().getSimpleName();
        };
    }
}
