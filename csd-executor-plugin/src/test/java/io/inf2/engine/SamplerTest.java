package io.inf2.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/** The sampler's token order, its top-k ties, and logits no token can be chosen from. */
class SamplerTest {

    @Test
    void derivedSeedsAreFixedAndDependOnTheJobSeedAndTheId() {
        // Pinned: a change here changes every sampled output of rows without a seed of their own.
        assertEquals(SamplingParams.seedFor(0, "a"), SamplingParams.seedFor(0, "a"));
        long a = SamplingParams.seedFor(0, "a");
        assertEquals(Long.toHexString(a), Long.toHexString(splitMix64(0xaf63dc4c8601ec8cL)));
        assertNotEquals(a, SamplingParams.seedFor(0, "b"));
        assertNotEquals(a, SamplingParams.seedFor(1, "a"));
        assertNotEquals(SamplingParams.seedFor(0, ""), SamplingParams.seedFor(0, "\u00e9"));
        assertNotEquals(SamplingParams.seedFor(7, "row-1"), SamplingParams.seedFor(7, "row-2"));
    }

    /** SplitMix64's finalizer on x + its increment, as the reference implementation writes it. */
    private static long splitMix64(long x) {
        long z = x + 0x9e3779b97f4a7c15L;
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    @Test
    void orderEqualsAStableSortByDescendingLogit() {
        Random random = new Random(9);
        for (int round = 0; round < 50; round++) {
            float[] logits = new float[1 + random.nextInt(400)];
            for (int t = 0; t < logits.length; t++) {
                // Few distinct values, both zeros and infinities, so ties and signs are exercised.
                float[] pool = {-0.0f, 0.0f, 1.5f, -1.5f, 3e-39f, -3e-39f, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY,
                        random.nextFloat() * 20 - 10};
                logits[t] = pool[random.nextInt(pool.length)];
            }
            Integer[] expected = new Integer[logits.length];
            Arrays.setAll(expected, t -> t);
            Arrays.sort(expected, (a, b) -> Float.compare(logits[b], logits[a]));
            assertArrayEquals(Arrays.stream(expected).mapToInt(Integer::intValue).toArray(), Sampler.byDescendingLogit(logits));
        }
    }

    @Test
    void topKKeepsEveryTokenTiedWithTheKthAsHuggingFaceDoes() {
        Set<Integer> drawn = new TreeSet<>();
        for (long seed = 0; seed < 300; seed++) {
            Sampler sampler = new Sampler(new SamplingParams(4, 1.0, 1, 1.0, 1.0, seed, List.of()), 4, new int[0]);
            drawn.add(sampler.next(new float[] {1, 1, 1, 0}, 0, 4));
        }
        assertEquals(Set.of(0, 1, 2), drawn);
    }

    @Test
    void logitsWithoutAFiniteLargestValueAreAnErrorNotAnArbitraryToken() {
        float nan = Float.NaN;
        float inf = Float.POSITIVE_INFINITY;
        assertEquals(2, Sampler.argmax(new float[] {nan, 1, 2, nan}, 0, 4), "NaN is skipped, as on the GPU");
        assertThrows(Sampler.NonFiniteLogitsException.class, () -> Sampler.argmax(new float[] {-inf, -inf}, 0, 2));
        assertThrows(Sampler.NonFiniteLogitsException.class, () -> Sampler.argmax(new float[] {1, inf}, 0, 2));
        for (float[] logits : new float[][] {{5, 1, nan, 0}, {inf, 1, 2, 0}, {-inf, -inf, -inf, -inf}}) {
            Sampler sampler = new Sampler(new SamplingParams(4, 0.8, 0, 0.9, 1.0, 1, List.of()), 4, new int[0]);
            assertThrows(Sampler.NonFiniteLogitsException.class, () -> sampler.next(logits, 0, 4), Arrays.toString(logits));
        }
    }
}
