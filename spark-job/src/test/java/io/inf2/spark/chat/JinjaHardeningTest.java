package io.inf2.spark.chat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Hostile or odd templates and values: each must end in a one-line error, never a crash or a hang. */
class JinjaHardeningTest {

    private static String render(String template) {
        return new ChatTemplate(template, "t", Map.of()).render(List.of(), false);
    }

    private static String parseError(String template) {
        TemplateException e = assertThrows(TemplateException.class, () -> new ChatTemplate(template, "t", Map.of()));
        assertOneLine(e.getMessage());
        return e.getMessage();
    }

    private static String renderError(String template) {
        ChatTemplate t = new ChatTemplate(template, "t", Map.of());
        ChatTemplate.RenderException e = assertThrows(ChatTemplate.RenderException.class, () -> t.render(List.of(), false));
        assertOneLine(e.getMessage());
        return e.getMessage();
    }

    private static void assertOneLine(String message) {
        assertFalse(message.contains("\n") || message.contains("\r"), message);
        assertTrue(message.length() < 300, message);
    }

    private static void assertContains(String expected, String actual) {
        assertTrue(actual.contains(expected), actual);
    }

    @Test
    void deepNestingIsAParseErrorNotAStackOverflow() {
        assertContains("t line 1: nested more than 200 levels deep",
                parseError("{{ " + "(".repeat(700) + "1" + ")".repeat(700) + " }}"));
        assertContains("t line 1: nested more than 200 levels deep", parseError("{{ " + "[".repeat(10_000) + " }}"));
        assertContains("t line 1: nested more than 200 levels deep", parseError("{{ " + "not ".repeat(100_000) + "x }}"));
        assertContains("t line 1: nested more than 200 levels deep", parseError("{{ " + "-".repeat(10_000) + "1 }}"));
        assertContains("t line 1: nested more than 200 levels deep",
                parseError("{% if x %}".repeat(10_000) + "{% endif %}".repeat(10_000)));
        assertEquals("3", render("{{ " + "(".repeat(50) + "3" + ")".repeat(50) + " }}"));
    }

    @Test
    void badNumbersAndEscapesAreParseErrors() {
        assertContains("t line 1: bad \\u escape", parseError("{{ '\\uZZZZ' }}"));
        assertContains("t line 1: bad \\u escape", parseError("{{ \"\\u12\" ~ 'abc' }}"));
        assertContains("t line 1: bad \\u escape", parseError("{{ '\\u+123' }}"));
        assertContains("t line 1: bad or too large number 1e", parseError("{{ 1e }}"));
        assertContains("t line 1: bad or too large number 99999999999999999999", parseError("{{ 99999999999999999999 }}"));
        assertContains("t line 1: bad index", parseError("{{ x.99999999999999999999 }}"));
        assertEquals("\u00e9", render("{{ '\\u00e9' }}"));
    }

    @Test
    void endTagsMustEndCleanly() {
        assertContains("unexpected \"garbage\"", parseError("{% for x in [1] %}{{ x }}{% endfor garbage %}"));
        assertContains("unexpected \"%\"", parseError("{% for x in [1] %}{{ x }}{% endfor %%}"));
        assertContains("unexpected \"%\"", parseError("{% for x in [] %}{% else %%}e{% endfor %}"));
        assertContains("unexpected \"x\"", parseError("{% for x in [] %}{% else x %}e{% endfor %}"));
        assertEquals("e", render("{% for x in [] %}{{ x }}{% else %}e{% endfor %}"));
    }

    @Test
    void errorsQuoteTemplateTextOnOneLineAndShort() {
        String broken = parseError("{{ 'a' ~\n\n (b +\n }}");
        assertContains("\\n", broken);
        assertContains("...", parseError("{{ " + "a ~ ".repeat(200) + ") }}"));
        String raised = renderError("{{ raise_exception('first\\nsecond') }}");
        assertEquals("chat template: first\\nsecond", raised);
    }

