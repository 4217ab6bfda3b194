package io.inf2.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** config.json and generation_config.json values that are corrupt are refused, naming the file and key, not coerced. */
class ModelConfigTest {

    private static final String LLAMA = "{\"model_type\":\"llama\",\"vocab_size\":89,\"hidden_size\":32,\"num_hidden_layers\":2,"
            + "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":48,"
            + "\"max_position_embeddings\":40,\"eos_token_id\":2,\"rms_norm_eps\":1e-5}";

    @TempDir
    Path dir;

    private String loadFails(String config) throws IOException {
        Files.writeString(dir.resolve("config.json"), config);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelConfig.load(dir));
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        return e.getMessage();
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "\"num_attention_heads\":4.9        | \"num_attention_heads\" must be an integer, got 4.9",
        "\"max_position_embeddings\":1000000000000 | \"max_position_embeddings\" must be an integer, got 1000000000000",
        "\"num_key_value_heads\":\"2\"      | \"num_key_value_heads\" must be an integer, got \"2\"",
        "\"num_attention_heads\":0          | hidden_size and num_attention_heads must be positive",
        "\"rms_norm_eps\":-1                | rms_norm_eps must be positive, got -1.0",
        "\"rms_norm_eps\":\"abc\"           | \"rms_norm_eps\" must be a finite number, got \"abc\"",
        "\"rope_theta\":0                   | rope_theta must be positive, got 0.0",
        "\"tie_word_embeddings\":\"yes\"    | \"tie_word_embeddings\" must be true or false, got \"yes\"",
        "\"hidden_act\":7                   | \"hidden_act\" must be a string, got 7",
        "\"eos_token_id\":\"abc\"           | \"eos_token_id\" must be an integer, got \"abc\"",
        "\"eos_token_id\":[2,89]            | \"eos_token_id\" 89 is outside the vocabulary of 89",
        "\"hidden_size\":30                 | hidden_size 30 is not divisible by num_attention_heads 4 (and no head_dim is given)",
    })
    void corruptValuesAreRefusedNamingTheKey(String replacement, String message) throws IOException {
        String key = replacement.substring(0, replacement.indexOf(':'));
        String config = LLAMA.contains(key) ? LLAMA.replaceFirst(java.util.regex.Pattern.quote(key) + ":[^,}]+", replacement.replace("$", "\\$"))
                : LLAMA.replace("}", "," + replacement + "}");
        assertEquals(dir.resolve("config.json") + ": " + message, loadFails(config));
    }

    @Test
    void aKeyGivenTwiceOrTextAfterTheObjectIsNotValidJson() throws IOException {
        String twice = loadFails(LLAMA.replace("}", ",\"num_hidden_layers\":3}"));
        assertTrue(twice.startsWith(dir.resolve("config.json") + ": not valid JSON at line 1 column "), twice);
        assertTrue(twice.contains("Duplicate field 'num_hidden_layers'"), twice);
        String trailing = loadFails(LLAMA + " garbage");
        assertTrue(trailing.startsWith(dir.resolve("config.json") + ": not valid JSON at line 1 column "), trailing);
    }

    @Test
    void generationConfigProblemsNameThatFile() throws IOException {
        Files.writeString(dir.resolve("config.json"), LLAMA);
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\":[2,\"x\"]}");
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelConfig.load(dir));
        assertEquals(dir.resolve("generation_config.json") + ": \"eos_token_id\" must be an integer, got \"x\"", e.getMessage());
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\":[2,5],\"bos_token_id\":1}");
        ModelConfig c = ModelConfig.load(dir);
        assertEquals(List.of(2, 5), c.eosTokenIds());
        assertEquals(1, c.bosTokenId());
    }
}
