package io.inf2.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import org.junit.jupiter.api.Test;

/**
 * {@code inf2 bench} on a tiny preset: every timed round reported and held to the bandwidth measured around it,
 * the best and the median each to its own bound.
 */
class BenchCommandTest {

    @Test
    void reportsEveryRoundAgainstItsOwnBandwidthWithTheBestAndTheMedian() throws IOException {
        Inf2MainTest.Run r = Inf2MainTest.run("bench", "--presets", "tiny-opt", "--dtype", "f16", "--batches", "1,2",
                "--prompt-tokens", "4", "--new-tokens", "3", "--rounds", "3", "--threads", "2");
        assertEquals(0, r.status(), r.err());
        JsonNode report = new ObjectMapper().readTree(r.out());
        assertEquals("cpu-decode", report.get("benchmark").asText());
        assertTrue(report.get("memoryBandwidthGBps").asDouble() >= report.get("memoryBandwidthMedianGBps").asDouble());
        assertTrue(report.get("memoryProbeBytes").asLong() >= 1L << 29, report.toString());
        assertEquals(2, report.get("runs").size());
        for (JsonNode run : report.get("runs")) {
            assertEquals("F16", run.get("dtype").asText());
            assertEquals(3, run.get("timedRounds").asInt());
            JsonNode rounds = run.get("decodeTokensPerSecondByRound");
            JsonNode roundBandwidth = run.get("memoryBandwidthGBpsByRound");
            JsonNode roundFraction = run.get("fractionOfMemoryBoundByRound");
            assertEquals(3, rounds.size());
            assertEquals(3, roundBandwidth.size());
            assertEquals(3, roundFraction.size());
            int batch = run.get("batch").asInt();
            double bytesPerStep = run.get("weightBytesPerStep").asDouble();
            double best = 0;
            double[] fractions = new double[3];
            for (int i = 0; i < 3; i++) {
                double rate = rounds.get(i).asDouble();
                assertTrue(rate > 0, run.toString());
                best = Math.max(best, rate);
                // Each round against the bandwidth measured on either side of it.
                fractions[i] = rate / (batch * roundBandwidth.get(i).asDouble() * 1e9 / bytesPerStep);
                assertEquals(fractions[i], roundFraction.get(i).asDouble(), 1e-9);
            }
            java.util.Arrays.sort(fractions);
            assertEquals(fractions[1], run.get("fractionOfMemoryBoundPaired").asDouble(), 1e-12);
            // A sample before each round and one after the last, each of at least three passes.
            assertTrue(run.get("memoryBandwidthPasses").asInt() >= 12, run.toString());
            double bandwidth = run.get("memoryBandwidthGBps").asDouble();
            double medianBandwidth = run.get("memoryBandwidthMedianGBps").asDouble();
            assertTrue(bandwidth >= medianBandwidth, run.toString());
            assertEquals(best, run.get("decodeTokensPerSecond").asDouble(), 0.0);
            double median = run.get("decodeTokensPerSecondMedian").asDouble();
            assertTrue(median <= best, run.toString());
            assertEquals(best / (batch * bandwidth * 1e9 / bytesPerStep), run.get("fractionOfMemoryBound").asDouble(), 1e-9);
            assertEquals(median / (batch * medianBandwidth * 1e9 / bytesPerStep),
                    run.get("fractionOfMemoryBoundMedian").asDouble(), 1e-9);
            // tiny-opt's weights fit in any last-level cache this reports.
            assertEquals(report.get("lastLevelCacheBytes").asLong() > 0, run.get("weightsFitInLastLevelCache").asBoolean());
        }
        assertTrue(r.err().contains("median of 3 rounds"), r.err());
    }

    @Test
    void roundsOutsideTheirRangeAreRefused() {
        Inf2MainTest.Run r = Inf2MainTest.run("bench", "--presets", "tiny-opt", "--rounds", "0");
        assertEquals(2, r.status());
        assertTrue(r.err().contains("rounds"), r.err());
    }
}
