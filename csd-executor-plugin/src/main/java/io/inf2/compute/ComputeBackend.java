package io.inf2.compute;

import io.inf2.tensor.FloatMatrix;
import io.inf2.tensor.Tensor;
import java.util.List;

/**
 * The operations the layer math is written against, once, for every backend. Weights are
 * checkpoint tensors (F32, F16 or BF16 as stored); arithmetic is f32. A backend decides where a
 * weight's bytes must be to use them (the CPU reads the mapping directly; a GPU resolves them through
 * its placement). Unless stated, an output may not alias an input.
 */
public interface ComputeBackend extends AutoCloseable {

    /** "cpu" or "cuda". */
    String name();

    /** A short description for logs and results (threads, device name, ...). */
    String description();

    Activations allocate(int rows, int cols);

    /** Host copy of {@code a} (the CPU backend may return a view of the same memory). */
    FloatMatrix download(Activations a);

    /** {@code host} in this backend's memory (the CPU backend may wrap it without copying). */
    Activations upload(FloatMatrix host);

    /** out[r] = table[tokens[r]] for a [vocab, cols] table. */
    void embed(int[] tokens, Tensor table, Activations out);

    /** x[r] += table[indices[r]]; learned position embeddings. */
    void addEmbeddingRows(int[] indices, Tensor table, Activations x);

    /** out = x · wᵀ (+ bias): x [m, k], w [n, k], bias [n] or null, out [m, n]. */
    void linear(Activations x, Tensor weight, Tensor bias, Activations out);

    /**
     * Several linear maps of one input (q, k and v; gate and up): {@code outs[i] = x · weights[i]ᵀ
     * (+ biases[i])}; {@code biases} may hold nulls. A backend may share work between them (the
     * input's conversion, one product over weights it keeps side by side).
     */
    default void linears(Activations x, List<Tensor> weights, List<Tensor> biases, List<Activations> outs) {
        requireOnePerWeight(weights, biases, outs);
        for (int i = 0; i < weights.size(); i++) {
            linear(x, weights.get(i), biases.get(i), outs.get(i));
        }
    }

    /** out = act(x · wᵀ (+ bias)) for {@code activation} "relu" or "gelu" (see {@link #activate}). */
    default void linearActivated(Activations x, Tensor weight, Tensor bias, Activations out, String activation) {
        linear(x, weight, bias, out);
        activate(out, activation);
    }

    /** The argument check of {@link #linears}: a bias (or null) and an output for every weight. */
    static void requireOnePerWeight(List<Tensor> weights, List<Tensor> biases, List<Activations> outs) {
        if (weights.size() != biases.size() || weights.size() != outs.size()) {
            throw new IllegalArgumentException("linears: " + weights.size() + " weights, " + biases.size() + " biases and "
                    + outs.size() + " outputs");
        }
    }

    /**
     * acc += x · wᵀ (+ bias): a projection added to the residual stream. A backend may accumulate in
     * the product itself instead of writing and adding a temporary.
     */
    default void linearAdd(Activations x, Tensor weight, Tensor bias, Activations acc) {
        try (Activations projected = allocate(acc.rows(), acc.cols())) {
            linear(x, weight, bias, projected);
            addInPlace(acc, projected);
        }
    }

    void layerNorm(Activations x, Tensor gamma, Tensor beta, float eps, Activations out);

    void rmsNorm(Activations x, Tensor gamma, float eps, Activations out);

    /** acc += x, element-wise. */
    void addInPlace(Activations acc, Activations x);

    /** x = relu(x) or gelu(x) in place; {@code kind} is "relu" or "gelu". */
    void activate(Activations x, String kind);

    /** gate = silu(gate) * up, in place. */
    void siluMul(Activations gate, Activations up);

    /** Rotary embedding in place on each head of each row; row r is at {@code positions[r]}. */
    void rotary(Activations x, int heads, RotaryTable table, int[] positions);

    /**
     * Causal self-attention within each sequence of a packed prefill batch. Sequence s occupies rows
     * [starts[s], starts[s] + lengths[s]) of q [T, heads·headDim], k and v [T, kvHeads·headDim].
     * Query head h reads KV head h / (heads / kvHeads). Scores are scaled by 1/√headDim.
     */
    void causalAttention(Activations q, Activations k, Activations v, int[] starts, int[] lengths,
                         int heads, int kvHeads, int headDim, Activations out);

    /** dst[i] = src[rows[i]]. */
    void gatherRows(Activations src, int[] rows, Activations dst);

    /**
     * The arg max of each row of {@code logits} ([rows, vocab]), the lowest id on ties: greedy
     * decoding without bringing the logits to the host. NaN is skipped; a row whose largest value is
     * not finite is an error.
     */
    default int[] greedyTokens(Activations logits) {
        FloatMatrix host = download(logits);
        int vocab = host.cols();
        int[] tokens = new int[host.rows()];
        for (int r = 0; r < tokens.length; r++) {
            tokens[r] = finiteArgmax(host.data(), r * vocab, vocab);
            if (tokens[r] < 0) {
                throw new IllegalArgumentException("greedyTokens: row " + r + " of the logits has no finite value");
            }
        }
        return tokens;
    }

    /**
     * The greedy rule every path shares, so a sequence gets the same token on each: the lowest index
     * of the largest of {@code values[offset, offset + n)}, NaN skipped (as on the GPU); -1 when that
     * largest value is not finite.
     */
    static int finiteArgmax(float[] values, int offset, int n) {
        int best = -1;
        float max = Float.NEGATIVE_INFINITY;
        for (int t = 0; t < n; t++) {
            if (values[offset + t] > max) { // NaN never is
                max = values[offset + t];
                best = t;
            }
        }
        return Float.isFinite(max) ? best : -1;
    }

    /** Free memory of the compute device, for deriving a placement from budgets; 0 for a backend without its own. */
    default long deviceMemoryFree() {
        return 0;
    }

    /**
     * Where the layer weights live (FlexGen's weight placement). DEVICE weights stay in this backend's
     * memory; the others are read where the engine's weight store holds them and, on a backend with
     * memory of its own, copied in per layer as {@link #stageWeights} says. A backend without memory of
     * its own (the CPU) takes only HOST and STORAGE.
     */
    void placeWeights(WeightLayout layout);

    /**
     * The schedule will use these weights of one layer next: a backend that copies weights in starts
     * the copy now and returns without waiting for it.
     */
    default void stageWeights(List<Tensor> layer) {
    }

    /** Every use of these staged weights is queued: their memory may be reused once that work has run. */
    default void retireWeights(List<Tensor> layer) {
    }

    @Override
    void close();
}
