package io.inf2.spark.chat;

import java.util.ArrayList;
import java.util.List;

/**
 * Splits a template into text and tags, applying the whitespace rules Hugging Face renders chat
 * templates with: {@code trim_blocks} (the first newline after a block or comment tag is dropped),
 * {@code lstrip_blocks} (spaces and tabs from the start of a line up to a block or comment tag are
 * dropped), and the {@code -} / {@code +} modifiers on any tag.
 */
final class JinjaLexer {

    enum Kind { TEXT, OUTPUT, STATEMENT, COMMENT }

    /** A piece of the template; for tags, {@code text} is the content between the delimiters. */
    record Segment(Kind kind, String text, int line) {
    }

    private JinjaLexer() {
    }

    private static final class Raw {
        final Kind kind;
        final String text;
        final int line;
        char leftModifier;
        char rightModifier;
        int dropFromStart;
        int dropFromEnd;

        Raw(Kind kind, String text, int line) {
            this.kind = kind;
            this.text = text;
            this.line = line;
        }
    }

    static List<Segment> lex(String source, String where) {
        // As Jinja's lexer does: any line break reads as \n, and one final newline is dropped
        // (keep_trailing_newline is off), so templates saved with CRLF or a closing newline render alike.
        String normalized = source.replace("\r\n", "\n").replace('\r', '\n');
        if (normalized.endsWith("\n")) {
            normalized = normalized.substring(0, normalized.length() - 1);
        }
        List<Raw> raw = split(normalized, where);
        for (int k = 0; k < raw.size(); k++) {
            Raw tag = raw.get(k);
            if (tag.kind == Kind.TEXT) {
                continue;
            }
            boolean block = tag.kind != Kind.OUTPUT;
            Raw before = k > 0 && raw.get(k - 1).kind == Kind.TEXT ? raw.get(k - 1) : null;
            Raw after = k + 1 < raw.size() && raw.get(k + 1).kind == Kind.TEXT ? raw.get(k + 1) : null;
            if (before != null) {
                if (tag.leftModifier == '-') {
                    before.dropFromEnd = Math.max(before.dropFromEnd, trailingWhitespace(before.text));
                } else if (block && tag.leftModifier != '+') {
                    before.dropFromEnd = Math.max(before.dropFromEnd, indentationBefore(before.text, k - 1 == 0));
                }
            }
            if (after != null) {
                if (tag.rightModifier == '-') {
                    after.dropFromStart = Math.max(after.dropFromStart, leadingWhitespace(after.text));
                } else if (block && tag.rightModifier != '+') {
                    after.dropFromStart = Math.max(after.dropFromStart, leadingNewline(after.text));
                }
            }
        }
        List<Segment> out = new ArrayList<>();
        for (Raw r : raw) {
            if (r.kind == Kind.COMMENT) {
                continue;
            }
            if (r.kind == Kind.TEXT) {
                int end = r.text.length() - r.dropFromEnd;
                if (r.dropFromStart < end) {
                    out.add(new Segment(Kind.TEXT, r.text.substring(r.dropFromStart, end), r.line));
                }
            } else {
                out.add(new Segment(r.kind, r.text, r.line));
            }
        }
        return out;
    }

    private static List<Raw> split(String s, String where) {
        List<Raw> out = new ArrayList<>();
        int i = 0;
        int line = 1;
        while (i < s.length()) {
            int open = nextOpening(s, i);
            if (open < 0) {
                out.add(new Raw(Kind.TEXT, s.substring(i), line));
                break;
            }
            if (open > i) {
                String text = s.substring(i, open);
                out.add(new Raw(Kind.TEXT, text, line));
                line += count(text, '\n');
            }
            char type = s.charAt(open + 1);
            Kind kind = type == '{' ? Kind.OUTPUT : type == '%' ? Kind.STATEMENT : Kind.COMMENT;
            String closing = type == '{' ? "}}" : type == '%' ? "%}" : "#}";
            int contentStart = open + 2;
            char left = contentStart < s.length() && (s.charAt(contentStart) == '-' || s.charAt(contentStart) == '+')
                    ? s.charAt(contentStart) : 0;
            if (left != 0) {
                contentStart++;
            }
            int close = kind == Kind.COMMENT ? s.indexOf(closing, contentStart) : closingOutsideStrings(s, contentStart, closing);
            if (close < 0) {
                throw new TemplateException(where + " line " + line + ": tag opened with \"" + s.substring(open, open + 2)
                        + "\" is never closed with \"" + closing + "\"");
            }
            int contentEnd = close;
            char right = 0;
            if (contentEnd > contentStart && (s.charAt(contentEnd - 1) == '-' || s.charAt(contentEnd - 1) == '+')) {
                right = s.charAt(contentEnd - 1);
                contentEnd--;
            }
            Raw tag = new Raw(kind, s.substring(contentStart, contentEnd).strip(), line);
            tag.leftModifier = left;
            tag.rightModifier = right;
            out.add(tag);
            line += count(s.substring(open, close), '\n');
            i = close + 2;
        }
        return out;
    }

    private static int nextOpening(String s, int from) {
        int i = s.indexOf('{', from);
        while (i >= 0 && i + 1 < s.length()) {
            char c = s.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') {
                return i;
            }
            i = s.indexOf('{', i + 1);
        }
        return -1;
    }

    private static int closingOutsideStrings(String s, int from, String closing) {
        char quote = 0;
        for (int i = from; i < s.length(); i++) {
            char c = s.charAt(i);
            if (quote != 0) {
                if (c == '\\') {
                    i++;
                } else if (c == quote) {
                    quote = 0;
                }
            } else if (c == '\'' || c == '"') {
                quote = c;
            } else if (s.startsWith(closing, i)) {
                return i;
            }
        }
        return -1;
    }

    private static int count(String s, char c) {
        int n = 0;
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) == c) {
                n++;
            }
        }
        return n;
    }

    private static int trailingWhitespace(String t) {
        int n = 0;
        while (n < t.length() && Character.isWhitespace(t.charAt(t.length() - 1 - n))) {
            n++;
        }
        return n;
    }

    private static int leadingWhitespace(String t) {
        int n = 0;
        while (n < t.length() && Character.isWhitespace(t.charAt(n))) {
            n++;
        }
        return n;
    }

    /** Spaces and tabs between the last line break (or the template's start) and the tag. */
    private static int indentationBefore(String t, boolean atTemplateStart) {
        int n = 0;
        while (n < t.length() && (t.charAt(t.length() - 1 - n) == ' ' || t.charAt(t.length() - 1 - n) == '\t')) {
            n++;
        }
        boolean atLineStart = n == t.length() ? atTemplateStart : t.charAt(t.length() - 1 - n) == '\n';
        return atLineStart ? n : 0;
    }

    private static int leadingNewline(String t) {
        return t.startsWith("\n") ? 1 : 0;
    }
}
