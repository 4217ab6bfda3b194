package io.inf2.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.EncodingType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TokenizerJsonWriterTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> SPECIAL_TEXT = List.of("<s>", "</s>", "<pad>", "<unk>", "<|");

    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(TokenizerStyle.class)
    void buildingTwiceGivesByteIdenticalFiles(TokenizerStyle style) {
        TokenizerJsonWriter.BuiltFiles first = TokenizerJsonWriter.build(style);
        TokenizerJsonWriter.BuiltFiles second = TokenizerJsonWriter.build(style);
        assertArrayEquals(first.tokenizerJson(), second.tokenizerJson(), "tokenizer.json of " + style);
        assertArrayEquals(first.tokenizerConfigJson(), second.tokenizerConfigJson(), "tokenizer_config.json of " + style);
        assertEquals(first.ids(), second.ids());
    }

    @Test
    void gpt2KeepsGpt2IdsShiftedPastOptSpecials() {
        WrittenTokenizer ids = TokenizerJsonWriter.write(dir, TokenizerStyle.GPT2);
        assertEquals(new WrittenTokenizer(50_260, 2, 2, 1), ids);
        try (HfTokenizer tokenizer = HfTokenizer.load(dir)) {
            // GPT-2: "Hello" = 15496, " world" = 995, "." = 13; the layout adds 4.
            assertArrayEquals(new int[] {15_500}, tokenizer.encode("Hello", false));
            assertArrayEquals(new int[] {999}, tokenizer.encode(" world", false));
            assertArrayEquals(new int[] {2, 15_500, 999, 17}, tokenizer.encode("Hello world.", true));
            assertAll(
                    () -> assertEquals(0, tokenizer.tokenId("<s>")),
                    () -> assertEquals(1, tokenizer.tokenId("<pad>")),
                    () -> assertEquals(2, tokenizer.tokenId("</s>")),
                    () -> assertEquals(3, tokenizer.tokenId("<unk>")),
                    () -> assertEquals(15_500, tokenizer.tokenId("Hello")),
                    () -> assertEquals(999, tokenizer.tokenId("\u0120world")));
        }
    }

    @ParameterizedTest
    @EnumSource(value = TokenizerStyle.class, names = {"GPT2", "LLAMA3"})
    void byteLevelStylesEncodeAsTiktokenDoes(TokenizerStyle style) {
        // jtokkit is an independent tiktoken implementation over the same rank files.
        Encoding tiktoken = Encodings.newDefaultEncodingRegistry()
                .getEncoding(style == TokenizerStyle.GPT2 ? EncodingType.R50K_BASE : EncodingType.CL100K_BASE);
        int offset = style == TokenizerStyle.GPT2 ? TokenizerJsonWriter.GPT2_SPECIALS : 0;
        TokenizerJsonWriter.write(dir, style);
        try (HfTokenizer tokenizer = HfTokenizer.load(dir)) {
            for (String text : TokenizerTestCorpus.plainTexts(SPECIAL_TEXT)) {
                int[] expected = Arrays.stream(tiktoken.encodeOrdinary(text).toArray()).map(id -> id + offset).toArray();
                assertArrayEquals(expected, tokenizer.encode(text, false), () -> style + " on " + abbreviate(text));
            }
        }
    }

    @ParameterizedTest
    @EnumSource(TokenizerStyle.class)
    void validTextRoundTrips(TokenizerStyle style) {
        TokenizerJsonWriter.write(dir, style);
        try (HfTokenizer tokenizer = HfTokenizer.load(dir)) {
            List<String> texts = TokenizerTestCorpus.plainTexts(SPECIAL_TEXT);
            assertTrue(texts.size() > 40, "the corpus should offer many plain texts, got " + texts.size());
            for (String text : texts) {
                assertEquals(text, tokenizer.decode(tokenizer.encode(text, false), true), () -> style + ": " + abbreviate(text));
                assertEquals(text, tokenizer.decode(tokenizer.encode(text, true), true), () -> style + " with BOS: " + abbreviate(text));
            }
        }
    }

    @ParameterizedTest
    @EnumSource(TokenizerStyle.class)
    void bosEosAndPadAgreeWithConfigAndEncoding(TokenizerStyle style) throws IOException {
        WrittenTokenizer ids = TokenizerJsonWriter.write(dir, style);
        JsonNode config = JSON.readTree(dir.resolve("tokenizer_config.json").toFile());
        try (HfTokenizer tokenizer = HfTokenizer.load(dir)) {
            assertEquals(ids.vocabSize(), tokenizer.vocabSize());
            assertEquals(ids.bosId(), tokenizer.tokenId(config.get("bos_token").asText()));
            assertEquals(ids.eosId(), tokenizer.tokenId(config.get("eos_token").asText()));
            if (ids.padId() < 0) {
                assertTrue(config.get("pad_token").isNull());
            } else {
                assertEquals(ids.padId(), tokenizer.tokenId(config.get("pad_token").asText()));
            }
            assertTrue(config.get("add_bos_token").asBoolean());
            assertTrue(config.get("model_max_length").asInt() >= 2048);

            assertArrayEquals(new int[] {ids.bosId()}, tokenizer.encode("", true));
            assertArrayEquals(new int[0], tokenizer.encode("", false));
            int[] with = tokenizer.encode("Hello world", true);
            int[] without = tokenizer.encode("Hello world", false);
            assertEquals(ids.bosId(), with[0]);
            assertArrayEquals(without, Arrays.copyOfRange(with, 1, with.length));
            assertNotEquals(ids.bosId(), without[0]);
            String eos = config.get("eos_token").asText();
            assertEquals(eos, tokenizer.decode(new int[] {ids.eosId()}, false));
            assertEquals("", tokenizer.decode(new int[] {ids.eosId()}, true));
        }
    }

    @Test
    void llama3HasLlama3SpecialsAndChatTemplate() throws IOException {
        WrittenTokenizer ids = TokenizerJsonWriter.write(dir, TokenizerStyle.LLAMA3);
        assertEquals(new WrittenTokenizer(100_512, 100_256, 100_265, -1), ids);
        JsonNode config = JSON.readTree(dir.resolve("tokenizer_config.json").toFile());
        String template = config.get("chat_template").asText();
        assertTrue(template.contains("<|start_header_id|>") && template.contains("<|eot_id|>") && template.contains("bos_token"),
                template);
        try (HfTokenizer tokenizer = HfTokenizer.load(dir)) {
            assertAll(
                    () -> assertEquals(100_256, tokenizer.tokenId("<|begin_of_text|>")),
                    () -> assertEquals(100_257, tokenizer.tokenId("<|end_of_text|>")),
                    () -> assertEquals(100_262, tokenizer.tokenId("<|start_header_id|>")),
                    () -> assertEquals(100_263, tokenizer.tokenId("<|end_header_id|>")),
                    () -> assertEquals(100_265, tokenizer.tokenId("<|eot_id|>")),
                    () -> assertEquals(100_511, tokenizer.tokenId("<|reserved_special_token_247|>")));
            int[] header = tokenizer.encode("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", true);
            assertEquals(100_256, header[0]);
            assertEquals(100_262, header[1]);
            assertEquals(100_265, header[header.length - 1]);
            // cl100k's split pattern keeps at most three digits together.
            assertEquals(2, tokenizer.encode("123456", false).length);
        }
    }

    @Test
    void llama2HasSentencePieceLayoutWithByteFallback() throws IOException {
        WrittenTokenizer ids = TokenizerJsonWriter.write(dir, TokenizerStyle.LLAMA2);
        assertEquals(1, ids.bosId());
        assertEquals(2, ids.eosId());
        assertEquals(-1, ids.padId());
        assertTrue(ids.vocabSize() > 3000 && ids.vocabSize() <= TokenizerJsonWriter.LLAMA2_VOCAB_TARGET, "vocab " + ids.vocabSize());
        JsonNode model = JSON.readTree(dir.resolve("tokenizer.json").toFile()).get("model");
        assertTrue(model.get("byte_fallback").asBoolean());
        try (HfTokenizer tokenizer = HfTokenizer.load(dir)) {
            assertAll(
                    () -> assertEquals(0, tokenizer.tokenId("<unk>")),
                    () -> assertEquals(1, tokenizer.tokenId("<s>")),
                    () -> assertEquals(2, tokenizer.tokenId("</s>")),
                    () -> assertEquals(3, tokenizer.tokenId("<0x00>")),
                    () -> assertEquals(3 + 0x0A, tokenizer.tokenId("<0x0A>")),
                    () -> assertEquals(258, tokenizer.tokenId("<0xFF>")));
            int metaspace = tokenizer.tokenId("\u2581");
            assertTrue(metaspace > 258);
            // A character the corpus never shows falls back to its UTF-8 bytes.
            byte[] clef = "\uD834\uDD1E".getBytes(StandardCharsets.UTF_8);
            int[] expected = {metaspace, 3 + (clef[0] & 0xFF), 3 + (clef[1] & 0xFF), 3 + (clef[2] & 0xFF), 3 + (clef[3] & 0xFF)};
            assertArrayEquals(expected, tokenizer.encode("\uD834\uDD1E", false));
            assertArrayEquals(new int[] {metaspace, 3 + '\n'}, tokenizer.encode("\n", false));
            // Digits are single tokens, as in LLaMA-2.
            int[] year = tokenizer.encode("2024", false);
            assertEquals(5, year.length);
            assertEquals("2", tokenizer.decode(new int[] {year[1]}, true));
            // Frequent corpus words become single tokens.
            assertEquals(1, tokenizer.encode("the", false).length);
            assertTrue(tokenizer.tokenId("\u2581human") > 258);
        }
    }

    @Test
    void mainWritesOneFolderPerStyle() {
        TokenizerJsonWriter.main(new String[] {dir.toString()});
        for (TokenizerStyle style : TokenizerStyle.values()) {
            Path styleDir = dir.resolve(style.name().toLowerCase(Locale.ROOT));
            assertTrue(Files.isRegularFile(styleDir.resolve("tokenizer.json")), styleDir.toString());
            assertTrue(Files.isRegularFile(styleDir.resolve("tokenizer_config.json")), styleDir.toString());
            try (HfTokenizer tokenizer = HfTokenizer.load(styleDir)) {
                assertFalse(tokenizer.encode("loads", false).length == 0);
            }
        }
    }

    private static String abbreviate(String text) {
        return text.length() > 80 ? text.substring(0, 80) + "..." : text;
    }
}
