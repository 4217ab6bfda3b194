package io.inf2.model.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** The shared test corpus, {@code tokenizer/corpus.jsonl}: one JSON string per line. */
final class TokenizerTestCorpus {

    static final String RESOURCE = "/tokenizer/corpus.jsonl";
    private static final ObjectMapper JSON = new ObjectMapper();

    private TokenizerTestCorpus() {
    }

    static byte[] bytes() {
        try (InputStream in = TokenizerTestCorpus.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("Test resource " + RESOURCE + " is missing");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The decoded strings, in line order; some hold lone surrogates on purpose. */
    static List<String> texts() {
        var texts = new ArrayList<String>();
        String[] lines = new String(bytes(), StandardCharsets.UTF_8).split("\n");
        for (int i = 0; i < lines.length; i++) {
            try {
                texts.add(JSON.readValue(lines[i], String.class));
            } catch (IOException e) {
                throw new IllegalStateException(RESOURCE + " line " + (i + 1) + ": " + e.getMessage(), e);
            }
        }
        return texts;
    }

    /** Texts that are valid Unicode and spell none of the given special tokens: those must round-trip exactly. */
    static List<String> plainTexts(List<String> specialTokens) {
        return texts().stream()
                .filter(text -> HfTokenizer.replaceLoneSurrogates(text).equals(text))
                .filter(text -> specialTokens.stream().noneMatch(text::contains))
                .toList();
    }
}
