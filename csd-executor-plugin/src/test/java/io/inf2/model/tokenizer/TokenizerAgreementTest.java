package io.inf2.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Our tokenizers, run through {@link HfTokenizer} (DJL's binding of Hugging Face tokenizers), against fixtures that
 * Hugging Face's Python {@code tokenizers} produced from the same tokenizer.json and corpus
 * ({@code tools/reference/tokenizer_fixtures.py}).
 */
class TokenizerAgreementTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String REGENERATE = "write the tokenizers with 'java -cp \"csd-executor-plugin/target/"
            + "csd-executor-plugin.jar:csd-executor-plugin/target/lib/*\" io.inf2.model.tokenizer.TokenizerJsonWriter "
            + "/tmp/inf2-tokenizers', then run 'python3 tools/reference/tokenizer_fixtures.py --tokenizers "
            + "/tmp/inf2-tokenizers --corpus csd-executor-plugin/src/test/resources/tokenizer/corpus.jsonl --out "
            + "csd-executor-plugin/src/test/resources/fixtures/tokenizer' where Python has the tokenizers package";

    @ParameterizedTest
    @EnumSource(TokenizerStyle.class)
    void matchesHuggingFaceReference(TokenizerStyle style, @TempDir Path dir) throws IOException {
        String name = style.name().toLowerCase(Locale.ROOT);
        String fixturePath = "csd-executor-plugin/src/test/resources/fixtures/tokenizer/" + name + ".json";
        JsonNode fixture;
        try (InputStream in = getClass().getResourceAsStream("/fixtures/tokenizer/" + name + ".json")) {
            Assumptions.assumeTrue(in != null, "Missing reference fixture " + fixturePath + "; to generate it, " + REGENERATE);
            fixture = JSON.readTree(in);
        }
        TokenizerJsonWriter.write(dir, style);
        assertEquals(fixture.path("corpus_sha256").asText(), sha256(TokenizerTestCorpus.bytes()),
                fixturePath + " was made from another corpus.jsonl; regenerate it: " + REGENERATE);
        assertEquals(fixture.path("tokenizer_json_sha256").asText(), sha256(Files.readAllBytes(dir.resolve("tokenizer.json"))),
                fixturePath + " was made from another " + name + " tokenizer.json; regenerate it: " + REGENERATE);

        List<String> texts = TokenizerTestCorpus.texts();
        JsonNode cases = fixture.path("cases");
        assertEquals(texts.size(), cases.size(), "cases in " + fixturePath);
        var disagreements = new ArrayList<String>();
        try (HfTokenizer tokenizer = HfTokenizer.load(dir)) {
            for (int i = 0; i < texts.size(); i++) {
                JsonNode expected = cases.get(i);
                String text = texts.get(i);
                int[] ids = tokenizer.encode(text, true);
                int[] idsWithout = tokenizer.encode(text, false);
                check(disagreements, i, "ids", ints(expected.path("ids")), ids);
                check(disagreements, i, "ids without special tokens", ints(expected.path("ids_without_special_tokens")), idsWithout);
                check(disagreements, i, "decoded", expected.path("decoded").asText(), tokenizer.decode(idsWithout, true));
                check(disagreements, i, "decoded with special tokens",
                        expected.path("decoded_with_special_tokens").asText(), tokenizer.decode(ids, false));
            }
        }
        assertTrue(disagreements.isEmpty(), disagreements.size() + " disagreements with " + fixturePath
                + " (tokenizers " + fixture.path("tokenizers_version").asText() + "), first ones:\n"
                + String.join("\n", disagreements.subList(0, Math.min(10, disagreements.size()))));
    }

    private static void check(List<String> disagreements, int index, String what, Object expected, Object actual) {
        boolean same = expected instanceof int[] e ? Arrays.equals(e, (int[]) actual) : expected.equals(actual);
        if (!same) {
            disagreements.add("corpus line " + (index + 1) + ", " + what + ": expected " + show(expected) + " but got " + show(actual));
        }
    }

    private static String show(Object value) {
        String text = value instanceof int[] ids ? Arrays.toString(ids) : "\"" + value + "\"";
        return text.length() > 200 ? text.substring(0, 200) + "..." : text;
    }

    private static int[] ints(JsonNode array) {
        var ids = new int[array.size()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = array.get(i).intValue();
        }
        return ids;
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
