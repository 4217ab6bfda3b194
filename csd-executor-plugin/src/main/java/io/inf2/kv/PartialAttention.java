package io.inf2.kv;

/**
 * Attention of one query head over a subset of the keys, in a form that merges exactly: the
 * normalised output over the subset and the log-sum-exp of its scaled scores.
 *
 * <p>For disjoint subsets i with outputs o_i and log-sum-exps l_i, the attention over their union is
 * Σ exp(l_i − L)·o_i with L = log Σ exp(l_i). {@link #accumulate} folds one partial into a running
 * result in place, so places can be merged in any order.
 */
public final class PartialAttention {

    private PartialAttention() {
    }

    /** Log-sum-exp of an empty subset: merging it changes nothing. */
    public static final float EMPTY_LSE = Float.NEGATIVE_INFINITY;

    /**
     * Folds the partial ({@code out}, {@code lse}) of {@code headDim} values at {@code outOffset}
     * into the running ({@code acc}, {@code accLse[accLseIndex]}), in place.
     */
    public static void accumulate(float[] acc, int accOffset, float[] accLse, int accLseIndex,
                                  float[] out, int outOffset, float lse, int headDim) {
        float current = accLse[accLseIndex];
        if (lse == EMPTY_LSE) {
            return;
        }
        if (current == EMPTY_LSE) {
            System.arraycopy(out, outOffset, acc, accOffset, headDim);
            accLse[accLseIndex] = lse;
            return;
        }
        float max = Math.max(current, lse);
        double wa = Math.exp(current - max);
        double wb = Math.exp(lse - max);
        double sum = wa + wb;
        float ca = (float) (wa / sum);
        float cb = (float) (wb / sum);
        for (int i = 0; i < headDim; i++) {
            acc[accOffset + i] = ca * acc[accOffset + i] + cb * out[outOffset + i];
        }
        accLse[accLseIndex] = (float) (max + Math.log(sum));
    }
}
