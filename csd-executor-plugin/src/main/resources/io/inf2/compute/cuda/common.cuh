// Shared by every INF2 CUDA module: prepended to each module's source before NVRTC compiles it,
// so the modules need no include path. Element types follow io.inf2.tensor.DType and
// io.inf2.compute.cuda.CudaKernels: 0 = F32, 1 = F16, 2 = BF16 (all little-endian in memory).

#define DTYPE_F32 0
#define DTYPE_F16 1
#define DTYPE_BF16 2
#define FULL_MASK 0xffffffffu
#define NEG_INF __int_as_float(0xff800000)

typedef unsigned short u16;
typedef long long i64;

__device__ __forceinline__ float f16_to_f32(u16 h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ u16 f32_to_f16(float f) {
    u16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

__device__ __forceinline__ float bf16_to_f32(u16 b) {
    return __uint_as_float(((unsigned) b) << 16);
}

// Round to nearest even, NaN kept quiet: the same rule as DType.floatToBf16 on the host.
__device__ __forceinline__ u16 f32_to_bf16(float f) {
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (u16) ((u >> 16) | 0x40u);
    }
    return (u16) ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ float load_elem(const void* p, int dtype, i64 i) {
    if (dtype == DTYPE_F32) {
        return ((const float*) p)[i];
    }
    u16 bits = ((const u16*) p)[i];
    return dtype == DTYPE_F16 ? f16_to_f32(bits) : bf16_to_f32(bits);
}

__device__ __forceinline__ void store_elem(void* p, int dtype, i64 i, float v) {
    if (dtype == DTYPE_F32) {
        ((float*) p)[i] = v;
    } else {
        ((u16*) p)[i] = dtype == DTYPE_F16 ? f32_to_f16(v) : f32_to_bf16(v);
    }
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) {
        v += __shfl_xor_sync(FULL_MASK, v, o);
    }
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) {
        v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
    }
    return v;
}

// Block-wide reductions for blocks of whole warps (at most 32). Every thread gets the result.
// scratch holds 32 floats; the leading barrier lets callers reuse it back to back.
__device__ float block_sum(float v, float* scratch) {
    int lane = threadIdx.x & 31;
    int warp = threadIdx.x >> 5;
    int warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) {
        scratch[warp] = v;
    }
    __syncthreads();
    float total = lane < warps ? scratch[lane] : 0.0f;
    return warp_sum(total);
}

__device__ float block_max(float v, float* scratch) {
    int lane = threadIdx.x & 31;
    int warp = threadIdx.x >> 5;
    int warps = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) {
        scratch[warp] = v;
    }
    __syncthreads();
    float m = lane < warps ? scratch[lane] : NEG_INF;
    return warp_max(m);
}
