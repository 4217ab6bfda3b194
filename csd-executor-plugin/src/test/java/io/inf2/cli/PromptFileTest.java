package io.inf2.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.inf2.engine.GenerationRequest;
import io.inf2.engine.SamplingParams;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reading a prompts file: where its errors are reported, and the seeds its requests sample with. */
class PromptFileTest {
    @TempDir
    Path dir;

    @Test
    void textThatIsNotUtf8IsReportedAtItsLineWhereverItIs() throws IOException {
        SamplingParams defaults = SamplingParams.greedy(4);
        StringBuilder lines = new StringBuilder();
        for (int i = 0; i < 3000; i++) {
            lines.append("{\"id\": \"p").append(i).append("\", \"prompt\": \"a prompt long enough to fill the reader's buffers\"}\n");
        }
        byte[] good = lines.toString().getBytes(StandardCharsets.UTF_8);
        byte[] bad = "\"caf\u00e9 latin-1\"\n".getBytes(StandardCharsets.ISO_8859_1);
        Path file = dir.resolve("latin1.jsonl");
        Files.write(file, concat(good, bad, "\"after\"\n".getBytes(StandardCharsets.UTF_8)));
        CliException e = assertThrows(CliException.class, () -> PromptFile.read(file, defaults));
        assertEquals(file + ":3001: not UTF-8 text", e.getMessage());
        Path crlf = Files.writeString(dir.resolve("crlf.jsonl"), "{\"id\": \"a\", \"prompt\": \"x\"}\r\n\r\n\"y\"\r\n\"z\"");
        List<GenerationRequest> read = PromptFile.read(crlf, defaults);
        assertEquals(List.of("x", "y", "z"), read.stream().map(GenerationRequest::prompt).toList());
        assertEquals(List.of("a", "3", "4"), read.stream().map(GenerationRequest::id).toList());
    }

    private static byte[] concat(byte[]... parts) {
        java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();
        for (byte[] p : parts) {
            all.writeBytes(p);
        }
        return all.toByteArray();
    }

    @Test
    void requestsWithoutASeedGetOneFromTheJobSeedAndTheirId() throws IOException {
        Path file = Files.writeString(dir.resolve("prompts.jsonl"), String.join("\n",
                "{\"id\": \"a\", \"prompt\": \"same\"}",
                "{\"id\": \"b\", \"prompt\": \"same\"}",
                "{\"id\": \"c\", \"prompt\": \"same\", \"seed\": 5}",
                "\"a plain string line\""));
        SamplingParams defaults = new SamplingParams(8, 1.0, 0, 1, 1, 42, List.of());
        List<GenerationRequest> requests = PromptFile.read(file, defaults);
        assertEquals(SamplingParams.seedFor(42, "a"), requests.get(0).params().seed());
        assertEquals(SamplingParams.seedFor(42, "b"), requests.get(1).params().seed());
        assertNotEquals(requests.get(0).params().seed(), requests.get(1).params().seed());
        assertEquals(5, requests.get(2).params().seed());
        GenerationRequest plain = requests.get(3);
        assertEquals(SamplingParams.seedFor(42, plain.id()), plain.params().seed());
        assertEquals(requests.stream().map(r -> r.params().seed()).toList(),
                PromptFile.read(file, defaults).stream().map(r -> r.params().seed()).toList(), "the same on every read");
    }
}
