package io.inf2.compute;

import io.inf2.model.ModelConfig;

/**
 * cos and sin of position × inverse frequency for rotary embeddings in Hugging Face's rotate-half
 * convention: for a head x of width d, pairs (x[i], x[i + d/2]) rotate by angle p·invFreq[i].
 * Angles are computed in double and rounded once, so every backend sees identical tables.
 */
public final class RotaryTable {
    private final int headDim;
    private final int maxPositions;
    private final float[] cos;
    private final float[] sin;

    public RotaryTable(double[] inverseFrequencies, int maxPositions) {
        this.headDim = inverseFrequencies.length * 2;
        this.maxPositions = maxPositions;
        int half = inverseFrequencies.length;
        this.cos = new float[maxPositions * half];
        this.sin = new float[maxPositions * half];
        for (int p = 0; p < maxPositions; p++) {
            for (int i = 0; i < half; i++) {
                // HF computes inv_freq in f32 and the angle in f32; do the same to match its rounding.
                float angle = (float) p * (float) inverseFrequencies[i];
                cos[p * half + i] = (float) Math.cos(angle);
                sin[p * half + i] = (float) Math.sin(angle);
            }
        }
    }

    public static RotaryTable forModel(ModelConfig config) {
        return new RotaryTable(config.ropeScaling().inverseFrequencies(config.ropeTheta(), config.headDim()),
                config.maxPositions());
    }

    public int headDim() {
        return headDim;
    }

    public int maxPositions() {
        return maxPositions;
    }

    /** cos values for position p start at {@code p * headDim() / 2}. */
    public float[] cos() {
        return cos;
    }

    public float[] sin() {
        return sin;
    }

    /** Rotates one head in place: x[offset .. offset + headDim). */
    public void apply(float[] x, int offset, int position) {
        if (position < 0 || position >= maxPositions) {
            throw new IllegalArgumentException("position " + position + " outside the rotary table of " + maxPositions);
        }
        int half = headDim / 2;
        int base = position * half;
        for (int i = 0; i < half; i++) {
            float c = cos[base + i];
            float s = sin[base + i];
            float a = x[offset + i];
            float b = x[offset + i + half];
            x[offset + i] = a * c - b * s;
            x[offset + i + half] = b * c + a * s;
        }
    }
}
