package io.inf2.engine;

import java.util.List;

/**
 * How one request's tokens are chosen and when it stops. Greedy when {@code temperature == 0}.
 * Order as in Hugging Face: repetition penalty, then temperature, top-k, top-p.
 */
public record SamplingParams(int maxNewTokens, double temperature, int topK, double topP,
                             double repetitionPenalty, long seed, List<Integer> stopTokenIds) {

    public SamplingParams {
        stopTokenIds = List.copyOf(stopTokenIds);
        if (maxNewTokens < 1) {
            throw new IllegalArgumentException("maxNewTokens must be at least 1, got " + maxNewTokens);
        }
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be a finite number >= 0, got " + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("topK must be >= 0, got " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("topP must be in (0, 1], got " + topP);
        }
        if (!(repetitionPenalty > 0) || Double.isInfinite(repetitionPenalty)) {
            throw new IllegalArgumentException("repetitionPenalty must be a finite number > 0, got " + repetitionPenalty);
        }
    }

    public static SamplingParams greedy(int maxNewTokens) {
        return new SamplingParams(maxNewTokens, 0, 0, 1, 1, 0, List.of());
    }

    public boolean isGreedy() {
        return temperature == 0;
    }

    public SamplingParams withSeed(long newSeed) {
        return new SamplingParams(maxNewTokens, temperature, topK, topP, repetitionPenalty, newSeed, stopTokenIds);
    }

    public SamplingParams withMaxNewTokens(int n) {
        return new SamplingParams(n, temperature, topK, topP, repetitionPenalty, seed, stopTokenIds);
    }
}
