package io.inf2.spark.chat;

import io.inf2.spark.chat.JinjaLexer.Kind;
import io.inf2.spark.chat.JinjaLexer.Segment;
import io.inf2.spark.chat.JinjaNode.Expr;
import io.inf2.util.OneLine;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Parses the Jinja subset that chat templates use into {@link JinjaNode}s. Anything outside the
 * subset (include, extends, call blocks, unknown filters, tests or functions) is rejected here,
 * when the template is loaded, rather than when some row happens to reach it.
 */
final class JinjaParser {
    private static final Set<String> END_OF_IF = Set.of("elif", "else", "endif");
    private static final Set<String> END_OF_FOR = Set.of("else", "endfor");
    /** Far below what overflows the stack, far above what real chat templates nest. */
    private static final int MAX_DEPTH = 200;
    /** How much of a tag or literal an error quotes. */
    private static final int QUOTE_LENGTH = 60;

    private final List<Segment> segments;
    private final String where;
    private int next;
    private int depth;

    private JinjaParser(List<Segment> segments, String where) {
        this.segments = segments;
        this.where = where;
    }

    static List<JinjaNode> parse(String source, String where) {
        JinjaParser p = new JinjaParser(JinjaLexer.lex(source, where), where);
        try {
            List<JinjaNode> body = p.body(Set.of());
            if (p.next < p.segments.size()) {
                Segment s = p.segments.get(p.next);
                throw p.error(s.line(), "unexpected {% " + quote(s.text()) + " %}");
            }
            return body;
        } catch (StackOverflowError e) {
            // A backstop for a thread with a small stack: MAX_DEPTH should stop nesting well before this.
            throw new TemplateException(where + ": the template nests too deeply to parse");
        }
    }

    /** Parses one level of nesting, refusing more than MAX_DEPTH before the recursion overflows the stack. */
    private <T> T nested(int line, Supplier<T> parse) {
        if (++depth > MAX_DEPTH) {
            throw error(line, "nested more than " + MAX_DEPTH + " levels deep");
        }
        T parsed = parse.get();
        depth--;
        return parsed;
    }

    /** Nodes up to (not including) a statement whose keyword is in {@code terminators}. */
    private List<JinjaNode> body(Set<String> terminators) {
        List<JinjaNode> out = new ArrayList<>();
        while (next < segments.size()) {
            Segment s = segments.get(next);
            switch (s.kind()) {
                case TEXT -> {
                    out.add(new JinjaNode.Text(s.text()));
                    next++;
                }
                case OUTPUT -> {
                    Tokens t = new Tokens(s.text(), s.line());
                    Expr e = expression(t);
                    t.expectEnd();
                    out.add(new JinjaNode.Output(e, s.line()));
                    next++;
                }
                case STATEMENT -> {
                    String keyword = keyword(s);
                    if (terminators.contains(keyword)) {
                        return out;
                    }
                    next++;
                    out.add(statement(keyword, s));
                }
                case COMMENT -> next++;
            }
        }
        if (!terminators.isEmpty()) {
            throw error(segments.isEmpty() ? 1 : segments.getLast().line(),
                    "missing {% " + String.join(" or ", terminators.stream().sorted().toList()) + " %}");
        }
        return out;
    }

    private static String keyword(Segment s) {
        String t = s.text();
        int i = 0;
        while (i < t.length() && (Character.isLetterOrDigit(t.charAt(i)) || t.charAt(i) == '_')) {
            i++;
        }
        return t.substring(0, i);
    }

    private JinjaNode statement(String keyword, Segment s) {
        Tokens t = new Tokens(s.text(), s.line());
        t.name();
        return nested(s.line(), () -> switch (keyword) {
            case "if" -> ifStatement(t);
            case "for" -> forStatement(t);
            case "set" -> setStatement(t);
            case "macro" -> macro(t);
            case "break" -> {
                t.expectEnd();
                yield new JinjaNode.Break(s.line());
            }
            case "continue" -> {
                t.expectEnd();
                yield new JinjaNode.Continue(s.line());
            }
            case "generation" -> {
                t.expectEnd();
                List<JinjaNode> body = body(Set.of("endgeneration"));
                closing("endgeneration");
                yield new JinjaNode.Block(body);
            }
            default -> throw error(s.line(), "unsupported tag {% " + quote(keyword) + " %} (the chat-template renderer supports "
                    + "if, for, set, macro, break, continue and generation)");
        });
    }

