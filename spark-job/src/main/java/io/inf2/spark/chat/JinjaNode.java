package io.inf2.spark.chat;

import java.util.List;

/** The parsed template: statements, and the expressions inside them. */
sealed interface JinjaNode {

    /** Literal text. */
    record Text(String text) implements JinjaNode {
    }

    /** {@code {{ expr }}}. */
    record Output(Expr expr, int line) implements JinjaNode {
    }

    record If(List<Expr> conditions, List<List<JinjaNode>> bodies, List<JinjaNode> otherwise) implements JinjaNode {
    }

    record For(List<String> targets, Expr iterable, Expr filter, List<JinjaNode> body, List<JinjaNode> otherwise,
               int line) implements JinjaNode {
    }

    /** {@code set a = x}, {@code set a, b = x} or {@code set ns.attr = x} ({@code attribute} non-null). */
    record Set(List<String> targets, String attribute, Expr value, int line) implements JinjaNode {
    }

    /** {@code set name %}...{% endset}. */
    record SetBlock(String target, List<JinjaNode> body) implements JinjaNode {
    }

    record Macro(String name, List<String> parameters, List<Expr> defaults, List<JinjaNode> body) implements JinjaNode {
    }

    record Break(int line) implements JinjaNode {
    }

    record Continue(int line) implements JinjaNode {
    }

    /** A block whose content is rendered as it is ({@code generation}, a Hugging Face marker). */
    record Block(List<JinjaNode> body) implements JinjaNode {
    }

    /** Expressions. */
    sealed interface Expr {
        int line();
    }

    record Literal(Object value, int line) implements Expr {
    }

    record Name(String name, int line) implements Expr {
    }

    record ListExpr(List<Expr> items, int line) implements Expr {
    }

    record DictExpr(List<Expr> keys, List<Expr> values, int line) implements Expr {
    }

    record Attribute(Expr target, String name, int line) implements Expr {
    }

    record Item(Expr target, Expr key, int line) implements Expr {
    }

    /** {@code target[start:stop:step]}; absent parts are null. */
    record Slice(Expr target, Expr start, Expr stop, Expr step, int line) implements Expr {
    }

    record Call(Expr callee, List<Expr> args, List<String> keywordNames, List<Expr> keywordValues, int line)
            implements Expr {
    }

    record Filter(Expr target, String name, List<Expr> args, List<String> keywordNames, List<Expr> keywordValues,
                  int line) implements Expr {
    }

    record Test(Expr target, String name, List<Expr> args, boolean negated, int line) implements Expr {
    }

    record Unary(String op, Expr operand, int line) implements Expr {
    }

    record Binary(String op, Expr left, Expr right, int line) implements Expr {
    }

    /** {@code a if condition else b}; {@code otherwise} may be null (then the value is undefined). */
    record Conditional(Expr condition, Expr then, Expr otherwise, int line) implements Expr {
    }
}
