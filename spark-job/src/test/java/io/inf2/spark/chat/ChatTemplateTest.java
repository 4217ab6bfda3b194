package io.inf2.spark.chat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ChatTemplateTest {

    /** Meta-Llama-3-8B-Instruct's template, as its tokenizer_config.json has it. */
    static final String LLAMA3 = "{% set loop_messages = messages %}{% for message in loop_messages %}"
            + "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim"
            + " + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
            + "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

    /** A multi-line template in Zephyr's style, which depends on trim_blocks and lstrip_blocks. */
    static final String ZEPHYR = """
            {% for message in messages %}
            {% if message['role'] == 'user' %}
            {{ '<|user|>
            ' + message['content'] + eos_token }}
            {% elif message['role'] == 'system' %}
            {{ '<|system|>
            ' + message['content'] + eos_token }}
            {% elif message['role'] == 'assistant' %}
            {{ '<|assistant|>
            '  + message['content'] + eos_token }}
            {% endif %}
            {% if loop.last and add_generation_prompt %}
            {{ '<|assistant|>' }}
            {% endif %}
            {% endfor %}""";

    private static final Map<String, String> LLAMA3_TOKENS = Map.of("bos_token", "<|begin_of_text|>", "eos_token", "<|eot_id|>");

    private static List<ChatMessage> chat(String... roleThenContent) {
        List<ChatMessage> out = new java.util.ArrayList<>();
        for (int i = 0; i < roleThenContent.length; i += 2) {
            out.add(new ChatMessage(roleThenContent[i], roleThenContent[i + 1]));
        }
        return out;
    }

    private static String render(String template, Map<String, String> tokens, boolean generationPrompt, String... chat) {
        return new ChatTemplate(template, "test template", tokens).render(chat(chat), generationPrompt);
    }

    @Test
    void llama3RendersHeadersTrimmedContentAndTheAssistantPrompt() {
        String out = render(LLAMA3, LLAMA3_TOKENS, true, "system", "You are terse.", "user", "  What is 2+2?\n");
        assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n", out);
        assertFalse(render(LLAMA3, LLAMA3_TOKENS, false, "user", "Hi").endsWith("<|end_header_id|>\n\n"));
    }

    @Test
    void theTinyLlama3PresetsTemplateLoadsFromTokenizerConfig() {
        String config = """
                {"bos_token": "<|begin_of_text|>", "eos_token": {"content": "<|eot_id|>", "special": true},
                 "chat_template": "{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\\\n\\\\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\\\n\\\\n' }}{%- endif %}"}
                """;
        ChatTemplate t = ChatTemplate.fromTokenizerConfig(config, "model/tokenizer_config.json");
        assertEquals("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n", t.render(chat("user", "Hi "), true));
    }

    @Test
    void blockWhitespaceFollowsHuggingFacesTrimAndLstripBlocks() {
        assertEquals("<|user|>\nHi</s>\n<|assistant|>\n", render(ZEPHYR, Map.of("eos_token", "</s>"), true, "user", "Hi"));
        assertEquals("<|system|>\nBe brief</s>\n<|user|>\nHi</s>\n",
                render(ZEPHYR, Map.of("eos_token", "</s>"), false, "system", "Be brief", "user", "Hi"));
    }

    @Test
    void minusModifiersStripAllAdjacentWhitespace() {
        String t = "A  \n  {%- if true -%}  \n B \n {%- endif %}\n  {{- ' C ' -}}  \nD";
        assertEquals("AB C D", render(t, Map.of(), false));
    }

    @Test
    void raiseExceptionBecomesARenderErrorNamingTheReason() {
        String t = "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
                + "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
                + "{% endif %}{{ m['content'] }}{% endfor %}";
        assertEquals("ab", render(t, Map.of(), false, "user", "a", "assistant", "b"));
        ChatTemplate.RenderException e = assertThrows(ChatTemplate.RenderException.class,
                () -> render(t, Map.of(), false, "user", "a", "user", "b"));
        assertEquals("chat template: Conversation roles must alternate user/assistant/user/assistant/...", e.getMessage());
    }

    @Test
    void systemMessageHandlingWithSlicesNamespacesAndLoopControls() {
        String t = "{%- if messages[0]['role'] == 'system' %}{%- set system = messages[0]['content'] %}"
                + "{%- set rest = messages[1:] %}{%- else %}{%- set system = 'default system' %}{%- set rest = messages %}{%- endif %}"
                + "[{{ system }}]"
                + "{%- set ns = namespace(count=0, last=none) %}"
                + "{%- for m in rest %}{%- if m.role == 'skip' %}{% continue %}{% endif %}"
                + "{%- if loop.index > 3 %}{% break %}{% endif %}"
                + "{%- set ns.count = ns.count + 1 %}{%- set ns.last = m.content %}<{{ loop.index }}:{{ m.content|upper }}>"
                + "{%- endfor %} n={{ ns.count }} last={{ ns.last }} len={{ rest|length }} rev={{ (rest|map(attribute='role')|list)[::-1]|join(',') }}";
        assertEquals("[S]<1:A><3:C> n=2 last=c len=5 rev=user,user,user,skip,user",
                render(t, Map.of(), false, "system", "S", "user", "a", "skip", "x", "user", "c", "user", "d", "user", "e"));
        assertEquals("[default system]<1:Q> n=1 last=q len=1 rev=user", render(t, Map.of(), false, "user", "q"));
    }

    @Test
    void expressionsFollowPythonSemantics() {
        String t = "{{ 7 // 2 }} {{ 7 / 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 'ab' * 2 }} {{ 1 ~ 'x' ~ none }} "
                + "{{ [1, 2] + [3] }} {{ {'a': 1, 'b': [true, none]} }} {{ 'x' if 0 else 'y' }} {{ 3 in [1, 3] }} "
                + "{{ 'ell' in 'hello' }} {{ 'a' not in 'bcd' }} {{ undefined_name is defined }} {{ undefined_name }}| "
                + "{{ '  pad  '.strip() }} {{ 'a,b,,c'.split(',') }} {{ ' x  y '.split() }} {{ 'Hello'.startswith(('x', 'He')) }} "
                + "{{ {'k': 'v'}.get('k') }} {{ {'k': 'v'}.get('z', 'dflt') }} {{ range(3)|list }} {{ 'abc'[-1] }} "
                + "{{ 1 == 1.0 }} {{ none is none }} {{ 4 is divisibleby 2 }} {{ 'X'|lower is lower }}";
        assertEquals("3 3.5 2 1024 abab 1xNone [1, 2, 3] {'a': 1, 'b': [True, None]} y True True True False | "
                + "pad ['a', 'b', '', 'c'] ['x', 'y'] True v dflt [0, 1, 2] c True True True True", render(t, Map.of(), false));
    }

    @Test
    void tojsonWritesPythonStyleJson() {
        String t = "{{ {'name': 'f', 'args': [1, 2.5, 'q\"'], 'ok': true, 'none': none}|tojson }}|"
                + "{{ {'a': [1]}|tojson(indent=2) }}";
        assertEquals("{\"name\": \"f\", \"args\": [1, 2.5, \"q\\\"\"], \"ok\": true, \"none\": null}|{\n  \"a\": [\n    1\n  ]\n}",
                render(t, Map.of(), false));
    }

    @Test
    void macrosRenderWithDefaultsAndKeywords() {
        String t = "{% macro tag(name, body='empty') %}<{{ name }}>{{ body }}</{{ name }}>{% endmacro %}"
                + "{{ tag('a') }}{{ tag('b', 'x') }}{{ tag(body='y', name='c') }}";
        assertEquals("<a>empty</a><b>x</b><c>y</c>", render(t, Map.of(), false));
    }

    @Test
    void forElseSetBlocksAndLoopVariables() {
        String t = "{% for m in messages if m.role != 'system' %}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};"
                + "{% else %}none{% endfor %}{% set out %}cap{{ 1 + 1 }}{% endset %}{{ out }}"
                + "{% for k, v in {'x': 1, 'y': 2}.items() %}{{ k }}={{ v }}{% endfor %}";
        assertEquals("0TrueFalse2;1FalseTrue2;cap2x=1y=2", render(t, Map.of(), false, "system", "s", "user", "a", "user", "b"));
        assertEquals("nonecap2x=1y=2", render(t, Map.of(), false, "system", "s"));
    }

    @Test
    void unsupportedConstructsAreRefusedWhenTheTemplateLoads() {
        TemplateException tag = assertThrows(TemplateException.class,
                () -> new ChatTemplate("line one\n{% include 'other.jinja' %}", "cfg chat_template", Map.of()));
        assertEquals("cfg chat_template line 2: unsupported tag {% include %} (the chat-template renderer supports if, for, "
                + "set, macro, break, continue and generation)", tag.getMessage());
        TemplateException filter = assertThrows(TemplateException.class,
                () -> new ChatTemplate("{{ x|wordwrap(3) }}", "cfg chat_template", Map.of()));
        assertTrue(filter.getMessage().contains("filter |wordwrap is not supported"), filter.getMessage());
        TemplateException unclosed = assertThrows(TemplateException.class,
                () -> new ChatTemplate("{% for m in messages %}{{ m }}", "cfg chat_template", Map.of()));
        assertTrue(unclosed.getMessage().contains("missing {% else or endfor %}"), unclosed.getMessage());
        assertThrows(TemplateException.class, () -> new ChatTemplate("{{ 'open }}", "cfg", Map.of()));
        assertThrows(TemplateException.class, () -> new ChatTemplate("{{ a.b.upper().nosuchmethod() }}", "cfg", Map.of()));
    }

    @Test
    void tokenizerConfigWithoutATemplateIsAClearError() {
        TemplateException e = assertThrows(TemplateException.class,
                () -> ChatTemplate.fromTokenizerConfig("{\"bos_token\": \"<s>\"}", "m/tokenizer_config.json"));
        assertTrue(e.getMessage().startsWith("m/tokenizer_config.json: the model has no chat_template"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
        ChatTemplate named = ChatTemplate.fromTokenizerConfig(
                "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, {\"name\": \"default\", \"template\": \"D\"}]}",
                "m/tokenizer_config.json");
        assertEquals("D", named.render(chat("user", "x"), true));
    }

    @Test
    void aShippedTemplateStillRendersAfterSerialization() throws Exception {
        ChatTemplate t = new ChatTemplate(LLAMA3, "llama3", LLAMA3_TOKENS);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(t);
        }
        ChatTemplate copy;
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            copy = (ChatTemplate) in.readObject();
        }
        assertEquals(t.render(chat("user", "x"), true), copy.render(chat("user", "x"), true));
    }
}