    private void closing(String keyword) {
        Segment s = segments.get(next++);
        Tokens t = new Tokens(s.text(), s.line());
        t.name();
        t.expectEnd();
        if (!keyword(s).equals(keyword)) {
            throw error(s.line(), "expected {% " + keyword + " %}, found {% " + quote(s.text()) + " %}");
        }
    }

    private JinjaNode ifStatement(Tokens t) {
        List<Expr> conditions = new ArrayList<>();
        List<List<JinjaNode>> bodies = new ArrayList<>();
        Expr condition = expression(t);
        t.expectEnd();
        List<JinjaNode> otherwise = List.of();
        while (true) {
            conditions.add(condition);
            bodies.add(body(END_OF_IF));
            Segment s = segments.get(next++);
            Tokens end = new Tokens(s.text(), s.line());
            String keyword = end.name();
            if (keyword.equals("elif")) {
                condition = expression(end);
                end.expectEnd();
                continue;
            }
            end.expectEnd();
            if (keyword.equals("else")) {
                otherwise = body(Set.of("endif"));
                closing("endif");
            }
            return new JinjaNode.If(conditions, bodies, otherwise);
        }
    }

    private JinjaNode forStatement(Tokens t) {
        int line = t.line;
        List<String> targets = new ArrayList<>();
        targets.add(t.name());
        while (t.accept(",")) {
            targets.add(t.name());
        }
        t.expectKeyword("in");
        Expr iterable = withoutConditional(t);
        Expr filter = null;
        if (t.acceptKeyword("if")) {
            filter = withoutConditional(t);
        }
        if (t.acceptKeyword("recursive")) {
            throw error(line, "recursive for loops are not supported");
        }
        t.expectEnd();
        List<JinjaNode> body = body(END_OF_FOR);
        List<JinjaNode> otherwise = List.of();
        if (keyword(segments.get(next)).equals("else")) {
            closing("else");
            otherwise = body(Set.of("endfor"));
        }
        closing("endfor");
        return new JinjaNode.For(targets, iterable, filter, body, otherwise, line);
    }

    private JinjaNode setStatement(Tokens t) {
        int line = t.line;
        List<String> targets = new ArrayList<>();
        targets.add(t.name());
        String attribute = null;
        if (t.accept(".")) {
            attribute = t.name();
        } else {
            while (t.accept(",")) {
                targets.add(t.name());
            }
        }
        if (t.atEnd()) {
            if (attribute != null || targets.size() > 1) {
                throw error(line, "a block {% set %} takes one plain name");
            }
            List<JinjaNode> body = body(Set.of("endset"));
            closing("endset");
            return new JinjaNode.SetBlock(targets.getFirst(), body);
        }
        t.expect("=");
        Expr value = expression(t);
        t.expectEnd();
        return new JinjaNode.Set(targets, attribute, value, line);
    }

    private JinjaNode macro(Tokens t) {
        String name = t.name();
        List<String> parameters = new ArrayList<>();
        List<Expr> defaults = new ArrayList<>();
        t.expect("(");
        if (!t.accept(")")) {
            do {
                parameters.add(t.name());
                defaults.add(t.accept("=") ? expression(t) : null);
            } while (t.accept(","));
            t.expect(")");
        }
        t.expectEnd();
        List<JinjaNode> body = body(Set.of("endmacro"));
        closing("endmacro");
        return new JinjaNode.Macro(name, parameters, defaults, body);
    }

    // ---- expressions, following Jinja's precedence

    private Expr expression(Tokens t) {
        return nested(t.line, () -> conditional(t));
    }

    private Expr conditional(Tokens t) {
        Expr e = or(t);
        if (t.acceptKeyword("if")) {
            Expr condition = or(t);
            Expr otherwise = t.acceptKeyword("else") ? expression(t) : null;
            return new JinjaNode.Conditional(condition, e, otherwise, t.line);
        }
        return e;
    }

