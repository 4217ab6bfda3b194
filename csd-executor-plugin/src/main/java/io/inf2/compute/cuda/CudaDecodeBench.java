package io.inf2.compute.cuda;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.inf2.compute.Activations;
import io.inf2.compute.WeightLayout;
import io.inf2.compute.WeightTier;
import io.inf2.model.Architecture;
import io.inf2.model.LayerWeights;
import io.inf2.model.ModelConfig;
import io.inf2.model.ModelWeights;
import io.inf2.model.checkpoint.Checkpoint;
import io.inf2.model.presets.ModelPreset;
import io.inf2.model.presets.RandomWeights;
import io.inf2.tensor.DType;
import io.inf2.tensor.FloatMatrix;
import io.inf2.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * GPU decode throughput with every weight resident on the GPU: an OPT decoder step (pre-LN) built
 * from the cuda backend's operations, KV cache in device memory (fp16), one token per sequence per
 * step, greedy selection on the GPU. Each step ends by reading the chosen tokens back, as a decode
 * loop must. The HBM bound of a step is (weight bytes + KV bytes read) over the device-to-device
 * copy bandwidth measured in the same run (bytes read plus bytes written per second).
 *
 * <p>Usage: {@code CudaDecodeBench [--preset opt-6.7b] [--dtype F16] [--batches 1,16,64]
 * [--context 512] [--steps 32] [--out result.json]}; JSON goes to stdout and to {@code --out}.
 */
public final class CudaDecodeBench {

    private CudaDecodeBench() {
    }

    public static void main(String[] args) throws IOException {
        String preset = "opt-6.7b";
        DType dtype = DType.F16;
        int[] batches = {1, 16, 64};
        int context = 512;
        int steps = 32;
        Path out = null;
        for (int i = 0; i < args.length; i++) {
            String value = i + 1 < args.length ? args[i + 1] : null;
            switch (args[i]) {
                case "--preset" -> preset = value;
                case "--dtype" -> dtype = DType.valueOf(value);
                case "--batches" -> batches = Arrays.stream(value.split(",")).mapToInt(Integer::parseInt).toArray();
                case "--context" -> context = Integer.parseInt(value);
                case "--steps" -> steps = Integer.parseInt(value);
                case "--out" -> out = Path.of(value);
                default -> throw new IllegalArgumentException("unknown option " + args[i]
                        + " (--preset, --dtype, --batches, --context, --steps, --out)");
            }
            i++;
        }
        ModelPreset model = ModelPreset.named(preset);
        if (model.config().architecture() != Architecture.OPT || !model.config().preLayerNorm()
                || model.config().wordEmbedDim() != model.config().hidden()) {
            throw new IllegalArgumentException("CudaDecodeBench builds pre-LN OPT decoders without projections; "
                    + preset + " is not one");
        }
        ObjectNode result = run(model, dtype, batches, context, steps);
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        String text = json.writeValueAsString(result);
        System.out.println(text);
        if (out != null) {
            Files.writeString(out, text + "\n");
        }
    }

