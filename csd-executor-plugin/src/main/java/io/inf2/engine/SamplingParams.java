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

    /**
     * The seed of a request that names none: the job's seed mixed with the request's id (FNV-1a over
     * its UTF-8 bytes, then SplitMix64's finalizer, written out here so that it never changes with the
     * JDK). Rows with the same prompt sample differently, as independent requests should, while every
     * run, retry or resume of a job gives each row the same seed, and so the same output.
     */
    public static long seedFor(long jobSeed, String requestId) {
        long hash = 0xcbf29ce484222325L;
        for (byte b : requestId.getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
            hash = (hash ^ (b & 0xff)) * 0x100000001b3L;
        }
        long z = (jobSeed ^ hash) + 0x9e3779b97f4a7c15L;
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    public SamplingParams withSeed(long newSeed) {
        return new SamplingParams(maxNewTokens, temperature, topK, topP, repetitionPenalty, newSeed, stopTokenIds);
    }

    public SamplingParams withMaxNewTokens(int n) {
        return new SamplingParams(n, temperature, topK, topP, repetitionPenalty, seed, stopTokenIds);
    }
}
