package io.inf2.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The sampler's token order is the stable sort by descending logit, ties in id order. */
class SamplerTest {

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
}