    /** An expression without a trailing {@code if}, where {@code if} belongs to the statement (for ... if). */
    private Expr withoutConditional(Tokens t) {
        return or(t);
    }

    private Expr or(Tokens t) {
        Expr e = and(t);
        while (t.acceptKeyword("or")) {
            e = new JinjaNode.Binary("or", e, and(t), t.line);
        }
        return e;
    }

    private Expr and(Tokens t) {
        Expr e = not(t);
        while (t.acceptKeyword("and")) {
            e = new JinjaNode.Binary("and", e, not(t), t.line);
        }
        return e;
    }

    private Expr not(Tokens t) {
        if (t.acceptKeyword("not")) {
            return new JinjaNode.Unary("not", nested(t.line, () -> not(t)), t.line);
        }
        return compare(t);
    }

    private Expr compare(Tokens t) {
        Expr e = concat(t);
        while (true) {
            String op = t.peekOperator("==", "!=", "<=", ">=", "<", ">");
            if (op != null) {
                t.advance();
                e = new JinjaNode.Binary(op, e, concat(t), t.line);
            } else if (t.acceptKeyword("in")) {
                e = new JinjaNode.Binary("in", e, concat(t), t.line);
            } else if (t.peekKeyword("not") && t.peekKeywordAt(1, "in")) {
                t.advance();
                t.advance();
                e = new JinjaNode.Binary("not in", e, concat(t), t.line);
            } else {
                return e;
            }
        }
    }

    private Expr concat(Tokens t) {
        Expr e = sum(t);
        while (t.accept("~")) {
            e = new JinjaNode.Binary("~", e, sum(t), t.line);
        }
        return e;
    }

    private Expr sum(Tokens t) {
        Expr e = product(t);
        while (true) {
            String op = t.peekOperator("+", "-");
            if (op == null) {
                return e;
            }
            t.advance();
            e = new JinjaNode.Binary(op, e, product(t), t.line);
        }
    }

    private Expr product(Tokens t) {
        Expr e = power(t);
        while (true) {
            String op = t.peekOperator("*", "/", "//", "%");
            if (op == null) {
                return e;
            }
            t.advance();
            e = new JinjaNode.Binary(op, e, power(t), t.line);
        }
    }

    private Expr power(Tokens t) {
        Expr e = unary(t, true);
        while (t.accept("**")) {
            e = new JinjaNode.Binary("**", e, unary(t, true), t.line);
        }
        return e;
    }

    private Expr unary(Tokens t, boolean withFilters) {
        Expr e;
        String sign = t.peekOperator("-", "+");
        if (sign != null) {
            t.advance();
            Expr operand = nested(t.line, () -> unary(t, false));
            e = sign.equals("-") ? new JinjaNode.Unary("-", operand, t.line) : operand;
        } else {
            e = postfix(t, primary(t));
        }
        return withFilters ? filters(t, e) : e;
    }

