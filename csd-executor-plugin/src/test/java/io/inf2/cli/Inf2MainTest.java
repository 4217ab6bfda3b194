package io.inf2.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The command line end to end: a model written by init-model, generate to JSONL and Parquet, and bad input. */
class Inf2MainTest {
    @TempDir
    static Path dir;
    static Path model;

    record Run(int status, String out, String err) {
    }

    static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Inf2Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @BeforeAll
    static void writeModel() {
        model = dir.resolve("model");
        Run r = run("init-model", "--arch", "opt", "--preset", "tiny-opt", "--seed", "7", "--out", model.toString());
        assertEquals(0, r.status(), r.err());
        assertTrue(Files.isRegularFile(model.resolve("model.safetensors")));
    }

    @Test
    void generateWritesOneRowPerPromptToJsonl() throws IOException {
        Path prompts = Files.writeString(dir.resolve("p.jsonl"), """
                {"id": "a", "prompt": "The quick brown fox", "max_new_tokens": 5}
                "Hello world"

                {"id": "c", "prompt": "", "max_new_tokens": 3}
                """);
        Path output = dir.resolve("o.jsonl");
        Run r = run("generate", "--model", model.toString(), "--prompts", prompts.toString(), "--output", output.toString(),
                "--max-new-tokens", "4", "--backend", "cpu");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.err().contains("inf2 summary: 3 sequences (1 errors)"), r.err());
        List<String> lines = Files.readAllLines(output);
        assertEquals(3, lines.size());
        ObjectMapper json = new ObjectMapper();
        JsonNode a = json.readTree(lines.get(0));
        assertEquals("a", a.get("id").asText());
        assertEquals(5, a.get("completion_token_ids").size());
        assertEquals("2", json.readTree(lines.get(1)).get("id").asText());
        assertEquals(4, json.readTree(lines.get(1)).get("completion_tokens").asInt());
        assertEquals("empty prompt", json.readTree(lines.get(2)).get("error").asText());
    }

    @Test
    void generateWritesParquetAndTheCsdTierGivesTheSameTokens() throws IOException {
        Path prompts = Files.writeString(dir.resolve("q.jsonl"), "\"Once upon a time\"\n\"Spark partitions\"\n");
        Path memory = dir.resolve("memory.jsonl");
        Path csd = dir.resolve("csd.parquet");
        assertEquals(0, run("generate", "--model", model.toString(), "--prompts", prompts.toString(), "--output",
                memory.toString(), "--max-new-tokens", "20", "--backend", "cpu").status());
        Path d0 = Files.createDirectories(dir.resolve("csd0"));
        Path d1 = Files.createDirectories(dir.resolve("csd1"));
        Run r = run("generate", "--model", model.toString(), "--prompts", prompts.toString(), "--output", csd.toString(),
                "--max-new-tokens", "20", "--backend", "cpu", "--kv-cache", "csd", "--csd", d0 + "," + d1,
                "--writeback-tokens", "4", "--xcache-fraction", "0.5");
        assertEquals(0, r.status(), r.err());
        assertTrue(Files.size(csd) > 0);
        assertTrue(r.err().contains("pages written"), r.err());
        assertTrue(r.out().contains("(2 rows)"), r.out());
    }

    @Test
    void badInputGetsOneLineNamingWhatAndWhere() throws IOException {
        Path broken = Files.writeString(dir.resolve("broken.jsonl"), "\"ok\"\n{\"prompt\": \"x\",\n");
        Path empty = Files.writeString(dir.resolve("empty.jsonl"), "\n\n");
        Path unknownField = Files.writeString(dir.resolve("field.jsonl"), "{\"prompt\": \"x\", \"temprature\": 1}\n");
        Path badValue = Files.writeString(dir.resolve("value.jsonl"), "{\"prompt\": \"x\", \"top_p\": 2}\n");
        Path valid = Files.writeString(dir.resolve("valid.jsonl"), "\"ok\"\n");
        Path twoOnALine = Files.writeString(dir.resolve("two.jsonl"), "{\"prompt\": \"a\"} {\"prompt\": \"b\"}\n");
        Path twice = Files.writeString(dir.resolve("twice.jsonl"), "{\"prompt\": \"a\", \"prompt\": \"b\"}\n");
        Path objectId = Files.writeString(dir.resolve("id.jsonl"), "{\"id\": {\"k\": 1}, \"prompt\": \"a\"}\n");
        Path hugeStop = Files.writeString(dir.resolve("stop.jsonl"), "{\"prompt\": \"a\", \"stop_token_ids\": [4294967298]}\n");
        Path out = dir.resolve("never.jsonl");
        for (Path p : List.of(twoOnALine, twice)) {
            assertError(run("generate", "--model", model.toString(), "--prompts", p.toString(), "--output", out.toString()),
                    p + ":1: not valid JSON (line 1 column ");
        }
        assertError(run("generate", "--model", model.toString(), "--prompts", objectId.toString(), "--output", out.toString()),
                objectId + ":1: \"id\" must be a string or an integer");
        assertError(run("generate", "--model", model.toString(), "--prompts", hugeStop.toString(), "--output", out.toString()),
                hugeStop + ":1: \"stop_token_ids\" must hold non-negative integers");
        assertError(run("generate", "--model", model.toString(), "--prompts", broken.toString(), "--output", out.toString()),
                broken + ":2: not valid JSON");
        assertError(run("generate", "--model", model.toString(), "--prompts", empty.toString(), "--output", out.toString()),
                empty + ": no prompts");
        assertError(run("generate", "--model", model.toString(), "--prompts", unknownField.toString(), "--output", out.toString()),
                unknownField + ":1: unknown field \"temprature\"");
        assertError(run("generate", "--model", model.toString(), "--prompts", badValue.toString(), "--output", out.toString()),
                badValue + ":1: topP must be in (0, 1]");
        assertError(run("generate", "--model", dir.resolve("nowhere").toString(), "--prompts", valid.toString(), "--output",
                out.toString()), dir.resolve("nowhere").resolve("config.json") + ": missing");
        assertError(run("generate", "--modle", "x"), "unknown option --modle (did you mean --model?)");
        assertError(run("generate", "--model", model.toString(), "--prompts", broken.toString(), "--output", "x.csv"),
                "--output=\"x.csv\": must be a path ending in .jsonl or .parquet");
        assertError(run("generate", "--model", model.toString(), "--prompts", broken.toString(), "--output",
                out.toString(), "--kv-cache", "csd"), "kvCache=csd needs at least one device directory");
        assertError(run("init-model", "--arch", "llama", "--preset", "tiny-opt", "--out", dir.resolve("x").toString()),
                "--arch llama does not match preset tiny-opt, which is opt");
        assertError(run("init-model", "--preset", "opt-7b", "--out", dir.resolve("y").toString()), "opt-7b");
        assertError(run("launch"), "unknown command \"launch\"");
        assertTrue(Files.notExists(out));
    }

    private static void assertError(Run r, String expected) {
        assertEquals(2, r.status(), r.err());
        String line = r.err().strip();
        assertEquals(1, line.lines().count(), "one line: " + line);
        assertTrue(line.contains(expected), "expected \"" + expected + "\" in: " + line);
    }
}
