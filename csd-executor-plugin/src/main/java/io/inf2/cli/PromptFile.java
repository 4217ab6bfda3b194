package io.inf2.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.inf2.engine.GenerationRequest;
import io.inf2.engine.SamplingParams;
import io.inf2.util.StrictJson;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Reads prompts for {@code inf2 generate}: JSON Lines, one request per line, either a JSON string or
 * an object {@code {"id": ..., "prompt": ..., "max_new_tokens": ..., "temperature": ..., "top_k": ...,
 * "top_p": ..., "repetition_penalty": ..., "seed": ..., "stop_token_ids": [...]}}. Blank lines are
 * skipped. Ids default to the line number. Errors name the file and line.
 */
final class PromptFile {
    private static final ObjectMapper JSON = StrictJson.MAPPER;
    private static final Set<String> FIELDS = Set.of("id", "prompt", "max_new_tokens", "temperature", "top_k", "top_p",
            "repetition_penalty", "seed", "stop_token_ids");

    private PromptFile() {
    }

    static List<GenerationRequest> read(Path file, SamplingParams defaults) {
        List<GenerationRequest> out = new ArrayList<>();
        Set<String> ids = new HashSet<>();
        var decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        // Lines are split as bytes and each is decoded on its own, so that text that is not UTF-8 is
        // reported at its line: a decoding reader fails wherever its read-ahead buffer happens to end.
        try (InputStream in = Files.newInputStream(file)) {
            ByteArrayOutputStream line = new ByteArrayOutputStream();
            byte[] chunk = new byte[1 << 16];
            int number = 0;
            for (int n = in.read(chunk); n != -1; n = in.read(chunk)) {
                int from = 0;
                for (int i = 0; i < n; i++) {
                    if (chunk[i] == '\n') {
                        line.write(chunk, from, i - from);
                        accept(line, file, ++number, decoder, defaults, ids, out);
                        from = i + 1;
                    }
                }
                line.write(chunk, from, n - from);
            }
            if (line.size() > 0) {
                accept(line, file, ++number, decoder, defaults, ids, out);
            }
        } catch (NoSuchFileException e) {
            throw new CliException(file + ": no such prompts file");
        } catch (IOException e) {
            throw new CliException(file + ": cannot read prompts (" + e.getMessage() + ")");
        }
        if (out.isEmpty()) {
            throw new CliException(file + ": no prompts (the file is empty)");
        }
        return out;
    }

    /** Decodes line {@code number} (its bytes in {@code line}, emptied after) and adds its request unless it is blank. */
    private static void accept(ByteArrayOutputStream line, Path file, int number, CharsetDecoder decoder, SamplingParams defaults,
                               Set<String> ids, List<GenerationRequest> out) {
        String text;
        try {
            text = decoder.reset().decode(ByteBuffer.wrap(line.toByteArray())).toString();
        } catch (CharacterCodingException e) {
            throw new CliException(file + ":" + number + ": not UTF-8 text");
        }
        line.reset();
        if (text.isBlank()) {
            return;
        }
        GenerationRequest r = parse(text, file, number, defaults);
        if (!ids.add(r.id())) {
            throw new CliException(file + ":" + number + ": duplicate id \"" + r.id() + "\"");
        }
        out.add(r);
    }

    private static GenerationRequest parse(String line, Path file, int number, SamplingParams d) {
        String where = file + ":" + number + ": ";
        JsonNode node;
        try {
            node = JSON.readTree(line);
        } catch (JsonProcessingException e) {
            throw new CliException(where + "not valid JSON (" + StrictJson.problem(e) + ")");
        }
        String defaultId = Integer.toString(number);
        if (node.isTextual()) {
            return GenerationRequest.ofText(defaultId, node.asText(), d.withSeed(SamplingParams.seedFor(d.seed(), defaultId)));
        }
        if (!node.isObject()) {
            throw new CliException(where + "expected a JSON string or object, got " + node.getNodeType().name().toLowerCase());
        }
        node.fieldNames().forEachRemaining(f -> {
            if (!FIELDS.contains(f)) {
                throw new CliException(where + "unknown field \"" + f + "\" (known: " + String.join(", ", new java.util.TreeSet<>(FIELDS)) + ")");
            }
        });
        JsonNode prompt = node.get("prompt");
        if (prompt == null || !prompt.isTextual()) {
            throw new CliException(where + "\"prompt\" must be a string");
        }
        JsonNode idNode = node.get("id");
        if (idNode != null && !idNode.isTextual() && !(idNode.isIntegralNumber() && idNode.canConvertToLong())) {
            throw new CliException(where + "\"id\" must be a string or an integer");
        }
        String id = idNode == null ? defaultId : idNode.asText();
        try {
            SamplingParams p = new SamplingParams(
                    intField(node, "max_new_tokens", d.maxNewTokens()),
                    doubleField(node, "temperature", d.temperature()),
                    intField(node, "top_k", d.topK()),
                    doubleField(node, "top_p", d.topP()),
                    doubleField(node, "repetition_penalty", d.repetitionPenalty()),
                    node.has("seed") ? longField(node, "seed") : SamplingParams.seedFor(d.seed(), id),
                    node.has("stop_token_ids") ? ids(node.get("stop_token_ids")) : d.stopTokenIds());
            return GenerationRequest.ofText(id, prompt.asText(), p);
        } catch (IllegalArgumentException e) {
            throw new CliException(where + e.getMessage());
        }
    }

    private static int intField(JsonNode node, String field, int fallback) {
        JsonNode n = node.get(field);
        if (n == null) {
            return fallback;
        }
        if (!n.canConvertToInt() || !n.isIntegralNumber()) {
            throw new IllegalArgumentException("\"" + field + "\" must be an integer");
        }
        return n.asInt();
    }

    private static long longField(JsonNode node, String field) {
        JsonNode n = node.get(field);
        if (!n.isIntegralNumber() || !n.canConvertToLong()) {
            throw new IllegalArgumentException("\"" + field + "\" must be an integer");
        }
        return n.asLong();
    }

    private static double doubleField(JsonNode node, String field, double fallback) {
        JsonNode n = node.get(field);
        if (n == null) {
            return fallback;
        }
        if (!n.isNumber()) {
            throw new IllegalArgumentException("\"" + field + "\" must be a number");
        }
        return n.asDouble();
    }

    private static List<Integer> ids(JsonNode n) {
        if (!n.isArray()) {
            throw new IllegalArgumentException("\"stop_token_ids\" must be an array of integers");
        }
        List<Integer> out = new ArrayList<>();
        for (JsonNode e : n) {
            if (!e.isIntegralNumber() || !e.canConvertToInt() || e.asInt() < 0) {
                throw new IllegalArgumentException("\"stop_token_ids\" must hold non-negative integers");
            }
            out.add(e.asInt());
        }
        return out;
    }
}
