package io.inf2.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import org.junit.jupiter.api.Test;

/** {@code inf2 bench} on a tiny preset: every timed round reported, best and median each held to its own bound. */
class BenchCommandTest {

    @Test
    void reportsEveryRoundWithTheBestAndTheMedian() throws IOException {
        Inf2MainTest.Run r = Inf2MainTest.run("bench", "--presets", "tiny-opt", "--dtype", "f16", "--batches", "1,2",
                "--prompt-tokens", "4", "--new-tokens", "3", "--rounds", "3", "--threads", "2");
        assertEquals(0, r.status(), r.err());
        JsonNode report = new ObjectMapper().readTree(r.out());
        assertEquals("cpu-decode", report.get("benchmark").asText());
        double bandwidth = report.get("memoryBandwidthGBps").asDouble();
        double medianBandwidth = report.get("memoryBandwidthMedianGBps").asDouble();
        assertEquals(2, report.get("runs").size());
        for (JsonNode run : report.get("runs")) {
            assertEquals("F16", run.get("dtype").asText());
            assertEquals(3, run.get("timedRounds").asInt());
            JsonNode rounds = run.get("decodeTokensPerSecondByRound");
            assertEquals(3, rounds.size());
            double best = 0;
            for (JsonNode round : rounds) {
                assertTrue(round.asDouble() > 0, run.toString());
                best = Math.max(best, round.asDouble());
            }
            assertEquals(best, run.get("decodeTokensPerSecond").asDouble(), 0.0);
            double median = run.get("decodeTokensPerSecondMedian").asDouble();
            assertTrue(median <= best, run.toString());
            int batch = run.get("batch").asInt();
            double bytesPerStep = run.get("weightBytesPerStep").asDouble();
            assertEquals(best / (batch * bandwidth * 1e9 / bytesPerStep), run.get("fractionOfMemoryBound").asDouble(), 1e-9);
            assertEquals(median / (batch * medianBandwidth * 1e9 / bytesPerStep),
                    run.get("fractionOfMemoryBoundMedian").asDouble(), 1e-9);
        }
        assertTrue(r.err().contains("best of 3"), r.err());
    }

    @Test
    void roundsOutsideTheirRangeAreRefused() {
        Inf2MainTest.Run r = Inf2MainTest.run("bench", "--presets", "tiny-opt", "--rounds", "0");
        assertEquals(2, r.status());
        assertTrue(r.err().contains("rounds"), r.err());
    }
}
