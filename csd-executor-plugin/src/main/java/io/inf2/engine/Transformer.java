package io.inf2.engine;

import io.inf2.compute.Activations;
import io.inf2.compute.ComputeBackend;
import io.inf2.compute.RotaryTable;
import io.inf2.kv.BackendKvCache;
import io.inf2.kv.KvCache;
import io.inf2.kv.KvProjector;
import io.inf2.model.Architecture;
import io.inf2.model.LayerWeights;
import io.inf2.model.ModelConfig;
import io.inf2.model.ModelWeights;
import io.inf2.tensor.FloatMatrix;
import java.util.Arrays;
import java.util.List;

/**
 * The decoder stack of OPT and LLaMA, written once against {@link ComputeBackend}. Prefill runs a
 * packed batch of prompts (rows of all sequences back to back); decode runs one token per sequence.
 * Attention over cached tokens is answered by the {@link KvCache}, wherever it lives: a host-side
 * place gets q, k, v (and the layer input) downloaded and returns the output to upload; a
 * {@link BackendKvCache} takes them where they are, so nothing crosses to the host.
 */
final class Transformer {
    private final ModelConfig config;
    private final ModelWeights weights;
    private final WeightStore store;
    private final ComputeBackend backend;
    private final RotaryTable rotary;
    private final boolean llama;
    private final float normEps;
    /** Decode parks the hidden states of GPU batches not computing in host memory between layers. */
    private final boolean activationsInHost;

    Transformer(ModelWeights weights, ComputeBackend backend) {
        this(weights, new ResidentWeights(weights), backend, false);
    }

    Transformer(ModelWeights weights, WeightStore store, ComputeBackend backend, boolean activationsInHost) {
        this.config = weights.config();
        this.activationsInHost = activationsInHost;
        this.weights = weights;
        this.store = store;
        this.backend = backend;
        this.llama = config.architecture() == Architecture.LLAMA;
        this.rotary = llama ? RotaryTable.forModel(config) : null;
        this.normEps = (float) config.normEps();
    }

    ModelConfig config() {
        return config;
    }

    /**
     * Runs the prompts through every layer, storing their K and V in {@code cache}.
     *
     * @return logits of each prompt's last token, [prompts.length, vocab]
     */
    FloatMatrix prefill(int[] slots, int[][] prompts, KvCache cache) {
        int total = 0;
        int[] starts = new int[prompts.length];
        int[] lengths = new int[prompts.length];
        for (int s = 0; s < prompts.length; s++) {
            starts[s] = total;
            lengths[s] = prompts[s].length;
            total += prompts[s].length;
        }
        int[] tokens = new int[total];
        int[] positions = new int[total];
        for (int s = 0; s < prompts.length; s++) {
            System.arraycopy(prompts[s], 0, tokens, starts[s], lengths[s]);
            for (int i = 0; i < lengths[s]; i++) {
                positions[starts[s] + i] = i;
            }
        }
        BackendKvCache onBackend = onThisBackend(cache);
        Activations x = embed(tokens, positions);
        for (int layer = 0; layer < config.layers(); layer++) {
            LayerWeights w = enterLayer(layer);
            int l = layer;
            attentionBlock(x, w, positions, (n, q, k, v, attnOut) -> {
                backend.causalAttention(q, k, v, starts, lengths, config.heads(), config.kvHeads(), config.headDim(), attnOut);
                if (onBackend != null) {
                    onBackend.writePrompts(l, slots, starts, lengths, k, v, n);
                    return;
                }
                FloatMatrix hk = backend.download(k);
                FloatMatrix hv = backend.download(v);
                FloatMatrix hx = cache.keepsLayerInput() ? backend.download(n) : null;
                for (int s = 0; s < prompts.length; s++) {
                    int from = starts[s];
                    int to = from + lengths[s];
                    cache.writePrompt(l, slots[s], hk.rows(from, to), hv.rows(from, to), hx == null ? null : hx.rows(from, to));
                }
            });
            mlpBlock(x, w);
            leaveLayer(layer, w);
        }
        int[] last = new int[prompts.length];
        for (int s = 0; s < prompts.length; s++) {
            last[s] = starts[s] + lengths[s] - 1;
        }
        try (Activations lastRows = backend.allocate(prompts.length, x.cols())) {
            backend.gatherRows(x, last, lastRows);
            x.close();
            try (Activations logits = logits(lastRows)) {
                return backend.download(logits);
            }
        }
    }