    private Expr primary(Tokens t) {
        int line = t.line;
        Token tok = t.peek();
        if (tok == null) {
            throw error(line, "expression ends early in \"" + quote(t.source) + "\"");
        }
        switch (tok.kind) {
            case STRING -> {
                StringBuilder sb = new StringBuilder();
                while (t.peek() != null && t.peek().kind == TokenKind.STRING) {
                    sb.append(t.advance().text);
                }
                return new JinjaNode.Literal(sb.toString(), line);
            }
            case INTEGER, FLOAT -> {
                t.advance();
                try {
                    return new JinjaNode.Literal(tok.kind == TokenKind.INTEGER ? (Object) Long.parseLong(tok.text)
                            : (Object) Double.parseDouble(tok.text), line);
                } catch (NumberFormatException e) {
                    throw error(line, "bad or too large number " + quote(tok.text) + " in \"" + quote(t.source) + "\"");
                }
            }
            case NAME -> {
                t.advance();
                return switch (tok.text) {
                    case "true", "True" -> new JinjaNode.Literal(Boolean.TRUE, line);
                    case "false", "False" -> new JinjaNode.Literal(Boolean.FALSE, line);
                    case "none", "None" -> new JinjaNode.Literal(null, line);
                    default -> new JinjaNode.Name(tok.text, line);
                };
            }
            case OPERATOR -> {
                if (t.accept("(")) {
                    if (t.accept(")")) {
                        return new JinjaNode.ListExpr(List.of(), line);
                    }
                    Expr first = expression(t);
                    if (t.accept(")")) {
                        return first;
                    }
                    List<Expr> items = new ArrayList<>(List.of(first));
                    while (t.accept(",")) {
                        if (t.peekOperator(")") != null) {
                            break;
                        }
                        items.add(expression(t));
                    }
                    t.expect(")");
                    return new JinjaNode.ListExpr(items, line);
                }
                if (t.accept("[")) {
                    List<Expr> items = new ArrayList<>();
                    while (!t.accept("]")) {
                        items.add(expression(t));
                        if (!t.accept(",")) {
                            t.expect("]");
                            break;
                        }
                    }
                    return new JinjaNode.ListExpr(items, line);
                }
                if (t.accept("{")) {
                    List<Expr> keys = new ArrayList<>();
                    List<Expr> values = new ArrayList<>();
                    while (!t.accept("}")) {
                        keys.add(expression(t));
                        t.expect(":");
                        values.add(expression(t));
                        if (!t.accept(",")) {
                            t.expect("}");
                            break;
                        }
                    }
                    return new JinjaNode.DictExpr(keys, values, line);
                }
                throw error(line, "unexpected \"" + quote(tok.text) + "\" in \"" + quote(t.source) + "\"");
            }
            default -> throw error(line, "unexpected \"" + quote(tok.text) + "\" in \"" + quote(t.source) + "\"");
        }
    }

    private Expr postfix(Tokens t, Expr e) {
        while (true) {
            int line = t.line;
            if (t.accept(".")) {
                Token name = t.advance();
                if (name == null || (name.kind != TokenKind.NAME && name.kind != TokenKind.INTEGER)) {
                    throw error(line, "expected an attribute name after \".\" in \"" + quote(t.source) + "\"");
                }
                if (name.kind == TokenKind.INTEGER) {
                    long index;
                    try {
                        index = Long.parseLong(name.text);
                    } catch (NumberFormatException x) {
                        throw error(line, "bad index " + quote(name.text) + " in \"" + quote(t.source) + "\"");
                    }
                    e = new JinjaNode.Item(e, new JinjaNode.Literal(index, line), line);
                } else {
                    e = new JinjaNode.Attribute(e, name.text, line);
                }
            } else if (t.accept("[")) {
                e = subscript(t, e);
            } else if (t.peekOperator("(") != null) {
                e = call(t, e);
            } else {
                return e;
            }
        }
    }

    private Expr subscript(Tokens t, Expr target) {
        int line = t.line;
        Expr start = null;
        if (t.peekOperator(":") == null) {
            start = expression(t);
            if (t.accept("]")) {
                return new JinjaNode.Item(target, start, line);
            }
        }
        t.expect(":");
        Expr stop = t.peekOperator(":", "]") == null ? expression(t) : null;
        Expr step = null;
        if (t.accept(":")) {
            step = t.peekOperator("]") == null ? expression(t) : null;
        }
        t.expect("]");
        return new JinjaNode.Slice(target, start, stop, step, line);
    }

    private Expr call(Tokens t, Expr callee) {
        int line = t.line;
        Arguments a = arguments(t);
        if (callee instanceof JinjaNode.Name n && !JinjaRuntime.FUNCTIONS.contains(n.name())) {
            // A macro defined in the template is fine; anything else is checked when it is called.
            return new JinjaNode.Call(callee, a.positional, a.keywordNames, a.keywordValues, line);
        }
        if (callee instanceof JinjaNode.Attribute at && !JinjaRuntime.METHODS.contains(at.name())) {
            throw error(line, "method ." + quote(at.name()) + "() is not supported by the chat-template renderer");
        }
        return new JinjaNode.Call(callee, a.positional, a.keywordNames, a.keywordValues, line);
    }

    private record Arguments(List<Expr> positional, List<String> keywordNames, List<Expr> keywordValues) {
    }

