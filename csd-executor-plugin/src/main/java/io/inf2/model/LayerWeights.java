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

    /** The layer's tensors, absent ones left out. */
    public java.util.List<Tensor> tensors() {
        java.util.List<Tensor> out = new java.util.ArrayList<>();
        for (Tensor t : new Tensor[] {attnNormWeight, attnNormBias, qWeight, qBias, kWeight, kBias, vWeight, vBias,
                oWeight, oBias, mlpNormWeight, mlpNormBias, fc1Weight, fc1Bias, fcUpWeight, fcUpBias, fc2Weight, fc2Bias}) {
            if (t != null) {
                out.add(t);
            }
        }
        return out;
    }

    /** The same layer with every present tensor replaced by {@code f(tensor)}: the same weights held elsewhere. */
    public LayerWeights map(java.util.function.UnaryOperator<Tensor> f) {
        java.util.function.UnaryOperator<Tensor> g = t -> t == null ? null : f.apply(t);
        return new LayerWeights(g.apply(attnNormWeight), g.apply(attnNormBias), g.apply(qWeight), g.apply(qBias),
                g.apply(kWeight), g.apply(kBias), g.apply(vWeight), g.apply(vBias), g.apply(oWeight), g.apply(oBias),
                g.apply(mlpNormWeight), g.apply(mlpNormBias), g.apply(fc1Weight), g.apply(fc1Bias),
                g.apply(fcUpWeight), g.apply(fcUpBias), g.apply(fc2Weight), g.apply(fc2Bias));
    }

    /** Bytes of every tensor of the layer, as stored. */
    public long byteSize() {
        return tensors().stream().mapToLong(t -> t.data().byteSize()).sum();
    }
}