    /**
     * One decode step in the block schedule: token {@code tokens[i]} of sequence {@code slots[i]} at
     * {@code positions[i]}. The rows are split into GPU batches of {@code gpuBatchSize}; for each layer
     * its weights are acquired once (the next layer's prefetch starting meanwhile) and used by every
     * GPU batch before moving on: FlexGen's zig-zag order.
     *
     * @return logits, [slots.length, vocab]
     */
    FloatMatrix decode(int[] slots, int[] tokens, int[] positions, KvCache cache, int gpuBatchSize) {
        Activations[] xs = decodeLayers(slots, tokens, positions, cache, gpuBatchSize);
        FloatMatrix logits = new FloatMatrix(slots.length, config.vocabSize());
        for (int b = 0; b < xs.length; b++) {
            try (Activations x = xs[b]; Activations part = logits(x)) {
                FloatMatrix host = backend.download(part);
                System.arraycopy(host.data(), 0, logits.data(), b * gpuBatchSize * config.vocabSize(),
                        host.rows() * config.vocabSize());
            }
        }
        return logits;
    }

    /**
     * {@link #decode} for sequences that all decode greedily: the backend picks each row's arg max
     * where the logits are, so only the token ids come back to the host.
     */
    int[] decodeGreedy(int[] slots, int[] tokens, int[] positions, KvCache cache, int gpuBatchSize) {
        Activations[] xs = decodeLayers(slots, tokens, positions, cache, gpuBatchSize);
        int[] next = new int[slots.length];
        for (int b = 0; b < xs.length; b++) {
            try (Activations x = xs[b]; Activations part = logits(x)) {
                int[] picked = backend.greedyTokens(part);
                System.arraycopy(picked, 0, next, b * gpuBatchSize, picked.length);
            }
        }
        return next;
    }

    /** The decoder stack of a decode step in the block schedule: the last hidden state of each GPU batch. */
    private Activations[] decodeLayers(int[] slots, int[] tokens, int[] positions, KvCache cache, int gpuBatchSize) {
        int rows = slots.length;
        int batches = (rows + gpuBatchSize - 1) / gpuBatchSize;
        Activations[] xs = new Activations[batches];
        int[][] batchSlots = new int[batches][];
        int[][] batchPositions = new int[batches][];
        for (int b = 0; b < batches; b++) {
            int from = b * gpuBatchSize;
            int to = Math.min(rows, from + gpuBatchSize);
            batchSlots[b] = java.util.Arrays.copyOfRange(slots, from, to);
            batchPositions[b] = java.util.Arrays.copyOfRange(positions, from, to);
            xs[b] = embed(java.util.Arrays.copyOfRange(tokens, from, to), batchPositions[b]);
        }
        BackendKvCache onBackend = onThisBackend(cache);
        FloatMatrix[] parked = new FloatMatrix[batches];
        for (int layer = 0; layer < config.layers(); layer++) {
            LayerWeights w = enterLayer(layer);
            int l = layer;
            for (int b = 0; b < batches; b++) {
                int[] bs = batchSlots[b];
                if (parked[b] != null) {
                    xs[b] = backend.upload(parked[b]);
                    parked[b] = null;
                }
                attentionBlock(xs[b], w, batchPositions[b], (n, q, k, v, attnOut) -> {
                    if (onBackend != null) {
                        onBackend.appendAndAttend(l, bs, q, k, v, n, attnOut);
                        return;
                    }
                    FloatMatrix out = new FloatMatrix(bs.length, config.qDim());
                    cache.appendAndAttend(l, bs, backend.download(q), backend.download(k), backend.download(v),
                            cache.keepsLayerInput() ? backend.download(n) : null, out);
                    try (Activations uploaded = backend.upload(out)) {
                        copy(uploaded, attnOut);
                    }
                });
                mlpBlock(xs[b], w);
                if (activationsInHost && batches > 1 && layer + 1 < config.layers()) {
                    parked[b] = backend.download(xs[b]);
                    xs[b].close();
                    xs[b] = null;
                }
            }
            leaveLayer(layer, w);
        }
        return xs;
    }