    static ObjectNode run(ModelPreset preset, DType dtype, int[] batches, int context, int steps) {
        ModelConfig config = preset.config();
        ObjectNode result = new ObjectMapper().createObjectNode();
        result.put("benchmark", "cuda-decode");
        result.put("model", preset.name() + " shape, random " + dtype + " weights");
        try (CudaBackend gpu = CudaBackend.open(CudaBackend.Options.defaults())) {
            result.put("device", gpu.context().deviceName());
            result.put("architecture", gpu.context().architecture());
            double copyBandwidth = CopyBandwidth.deviceToDevice(gpu.context());
            result.put("deviceToDeviceCopyGBps", round(copyBandwidth / 1e9));
            double[] perCall = launchCosts(gpu);
            result.put("tinyKernelMicros", round(perCall[0] * 1e6));
            result.put("tinyKernelWithArgumentsMicros", round(perCall[1] * 1e6));
            long started = System.nanoTime();
            try (Checkpoint checkpoint = RandomWeights.of(preset, 7, dtype).inMemory()) {
                result.put("hostWeightGenerationSeconds", round((System.nanoTime() - started) / 1e9));
                ModelWeights weights = ModelWeights.bind(config, checkpoint);
                long weightBytes = weights.byteSize();
                result.put("weightBytes", weightBytes);
                started = System.nanoTime();
                // As the engine places them (q, k, v side by side), then the tensors outside the layers.
                gpu.placeWeights(allOnDevice(weights));
                gpu.weights().prefetch(allTensors(weights));
                gpu.weights().awaitTransfers();
                double uploadSeconds = (System.nanoTime() - started) / 1e9;
                result.put("weightUploadGBps", round(gpu.weights().deviceBytes() / uploadSeconds / 1e9));
                ArrayNode runs = result.putArray("results");
                for (int batch : batches) {
                    runs.add(decode(gpu, weights, batch, context, steps, copyBandwidth));
                }
            }
        }
        return result;
    }

    private static ObjectNode decode(CudaBackend gpu, ModelWeights weights, int batch, int context, int steps,
                                     double copyBandwidth) {
        ModelConfig c = weights.config();
        int warmup = 8; // lets the JIT compile the host path of a step before timing
        int capacity = context + warmup + steps;
        List<CudaKvBlock> blocks = new ArrayList<>();
        try {
            int[] slotOfRow = new int[batch * context];
            for (int i = 0; i < slotOfRow.length; i++) {
                slotOfRow[i] = i / context;
            }
            SplittableRandom random = new SplittableRandom(batch);
            FloatMatrix history = new FloatMatrix(batch * context, c.kvDim());
            for (int i = 0; i < history.data().length; i++) {
                history.data()[i] = (float) (random.nextDouble() * 2 - 1);
            }
            try (Activations h = gpu.upload(history)) {
                for (int layer = 0; layer < c.layers(); layer++) {
                    CudaKvBlock block = gpu.createKvBlock(batch, capacity, c.kvHeads(), c.headDim(), DType.F16);
                    blocks.add(block);
                    block.append(slotOfRow, h, h);
                }
            }
            int[] slots = new int[batch];
            int[] tokens = new int[batch];
            for (int i = 0; i < batch; i++) {
                slots[i] = i;
                tokens[i] = random.nextInt(c.vocabSize());
            }
            long elapsed = 0;
            for (int step = 0; step < warmup + steps; step++) {
                long t0 = System.nanoTime();
                tokens = step(gpu, weights, blocks, slots, tokens, context + step);
                if (step >= warmup) {
                    elapsed += System.nanoTime() - t0;
                }
            }
            double stepSeconds = elapsed / 1e9 / steps;
            double[] parts = components(gpu, weights, blocks, slots);
            double meanContext = context + warmup + (steps + 1) / 2.0;
            long kvBytes = (long) (batch * meanContext * c.layers() * 2L * c.kvDim() * DType.F16.byteSize());
            double boundSeconds = (weights.byteSize() + kvBytes) / copyBandwidth;
            ObjectNode r = new ObjectMapper().createObjectNode();
            r.put("batch", batch);
            r.put("context", context);
            r.put("steps", steps);
            r.put("stepMs", round(stepSeconds * 1e3));
            r.put("tokensPerSecond", round(batch / stepSeconds));
            r.put("kvBytesReadPerStep", kvBytes);
            r.put("hbmBoundMs", round(boundSeconds * 1e3));
            r.put("fractionOfHbmBound", round(boundSeconds / stepSeconds));
            long kvAtEnd = (long) batch * (capacity) * c.layers() * 2L * c.kvDim() * DType.F16.byteSize();
            r.put("attentionMsPerStep", round(parts[0] * 1e3));
            r.put("attentionKvGBps", round(kvAtEnd / parts[0] / 1e9));
            r.put("layerLinearsMsPerStep", round(parts[1] * 1e3));
            r.put("layerLinearWeightGBps", round(parts[2] / parts[1] / 1e9));
            return r;
        } finally {
            blocks.forEach(CudaKvBlock::close);
        }
    }

