package io.inf2.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.inf2.engine.GenerationRequest;
import io.inf2.engine.SamplingParams;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The seeds a prompts file's requests sample with. */
class PromptFileTest {
    @TempDir
    Path dir;

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
