package io.inf2.compute;

import io.inf2.model.LayerWeights;
import io.inf2.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The tier of every layer weight, by tensor name, and the layers they belong to. Weights outside the
 * layers (embeddings, final norm, lm_head) are not listed: a backend keeps them where it computes.
 */
public record WeightLayout(List<LayerWeights> layers, Map<String, WeightTier> tiers) {

    public WeightLayout {
        layers = List.copyOf(layers);
        tiers = Map.copyOf(tiers);
        for (LayerWeights layer : layers) {
            for (Tensor t : layer.tensors()) {
                if (!tiers.containsKey(t.name())) {
                    throw new IllegalArgumentException("weight layout names no tier for " + t.name());
                }
            }
        }
    }

    public WeightTier tierOf(Tensor t) {
        return tiers.getOrDefault(t.name(), WeightTier.DEVICE);
    }

    /** Layer tensors of {@code tier}, in layer order. */
    public List<Tensor> tensorsIn(WeightTier tier) {
        List<Tensor> out = new ArrayList<>();
        for (LayerWeights layer : layers) {
            for (Tensor t : layer.tensors()) {
                if (tiers.get(t.name()) == tier) {
                    out.add(t);
                }
            }
        }
        return out;
    }

    /** True when some layer weight is not in device memory: the schedule must bring it in per layer. */
    public boolean streams() {
        return tiers.values().stream().anyMatch(t -> t != WeightTier.DEVICE);
    }
}