    /**
     * Each part of a step alone, over the same inputs, averaged over five repeats: {decode attention
     * of every layer (s), the six linear layers of every layer (s), their weight bytes}. Synchronised
     * host timing: the 32 · 6 launches cost microseconds against milliseconds of kernels.
     */
    private static double[] components(CudaBackend gpu, ModelWeights w, List<CudaKvBlock> blocks, int[] slots) {
        ModelConfig c = w.config();
        int n = slots.length;
        int repeats = 5;
        long linearBytes = 0;
        for (LayerWeights l : w.layers()) {
            for (Tensor t : new Tensor[] {l.qWeight(), l.kWeight(), l.vWeight(), l.oWeight(), l.fc1Weight(), l.fc2Weight()}) {
                linearBytes += t.data().byteSize();
            }
        }
        // Zeros: pooled buffers hold whatever the last owner left, and NaNs would not be representative.
        try (Activations x = gpu.upload(new FloatMatrix(n, c.hidden()));
             Activations q = gpu.upload(new FloatMatrix(n, c.qDim()));
             Activations k = gpu.allocate(n, c.kvDim());
             Activations v = gpu.allocate(n, c.kvDim());
             Activations attention = gpu.upload(new FloatMatrix(n, c.qDim()));
             Activations lse = gpu.allocate(n, c.heads());
             Activations inner = gpu.upload(new FloatMatrix(n, c.intermediate()))) {
            gpu.synchronize();
            long t0 = System.nanoTime();
            for (int r = 0; r < repeats; r++) {
                for (int layer = 0; layer < c.layers(); layer++) {
                    gpu.decodeAttention(q, blocks.get(layer), slots, c.heads(), attention, lse);
                }
            }
            gpu.synchronize();
            long t1 = System.nanoTime();
            for (int r = 0; r < repeats; r++) {
                for (LayerWeights l : w.layers()) {
                    gpu.linears(x, List.of(l.qWeight(), l.kWeight(), l.vWeight()),
                            Arrays.asList(l.qBias(), l.kBias(), l.vBias()), List.of(q, k, v));
                    gpu.linear(attention, l.oWeight(), l.oBias(), x);
                    gpu.linear(x, l.fc1Weight(), l.fc1Bias(), inner);
                    gpu.linear(inner, l.fc2Weight(), l.fc2Bias(), x);
                }
            }
            gpu.synchronize();
            long t2 = System.nanoTime();
            return new double[] {(t1 - t0) / 1e9 / repeats, (t2 - t1) / 1e9 / repeats, linearBytes};
        }
    }

