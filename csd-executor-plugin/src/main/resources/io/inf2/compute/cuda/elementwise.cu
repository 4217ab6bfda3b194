// Row gathers and element-wise kernels over f32 activations. Launch shapes are chosen in
// io.inf2.compute.cuda.CudaKernels; every kernel loops so any grid covers any size.

// out[r] = table[idx[r]] (accumulate == 0) or out[r] += table[idx[r]]; grid (col blocks, rows).
extern "C" __global__ void embed_rows(float* out, const int* idx, int rows, const void* table, int dtype,
                                      int cols, int accumulate) {
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        i64 base = (i64) idx[r] * cols;
        for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += gridDim.x * blockDim.x) {
            float v = load_elem(table, dtype, base + c);
            i64 o = (i64) r * cols + c;
            out[o] = accumulate ? out[o] + v : v;
        }
    }
}

// dst[i] = src[rows[i]] for rows of cols floats.
extern "C" __global__ void gather_rows(const float* src, const int* rows, int n, int cols, float* dst) {
    for (int r = blockIdx.y; r < n; r += gridDim.y) {
        const float* s = src + (i64) rows[r] * cols;
        float* d = dst + (i64) r * cols;
        for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += gridDim.x * blockDim.x) {
            d[c] = s[c];
        }
    }
}

extern "C" __global__ void bias_add(float* x, i64 rows, int cols, const void* bias, int dtype) {
    i64 n = rows * cols;
    for (i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64) gridDim.x * blockDim.x) {
        x[i] += load_elem(bias, dtype, i % cols);
    }
}

// The output of one product over adjacent weights, src [rows, total], split by columns: the first
// w0 columns to out0 [rows, w0] (+ bias0), the next w1 to out1, the rest (w2) to out2. A null bias
// adds nothing; unused outputs have width 0.
extern "C" __global__ void split_columns(const float* src, int rows, int total, float* out0, int w0, const void* bias0,
                                         float* out1, int w1, const void* bias1, float* out2, int w2,
                                         const void* bias2, int biasType) {
    i64 n = (i64) rows * total;
    for (i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64) gridDim.x * blockDim.x) {
        int r = (int) (i / total);
        int c = (int) (i - (i64) r * total);
        float* out;
        const void* bias;
        int width;
        if (c < w0) {
            out = out0; bias = bias0; width = w0;
        } else if (c < w0 + w1) {
            c -= w0;
            out = out1; bias = bias1; width = w1;
        } else {
            c -= w0 + w1;
            out = out2; bias = bias2; width = w2;
        }
        float v = src[i];
        if (bias != nullptr) {
            v += load_elem(bias, biasType, c);
        }
        out[(i64) r * width + c] = v;
    }
}

// acc[i] += Σ_s slices[s · n + i] + bias[i % cols]: products over k-slices summed into an
// accumulator with their bias (a null bias adds nothing).
extern "C" __global__ void add_slices(float* acc, const float* slices, int count, i64 n, int cols, const void* bias,
                                      int biasType) {
    for (i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64) gridDim.x * blockDim.x) {
        float sum = 0.0f;
        for (int s = 0; s < count; s++) {
            sum += slices[s * n + i];
        }
        if (bias != nullptr) {
            sum += load_elem(bias, biasType, i % cols);
        }
        acc[i] += sum;
    }
}

extern "C" __global__ void add_in_place(float* acc, const float* x, i64 n) {
    for (i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64) gridDim.x * blockDim.x) {
        acc[i] += x[i];
    }
}

// The activations by code: 0 = ReLU, 1 = the exact (erf) GELU that OPT's "gelu" and PyTorch's
// default use, not the tanh approximation.
#define ACTIVATION_RELU 0
#define ACTIVATION_GELU 1

// x = act(x + bias) in place over [rows, cols] (a null bias adds nothing). When narrowed is not null
// the result is also written there in narrowedType, the next product's input.
extern "C" __global__ void bias_activation(float* x, i64 rows, int cols, const void* bias, int biasType, int kind,
                                           void* narrowed, int narrowedType) {
    i64 n = rows * cols;
    for (i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64) gridDim.x * blockDim.x) {
        float v = x[i];
        if (bias != nullptr) {
            v += load_elem(bias, biasType, i % cols);
        }
        v = kind == ACTIVATION_RELU ? fmaxf(v, 0.0f) : 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
        x[i] = v;
        if (narrowed != nullptr) {
            store_elem(narrowed, narrowedType, i, v);
        }
    }
}

// gate = silu(gate) * up; also written to narrowed (in narrowedType) when that is not null.
extern "C" __global__ void silu_mul(float* gate, const float* up, i64 n, void* narrowed, int narrowedType) {
    for (i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64) gridDim.x * blockDim.x) {
        float v = gate[i];
        v = v / (1.0f + expf(-v)) * up[i];
        gate[i] = v;
        if (narrowed != nullptr) {
            store_elem(narrowed, narrowedType, i, v);
        }
    }
}

// Hugging Face rotate-half: in each head, (x[i], x[i + half]) rotates by the angle of
// (positions[row], i); cos and sin are the RotaryTable's [maxPositions, half] arrays.
extern "C" __global__ void rotary(float* x, int rows, int heads, int headDim, const float* cosTable,
                                  const float* sinTable, const int* positions) {
    int half = headDim / 2;
    i64 n = (i64) rows * heads * half;
    for (i64 t = (i64) blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (i64) gridDim.x * blockDim.x) {
        int i = (int) (t % half);
        i64 rh = t / half;
        int row = (int) (rh / heads);
        float* head = x + rh * headDim;
        i64 angle = (i64) positions[row] * half + i;
        float c = cosTable[angle];
        float s = sinTable[angle];
        float a = head[i];
        float b = head[i + half];
        head[i] = a * c - b * s;
        head[i + half] = b * c + a * s;
    }
}

// f32 activations to the 16-bit type of a weight, so cuBLAS multiplies like with like.
extern "C" __global__ void convert_from_f32(const float* in, void* out, int dtype, i64 n) {
    for (i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64) gridDim.x * blockDim.x) {
        store_elem(out, dtype, i, in[i]);
    }
}

// Appends rows of keys and values to a device KV cache laid out [slot][token][kvDim] in dtype:
// row r goes to slot slots[r] at token positions[r].
extern "C" __global__ void kv_store(void* kCache, void* vCache, int dtype, i64 slotStride, int kvDim,
                                    const float* keys, const float* values, const int* slots,
                                    const int* positions, int rows) {
    i64 n = (i64) rows * kvDim;
    for (i64 t = (i64) blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (i64) gridDim.x * blockDim.x) {
        int r = (int) (t / kvDim);
        int c = (int) (t % kvDim);
        i64 at = (i64) slots[r] * slotStride + (i64) positions[r] * kvDim + c;
        store_elem(kCache, dtype, at, keys[t]);
        store_elem(vCache, dtype, at, values[t]);
    }
}