    @Test
    void runawayRendersFailWithTheLine() {
        assertEquals("chat template: line 2: the template produces more than 16777216 items",
                renderError("\n{% for i in range(10**9) %}{% endfor %}"));
        assertContains("line 1: the template produces more than 16777216 characters", renderError("{{ 'x' * 10**9 }}"));
        assertContains("line 1: the template produces more than 16777216 characters", renderError("{{ 'a'|indent(10**9) }}"));
        assertContains("line 1: the template produces more than 16777216 characters",
                renderError("{{ [1]|tojson(indent=10**9) }}"));
        assertContains("line 1: the template produces more than 16777216 characters",
                renderError("{% set ns = namespace(s='abcdefgh') %}{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"));
        assertContains("line 1: the template produces more than 16777216 characters",
                renderError("{% set ns = namespace(s='abcdefgh') %}{% for i in range(30) %}{% set ns.s = [ns.s, ns.s] %}{% endfor %}{{ ns.s }}"));
        assertContains("line 1: the template ran more than 10000000 steps",
                renderError("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"));
        assertContains("line 1: the template ran more than 10000000 steps",
                renderError("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"));
    }

    @Test
    void replaceWithEmptyOldFollowsPython() {
        assertEquals("-a-b-c-", render("{{ 'abc'.replace('', '-', 10**12) }}"));
        assertEquals("-a-bc", render("{{ 'abc'.replace('', '-', 2) }}"));
        assertEquals("-a-b-c-", render("{{ 'abc'|replace('', '-') }}"));
        assertEquals("xbxb", render("{{ 'abab'.replace('a', 'x') }}"));
    }

    @Test
    void integersDoNotWrap() {
        assertContains("line 1: integer result of ** is too large", renderError("{{ 2**64 }}"));
        assertContains("line 1: integer result of * is too large", renderError("{{ 9223372036854775807 * 2 }}"));
        assertContains("line 1: the template produces more than 16777216 characters", renderError("{{ 'ab' * 4294967297 }}"));
        assertEquals("1099511627776", render("{{ 2**40 }}"));
        assertEquals("[0, 3, 6, 9]", render("{{ range(0, 10, 3)|list }}"));
        assertEquals("[5, 3]", render("{{ range(5, 1, -2)|list }}"));
    }

    @Test
    void noneAndOddValuesFailCleanlyOrFollowJinja() {
        assertContains("line 1: None is not iterable", renderError("{% for x in none %}{% endfor %}"));
        assertContains("line 1: cannot slice None", renderError("{{ none[1:] }}"));
        assertContains("line 1: None has no length", renderError("{{ none|length }}"));
        assertContains("line 1: division by zero", renderError("{{ 4 is divisibleby 0 }}"));
        assertContains("line 1: expected an integer, got float", renderError("{{ 'a\\nb'|indent(2.5) }}"));
        assertContains("line 1: expected an integer, got None", renderError("{{ 'a\\nb'|indent(none) }}"));
        assertEquals("0 0.0", render("{{ none|int }} {{ none|float }}"));
        assertEquals("[]", render("{{ nothing|sort }}"));
        assertEquals("empty", render("{% for x in nothing %}{{ x }}{% else %}empty{% endfor %}"));
        assertEquals("a\n b|a\nb", render("{{ 'a\\nb'|indent(true) }}|{{ 'a\\nb'|indent(-1) }}"));
    }

    @Test
    void slicesWithHugeStepsFollowPython() {
        assertEquals("c", render("{{ 'abc'[2::9223372036854775806] }}"));
        assertEquals("ca", render("{{ 'abc'[::-2] }}"));
        assertEquals("c", render("{{ 'abc'[::-9223372036854775807] }}"));
    }

    @Test
    void newlinesFollowJinja() {
        assertEquals("Hi", render("Hi\n"));
        assertEquals("Hi\n", render("Hi\n\n"));
        assertEquals("A\nB", render("{% if true %}\r\nA\r\n{% endif %}\r\nB\r\n"));
        assertEquals("a\nb", render("a\rb"));
    }

    @Test
    void whitespaceIsPythonsWhitespace() {
        assertEquals("[hi]", render("[{{ '\u00a0\u2007 hi\u202f\u0085\u3000'|trim }}]"));
        assertEquals("[hi]", render("[{{ '\u00a0hi\u00a0'.strip() }}]"));
        assertEquals("['a', 'b']", render("{{ '\u00a0a\u00a0b\u0085'.split() }}"));
        assertEquals("1 2.5", render("{{ (-1)|abs }} {{ (-2.5)|abs }}"));
    }
}
