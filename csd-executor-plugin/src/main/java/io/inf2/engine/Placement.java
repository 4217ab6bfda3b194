package io.inf2.engine;

import io.inf2.compute.WeightLayout;
import io.inf2.compute.WeightTier;
import io.inf2.model.LayerWeights;
import io.inf2.tensor.Tensor;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A resolved placement policy in FlexGen's terms: the share of layer weights in GPU memory and in
 * host memory (the rest on storage), the KV cache's place (the kvCache names: gpu, memory, csd,
 * storage) and whether decode keeps every GPU batch's activations in the compute device's memory or
 * parks them in host memory between layers.
 *
 * @param weightsGpuPercent  share of each layer's weight bytes resident in GPU memory
 * @param weightsHostPercent share in host memory, copied in per layer on a GPU
 * @param kvCache            where the KV cache lives
 * @param activationsOnGpu   false: between layers, GPU batches other than the computing one wait in host memory
 */
public record Placement(int weightsGpuPercent, int weightsHostPercent, String kvCache, boolean activationsOnGpu) {

    public Placement {
        if (weightsGpuPercent < 0 || weightsHostPercent < 0 || weightsGpuPercent + weightsHostPercent > 100) {
            throw new IllegalArgumentException("weights " + weightsGpuPercent + "% on GPU and " + weightsHostPercent
                    + "% on host: each from 0 to 100, together at most 100");
        }
    }

    public int weightsStoragePercent() {
        return 100 - weightsGpuPercent - weightsHostPercent;
    }

    /**
     * The tier of every layer tensor by FlexGen's rule: within a layer, a tensor goes to the tier in
     * which the midpoint of its bytes falls when the layer's tensors are laid end to end (GPU share
     * first, then host, then storage), so every layer splits alike and streams the same bytes.
     */
    public WeightLayout layout(List<LayerWeights> layers) {
        Map<String, WeightTier> tiers = new HashMap<>();
        for (LayerWeights layer : layers) {
            List<Tensor> tensors = layer.tensors();
            double total = layer.byteSize();
            double before = 0;
            for (Tensor t : tensors) {
                double size = t.data().byteSize();
                double midpoint = total == 0 ? 0 : (before + size / 2) * 100 / total;
                before += size;
                WeightTier tier = midpoint < weightsGpuPercent ? WeightTier.DEVICE
                        : midpoint < weightsGpuPercent + weightsHostPercent ? WeightTier.HOST : WeightTier.STORAGE;
                tiers.put(t.name(), tier);
            }
        }
        return new WeightLayout(layers, tiers);
    }

    /** As FlexGen writes a policy: "weights 20/80/0 (gpu/host/storage), kvCache=memory, activations on gpu". */
    public String describe() {
        return "weights " + weightsGpuPercent + "/" + weightsHostPercent + "/" + weightsStoragePercent()
                + " % (gpu/host/storage), kvCache=" + kvCache + ", activations " + (activationsOnGpu ? "on the device" : "in host memory");
    }
}
