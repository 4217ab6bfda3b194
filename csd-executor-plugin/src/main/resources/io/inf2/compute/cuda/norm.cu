// Row normalisations: one block per row, fp32 statistics. Gamma and beta are checkpoint
// tensors in their stored type; betaType < 0 means no beta. When narrowed is not null the output
// is also written there in narrowedType, the next product's input.
//
// Rows whose width is a multiple of 4 and at most 4 * NORM_VECTORS * blockDim.x (8192 with 1024
// threads) are read once, four values per load, and kept in registers with their gamma and beta,
// which are loaded before the reductions so their latency overlaps them: at batch 1 a norm is one
// block on one multiprocessor, bound by the latency of its few dependent steps, not by bandwidth.
// Other rows are re-read from memory on each pass.
#define NORM_VECTORS 2

// Four consecutive elements of a checkpoint tensor from element i (a multiple of 4).
__device__ __forceinline__ float4 load4(const void* p, int dtype, i64 i) {
    if (dtype == DTYPE_F32) {
        return *(const float4*) ((const float*) p + i);
    }
    uint2 raw = *(const uint2*) ((const u16*) p + i);
    u16 h[4] = {(u16) (raw.x & 0xffffu), (u16) (raw.x >> 16), (u16) (raw.y & 0xffffu), (u16) (raw.y >> 16)};
    float f[4];
#pragma unroll
    for (int k = 0; k < 4; k++) {
        f[k] = dtype == DTYPE_F16 ? f16_to_f32(h[k]) : bf16_to_f32(h[k]);
    }
    return make_float4(f[0], f[1], f[2], f[3]);
}

__device__ __forceinline__ void store_narrowed4(void* p, int dtype, i64 i, float4 v) {
    u16 h[4];
    float f[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int k = 0; k < 4; k++) {
        h[k] = dtype == DTYPE_F16 ? f32_to_f16(f[k]) : f32_to_bf16(f[k]);
    }
    *(uint2*) ((u16*) p + i) = make_uint2(h[0] | ((unsigned) h[1] << 16), h[2] | ((unsigned) h[3] << 16));
}

__device__ __forceinline__ bool vectorised_row(int cols) {
    return (cols & 3) == 0 && cols <= 4 * NORM_VECTORS * (int) blockDim.x;
}

// This thread's NORM_VECTORS groups of four values of a row (zeros past the end), and their sum.
__device__ __forceinline__ float load_row4(const float* in, int cols, float4* v) {
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < NORM_VECTORS; j++) {
        int c = 4 * (threadIdx.x + j * blockDim.x);
        v[j] = c < cols ? *(const float4*) (in + c) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        s += v[j].x + v[j].y + v[j].z + v[j].w;
    }
    return s;
}