    private Arguments arguments(Tokens t) {
        t.expect("(");
        List<Expr> positional = new ArrayList<>();
        List<String> names = new ArrayList<>();
        List<Expr> values = new ArrayList<>();
        while (!t.accept(")")) {
            Token tok = t.peek();
            if (tok != null && tok.kind == TokenKind.NAME && "=".equals(t.peekTextAt(1))) {
                t.advance();
                t.advance();
                names.add(tok.text);
                values.add(expression(t));
            } else {
                positional.add(expression(t));
            }
            if (!t.accept(",")) {
                t.expect(")");
                break;
            }
        }
        return new Arguments(positional, names, values);
    }

    private Expr filters(Tokens t, Expr e) {
        while (true) {
            int line = t.line;
            if (t.accept("|")) {
                String name = t.name();
                if (!JinjaRuntime.FILTERS.contains(name)) {
                    throw error(line, "filter |" + quote(name) + " is not supported by the chat-template renderer");
                }
                Arguments a = t.peekOperator("(") != null ? arguments(t) : new Arguments(List.of(), List.of(), List.of());
                e = new JinjaNode.Filter(e, name, a.positional, a.keywordNames, a.keywordValues, line);
            } else if (t.acceptKeyword("is")) {
                boolean negated = t.acceptKeyword("not");
                String name = t.name();
                if (!JinjaRuntime.TESTS.contains(name)) {
                    throw error(line, "test \"is " + quote(name) + "\" is not supported by the chat-template renderer");
                }
                List<Expr> args = new ArrayList<>();
                if (t.peekOperator("(") != null) {
                    Arguments a = arguments(t);
                    args.addAll(a.positional);
                } else if (t.startsPrimary()) {
                    args.add(postfix(t, primary(t)));
                }
                e = new JinjaNode.Test(e, name, args, negated, line);
            } else {
                return e;
            }
        }
    }

    private TemplateException error(int line, String message) {
        return new TemplateException(where + " line " + line + ": " + message);
    }

    private static String quote(String text) {
        return OneLine.excerpt(text, QUOTE_LENGTH);
    }

    // ---- tokens inside a tag

    private enum TokenKind { NAME, STRING, INTEGER, FLOAT, OPERATOR }

    private record Token(TokenKind kind, String text) {
    }

