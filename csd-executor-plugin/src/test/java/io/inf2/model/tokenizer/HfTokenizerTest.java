package io.inf2.model.tokenizer;

import io.inf2.model.ModelFormatException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HfTokenizerTest {

    @TempDir
    static Path gpt2Dir;

    @TempDir
    Path dir;

    @BeforeAll
    static void writeTokenizer() {
        TokenizerJsonWriter.write(gpt2Dir, TokenizerStyle.GPT2);
    }

    @Test
    void missingTokenizerJsonIsAOneLineErrorNamingTheFile() {
        var e = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(dir));
        assertEquals("Missing tokenizer file " + dir.resolve("tokenizer.json"), e.getMessage());
    }

    @Test
    void malformedJsonNamesFileAndLine() throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), "{\n  \"version\": \"1.0\",\n  \"model\": {\"vocab\": ]\n}");
        var e = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(dir));
        assertOneLine(e);
        assertTrue(e.getMessage().startsWith(dir.resolve("tokenizer.json") + ": not valid JSON at line 3"), e.getMessage());
    }

    @Test
    void jsonThatHuggingFaceRejectsNamesTheFile() throws IOException {
        // Valid JSON with a vocabulary, but the merge refers to a token the vocabulary lacks.
        Files.writeString(dir.resolve("tokenizer.json"), """
                {"version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": null,
                 "post_processor": null, "decoder": null,
                 "model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}
                """);
        var e = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(dir));
        assertOneLine(e);
        assertTrue(e.getMessage().startsWith(dir.resolve("tokenizer.json") + ": Hugging Face tokenizers cannot load it: "),
                e.getMessage());
    }

    /** A minimal BPE tokenizer.json with {@code postProcessor} (JSON) as its post_processor. */
    private void writeWithPostProcessor(String postProcessor) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), """
                {"version": "1.0", "added_tokens": [{"id": 2, "content": "</s>", "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true}],
                 "normalizer": null, "pre_tokenizer": null, "decoder": null,
                 "post_processor": %s,
                 "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "</s>": 2}, "merges": []}}
                """.formatted(postProcessor));
    }

    @Test
    void postProcessorsThatWouldPanicInsideTokenizersAreRefusedAtLoad() throws IOException {
        // Hugging Face tokenizers accepts these files and panics at the first encode, which aborts the JVM.
        writeWithPostProcessor("""
                {"type": "Sequence", "processors": [{"type": "TemplateProcessing",
                  "single": [{"SpecialToken": {"id": "<zz>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                  "pair": [], "special_tokens": {"</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}}]}""");
        var undeclared = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(dir));
        assertEquals(dir.resolve("tokenizer.json") + ": post_processor.processors[0].single[0] uses special token \"<zz>\", "
                + "which special_tokens does not declare", undeclared.getMessage());
        writeWithPostProcessor("""
                {"type": "TemplateProcessing", "single": [], "pair": [],
                 "special_tokens": {"</s>": {"id": "</s>", "ids": [4000000000], "tokens": ["</s>"]}}}""");
        var huge = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(dir));
        assertEquals(dir.resolve("tokenizer.json") + ": post_processor.special_tokens.</s>.ids[0] is not a non-negative integer id",
                huge.getMessage());
        writeWithPostProcessor("{\"type\": \"RobertaProcessing\", \"sep\": [\"</s>\", -2], \"cls\": [\"</s>\", 2]}");
        var negative = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(dir));
        assertEquals(dir.resolve("tokenizer.json") + ": post_processor.sep[1] is not a non-negative integer id", negative.getMessage());
        writeWithPostProcessor("""
                {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "</s>", "type_id": 0}},
                  {"Sequence": {"id": "A", "type_id": 0}}], "pair": [],
                 "special_tokens": {"</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}}""");
        try (HfTokenizer ok = HfTokenizer.load(dir)) {
            assertEquals(2, ok.encode("a", true)[0]);
        }
    }

    @Test
    void malformedStructuresAndDeepNestingAreOneLineErrors() throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), """
                {"added_tokens": {"x": {"id": 1, "content": "x"}}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}""");
        var added = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(dir));
        assertEquals(dir.resolve("tokenizer.json") + ": added_tokens must be an array", added.getMessage());
        Files.writeString(dir.resolve("tokenizer.json"), "[".repeat(5000) + "]".repeat(5000));
        var deep = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(dir));
        assertOneLine(deep);
        assertTrue(deep.getMessage().startsWith(dir.resolve("tokenizer.json") + ": not valid JSON at "), deep.getMessage());
    }

    @Test
    void missingVocabularyIsReported() throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {\"type\": \"BPE\"}}");
        var e = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(dir));
        assertEquals(dir.resolve("tokenizer.json") + ": model.vocab is missing or neither an object nor an array", e.getMessage());
    }

    @Test
    void loneSurrogatesAreEncodedAsReplacementCharacters() {
        try (HfTokenizer tokenizer = HfTokenizer.load(gpt2Dir)) {
            assertArrayEquals(tokenizer.encode("a\uFFFDb", false), tokenizer.encode("a\uD800b", false));
            assertArrayEquals(tokenizer.encode("\uFFFD\uFFFD", false), tokenizer.encode("\uDE00\uD83D", false));
            // Without the replacement DJL would pass the surrogate's 3-byte modified-UTF-8 form: three U+FFFD back.
            assertEquals("\uFFFD", tokenizer.decode(tokenizer.encode("\uD800", false), true));
            assertEquals("x\uD83D\uDE00y", tokenizer.decode(tokenizer.encode("x\uD83D\uDE00y", false), true));
        }
    }

    @Test
    void replaceLoneSurrogatesKeepsPairsAndReplacesTheRest() {
        String valid = "ok \uD83D\uDE00 done";
        assertSame(valid, HfTokenizer.replaceLoneSurrogates(valid));
        assertEquals("\uFFFD", HfTokenizer.replaceLoneSurrogates("\uDBFF"));
        assertEquals("a\uFFFD\uFFFDb", HfTokenizer.replaceLoneSurrogates("a\uDE00\uD83Db"));
        assertEquals("\uD83D\uDE00\uFFFD", HfTokenizer.replaceLoneSurrogates("\uD83D\uDE00\uD83D"));
    }

    @Test
    void neverTruncatesOrPads() {
        String text = "lorem ipsum dolor sit amet ".repeat(400);
        try (HfTokenizer tokenizer = HfTokenizer.load(gpt2Dir)) {
            int[] ids = tokenizer.encode(text, true);
            assertTrue(ids.length > 2000, "expected far more than DJL's default 512 tokens, got " + ids.length);
            assertEquals(text, tokenizer.decode(ids, true));
            assertEquals(2, tokenizer.encode("Hi", true).length);
        }
    }

    @Test
    void concurrentCallsGiveTheSequentialResults() throws Exception {
        List<String> texts = TokenizerTestCorpus.texts();
        try (HfTokenizer tokenizer = HfTokenizer.load(gpt2Dir)) {
            var expectedIds = new ArrayList<int[]>();
            var expectedText = new ArrayList<String>();
            for (String text : texts) {
                int[] ids = tokenizer.encode(text, true);
                expectedIds.add(ids);
                expectedText.add(tokenizer.decode(ids, true));
            }
            ExecutorService pool = Executors.newFixedThreadPool(8);
            try {
                var results = new ArrayList<Future<Integer>>();
                for (int t = 0; t < 8; t++) {
                    int offset = t;
                    results.add(pool.submit(() -> {
                        int checked = 0;
                        for (int round = 0; round < 5; round++) {
                            for (int i = 0; i < texts.size(); i++) {
                                int k = (i + offset * 7) % texts.size();
                                int[] ids = tokenizer.encode(texts.get(k), true);
                                assertArrayEquals(expectedIds.get(k), ids, "line " + (k + 1));
                                assertEquals(expectedText.get(k), tokenizer.decode(ids, true), "line " + (k + 1));
                                checked++;
                            }
                        }
                        return checked;
                    }));
                }
                for (Future<Integer> result : results) {
                    assertEquals(5 * texts.size(), result.get());
                }
            } finally {
                pool.shutdownNow();
            }
        }
    }

    @Test
    void decodeSkipsIdsBeyondTheVocabularyAndRejectsNegativeOnes() {
        try (HfTokenizer tokenizer = HfTokenizer.load(gpt2Dir)) {
            assertEquals(tokenizer.decode(new int[] {5, 6}, true), tokenizer.decode(new int[] {5, 50_260, 6}, true));
            assertThrows(IllegalArgumentException.class, () -> tokenizer.decode(new int[] {-1}, false));
        }
    }

    @Test
    void tokenIdOfAnUnknownTokenIsMinusOne() {
        try (HfTokenizer tokenizer = HfTokenizer.load(gpt2Dir)) {
            assertEquals(-1, tokenizer.tokenId("no such token"));
            assertEquals(50_260, tokenizer.vocabSize());
        }
    }

    @Test
    void closedTokenizerRefusesWork() {
        HfTokenizer tokenizer = HfTokenizer.load(gpt2Dir);
        tokenizer.close();
        tokenizer.close();
        var e = assertThrows(IllegalStateException.class, () -> tokenizer.encode("x", false));
        assertTrue(e.getMessage().endsWith("is closed"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> tokenizer.decode(new int[] {5}, false));
    }

    private static void assertOneLine(Exception e) {
        assertFalse(e.getMessage().contains("\n"), "message spans lines: " + e.getMessage());
    }
}
