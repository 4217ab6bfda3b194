package io.inf2.model.tokenizer;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BpeTrainerTest {

    private static final String S = "\u2581";

    @Test
    void mergesMostFrequentPairWithTiesToSmallerIds() {
        BpeTrainer.Vocabulary vocabulary = BpeTrainer.train("ab ab ab abc abc", 100, 2);
        // a, b and ▁ occur 5 times each (ordered by code point), c twice.
        assertEquals(List.of("a", "b", S, "c"), vocabulary.alphabet());
        // (▁,a) and (a,b) both count 5; (a,b) wins on the smaller left id.
        assertEquals(List.of(new BpeTrainer.Merge("a", "b"), new BpeTrainer.Merge(S, "ab"), new BpeTrainer.Merge(S + "ab", "c")),
                vocabulary.merges());
        assertEquals(List.of("a", "b", S, "c", "ab", S + "ab", S + "abc"), vocabulary.tokens());
    }

    @Test
    void stopsAtTheBudget() {
        BpeTrainer.Vocabulary vocabulary = BpeTrainer.train("ab ab ab abc abc", 5, 2);
        assertEquals(List.of("a", "b", S, "c", "ab"), vocabulary.tokens());
    }

    @Test
    void piecesFollowSpacesDigitsScriptsAndControls() {
        Map<String, Integer> pieces = BpeTrainer.countPieces("say   hi 2024 (ok)\u0007abcабв");
        assertEquals(Map.of(
                S + "say", 1, S + S, 1, S + "hi", 1, S, 1, "2", 2, "0", 1, "4", 1,
                S + "(", 1, "ok", 1, ")", 1), Map.copyOf(withoutLast(pieces, "abc", "абв")));
        assertEquals(1, pieces.get("abc"));
        assertEquals(1, pieces.get("абв"));
        // Combining marks stay with their letter; Han and kana form one run.
        assertEquals(1, BpeTrainer.countPieces("e\u0301t\u00e9").get(S + "e\u0301t\u00e9"));
        assertEquals(1, BpeTrainer.countPieces("日本語のテキスト").get(S + "日本語のテキスト"));
    }

    @Test
    void neverMergesDigitsOrAcrossScriptsAndRespectsTheLengthLimit() {
        String corpus = ("2024 1999 abcабв " + "x".repeat(40) + " ").repeat(50);
        BpeTrainer.Vocabulary vocabulary = BpeTrainer.train(corpus, 1000, 2);
        for (String token : vocabulary.tokens()) {
            assertFalse(token.codePoints().anyMatch(Character::isDigit) && token.length() > 1, token);
            boolean latin = token.chars().anyMatch(c -> c >= 'a' && c <= 'z');
            boolean cyrillic = token.chars().anyMatch(c -> c >= 'а' && c <= 'я');
            assertFalse(latin && cyrillic, token);
            assertTrue(token.codePointCount(0, token.length()) <= BpeTrainer.MAX_TOKEN_LENGTH, token);
        }
        assertTrue(vocabulary.tokens().contains(S + "abc"));
        assertTrue(vocabulary.tokens().contains("абв"));
    }

    @Test
    void controlCharactersAndRareCharactersStayOutOfTheAlphabet() {
        BpeTrainer.Vocabulary vocabulary = BpeTrainer.train("aa\taa\u0000aa z", 100, 2);
        assertFalse(vocabulary.alphabet().contains("\t"));
        assertFalse(vocabulary.alphabet().contains("\u0000"));
        assertFalse(vocabulary.alphabet().contains("z"));
        assertTrue(vocabulary.alphabet().contains("a"));
    }

    @Test
    void sameCorpusInAnyLineOrderGivesTheSameVocabulary() throws IOException {
        String corpus = bundledCorpus();
        List<String> lines = new ArrayList<>(Arrays.asList(corpus.split("\n", -1)));
        Collections.reverse(lines);
        BpeTrainer.Vocabulary first = BpeTrainer.train(corpus, 3000, 2);
        BpeTrainer.Vocabulary again = BpeTrainer.train(corpus, 3000, 2);
        BpeTrainer.Vocabulary reversed = BpeTrainer.train(String.join("\n", lines), 3000, 2);
        assertEquals(first, again);
        assertEquals(first, reversed);
        assertEquals(3000, first.tokens().size());
    }

    @Test
    void rejectsNonPositiveParameters() {
        assertThrows(IllegalArgumentException.class, () -> BpeTrainer.train("a", 0, 1));
        assertThrows(IllegalArgumentException.class, () -> BpeTrainer.train("a", 10, 0));
    }

    private static Map<String, Integer> withoutLast(Map<String, Integer> pieces, String... drop) {
        var copy = new java.util.HashMap<>(pieces);
        for (String piece : drop) {
            copy.remove(piece);
        }
        return copy;
    }

    private static String bundledCorpus() throws IOException {
        try (InputStream in = TokenizerJsonWriter.class.getResourceAsStream(TokenizerJsonWriter.LLAMA2_CORPUS)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