    /** One decode step of a pre-LN OPT decoder; returns the greedy tokens. */
    private static int[] step(CudaBackend gpu, ModelWeights w, List<CudaKvBlock> blocks, int[] slots, int[] tokens,
                              int position) {
        ModelConfig c = w.config();
        int n = slots.length;
        int[] positions = new int[n];
        Arrays.fill(positions, position + ModelConfig.OPT_POSITION_OFFSET);
        float eps = (float) c.normEps();
        try (Activations x = gpu.allocate(n, c.hidden());
             Activations normed = gpu.allocate(n, c.hidden());
             Activations q = gpu.allocate(n, c.qDim());
             Activations k = gpu.allocate(n, c.kvDim());
             Activations v = gpu.allocate(n, c.kvDim());
             Activations attention = gpu.allocate(n, c.qDim());
             Activations lse = gpu.allocate(n, c.heads());
             Activations inner = gpu.allocate(n, c.intermediate());
             Activations logits = gpu.allocate(n, c.vocabSize())) {
            gpu.embed(tokens, w.tokenEmbedding(), x);
            gpu.addEmbeddingRows(positions, w.positionEmbedding(), x);
            for (int layer = 0; layer < c.layers(); layer++) {
                LayerWeights l = w.layers().get(layer);
                gpu.layerNorm(x, l.attnNormWeight(), l.attnNormBias(), eps, normed);
                gpu.linears(normed, List.of(l.qWeight(), l.kWeight(), l.vWeight()), Arrays.asList(l.qBias(), l.kBias(), l.vBias()),
                        List.of(q, k, v));
                blocks.get(layer).append(slots, k, v);
                gpu.decodeAttention(q, blocks.get(layer), slots, c.heads(), attention, lse);
                gpu.linearAdd(attention, l.oWeight(), l.oBias(), x);
                gpu.layerNorm(x, l.mlpNormWeight(), l.mlpNormBias(), eps, normed);
                gpu.linearActivated(normed, l.fc1Weight(), l.fc1Bias(), inner, c.activation());
                gpu.linearAdd(inner, l.fc2Weight(), l.fc2Bias(), x);
            }
            gpu.layerNorm(x, w.finalNormWeight(), w.finalNormBias(), eps, normed);
            gpu.linear(normed, w.lmHead(), null, logits);
            float[] zeros = new float[n];
            float[] ones = new float[n];
            Arrays.fill(ones, 1f);
            return gpu.selectTokens(logits, zeros, new int[n], ones, zeros);
        }
    }

    /**
     * Seconds per call of a 64-element kernel alone (addInPlace) and of one that first uploads a
     * one-element argument array (gatherRows), 2000 calls each, queued back to back: the second minus
     * the first is what an argument upload adds to an operation.
     */
    static double[] launchCosts(CudaBackend gpu) {
        int calls = 2000;
        int[] row = {0};
        try (Activations a = gpu.upload(new FloatMatrix(1, 64)); Activations b = gpu.upload(new FloatMatrix(1, 64))) {
            double[] seconds = new double[2];
            for (int pass = 0; pass < 2; pass++) { // the first pass warms up
                gpu.synchronize();
                long t0 = System.nanoTime();
                for (int i = 0; i < calls; i++) {
                    gpu.addInPlace(a, b);
                }
                gpu.synchronize();
                long t1 = System.nanoTime();
                for (int i = 0; i < calls; i++) {
                    gpu.gatherRows(a, row, b);
                }
                gpu.synchronize();
                long t2 = System.nanoTime();
                seconds[0] = (t1 - t0) / 1e9 / calls;
                seconds[1] = (t2 - t1) / 1e9 / calls;
            }
            return seconds;
        }
    }

    private static WeightLayout allOnDevice(ModelWeights w) {
        Map<String, WeightTier> tiers = new HashMap<>();
        for (LayerWeights l : w.layers()) {
            l.tensors().forEach(t -> tiers.put(t.name(), WeightTier.DEVICE));
        }
        return new WeightLayout(w.layers(), tiers);
    }

    private static List<Tensor> allTensors(ModelWeights w) {
        List<Tensor> all = new ArrayList<>(Arrays.asList(w.tokenEmbedding(), w.positionEmbedding(), w.finalNormWeight(),
                w.finalNormBias(), w.lmHead()));
        for (LayerWeights l : w.layers()) {
            all.addAll(Arrays.asList(l.attnNormWeight(), l.attnNormBias(), l.qWeight(), l.qBias(), l.kWeight(), l.kBias(),
                    l.vWeight(), l.vBias(), l.oWeight(), l.oBias(), l.mlpNormWeight(), l.mlpNormBias(), l.fc1Weight(),
                    l.fc1Bias(), l.fcUpWeight(), l.fcUpBias(), l.fc2Weight(), l.fc2Bias()));
        }
        return all;
    }

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }
}
