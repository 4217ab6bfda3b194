package io.inf2.compute.cuda;

import io.inf2.compute.Activations;
import io.inf2.tensor.DType;
import io.inf2.util.Closeables;
import java.util.Arrays;
import java.util.List;

/**
 * One layer's keys and values for a batch of sequence slots, in device memory laid out
 * [slot][token][kvHeads · headDim] in F32 or F16 (fp16 storage and fp32 arithmetic, as INF² keeps
 * the cache). This is the GPU-resident place of the KV cache: {@link CudaBackend#decodeAttention}
 * answers attention over it as a partial (output, log-sum-exp) that merges with other places'.
 */
public final class CudaKvBlock implements AutoCloseable {
    private final CudaBackend backend;
    private final int slots;
    private final int maxTokens;
    private final int kvHeads;
    private final int headDim;
    private final DType dtype;
    private final DeviceBuffer keys;
    private final DeviceBuffer values;
    private final int[] lengths;

    CudaKvBlock(CudaBackend backend, CudaContext context, int slots, int maxTokens, int kvHeads, int headDim, DType dtype) {
        if (dtype != DType.F32 && dtype != DType.F16) {
            throw new IllegalArgumentException("KV block dtype must be F32 or F16, got " + dtype);
        }
        if (slots < 1 || maxTokens < 1 || kvHeads < 1 || headDim < 8 || headDim % 8 != 0
                || headDim > CudaKernels.MAX_HEAD_DIM) {
            throw new IllegalArgumentException("KV block of " + slots + " slots x " + maxTokens + " tokens x " + kvHeads
                    + " heads x " + headDim + " (head width a multiple of 8, at most " + CudaKernels.MAX_HEAD_DIM + ")");
        }
        this.backend = backend;
        this.slots = slots;
        this.maxTokens = maxTokens;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.dtype = dtype;
        long bytes = (long) slots * maxTokens * kvHeads * headDim * dtype.byteSize();
        this.keys = context.allocate(bytes, "KV block keys");
        try {
            this.values = context.allocate(bytes, "KV block values");
        } catch (RuntimeException e) {
            keys.close();
            throw e;
        }
        this.lengths = new int[slots];
    }

    /**
     * Appends row i of {@code k} and {@code v} ([n, kvDim]) to slot {@code slotOfRow[i]}; rows of
     * the same slot are appended in order (a prompt is n rows of one slot).
     */
    public void append(int[] slotOfRow, Activations k, Activations v) {
        backend.kvAppend(this, slotOfRow, k, v);
    }

    /** Tokens cached for {@code slot}. */
    public int length(int slot) {
        checkSlot(slot);
        return lengths[slot];
    }

    /** Forgets a finished sequence's tokens. */
    public void release(int slot) {
        checkSlot(slot);
        lengths[slot] = 0;
    }

    int[] reservePositions(int[] slotOfRow) {
        int[] positions = new int[slotOfRow.length];
        int[] next = lengths.clone();
        for (int i = 0; i < slotOfRow.length; i++) {
            int s = slotOfRow[i];
            checkSlot(s);
            if (next[s] >= maxTokens) {
                throw new IllegalStateException("KV block slot " + s + " is full (" + maxTokens + " tokens)");
            }
            positions[i] = next[s]++;
        }
        System.arraycopy(next, 0, lengths, 0, slots);
        return positions;
    }

    int[] lengthsOf(int[] slotOfRow) {
        return Arrays.stream(slotOfRow).map(this::length).toArray();
    }

    private void checkSlot(int slot) {
        if (slot < 0 || slot >= slots) {
            throw new IndexOutOfBoundsException("KV block slot " + slot + " outside [0, " + slots + ")");
        }
    }

    int kvHeads() {
        return kvHeads;
    }

    int headDim() {
        return headDim;
    }

    int kvDim() {
        return kvHeads * headDim;
    }

    DType dtype() {
        return dtype;
    }

    /** Elements from one slot to the next. */
    long slotStride() {
        return (long) maxTokens * kvDim();
    }

    long keysAddress() {
        return keys.address();
    }

    long valuesAddress() {
        return values.address();
    }

    @Override
    public void close() {
        Closeables.closeAllOrThrow(List.of(keys, values), null);
    }
}
