package io.inf2.model.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.inf2.model.ModelFormatException;

import io.inf2.util.StrictJson;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A model's Hugging Face {@code tokenizer.json}, run by Hugging Face {@code tokenizers} itself through DJL's binding
 * (which bundles the native library and needs no network).
 *
 * <p>Never truncates or pads (DJL's own default truncates to 512 tokens). Special tokens written literally in the
 * text (say {@code "</s>"}) are recognised as those tokens, as Hugging Face does by default.
 *
 * <p>Lone surrogates: a Java string may hold an unpaired UTF-16 surrogate, which UTF-8 cannot represent. Left
 * alone, DJL hands it to Rust in its 3-byte modified-UTF-8 form (ED A0 80 for U+D800): byte-level tokenizers then
 * see three invalid bytes and decode them as three U+FFFD, and Python's {@code tokenizers} refuses such a string
 * outright. So each lone surrogate is replaced by one U+FFFD before encoding, as the reference fixtures do; valid
 * surrogate pairs are kept.
 *
 * <p>Thread-safe: any number of threads may encode and decode at once (the native tokenizer is only read);
 * {@link #close} waits for calls in flight, and calls after it fail.
 */
public final class HfTokenizer implements Tokenizer {

    static {
        // DJL otherwise probes the cloud metadata endpoint (a network call) the first time a tokenizer is created.
        if (System.getProperty("OPT_OUT_TRACKING") == null) {
            System.setProperty("OPT_OUT_TRACKING", "true");
        }
        if (System.getProperty("ai.djl.offline") == null) {
            System.setProperty("ai.djl.offline", "true");
        }
    }

    private static final ObjectMapper JSON = StrictJson.MAPPER;
    private static final char REPLACEMENT = '\uFFFD';

    private final Path file;
    private final HuggingFaceTokenizer tokenizer;
    private final Map<String, Integer> idOfToken;
    private final int vocabSize;
    private final ReadWriteLock lifecycle = new ReentrantReadWriteLock();
    private boolean closed;

    private HfTokenizer(Path file, HuggingFaceTokenizer tokenizer, Map<String, Integer> idOfToken, int vocabSize) {
        this.file = file;
        this.tokenizer = tokenizer;
        this.idOfToken = idOfToken;
        this.vocabSize = vocabSize;
    }

    /** Loads {@code modelDir/tokenizer.json}; a missing or unusable file gets a one-line {@link ModelFormatException}. */
    public static HfTokenizer load(Path modelDir) {
        Path file = modelDir.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) {
            throw new ModelFormatException("Missing tokenizer file " + file);
        }
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new ModelFormatException(file + ": not valid JSON at " + StrictJson.problem(e));
        } catch (IOException e) {
            throw new ModelFormatException("Cannot read " + file + ": " + firstLine(e.getMessage()), e);
        }
        Map<String, Integer> idOfToken = tokenIds(file, root);
        checkPostProcessor(file, "post_processor", root.path("post_processor"));
        int largest = idOfToken.values().stream().mapToInt(Integer::intValue).max().orElse(-1);
        if (largest == Integer.MAX_VALUE) {
            throw new ModelFormatException(file + ": token id " + largest + " is too large");
        }
        int vocabSize = largest + 1;
        // DJL truncates to 512 tokens and pads unless told otherwise.
        Map<String, String> options = Map.of("truncation", "false", "padding", "false", "addSpecialTokens", "true");
        HuggingFaceTokenizer tokenizer;
        try {
            tokenizer = HuggingFaceTokenizer.newInstance(file, options);
        } catch (IOException | RuntimeException e) {
            throw new ModelFormatException(file + ": Hugging Face tokenizers cannot load it: " + firstLine(e.getMessage()), e);
        } catch (LinkageError e) {
            throw new IllegalStateException("The Hugging Face tokenizers native library (DJL) cannot load on this machine: "
                    + firstLine(e.getMessage()), e);
        }
        return new HfTokenizer(file, tokenizer, idOfToken, vocabSize);
    }

    @Override
    public int[] encode(String text, boolean addSpecialTokens) {
        String valid = replaceLoneSurrogates(text);
        long[] ids;
        lifecycle.readLock().lock();
        try {
            ensureOpen();
            ids = tokenizer.encode(valid, addSpecialTokens, false).getIds();
        } finally {
            lifecycle.readLock().unlock();
        }
        var result = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            result[i] = Math.toIntExact(ids[i]);
        }
        return result;
    }

    /**
     * Decodes {@code ids}. Ids with no token (a model's vocab_size may exceed its tokenizer's, as
     * OPT's 50272 does 50265) decode to nothing, as in Hugging Face tokenizers; a negative id is an
     * {@link IllegalArgumentException}.
     */
    @Override
    public String decode(int[] ids, boolean skipSpecialTokens) {
        long[] wide = new long[ids.length];
        int known = 0;
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0) {
                throw new IllegalArgumentException("token id " + ids[i] + " at position " + i + " is negative");
            }
            if (ids[i] < vocabSize) {
                wide[known++] = ids[i];
            }
        }
        wide = java.util.Arrays.copyOf(wide, known);
        lifecycle.readLock().lock();
        try {
            ensureOpen();
            return tokenizer.decode(wide, skipSpecialTokens);
        } finally {
            lifecycle.readLock().unlock();
        }
    }

    /** One more than the largest id of the model's vocabulary and added tokens. */
    @Override
    public int vocabSize() {
        return vocabSize;
    }

    /** The id of a token as the vocabulary spells it (byte-level vocabularies spell a space {@code Ġ}), or -1. */
    @Override
    public int tokenId(String token) {
        return idOfToken.getOrDefault(token, -1);
    }

    @Override
    public void close() {
        lifecycle.writeLock().lock();
        try {
            if (!closed) {
                closed = true;
                tokenizer.close();
            }
        } finally {
            lifecycle.writeLock().unlock();
        }
    }

    @Override
    public String toString() {
        return "HfTokenizer[" + file + ", " + vocabSize + " ids]";
    }

    /** {@code text} with every unpaired surrogate replaced by U+FFFD; the same string when there is none. */
    static String replaceLoneSurrogates(String text) {
        StringBuilder fixed = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                if (fixed == null) {
                    fixed = new StringBuilder(text);
                }
                fixed.setCharAt(i, REPLACEMENT);
            }
        }
        return fixed == null ? text : fixed.toString();
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("Tokenizer " + file + " is closed");
        }
    }

    private static Map<String, Integer> tokenIds(Path file, JsonNode root) {
        var ids = new HashMap<String, Integer>();
        JsonNode vocab = root.path("model").path("vocab");
        if (vocab.isObject()) {
            for (Map.Entry<String, JsonNode> entry : vocab.properties()) {
                ids.put(entry.getKey(), requireId(file, "model.vocab." + entry.getKey(), entry.getValue()));
            }
        } else if (vocab.isArray()) {
            // Unigram models list [piece, score] pairs; the id is the position.
            for (int id = 0; id < vocab.size(); id++) {
                ids.put(vocab.get(id).path(0).asText(), id);
            }
        } else {
            throw new ModelFormatException(file + ": model.vocab is missing or neither an object nor an array");
        }
        JsonNode added = root.path("added_tokens");
        if (!added.isMissingNode() && !added.isNull() && !added.isArray()) {
            throw new ModelFormatException(file + ": added_tokens must be an array");
        }
        for (int i = 0; i < added.size(); i++) {
            JsonNode token = added.get(i);
            if (!token.path("content").isTextual()) {
                throw new ModelFormatException(file + ": added_tokens[" + i + "] has no string 'content'");
            }
            ids.put(token.get("content").asText(), requireId(file, "added_tokens[" + i + "].id", token.path("id")));
        }
        return Map.copyOf(ids);
    }

    /**
     * Checks what Hugging Face tokenizers only checks when it encodes, where a bad value is a Rust panic
     * that aborts the whole JVM: a template's special tokens must be declared with as many ids as
     * tokens, each a valid id, and the Roberta/Bert processors' sep and cls must be [token, id] pairs.
     */
    private static void checkPostProcessor(Path file, String where, JsonNode processor) {
        if (processor.isMissingNode() || processor.isNull()) {
            return;
        }
        String type = processor.path("type").asText("");
        switch (type) {
            case "Sequence" -> {
                JsonNode steps = processor.path("processors");
                if (!steps.isArray()) {
                    throw new ModelFormatException(file + ": " + where + ".processors must be an array");
                }
                for (int i = 0; i < steps.size(); i++) {
                    checkPostProcessor(file, where + ".processors[" + i + "]", steps.get(i));
                }
            }
            case "TemplateProcessing" -> checkTemplateProcessing(file, where, processor);
            case "RobertaProcessing", "BertProcessing" -> {
                for (String part : List.of("sep", "cls")) {
                    JsonNode pair = processor.path(part);
                    if (!pair.isArray() || pair.size() != 2 || !pair.get(0).isTextual()) {
                        throw new ModelFormatException(file + ": " + where + "." + part + " must be a [token, id] pair");
                    }
                    requireId(file, where + "." + part + "[1]", pair.get(1));
                }
            }
            default -> {
                // ByteLevel and the others carry no ids.
            }
        }
    }

    /** Every special token a template uses is declared, with as many valid ids as tokens. */
    private static void checkTemplateProcessing(Path file, String where, JsonNode processor) {
        JsonNode special = processor.path("special_tokens");
        if (!special.isMissingNode() && !special.isObject()) {
            throw new ModelFormatException(file + ": " + where + ".special_tokens must be an object");
        }
        for (Map.Entry<String, JsonNode> token : special.properties()) {
            String at = where + ".special_tokens." + token.getKey();
            JsonNode ids = token.getValue().path("ids");
            JsonNode tokens = token.getValue().path("tokens");
            if (!ids.isArray() || !tokens.isArray() || ids.size() != tokens.size() || ids.isEmpty()) {
                throw new ModelFormatException(file + ": " + at + " needs as many ids as tokens (at least one)");
            }
            for (int i = 0; i < ids.size(); i++) {
                requireId(file, at + ".ids[" + i + "]", ids.get(i));
            }
        }
        for (String template : List.of("single", "pair")) {
            JsonNode pieces = processor.path(template);
            for (int i = 0; i < pieces.size(); i++) {
                JsonNode named = pieces.get(i).path("SpecialToken").path("id");
                if (!named.isMissingNode() && !special.has(named.asText())) {
                    throw new ModelFormatException(file + ": " + where + "." + template + "[" + i
                            + "] uses special token \"" + named.asText() + "\", which special_tokens does not declare");
                }
            }
        }
    }

    private static int requireId(Path file, String where, JsonNode id) {
        if (!id.canConvertToInt() || !id.isIntegralNumber() || id.asInt() < 0) {
            throw new ModelFormatException(file + ": " + where + " is not a non-negative integer id");
        }
        return id.asInt();
    }

    private static String firstLine(String message) {
        if (message == null) {
            return "(no detail)";
        }
        int newline = message.indexOf('\n');
        return (newline < 0 ? message : message.substring(0, newline)).strip();
    }
}
