package io.inf2.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.inf2.cli.Inf2Main;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code inf2 bench-engine} end to end on tiny presets with the CPU backend: the KV cache in memory and
 * on emulated devices (real direct I/O in a temporary directory), several variants over the same
 * weights, the JSON's figures present and consistent with the work asked for.
 */
class EngineBenchTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Small probes and short runs: the test checks the bench's plumbing, not the machine. */
    private static final List<String> QUICK = List.of("--memory-probe-mib", "16", "--raw-read-mib", "4",
            "--warmup-steps", "1", "--warmup-seconds", "0", "--set", "threads=2", "--set", "backend=cpu");

    @TempDir
    Path dir;

    record Run(int status, String out, String err) {
    }

    static Run bench(List<String> args) {
        List<String> all = new ArrayList<>();
        all.add("bench-engine");
        all.addAll(QUICK);
        all.addAll(args);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Inf2Main.run(all.toArray(String[]::new), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void memoryAndCsdVariantsReportEveryFigureForEveryBatch() throws IOException {
        Path out = dir.resolve("bench.json");
        String devices = dir.resolve("dev0") + "," + dir.resolve("dev1");
        Run r = bench(List.of("--preset", "tiny-opt", "--prompt-tokens", "12", "--new-tokens", "5", "--batches", "1,3",
                "--variants", "memory:kvCache=memory;csd:kvCache=csd,csd=" + devices + ",writebackTokens=4",
                "--out", out.toString()));
        assertEquals(0, r.status(), r.err());
        JsonNode json = JSON.readTree(r.out());
        assertEquals(json, JSON.readTree(Files.readString(out)), "--out holds the document printed");
        assertEquals("tiny-opt", json.get("preset").asText());
        assertEquals(3, json.get("model").get("layers").asInt());
        assertTrue(json.get("bounds").get("hostMemoryBandwidthGBps").asDouble() > 0);
        assertTrue(json.get("bounds").get("cuda").isNull(), "no GPU run, no GPU probe");
        assertTrue(json.get("weightBytesPerDecodeStep").asLong() > 0);
        assertTrue(json.get("weightBytesPerDecodeStep").asLong() <= json.get("weightBytes").asLong());

        JsonNode runs = json.get("runs");
        assertEquals(4, runs.size());
        int[] batches = {1, 3, 1, 3};
        String[] variants = {"memory", "memory", "csd", "csd"};
        for (int i = 0; i < runs.size(); i++) {
            JsonNode run = runs.get(i);
            int batch = batches[i];
            assertFalse(run.has("error"), run.toString());
            assertEquals(variants[i], run.get("variant").asText());
            assertEquals(batch, run.get("batch").asInt());
            assertEquals(batch * 5L, run.get("generatedTokens").asLong());
            assertEquals(4, run.get("decodeSteps").asInt());
            for (String positive : List.of("prefillSeconds", "decodeSeconds", "decodeTokensPerSecond", "decodeStepMs",
                    "decodeLayerMs", "generatedTokensPerSecond", "prefillTokensPerSecond")) {
                assertTrue(run.get(positive).asDouble() > 0, positive + " in " + run);
            }
            assertEquals(run.get("decodeStepMs").asDouble() / 3, run.get("decodeLayerMs").asDouble(),
                    run.get("decodeLayerMs").asDouble() * 1e-3);
            assertEquals(batch * 4 / run.get("decodeSeconds").asDouble(), run.get("decodeTokensPerSecond").asDouble(),
                    run.get("decodeTokensPerSecond").asDouble() * 2e-3);
            // The engine's own counters agree that the timed run generated exactly what was asked.
            long generated = run.get("engineStatisticsAfterRun").get("generatedTokens").asLong()
                    - run.get("engineStatisticsAfterWarmup").get("generatedTokens").asLong();
            assertEquals(batch * 5L, generated);
            assertEquals(1, run.get("warmupRounds").asInt(), "no warm-up time asked for: one round");
            assertEquals(batch * 2L, run.get("engineStatisticsAfterWarmup").get("generatedTokens").asLong(),
                    "one warm-up step: two tokens per sequence");
            assertEquals(100, run.get("placement").get("weightsHostPercent").asInt(), "the CPU reads weights where they are");
            assertEquals(variants[i], run.get("placement").get("kvCache").asText());
            assertTrue(run.get("bounds").get("hostMemoryWeightBoundStepMs").asDouble() > 0);
            assertTrue(run.get("bounds").get("fractionOfHostMemoryBound").asDouble() > 0);
            long deviceReads = run.get("kvTraffic").get("deviceReadBytes").asLong();
            if (variants[i].equals("csd")) {
                assertTrue(run.get("engine").asText().contains("csd"), run.get("engine").asText());
                assertTrue(deviceReads > 0, "decode reads the durable pages from the devices");
                assertTrue(run.get("kvTraffic").get("deviceWriteBytes").asLong() > 0);
                assertTrue(run.get("rawDirectReadGBps").asDouble() > 0);
                assertTrue(run.get("kvDeviceReadGBpsDuringDecode").asDouble() > 0);
                assertEquals(run.get("kvDeviceReadGBpsDuringDecode").asDouble() / run.get("rawDirectReadGBps").asDouble(),
                        run.get("kvReadOverRawRead").asDouble(), run.get("kvReadOverRawRead").asDouble() * 2e-3);
            } else {
                assertEquals(0, deviceReads);
                assertFalse(run.has("rawDirectReadGBps"), "no storage, no raw read");
            }
        }
    }

    @Test
    void xcacheAndStorageBaselineVariantsOnAGroupedQueryModel() throws IOException {
        Run r = bench(List.of("--preset", "tiny-llama", "--prompt-tokens", "12", "--new-tokens", "4", "--batches", "2",
                "--set", "csd=" + dir.resolve("a") + "," + dir.resolve("b"), "--set", "writebackTokens=4",
                "--variants", "ans:kvCache=csd,xcacheFraction=0;ans+xcache:kvCache=csd,xcacheFraction=0.5;"
                        + "storage:kvCache=storage"));
        assertEquals(0, r.status(), r.err());
        JsonNode runs = JSON.readTree(r.out()).get("runs");
        assertEquals(3, runs.size());
        for (JsonNode run : runs) {
            assertFalse(run.has("error"), run.toString());
            assertEquals(8, run.get("generatedTokens").asLong());
            assertTrue(run.get("decodeTokensPerSecond").asDouble() > 0);
            assertTrue(run.get("kvTraffic").get("linkBytes").asLong() > 0);
            long recomputed = run.get("kvTraffic").get("recomputedXBytes").asLong();
            if (run.get("variant").asText().equals("ans+xcache")) {
                assertTrue(recomputed > 0, "half the sequences keep X and recompute K and V from it");
            } else {
                assertEquals(0, recomputed, run.get("variant").asText());
            }
        }
        JsonNode variants = JSON.readTree(r.out()).get("variants");
        assertEquals("0.5", variants.get(1).get("settings").get("xcacheFraction").asText());
    }

    @Test
    void aRunThatFailsIsRecordedAndTheOthersStillRun() throws IOException {
        Path notADirectory = Files.writeString(dir.resolve("file"), "x");
        Path out = dir.resolve("partial.json");
        Run r = bench(List.of("--preset", "tiny-opt", "--prompt-tokens", "8", "--new-tokens", "3", "--batches", "1",
                "--variants", "bad:kvCache=csd,csd=" + notADirectory + ";good:kvCache=memory", "--out", out.toString()));
        assertEquals(1, r.status(), r.err());
        assertTrue(r.err().contains("1 of 2 runs failed; first: bad batch 1: "), r.err());
        assertEquals(1, r.err().lines().filter(l -> l.startsWith("inf2 bench-engine: 1 of 2")).count());
        JsonNode runs = JSON.readTree(Files.readString(out)).get("runs");
        assertTrue(runs.get(0).get("error").asText().contains(notADirectory.toString()), runs.get(0).toString());
        assertEquals(3, runs.get(1).get("generatedTokens").asLong());
    }

    @Test
    void badOptionsFailAtOnceWithOneLineNamingThem() {
        assertUsageError(bench(List.of("--preset", "tiny-opt", "--prompt-tokens", "8", "--set", "kvCach=csd")), "unknown setting --set kvCach (did you mean kvCache?)");
        assertUsageError(bench(List.of("--preset", "tiny-opt", "--prompt-tokens", "8", "--set", "batchSize=4")), "--set batchSize=4: batchSize is set by the bench (engine batch sizes come from --batches)");
        assertUsageError(bench(List.of("--preset", "tiny-opt", "--prompt-tokens", "8", "--variants", "kvCache=csd")), "--variants: \"kvCache=csd\" needs a name first");
        assertUsageError(bench(List.of("--preset", "tiny-opt", "--prompt-tokens", "8", "--variants", "a:kvCache=disk")), "variant a: kvCache=\"disk\": must be one of memory, ");
        assertUsageError(bench(List.of("--preset", "tiny-opt", "--prompt-tokens", "8", "--variants", "a:kvCache=csd")), "kvCache=csd needs at least one device directory");
        assertUsageError(bench(List.of("--preset", "tiny-opt", "--prompt-tokens", "500", "--new-tokens", "32")),
                "--prompt-tokens 500 plus --new-tokens 32 exceed tiny-opt's context window of 512");
        assertUsageError(bench(List.of("--preset", "opt-9b")), "unknown model preset \"opt-9b\"");
        assertUsageError(bench(List.of("--preset", "tiny-opt", "--prompt-tokens", "8", "--gpu-batch-size", "2", "--set", "gpuBatchSize=4")),
                "--gpu-batch-size and --set gpuBatchSize both given");
    }

    @Test
    void variantValuesMayBeListsAndAVariantMayAddNothing() {
        List<EngineBench.Variant> v = EngineBench.parseVariants("a:csd=/x,/y,kvCache=csd; b:");
        assertEquals(2, v.size());
        assertEquals(Map.of("csd", "/x,/y", "kvCache", "csd"), v.get(0).settings());
        assertEquals("b", v.get(1).name());
        assertEquals(Map.of(), v.get(1).settings());
        assertThrows(IllegalArgumentException.class, () -> EngineBench.parseVariants("a:x=1;a:y=2"));
        assertThrows(IllegalArgumentException.class, () -> EngineBench.parseVariants(";"));
    }

    private static void assertUsageError(Run r, String expected) {
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().contains(expected), r.err());
        assertEquals(1, r.err().lines().count(), "one line: " + r.err());
        assertEquals("", r.out());
    }
}