    private static final String[] OPERATORS = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">",
            "=", "(", ")", "[", "]", "{", "}", ".", ",", ":", "|"};
    private static final Set<String> NOT_PRIMARY = Set.of("and", "or", "else", "if", "in", "is", "not");

    private final class Tokens {
        final String source;
        final int line;
        final List<Token> tokens = new ArrayList<>();
        int at;

        Tokens(String source, int line) {
            this.source = source;
            this.line = line;
            tokenize();
        }

        private void tokenize() {
            int i = 0;
            String s = source;
            while (i < s.length()) {
                char c = s.charAt(i);
                if (Character.isWhitespace(c)) {
                    i++;
                } else if (c == '\'' || c == '"') {
                    StringBuilder sb = new StringBuilder();
                    int j = i + 1;
                    while (j < s.length() && s.charAt(j) != c) {
                        char d = s.charAt(j);
                        if (d == '\\' && j + 1 < s.length()) {
                            char e = s.charAt(++j);
                            switch (e) {
                                case 'n' -> sb.append('\n');
                                case 't' -> sb.append('\t');
                                case 'r' -> sb.append('\r');
                                case '\\', '\'', '"' -> sb.append(e);
                                case 'u' -> {
                                    String hex = j + 4 < s.length() ? s.substring(j + 1, j + 5) : "";
                                    if (!hex.matches("[0-9a-fA-F]{4}")) {
                                        throw error(line, "bad \\u escape in \"" + quote(s) + "\"");
                                    }
                                    sb.append((char) Integer.parseInt(hex, 16));
                                    j += 4;
                                }
                                default -> sb.append('\\').append(e);
                            }
                        } else {
                            sb.append(d);
                        }
                        j++;
                    }
                    if (j >= s.length()) {
                        throw error(line, "unterminated string in \"" + quote(s) + "\"");
                    }
                    tokens.add(new Token(TokenKind.STRING, sb.toString()));
                    i = j + 1;
                } else if (Character.isDigit(c)) {
                    int j = i;
                    while (j < s.length() && (Character.isDigit(s.charAt(j)) || s.charAt(j) == '_')) {
                        j++;
                    }
                    boolean isFloat = false;
                    if (j + 1 < s.length() && s.charAt(j) == '.' && Character.isDigit(s.charAt(j + 1))) {
                        isFloat = true;
                        j++;
                        while (j < s.length() && Character.isDigit(s.charAt(j))) {
                            j++;
                        }
                    }
                    if (j < s.length() && (s.charAt(j) == 'e' || s.charAt(j) == 'E')) {
                        isFloat = true;
                        j++;
                        if (j < s.length() && (s.charAt(j) == '+' || s.charAt(j) == '-')) {
                            j++;
                        }
                        while (j < s.length() && Character.isDigit(s.charAt(j))) {
                            j++;
                        }
                    }
                    tokens.add(new Token(isFloat ? TokenKind.FLOAT : TokenKind.INTEGER, s.substring(i, j).replace("_", "")));
                    i = j;
                } else if (Character.isLetter(c) || c == '_') {
                    int j = i;
                    while (j < s.length() && (Character.isLetterOrDigit(s.charAt(j)) || s.charAt(j) == '_')) {
                        j++;
                    }
                    tokens.add(new Token(TokenKind.NAME, s.substring(i, j)));
                    i = j;
                } else {
                    String op = null;
                    for (String o : OPERATORS) {
                        if (s.startsWith(o, i)) {
                            op = o;
                            break;
                        }
                    }
                    if (op == null) {
                        throw error(line, "unexpected character '" + quote(String.valueOf(c)) + "' in \"" + quote(s) + "\"");
                    }
                    tokens.add(new Token(TokenKind.OPERATOR, op));
                    i += op.length();
                }
            }
        }

        Token peek() {
            return at < tokens.size() ? tokens.get(at) : null;
        }

        String peekTextAt(int offset) {
            return at + offset < tokens.size() ? tokens.get(at + offset).text : null;
        }

        Token advance() {
            return at < tokens.size() ? tokens.get(at++) : null;
        }

        boolean atEnd() {
            return at >= tokens.size();
        }

        String peekOperator(String... ops) {
            Token t = peek();
            if (t == null || t.kind != TokenKind.OPERATOR) {
                return null;
            }
            for (String o : ops) {
                if (t.text.equals(o)) {
                    return o;
                }
            }
            return null;
        }

        boolean accept(String op) {
            if (peekOperator(op) != null) {
                at++;
                return true;
            }
            return false;
        }

        void expect(String op) {
            if (!accept(op)) {
                Token t = peek();
                throw error(line, "expected \"" + op + "\" but found " + (t == null ? "the end" : "\"" + quote(t.text) + "\"")
                        + " in \"" + quote(source) + "\"");
            }
        }

        boolean peekKeyword(String word) {
            return peekKeywordAt(0, word);
        }

        boolean peekKeywordAt(int offset, String word) {
            if (at + offset >= tokens.size()) {
                return false;
            }
            Token t = tokens.get(at + offset);
            return t.kind == TokenKind.NAME && t.text.equals(word);
        }

        boolean acceptKeyword(String word) {
            if (peekKeyword(word)) {
                at++;
                return true;
            }
            return false;
        }

        void expectKeyword(String word) {
            if (!acceptKeyword(word)) {
                throw error(line, "expected \"" + word + "\" in \"" + quote(source) + "\"");
            }
        }

        String name() {
            Token t = advance();
            if (t == null || t.kind != TokenKind.NAME) {
                throw error(line, "expected a name in \"" + quote(source) + "\"");
            }
            return t.text;
        }

        /** Whether the next token can start an argument written without parentheses ({@code is divisibleby 3}). */
        boolean startsPrimary() {
            Token t = peek();
            if (t == null) {
                return false;
            }
            return switch (t.kind) {
                case STRING, INTEGER, FLOAT -> true;
                case NAME -> !NOT_PRIMARY.contains(t.text);
                case OPERATOR -> t.text.equals("(") || t.text.equals("[") || t.text.equals("{");
            };
        }

        void expectEnd() {
            if (!atEnd()) {
                throw error(line, "unexpected \"" + quote(peek().text) + "\" in \"" + quote(source) + "\"");
            }
        }
    }
}