    /** One decode step with all rows in one GPU batch. */
    FloatMatrix decode(int[] slots, int[] tokens, int[] positions, KvCache cache) {
        return decode(slots, tokens, positions, cache, Math.max(1, slots.length));
    }

    /**
     * The cache as a {@link BackendKvCache} when it lives in this transformer's backend (then q, k, v
     * and the attention output stay there), or null for a host-side place.
     */
    private BackendKvCache onThisBackend(KvCache cache) {
        if (!(cache instanceof BackendKvCache onBackend)) {
            return null;
        }
        if (onBackend.backend() != backend) {
            throw new IllegalArgumentException("the KV cache lives in the memory of " + onBackend.backend().description()
                    + " but the model runs on " + backend.description());
        }
        return onBackend;
    }

    /**
     * Waits for a layer's weights in host memory, has the backend stage them, and starts reading the
     * next layer; when the next layer is already in host memory its staging starts too, so that on a
     * GPU its copy runs during this layer's compute.
     */
    private LayerWeights enterLayer(int layer) {
        LayerWeights w = store.acquire(layer);
        backend.stageWeights(w.tensors());
        int next = (layer + 1) % config.layers();
        store.prefetch(next);
        if (store.ready(next)) {
            backend.stageWeights(store.acquire(next).tensors());
        }
        return w;
    }

    /**
     * Every use of this layer's weights is queued: the next layer (after the last, the first of the
     * next step) is staged now if it was not ready earlier, and this layer's staging memory is handed
     * back behind its queued work.
     */
    private void leaveLayer(int layer, LayerWeights w) {
        LayerWeights next = store.acquire((layer + 1) % config.layers());
        backend.stageWeights(next.tensors());
        backend.retireWeights(w.tensors());
        store.release(layer);
    }

    /** Recomputes K and V from a layer's normalized input, for the X-cache. */
    KvProjector projector() {
        return (layer, layerInput, firstPosition, keysOut, valuesOut) -> {
            LayerWeights w = store.acquire(layer);
            int rows = layerInput.rows();
            int[] positions = new int[rows];
            for (int i = 0; i < rows; i++) {
                positions[i] = firstPosition + i;
            }
            try (Activations n = backend.upload(layerInput);
                 Activations k = backend.allocate(rows, config.kvDim());
                 Activations v = backend.allocate(rows, config.kvDim())) {
                backend.linears(n, List.of(w.kWeight(), w.vWeight()), Arrays.asList(w.kBias(), w.vBias()), List.of(k, v));
                if (llama) {
                    backend.rotary(k, config.kvHeads(), rotary, positions);
                }
                FloatMatrix hk = backend.download(k);
                FloatMatrix hv = backend.download(v);
                System.arraycopy(hk.data(), 0, keysOut.data(), 0, rows * config.kvDim());
                System.arraycopy(hv.data(), 0, valuesOut.data(), 0, rows * config.kvDim());
            }
        };
    }

    private Activations embed(int[] tokens, int[] positions) {
        int rows = tokens.length;
        Activations x;
        if (weights.projectIn() != null) {
            try (Activations small = backend.allocate(rows, config.wordEmbedDim())) {
                backend.embed(tokens, weights.tokenEmbedding(), small);
                x = backend.allocate(rows, config.hidden());
                backend.linear(small, weights.projectIn(), null, x);
            }
        } else {
            x = backend.allocate(rows, config.hidden());
            backend.embed(tokens, weights.tokenEmbedding(), x);
        }
        if (weights.positionEmbedding() != null) {
            int[] ids = new int[rows];
            for (int i = 0; i < rows; i++) {
                ids[i] = positions[i] + ModelConfig.OPT_POSITION_OFFSET;
            }
            backend.addEmbeddingRows(ids, weights.positionEmbedding(), x);
        }
        return x;
    }

