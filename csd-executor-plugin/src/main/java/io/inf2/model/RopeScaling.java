package io.inf2.model;

/**
 * Rotary-embedding frequency scaling as written in config.json's {@code rope_scaling}.
 *
 * @param type "default", "linear" or "llama3"
 */
public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor,
                          int originalMaxPositionEmbeddings) {

    public static final RopeScaling NONE = new RopeScaling("default", 1.0, 0, 0, 0);

    /** Inverse frequencies for a head of width {@code rotaryDim}, in HF's rotate-half convention. */
    public double[] inverseFrequencies(double theta, int rotaryDim) {
        int half = rotaryDim / 2;
        double[] inv = new double[half];
        for (int i = 0; i < half; i++) {
            inv[i] = 1.0 / Math.pow(theta, (2.0 * i) / rotaryDim);
        }
        switch (type) {
            case "default" -> { }
            case "linear" -> {
                for (int i = 0; i < half; i++) {
                    inv[i] /= factor;
                }
            }
            case "llama3" -> {
                double lowFreqWavelen = originalMaxPositionEmbeddings / lowFreqFactor;
                double highFreqWavelen = originalMaxPositionEmbeddings / highFreqFactor;
                for (int i = 0; i < half; i++) {
                    double wavelen = 2 * Math.PI / inv[i];
                    if (wavelen > lowFreqWavelen) {
                        inv[i] = inv[i] / factor;
                    } else if (wavelen >= highFreqWavelen) {
                        double smooth = (originalMaxPositionEmbeddings / wavelen - lowFreqFactor)
                                / (highFreqFactor - lowFreqFactor);
                        inv[i] = (1 - smooth) * inv[i] / factor + smooth * inv[i];
                    }
                }
            }
            default -> throw new IllegalStateException("unsupported rope_scaling type " + type);
        }
        return inv;
    }
}
