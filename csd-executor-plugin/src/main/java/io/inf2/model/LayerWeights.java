package io.inf2.model;

import io.inf2.tensor.Tensor;

/**
 * One decoder layer's tensors, named by role rather than by checkpoint key. Biases and betas are null
 * where the architecture has none (LLaMA). For LLaMA, {@code fc1} is gate_proj, {@code fcUp} is
 * up_proj and {@code fc2} is down_proj; for OPT, {@code fcUp} is null.
 */
public record LayerWeights(
        Tensor attnNormWeight, Tensor attnNormBias,
        Tensor qWeight, Tensor qBias,
        Tensor kWeight, Tensor kBias,
        Tensor vWeight, Tensor vBias,
        Tensor oWeight, Tensor oBias,
        Tensor mlpNormWeight, Tensor mlpNormBias,
        Tensor fc1Weight, Tensor fc1Bias,
        Tensor fcUpWeight, Tensor fcUpBias,
        Tensor fc2Weight, Tensor fc2Bias) {

    /** Bytes of every tensor of the layer, as stored. */
    public long byteSize() {
        long total = 0;
        for (Tensor t : new Tensor[] {attnNormWeight, attnNormBias, qWeight, qBias, kWeight, kBias, vWeight, vBias,
                oWeight, oBias, mlpNormWeight, mlpNormBias, fc1Weight, fc1Bias, fcUpWeight, fcUpBias, fc2Weight, fc2Bias}) {
            if (t != null) {
                total += t.data().byteSize();
            }
        }
        return total;
    }
}