__device__ __forceinline__ void load_params4(const void* p, int dtype, int cols, float4* out) {
#pragma unroll
    for (int j = 0; j < NORM_VECTORS; j++) {
        int c = 4 * (threadIdx.x + j * blockDim.x);
        out[j] = c < cols && dtype >= 0 ? load4(p, dtype, c) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
}

__device__ __forceinline__ void store_row4(float* o, void* narrowed, int narrowedType, i64 rowStart, int cols,
                                           const float4* y) {
#pragma unroll
    for (int j = 0; j < NORM_VECTORS; j++) {
        int c = 4 * (threadIdx.x + j * blockDim.x);
        if (c < cols) {
            *(float4*) (o + c) = y[j];
            if (narrowed != nullptr) {
                store_narrowed4(narrowed, narrowedType, rowStart + c, y[j]);
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(1024) layer_norm(const float* x, float* out, int rows, int cols,
                                                              const void* gamma, int gammaType, const void* beta,
                                                              int betaType, float eps, void* narrowed,
                                                              int narrowedType) {
    __shared__ float scratch[32];
    bool vectorised = vectorised_row(cols);
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* in = x + (i64) r * cols;
        float* o = out + (i64) r * cols;
        if (vectorised) {
            float4 v[NORM_VECTORS], g[NORM_VECTORS], b[NORM_VECTORS], y[NORM_VECTORS];
            float s = load_row4(in, cols, v);
            load_params4(gamma, gammaType, cols, g);
            load_params4(beta, betaType, cols, b);
            float mean = block_sum(s, scratch) / cols;
            // Two passes (mean, then squared deviations) rather than E[x²] − E[x]², which cancels
            // badly for the large-mean rows OPT produces.
            float sq = 0.0f;
#pragma unroll
            for (int j = 0; j < NORM_VECTORS; j++) {
                if (4 * (threadIdx.x + j * blockDim.x) < cols) {
                    float dx = v[j].x - mean, dy = v[j].y - mean, dz = v[j].z - mean, dw = v[j].w - mean;
                    sq += dx * dx + dy * dy + dz * dz + dw * dw;
                }
            }
            float inv = rsqrtf(block_sum(sq, scratch) / cols + eps);
#pragma unroll
            for (int j = 0; j < NORM_VECTORS; j++) {
                y[j] = make_float4((v[j].x - mean) * inv * g[j].x + b[j].x, (v[j].y - mean) * inv * g[j].y + b[j].y,
                                   (v[j].z - mean) * inv * g[j].z + b[j].z, (v[j].w - mean) * inv * g[j].w + b[j].w);
            }
            store_row4(o, narrowed, narrowedType, (i64) r * cols, cols, y);
            continue;
        }
        float s = 0.0f;
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            s += in[c];
        }
        float mean = block_sum(s, scratch) / cols;
        float sq = 0.0f;
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            float d = in[c] - mean;
            sq += d * d;
        }
        float inv = rsqrtf(block_sum(sq, scratch) / cols + eps);
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            float betaValue = betaType < 0 ? 0.0f : load_elem(beta, betaType, c);
            float y = (in[c] - mean) * inv * load_elem(gamma, gammaType, c) + betaValue;
            o[c] = y;
            if (narrowed != nullptr) {
                store_elem(narrowed, narrowedType, (i64) r * cols + c, y);
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(1024) rms_norm(const float* x, float* out, int rows, int cols,
                                                            const void* gamma, int gammaType, float eps,
                                                            void* narrowed, int narrowedType) {
    __shared__ float scratch[32];
    bool vectorised = vectorised_row(cols);
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* in = x + (i64) r * cols;
        float* o = out + (i64) r * cols;
        if (vectorised) {
            float4 v[NORM_VECTORS], g[NORM_VECTORS], y[NORM_VECTORS];
            load_row4(in, cols, v);
            load_params4(gamma, gammaType, cols, g);
            float sq = 0.0f;
#pragma unroll
            for (int j = 0; j < NORM_VECTORS; j++) {
                sq += v[j].x * v[j].x + v[j].y * v[j].y + v[j].z * v[j].z + v[j].w * v[j].w;
            }
            float inv = rsqrtf(block_sum(sq, scratch) / cols + eps);
#pragma unroll
            for (int j = 0; j < NORM_VECTORS; j++) {
                y[j] = make_float4(g[j].x * (v[j].x * inv), g[j].y * (v[j].y * inv), g[j].z * (v[j].z * inv),
                                   g[j].w * (v[j].w * inv));
            }
            store_row4(o, narrowed, narrowedType, (i64) r * cols, cols, y);
            continue;
        }
        float sq = 0.0f;
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            sq += in[c] * in[c];
        }
        float inv = rsqrtf(block_sum(sq, scratch) / cols + eps);
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            float y = load_elem(gamma, gammaType, c) * (in[c] * inv);
            o[c] = y;
            if (narrowed != nullptr) {
                store_elem(narrowed, narrowedType, (i64) r * cols + c, y);
            }
        }
    }
}
