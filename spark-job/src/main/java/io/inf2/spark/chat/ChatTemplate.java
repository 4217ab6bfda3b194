package io.inf2.spark.chat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.inf2.util.OneLine;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.Serial;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A model's chat template (the {@code chat_template} of its tokenizer_config.json), rendered the way
 * Hugging Face's {@code apply_chat_template} does for text: the messages, {@code bos_token},
 * {@code eos_token} and {@code add_generation_prompt}. The template language is the Jinja subset chat
 * templates use (see {@link JinjaParser}); a template outside it is refused when loaded.
 *
 * <p>Serializable so the driver can load and check it once and ship it to tasks.
 */
public final class ChatTemplate implements Serializable {
    @Serial
    private static final long serialVersionUID = 1L;
    private static final ObjectMapper JSON = new ObjectMapper();
    /** How much of a failure's message a row's error keeps; a template may raise any text. */
    private static final int MESSAGE_LENGTH = 500;

    private final String source;
    private final String where;
    private final Map<String, String> specialTokens;
    private transient List<JinjaNode> parsed;

    /**
     * @param where         names the template in errors, e.g. "model/tokenizer_config.json chat_template"
     * @param specialTokens bos_token, eos_token, ... as the template sees them
     */
    public ChatTemplate(String source, String where, Map<String, String> specialTokens) {
        this.source = source;
        this.where = where;
        this.specialTokens = new LinkedHashMap<>(specialTokens);
        this.parsed = JinjaParser.parse(source, where);
    }

    /**
     * The chat template of a tokenizer_config.json document; {@code file} names it in errors. Fails
     * with a one-line TemplateException when there is none or it cannot be used.
     */
    public static ChatTemplate fromTokenizerConfig(String json, String file) {
        JsonNode config;
        try {
            config = JSON.readTree(json);
        } catch (IOException e) {
            throw new TemplateException(file + ": not valid JSON (" + firstLine(e.getMessage()) + ")");
        }
        if (config == null || !config.isObject()) {
            throw new TemplateException(file + ": expected a JSON object");
        }
        JsonNode template = config.get("chat_template");
        String where = file + " chat_template";
        String source;
        if (template == null || template.isNull()) {
            throw new TemplateException(file + ": the model has no chat_template, so it cannot render chat messages "
                    + "(give plain prompts with promptColumn instead)");
        } else if (template.isTextual()) {
            source = template.asText();
        } else if (template.isArray()) {
            source = null;
            for (JsonNode named : template) {
                if ("default".equals(named.path("name").asText())) {
                    source = named.path("template").asText(null);
                    where = file + " chat_template \"default\"";
                }
            }
            if (source == null) {
                throw new TemplateException(file + ": chat_template lists named templates but none is called \"default\"");
            }
        } else {
            throw new TemplateException(file + ": chat_template must be a string or a list of {name, template}");
        }
        Map<String, String> special = new HashMap<>();
        for (String key : List.of("bos_token", "eos_token", "unk_token", "pad_token")) {
            JsonNode token = config.get(key);
            if (token != null && token.isTextual()) {
                special.put(key, token.asText());
            } else if (token != null && token.isObject() && token.path("content").isTextual()) {
                special.put(key, token.path("content").asText());
            }
        }
        return new ChatTemplate(source, where, special);
    }

    /**
     * The prompt text for {@code messages}; {@code addGenerationPrompt} appends the header that opens
     * the assistant's turn. Throws {@link RenderException} (one line) when the template refuses the
     * messages, as templates do for roles out of order.
     */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        List<Object> list = new ArrayList<>();
        for (ChatMessage m : messages) {
            Map<Object, Object> message = new LinkedHashMap<>();
            message.put("role", m.role());
            message.put("content", m.content());
            list.add(message);
        }
        Map<String, Object> variables = new HashMap<>(specialTokens);
        variables.put("messages", list);
        variables.put("add_generation_prompt", addGenerationPrompt);
        try {
            return JinjaRuntime.render(parsed, variables);
        } catch (JinjaRuntime.Failure e) {
            throw new RenderException("chat template: " + OneLine.excerpt(e.getMessage(), MESSAGE_LENGTH));
        } catch (StackOverflowError e) {
            throw new RenderException("chat template: recursion too deep");
        } catch (RuntimeException e) {
            // A renderer bug must fail only this row, never the task.
            String message = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            throw new RenderException("chat template failed at " + where + ": "
                    + OneLine.excerpt(message, MESSAGE_LENGTH));
        }
    }

    public String where() {
        return where;
    }

    @Serial
    private void readObject(ObjectInputStream in) throws IOException, ClassNotFoundException {
        in.defaultReadObject();
        parsed = JinjaParser.parse(source, where);
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "unreadable";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    /** The template refused these messages; the row gets this as its error. */
    public static final class RenderException extends RuntimeException {
        public RenderException(String message) {
            super(message, null, false, false);
        }
    }
}
