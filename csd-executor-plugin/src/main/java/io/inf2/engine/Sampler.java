package io.inf2.engine;

import io.inf2.compute.ComputeBackend;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Chooses the next token of one sequence from its logits, as Hugging Face's generate does:
 * repetition penalty, then temperature, top-k and top-p, then a draw (or argmax when greedy).
 * Each sequence has its own random stream seeded by its request's seed, so a sequence's tokens do
 * not depend on what else is in the batch.
 */
final class Sampler {
    /** Logits that no token can be chosen from: the model's numbers overflowed for this sequence. */
    static final class NonFiniteLogitsException extends IllegalStateException {
        NonFiniteLogitsException(String message) {
            super(message);
        }
    }

    private final SamplingParams params;
    private final SplittableRandom random;
    private final boolean[] seen;

    Sampler(SamplingParams params, int vocabSize, int[] promptTokens) {
        this.params = params;
        this.random = new SplittableRandom(params.seed());
        this.seen = params.repetitionPenalty() == 1.0 ? null : new boolean[vocabSize];
        if (seen != null) {
            for (int t : promptTokens) {
                if (t >= 0 && t < vocabSize) {
                    seen[t] = true;
                }
            }
        }
    }

    /** Whether {@link #next} is the plain arg max of the logits (greedy, no repetition penalty). */
    boolean isPlainGreedy() {
        return params.isGreedy() && seen == null;
    }

    /** Picks a token from {@code logits[offset, offset + vocab)}; the array slice may be modified. */
    int next(float[] logits, int offset, int vocab) {
        if (seen != null) {
            float penalty = (float) params.repetitionPenalty();
            for (int t = 0; t < vocab; t++) {
                if (seen[t]) {
                    float l = logits[offset + t];
                    logits[offset + t] = l > 0 ? l / penalty : l * penalty;
                }
            }
        }
        int token = params.isGreedy() ? argmax(logits, offset, vocab) : draw(logits, offset, vocab);
        if (seen != null) {
            seen[token] = true;
        }
        return token;
    }

    /**
     * {@link ComputeBackend#finiteArgmax}, the rule of the backends' greedy selection; a largest logit
     * that is not finite means the model's numbers broke, which no token choice can hide.
     */
    static int argmax(float[] logits, int offset, int vocab) {
        int best = ComputeBackend.finiteArgmax(logits, offset, vocab);
        if (best < 0) {
            throw new NonFiniteLogitsException("the logits have no finite largest value: no token can be chosen");
        }
        return best;
    }

    /**
     * Token ids by descending logit, ties in id order (so draws are reproducible), sorted as
     * primitive keys: the logit's order-preserving bits, inverted, above the id.
     */
    static int[] byDescendingLogit(float[] logits) {
        long[] keys = new long[logits.length];
        for (int t = 0; t < logits.length; t++) {
            int bits = Float.floatToIntBits(logits[t]);
            int sortable = bits ^ ((bits >> 31) & 0x7fffffff);
            keys[t] = ((long) ~sortable << 32) | t;
        }
        java.util.Arrays.sort(keys);
        int[] order = new int[logits.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = (int) keys[i];
        }
        return order;
    }

    private int draw(float[] logits, int offset, int vocab) {
        float temperature = (float) params.temperature();
        int[] order = null;
        float[] scaled = new float[vocab];
        for (int t = 0; t < vocab; t++) {
            scaled[t] = logits[offset + t] / temperature;
        }
        int keep = vocab;
        if (params.topK() > 0 && params.topK() < vocab || params.topP() < 1.0) {
            order = byDescendingLogit(scaled);
            if (params.topK() > 0) {
                keep = Math.min(keep, params.topK());
                // As Hugging Face's top-k, which removes only values below the k-th: ties with it stay.
                float kth = scaled[order[keep - 1]];
                while (keep < vocab && scaled[order[keep]] == kth) {
                    keep++;
                }
            }
        }
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < keep; i++) {
            max = Math.max(max, scaled[order == null ? i : order[i]]);
        }
        if (!Double.isFinite(max)) {
            // Hugging Face's draw fails on such probabilities too; any token picked here would be arbitrary.
            throw new NonFiniteLogitsException("the logits are not finite (largest " + max + "): no token can be drawn");
        }
        double[] probs = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++) {
            probs[i] = Math.exp(scaled[order == null ? i : order[i]] - max);
            sum += probs[i];
        }
        if (params.topP() < 1.0) {
            // Smallest prefix of the sorted tokens whose probability mass reaches top_p (at least one).
            double cumulative = 0;
            int cut = keep;
            for (int i = 0; i < keep; i++) {
                cumulative += probs[i] / sum;
                if (cumulative >= params.topP()) {
                    cut = i + 1;
                    break;
                }
            }
            keep = cut;
            sum = 0;
            for (int i = 0; i < keep; i++) {
                sum += probs[i];
            }
        }
        double u = random.nextDouble() * sum;
        double acc = 0;
        for (int i = 0; i < keep; i++) {
            acc += probs[i];
            if (u < acc) {
                return order == null ? i : order[i];
            }
        }
        return order == null ? keep - 1 : order[keep - 1];
    }
}
