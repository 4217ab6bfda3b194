package io.inf2.spark;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.inf2.config.ConfigException;
import io.inf2.engine.SamplingParams;
import io.inf2.spark.chat.ChatMessage;
import io.inf2.spark.chat.ChatTemplate;
import io.inf2.util.OneLine;
import io.inf2.util.StrictJson;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.spark.sql.Row;

/**
 * The layout of a prepared row, and how one becomes an engine request. A prepared row holds, in
 * order: the id, the prompt text or the chat messages, the parameter columns in use, the kept
 * columns, then (for input whose reader marks lines it could not parse) that mark. Built on the
 * driver, used inside tasks.
 */
final class PreparedRows implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final ObjectMapper JSON = StrictJson.MAPPER;

    static final int ID = 0;
    static final int PROMPT_OR_MESSAGES = 1;
    static final int FIRST_PARAMETER = 2;

    private final String promptSource;
    private final ChatTemplate chatTemplate;
    private final RowParameters parameters;
    private final int keptColumns;
    private final boolean marksMalformed;

    /**
     * @param promptSource   names the prompt (or messages) column in errors
     * @param chatTemplate   renders the messages column; null when rows carry prompt text
     * @param marksMalformed whether the last column holds the raw text of a line the reader could not parse
     */
    PreparedRows(String promptSource, ChatTemplate chatTemplate, RowParameters parameters, int keptColumns,
                 boolean marksMalformed) {
        this.promptSource = promptSource;
        this.chatTemplate = chatTemplate;
        this.parameters = parameters;
        this.keptColumns = keptColumns;
        this.marksMalformed = marksMalformed;
    }

    int firstKept() {
        return FIRST_PARAMETER + parameters.columns().size();
    }

    int keptColumns() {
        return keptColumns;
    }

    /** What the row asks for, or why it cannot be served; never throws for bad row contents. */
    Prepared prepare(Row row) {
        String id = row.getString(ID);
        int malformed = firstKept() + keptColumns;
        if (marksMalformed && !row.isNullAt(malformed)) {
            return new Prepared(id, null, false, null, "the input line does not parse: " + excerpt(row.getString(malformed)));
        }
        String prompt;
        try {
            prompt = chatTemplate == null ? promptText(row) : chatTemplate.render(messages(row), true);
        } catch (RowException | ChatTemplate.RenderException e) {
            return new Prepared(id, null, false, null, e.getMessage());
        } catch (RuntimeException e) {
            // A defect reached by one row's contents must cost that row, not fail the task and then the job.
            return new Prepared(id, null, false, null, "cannot prepare the row: " + describe(e));
        }
        try {
            return new Prepared(id, prompt, chatTemplate != null, parameters.of(row, FIRST_PARAMETER, id), null);
        } catch (ConfigException e) {
            return new Prepared(id, prompt, false, null, e.getMessage());
        } catch (RuntimeException e) {
            return new Prepared(id, prompt, false, null, "cannot read the row's parameters: " + describe(e));
        }
    }

    private static String describe(RuntimeException e) {
        return e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + excerpt(e.getMessage()));
    }

    private String promptText(Row row) {
        if (row.isNullAt(PROMPT_OR_MESSAGES)) {
            throw new RowException(promptSource + " is null");
        }
        return row.getString(PROMPT_OR_MESSAGES);
    }

    private List<ChatMessage> messages(Row row) {
        if (row.isNullAt(PROMPT_OR_MESSAGES)) {
            throw new RowException(promptSource + " is null");
        }
        Object cell = row.get(PROMPT_OR_MESSAGES);
        List<ChatMessage> out = new ArrayList<>();
        if (cell instanceof String text) {
            JsonNode node;
            try {
                node = JSON.readTree(text);
            } catch (JsonProcessingException e) {
                throw new RowException(promptSource + " is not valid JSON: " + StrictJson.problem(e));
            } catch (java.io.IOException e) {
                throw new RowException(promptSource + " is not valid JSON: " + firstLine(e.getMessage()));
            }
            if (node == null || !node.isArray()) {
                throw new RowException(promptSource + " must be a JSON array of {\"role\", \"content\"} objects");
            }
            for (JsonNode m : node) {
                JsonNode role = m.get("role");
                JsonNode content = m.get("content");
                if (role == null || !role.isTextual() || content == null || !(content.isTextual() || content.isNull())) {
                    throw new RowException(promptSource + " message " + out.size() + " needs a text \"role\" and \"content\"");
                }
                for (Map.Entry<String, JsonNode> field : m.properties()) {
                    if (!MESSAGE_FIELDS.contains(field.getKey()) && !field.getValue().isNull()) {
                        throw unsupportedField(out.size(), field.getKey());
                    }
                }
                out.add(new ChatMessage(role.asText(), content.isNull() ? null : content.asText()));
            }
        } else {
            List<Row> structs = row.getList(PROMPT_OR_MESSAGES);
            for (Row m : structs) {
                if (m == null || m.isNullAt(m.fieldIndex("role"))) {
                    throw new RowException(promptSource + " message " + out.size() + " has no role");
                }
                String[] names = m.schema().fieldNames();
                for (int f = 0; f < names.length; f++) {
                    if (!MESSAGE_FIELDS.contains(names[f]) && !m.isNullAt(f)) {
                        throw unsupportedField(out.size(), names[f]);
                    }
                }
                int content = m.fieldIndex("content");
                out.add(new ChatMessage(m.getString(m.fieldIndex("role")), m.isNullAt(content) ? null : m.getString(content)));
            }
        }
        if (out.isEmpty()) {
            throw new RowException(promptSource + " has no messages");
        }
        return out;
    }

    /** What a message passes to chat templates; anything else (tool_calls, images) would be dropped unseen. */
    private static final Set<String> MESSAGE_FIELDS = Set.of("role", "content");

    private RowException unsupportedField(int message, String field) {
        return new RowException(promptSource + " message " + message + " has \"" + field
                + "\", which is not passed to chat templates (only role and content are)");
    }

    /** Characters of a malformed line that an error shows: enough to find it, short enough for one line. */
    private static final int EXCERPT_CHARS = 60;

    private static String excerpt(String text) {
        return OneLine.excerpt(text.strip(), EXCERPT_CHARS);
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "unreadable";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    /**
     * A prepared row: a request ({@code params} set) or a rejection ({@code error} set).
     *
     * @param prompt the prompt text, after chat rendering; null when there is none
     * @param chat   the prompt was rendered from a chat template, which already holds the model's
     *               special tokens, so the engine must not add them again
     */
    record Prepared(String id, String prompt, boolean chat, SamplingParams params, String error) {
        boolean rejected() {
            return error != null;
        }
    }

    /** A row whose contents cannot become a request; the message is the row's error column. */
    private static final class RowException extends RuntimeException {
        RowException(String message) {
            super(message, null, false, false);
        }
    }
}
