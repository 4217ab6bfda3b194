package io.inf2.model.presets;

/**
 * How large random weights are, per tensor role. Means are 0, except norm scales, which are 1 plus
 * a small jitter (so a kernel that ignores the scale, or applies it to the wrong axis, is caught).
 */
public enum WeightScale {

    /**
     * HF's own initialisation ({@code initializer_range} / {@code init_std} = 0.02) for every matrix, with
     * small non-zero biases: the weight statistics that real-shape throughput runs should see. Activations
     * stay in fp16 range for every real preset, up to OPT-175B.
     */
    HF_INIT(0.02, 0.02, 0.02) {
        @Override
        public double linearStd(long fanIn) {
            return 0.02;
        }
    },

    /**
     * For tiny test models, which are compared token by token with HF transformers. With std 0.02 and a
     * hidden size of 64 the logits have a spread of about 0.16, so the top two tokens of 50,000 are
     * typically 0.03 apart and numerically equal implementations flip greedy choices on rounding. Here
     * linear weights are variance-preserving (std 1/sqrt(fan_in)), so every layer adds to the residual
     * stream about as much as the embedding holds (attention and MLP bugs change the output), and
     * embeddings / lm_head have std 0.5, giving logits a spread of about 0.5·sqrt(hidden) (4 for hidden
     * 64): the greedy token typically wins by a margin of order 1, far above f32/f16/bf16 rounding.
     */
    PEAKED(0.5, 0.1, 0.1) {
        @Override
        public double linearStd(long fanIn) {
            return 1.0 / Math.sqrt(fanIn);
        }
    };

    private final double embeddingStd;
    private final double normJitterStd;
    private final double biasStd;

    WeightScale(double embeddingStd, double normJitterStd, double biasStd) {
        this.embeddingStd = embeddingStd;
        this.normJitterStd = normJitterStd;
        this.biasStd = biasStd;
    }

    /** Standard deviation of a linear weight whose input width is {@code fanIn}. */
    public abstract double linearStd(long fanIn);

    /** Standard deviation of token / position embeddings and of an untied lm_head. */
    public double embeddingStd() {
        return embeddingStd;
    }

    /** Norm scales are 1 plus noise of this standard deviation. */
    public double normJitterStd() {
        return normJitterStd;
    }

    /** Standard deviation of linear biases and LayerNorm shifts. */
    public double biasStd() {
        return biasStd;
    }
}
