// Linear layers for decode's few rows: out[m, n] = x[m, k] · W[n, k]ᵀ (+ bias) with F16 or BF16
// weights and f32 activations, one warp per output column. Each weight is read once with 16-byte
// loads and used for every row, so the kernel runs at the memory bandwidth of the weight read; the
// activations (m · k floats) stay in L1/L2. Unlike the cuBLAS path, x is not rounded to the weight's
// type, and the bias is added here rather than by a second kernel.
// Requires k % 8 == 0, 16-byte aligned weight rows and activations (device buffers are 256-aligned).

#define SKINNY_MAX_ROWS 8

__device__ __forceinline__ void unpack8(uint4 p, int dtype, float* w) {
    unsigned words[4] = {p.x, p.y, p.z, p.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        u16 lo = (u16) (words[i] & 0xffffu);
        u16 hi = (u16) (words[i] >> 16);
        w[2 * i] = dtype == DTYPE_F16 ? f16_to_f32(lo) : bf16_to_f32(lo);
        w[2 * i + 1] = dtype == DTYPE_F16 ? f16_to_f32(hi) : bf16_to_f32(hi);
    }
}

__device__ __forceinline__ void accumulate8(const float* __restrict__ x, int m, int k, int chunk, const float* w,
                                            float* acc) {
#pragma unroll
    for (int r = 0; r < SKINNY_MAX_ROWS; r++) {
        if (r < m) {
            const float4* xr = (const float4*) (x + (i64) r * k + (i64) chunk * 8);
            float4 a = xr[0];
            float4 b = xr[1];
            acc[r] += w[0] * a.x + w[1] * a.y + w[2] * a.z + w[3] * a.w
                    + w[4] * b.x + w[5] * b.y + w[6] * b.z + w[7] * b.w;
        }
    }
}

extern "C" __global__ void skinny_linear(const float* __restrict__ x, int m, int k, const void* __restrict__ weight,
                                         int dtype, int n, const void* bias, int biasType, float* __restrict__ out) {
    int column = (int) ((blockIdx.x * (i64) blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (column >= n) {
        return;
    }
    const uint4* row = (const uint4*) ((const u16*) weight + (i64) column * k);
    float acc[SKINNY_MAX_ROWS];
#pragma unroll
    for (int r = 0; r < SKINNY_MAX_ROWS; r++) {
        acc[r] = 0.f;
    }
    int chunks = k >> 3;
    int c = lane;
    // Two loads in flight per lane before either is used: more bytes outstanding per warp.
    for (; c + 32 < chunks; c += 64) {
        uint4 p0 = __ldg(row + c);
        uint4 p1 = __ldg(row + c + 32);
        float w[8];
        unpack8(p0, dtype, w);
        accumulate8(x, m, k, c, w, acc);
        unpack8(p1, dtype, w);
        accumulate8(x, m, k, c + 32, w, acc);
    }
    if (c < chunks) {
        float w[8];
        unpack8(__ldg(row + c), dtype, w);
        accumulate8(x, m, k, c, w, acc);
    }
    float b = bias == 0 ? 0.f : load_elem(bias, biasType, column);
#pragma unroll
    for (int r = 0; r < SKINNY_MAX_ROWS; r++) {
        if (r < m) {
            float s = warp_sum(acc[r]);
            if (lane == 0) {
                out[(i64) r * n + column] = s + b;
            }
        }
    }
}