    /** What attention does with the projected q, k, v of a block; fills attnOut [rows, qDim]. */
    @FunctionalInterface
    private interface AttentionStep {
        void run(Activations normalizedInput, Activations q, Activations k, Activations v, Activations attnOut);
    }

    private void attentionBlock(Activations x, LayerWeights w, int[] positions, AttentionStep step) {
        int rows = x.rows();
        try (Activations n = backend.allocate(rows, config.hidden());
             Activations q = backend.allocate(rows, config.qDim());
             Activations k = backend.allocate(rows, config.kvDim());
             Activations v = backend.allocate(rows, config.kvDim());
             Activations attn = backend.allocate(rows, config.qDim())) {
            Activations projectionInput;
            if (config.preLayerNorm()) {
                norm(x, w.attnNormWeight(), w.attnNormBias(), n);
                projectionInput = n;
            } else {
                projectionInput = x;
            }
            backend.linears(projectionInput, List.of(w.qWeight(), w.kWeight(), w.vWeight()),
                    Arrays.asList(w.qBias(), w.kBias(), w.vBias()), List.of(q, k, v));
            if (llama) {
                backend.rotary(q, config.heads(), rotary, positions);
                backend.rotary(k, config.kvHeads(), rotary, positions);
            }
            step.run(projectionInput, q, k, v, attn);
            backend.linearAdd(attn, w.oWeight(), w.oBias(), x);
            if (!config.preLayerNorm()) {
                norm(x, w.attnNormWeight(), w.attnNormBias(), n);
                copy(n, x);
            }
        }
    }

    private void mlpBlock(Activations x, LayerWeights w) {
        int rows = x.rows();
        try (Activations n = backend.allocate(rows, config.hidden());
             Activations inner = backend.allocate(rows, config.intermediate())) {
            Activations input;
            if (config.preLayerNorm()) {
                norm(x, w.mlpNormWeight(), w.mlpNormBias(), n);
                input = n;
            } else {
                input = x;
            }
            if (llama) {
                try (Activations up = backend.allocate(rows, config.intermediate())) {
                    backend.linears(input, List.of(w.fc1Weight(), w.fcUpWeight()), Arrays.asList(w.fc1Bias(), w.fcUpBias()),
                            List.of(inner, up));
                    backend.siluMul(inner, up);
                }
            } else {
                backend.linearActivated(input, w.fc1Weight(), w.fc1Bias(), inner, config.activation());
            }
            backend.linearAdd(inner, w.fc2Weight(), w.fc2Bias(), x);
            if (!config.preLayerNorm()) {
                norm(x, w.mlpNormWeight(), w.mlpNormBias(), n);
                copy(n, x);
            }
        }
    }

    /** The logits [rows, vocab] of the last hidden states {@code x}, on the backend; the caller closes them. */
    private Activations logits(Activations x) {
        int rows = x.rows();
        Activations logits = backend.allocate(rows, config.vocabSize());
        try (Activations normed = backend.allocate(rows, config.hidden())) {
            Activations head = x;
            if (weights.finalNormWeight() != null) {
                norm(x, weights.finalNormWeight(), weights.finalNormBias(), normed);
                head = normed;
            }
            if (weights.projectOut() != null) {
                try (Activations projected = backend.allocate(rows, config.wordEmbedDim())) {
                    backend.linear(head, weights.projectOut(), null, projected);
                    backend.linear(projected, weights.lmHead(), null, logits);
                }
            } else {
                backend.linear(head, weights.lmHead(), null, logits);
            }
            return logits;
        } catch (RuntimeException e) {
            logits.close();
            throw e;
        }
    }

    private void norm(Activations x, io.inf2.tensor.Tensor weight, io.inf2.tensor.Tensor bias, Activations out) {
        if (llama) {
            backend.rmsNorm(x, weight, normEps, out);
        } else {
            backend.layerNorm(x, weight, bias, normEps, out);
        }
    }

    private void copy(Activations src, Activations dst) {
        int[] rows = new int[src.rows()];
        for (int i = 0; i < rows.length; i++) {
            rows[i] = i;
        }
        backend.gatherRows(src, rows, dst);
    }
}
