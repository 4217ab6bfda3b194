// Attention: causal prefill over packed sequences, split decode attention over a device KV cache
// returning partial (output, log-sum-exp) pairs, and the exact merge of such partials.
// Softmax statistics are fp32 throughout; query head h reads KV head h / (heads / kvHeads).

#define MAX_HEAD_DIM 256
#define DIMS_PER_LANE (MAX_HEAD_DIM / 32)
#define KEY_TILE 32
#define PREFILL_WARPS 8

// One warp per query row, PREFILL_WARPS consecutive rows of one sequence and head per block; the
// block stages tiles of KEY_TILE keys and values in shared memory, and each warp keeps an online
// softmax (running max m, running sum l, unnormalised output acc) with lane j scoring key j of a
// tile. Grid: (ceil(maxLength / PREFILL_WARPS), heads, sequences). Dynamic shared memory:
// (KEY_TILE * (headDim + 1) + KEY_TILE * headDim + PREFILL_WARPS * headDim) floats.
extern "C" __global__ void causal_attention(const float* q, const float* k, const float* v, float* out,
                                            const int* starts, const int* lengths, int heads, int kvHeads,
                                            int headDim, float scale) {
    extern __shared__ float smem[];
    int len = lengths[blockIdx.z];
    int start = starts[blockIdx.z];
    int head = blockIdx.y;
    int q0 = blockIdx.x * PREFILL_WARPS;
    if (q0 >= len) {
        return;
    }
    int warp = threadIdx.x >> 5;
    int lane = threadIdx.x & 31;
    int kvHead = head / (heads / kvHeads);
    i64 qStride = (i64) heads * headDim;
    i64 kvStride = (i64) kvHeads * headDim;
    int keyPitch = headDim + 1; // the pad keeps lanes reading different keys on different banks
    float* ks = smem;
    float* vs = ks + KEY_TILE * keyPitch;
    float* qs = vs + KEY_TILE * headDim + warp * headDim;

    int row = q0 + warp;
    bool active = row < len;
    for (int d = lane; d < headDim; d += 32) {
        qs[d] = active ? q[(start + row) * qStride + (i64) head * headDim + d] * scale : 0.0f;
    }
    float m = NEG_INF;
    float l = 0.0f;
    float acc[DIMS_PER_LANE];
#pragma unroll
    for (int i = 0; i < DIMS_PER_LANE; i++) {
        acc[i] = 0.0f;
    }
    int lastRow = min(q0 + PREFILL_WARPS, len) - 1;
    for (int t0 = 0; t0 <= lastRow; t0 += KEY_TILE) {
        int tileKeys = min(KEY_TILE, lastRow + 1 - t0);
        __syncthreads();
        for (int e = threadIdx.x; e < tileKeys * headDim; e += blockDim.x) {
            int j = e / headDim;
            int d = e - j * headDim;
            i64 src = (start + t0 + j) * kvStride + (i64) kvHead * headDim + d;
            ks[j * keyPitch + d] = k[src];
            vs[j * headDim + d] = v[src];
        }
        __syncthreads();
        if (!active || t0 > row) {
            continue;
        }
        float s = NEG_INF;
        if (lane < tileKeys && t0 + lane <= row) {
            float dot = 0.0f;
            const float* key = ks + lane * keyPitch;
            for (int d = 0; d < headDim; d++) {
                dot += qs[d] * key[d];
            }
            s = dot;
        }
        float newM = fmaxf(m, warp_max(s)); // finite: key t0 <= row is always in the tile
        float p = s == NEG_INF ? 0.0f : expf(s - newM);
        float correction = expf(m - newM);
        l = l * correction + warp_sum(p);
#pragma unroll
        for (int i = 0; i < DIMS_PER_LANE; i++) {
            acc[i] *= correction;
        }
        int visible = min(tileKeys, row - t0 + 1);
        for (int j = 0; j < visible; j++) {
            float pj = __shfl_sync(FULL_MASK, p, j);
            const float* value = vs + j * headDim;
#pragma unroll
            for (int i = 0; i < DIMS_PER_LANE; i++) {
                int d = lane + 32 * i;
                if (d < headDim) {
                    acc[i] += pj * value[d];
                }
            }
        }
        m = newM;
    }
    if (active) {
        float inv = 1.0f / l;
        float* o = out + (start + row) * qStride + (i64) head * headDim;
#pragma unroll
        for (int i = 0; i < DIMS_PER_LANE; i++) {
            int d = lane + 32 * i;
            if (d < headDim) {
                o[d] = acc[i] * inv;
            }
        }
    }
}

// Split ("flash-decoding") attention of one query row per sequence over a KV cache laid out
// [slot][token][kvDim] in cacheType. Block (split, head, row) attends to keys
// [split * keysPerSplit, min(length, (split + 1) * keysPerSplit)) of slot slots[row].
// The block's threads form groups of groupSize (a power of two >= headDim / 8); thread j of a
// group owns dims [8j, 8j + 8) and reads them with one 16-byte load (two for F32), so a warp moves
// whole rows per instruction. Each group takes runs of KEYS_PER_GROUP keys, loading all of them
// before reducing, keeps an online softmax, and the groups combine at the end.
// Writes partOut[split][row * heads + head][headDim] and partLse[split][row * heads + head] (a
// split with no keys writes zeros and -inf, which the merge ignores); the last split of each
// (row, head) to finish then merges them into out [rows, heads · headDim], lse [rows, heads] and
// narrowed (see merge_pair). arrivals[rows * heads] counts finished splits: zero before the launch
// and after it. headDim % 8 == 0.
#define DECODE_THREADS 128
#define KEYS_PER_GROUP 4

__device__ __forceinline__ void load8(const void* p, int dtype, i64 i, float* out) {
    if (dtype == DTYPE_F32) {
        float4 a = *(const float4*) ((const float*) p + i);
        float4 b = *(const float4*) ((const float*) p + i + 4);
        out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
        out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
    } else {
        uint4 raw = *(const uint4*) ((const u16*) p + i);
        unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
        for (int w = 0; w < 4; w++) {
            u16 lo = (u16) (words[w] & 0xffffu);
            u16 hi = (u16) (words[w] >> 16);
            out[2 * w] = dtype == DTYPE_F16 ? f16_to_f32(lo) : bf16_to_f32(lo);
            out[2 * w + 1] = dtype == DTYPE_F16 ? f16_to_f32(hi) : bf16_to_f32(hi);
        }
    }
}

// Exact merge of partial attentions: for pair p (a row and head) and parts i,
// out = Σ exp(lse_i − L)·out_i, L = log Σ exp(lse_i). Parts are `pairs` pairs apart:
// partOut[i][pair][headDim], partLse[i][pair]. All-empty pairs get zeros and -inf. When narrowed
// is not null, out is also written there in narrowedType (the output projection's input). The parts
// are read past L1 (__ldcg): in decode attention other blocks wrote them during this launch.
#define MERGE_MAX_PARTS 256

__device__ void merge_pair(const float* partOut, const float* partLse, int parts, int pairs, int pair, int headDim,
                           float* out, float* lse, void* narrowed, int narrowedType) {
    // The parts' weights exp(lse_i − max), once per pair by the first warp, not per dimension.
    __shared__ float weights[MERGE_MAX_PARTS];
    __shared__ float stats[2];
    if (threadIdx.x < 32) {
        float mx = NEG_INF;
        for (int i = threadIdx.x; i < parts; i += 32) {
            mx = fmaxf(mx, __ldcg(partLse + (i64) i * pairs + pair));
        }
        mx = warp_max(mx);
        float total = 0.0f;
        for (int i = threadIdx.x; i < parts; i += 32) {
            float w = mx == NEG_INF ? 0.0f : expf(__ldcg(partLse + (i64) i * pairs + pair) - mx);
            weights[i] = w;
            total += w;
        }
        total = warp_sum(total);
        if (threadIdx.x == 0) {
            stats[0] = mx;
            stats[1] = total;
        }
    }
    __syncthreads();
    float mx = stats[0];
    float total = stats[1];
    float* o = out + (i64) pair * headDim;
    for (int d = threadIdx.x; d < headDim; d += blockDim.x) {
        float y = 0.0f;
        if (mx != NEG_INF) {
            float sum = 0.0f;
#pragma unroll 8
            for (int i = 0; i < parts; i++) { // unrolled: the parts' loads in flight together
                sum += weights[i] * __ldcg(partOut + ((i64) i * pairs + pair) * headDim + d);
            }
            y = sum / total;
        }
        o[d] = y;
        if (narrowed != nullptr) {
            store_elem(narrowed, narrowedType, (i64) pair * headDim + d, y);
        }
    }
    if (threadIdx.x == 0) {
        lse[pair] = mx == NEG_INF ? NEG_INF : mx + logf(total);
    }
    // A next pair's weights overwrite these.
    __syncthreads();
}

// LOAD_VALUES_WITH_KEYS: a round loads its values together with its keys (one memory round trip
// instead of two, for more registers). The launcher takes that variant when the keys are split
// (few sequences: each block makes a round or two and its latency is what counts) and the other
// when many sequences fill the GPU and occupancy hides the latency.
template <bool LOAD_VALUES_WITH_KEYS>
__device__ __forceinline__ void decode_attention_block(const float* q, const void* kCache, const void* vCache,
                                                       int cacheType, i64 slotStride, const int* slots,
                                                       const int* lengths, int rows, int heads, int kvHeads,
                                                       int headDim, float scale, int keysPerSplit, int groupSize,
                                                       float* partOut, float* partLse, int* arrivals, float* out,
                                                       float* lse, void* narrowed, int narrowedType) {
    __shared__ float groupM[DECODE_THREADS];
    __shared__ float groupL[DECODE_THREADS];
    __shared__ float groupAcc[DECODE_THREADS * 8];
    int split = blockIdx.x;
    int head = blockIdx.y;
    int row = blockIdx.z;
    int groups = DECODE_THREADS / groupSize;
    int group = threadIdx.x / groupSize;
    int member = threadIdx.x - group * groupSize;
    int d0 = member * 8;
    bool live = d0 < headDim;
    int kvHead = head / (heads / kvHeads);
    int kvDim = kvHeads * headDim;
    int len = lengths[row];
    int first = split * keysPerSplit;
    int end = min(len, first + keysPerSplit);
    i64 cacheBase = (i64) slots[row] * slotStride + (i64) kvHead * headDim + d0;

    float qv[8];
    const float* qRow = q + (i64) row * heads * headDim + (i64) head * headDim + d0;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        qv[i] = live ? qRow[i] * scale : 0.0f;
    }
    float m = NEG_INF;
    float l = 0.0f;
    float acc[8];
#pragma unroll
    for (int i = 0; i < 8; i++) {
        acc[i] = 0.0f;
    }
    // The round bound is the same for the whole block, so every lane reaches the shuffles; a group
    // whose keys of a round all lie past the end skips the update after them.
    for (int base = first; base < end; base += groups * KEYS_PER_GROUP) {
        int t0 = base + group * KEYS_PER_GROUP;
        float s[KEYS_PER_GROUP];
        float vv[LOAD_VALUES_WITH_KEYS ? KEYS_PER_GROUP : 1][8];
#pragma unroll
        for (int u = 0; u < KEYS_PER_GROUP; u++) {
            float partial = 0.0f;
            if (live && t0 + u < end) {
                float kv[8];
                load8(kCache, cacheType, cacheBase + (i64) (t0 + u) * kvDim, kv);
                if (LOAD_VALUES_WITH_KEYS) {
                    load8(vCache, cacheType, cacheBase + (i64) (t0 + u) * kvDim, vv[u]);
                }
#pragma unroll
                for (int i = 0; i < 8; i++) {
                    partial += qv[i] * kv[i];
                }
            }
            s[u] = partial;
        }
        for (int o = groupSize >> 1; o > 0; o >>= 1) {
#pragma unroll
            for (int u = 0; u < KEYS_PER_GROUP; u++) {
                s[u] += __shfl_xor_sync(FULL_MASK, s[u], o);
            }
        }
        float roundMax = NEG_INF;
#pragma unroll
        for (int u = 0; u < KEYS_PER_GROUP; u++) {
            if (t0 + u >= end) {
                s[u] = NEG_INF;
            }
            roundMax = fmaxf(roundMax, s[u]);
        }
        if (roundMax == NEG_INF) {
            continue;
        }
        float newM = fmaxf(m, roundMax);
        float correction = expf(m - newM);
        float pSum = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            acc[i] *= correction;
        }
#pragma unroll
        for (int u = 0; u < KEYS_PER_GROUP; u++) {
            float p = s[u] == NEG_INF ? 0.0f : expf(s[u] - newM);
            pSum += p;
            if (live && t0 + u < end) {
                if (!LOAD_VALUES_WITH_KEYS) {
                    load8(vCache, cacheType, cacheBase + (i64) (t0 + u) * kvDim, vv[0]);
                }
                const float* values = vv[LOAD_VALUES_WITH_KEYS ? u : 0];
#pragma unroll
                for (int i = 0; i < 8; i++) {
                    acc[i] += p * values[i];
                }
            }
        }
        l = l * correction + pSum;
        m = newM;
    }
    if (member == 0) {
        groupM[group] = m;
        groupL[group] = l;
    }
    if (live) {
#pragma unroll
        for (int i = 0; i < 8; i++) {
            groupAcc[group * headDim + d0 + i] = acc[i];
        }
    }
    __syncthreads();
    float blockM = NEG_INF;
    for (int g = 0; g < groups; g++) {
        blockM = fmaxf(blockM, groupM[g]);
    }
    i64 pair = (i64) split * rows * heads + (i64) row * heads + head;
    float* o = partOut + pair * headDim;
    if (blockM == NEG_INF) {
        for (int d = threadIdx.x; d < headDim; d += blockDim.x) {
            o[d] = 0.0f;
        }
        if (threadIdx.x == 0) {
            partLse[pair] = NEG_INF;
        }
    } else {
        float blockL = 0.0f;
        for (int g = 0; g < groups; g++) {
            blockL += groupL[g] * expf(groupM[g] - blockM);
        }
        for (int d = threadIdx.x; d < headDim; d += blockDim.x) {
            float sum = 0.0f;
            for (int g = 0; g < groups; g++) {
                sum += groupAcc[g * headDim + d] * expf(groupM[g] - blockM);
            }
            o[d] = sum / blockL;
        }
        if (threadIdx.x == 0) {
            partLse[pair] = blockM + logf(blockL);
        }
    }
    // The last split of a (row, head) to finish merges all of them, so no merge kernel follows:
    // each block's part is visible device-wide (fence) before it counts itself in; the last one in
    // resets the count for the next launch.
    __shared__ bool lastIn;
    __threadfence();
    __syncthreads();
    int rowHead = row * heads + head;
    if (threadIdx.x == 0) {
        lastIn = atomicAdd(arrivals + rowHead, 1) == (int) gridDim.x - 1;
    }
    __syncthreads();
    if (lastIn) {
        if (threadIdx.x == 0) {
            arrivals[rowHead] = 0;
        }
        merge_pair(partOut, partLse, gridDim.x, rows * heads, rowHead, headDim, out, lse, narrowed, narrowedType);
    }
}

extern "C" __global__ void decode_attention(const float* q, const void* kCache, const void* vCache, int cacheType,
                                            i64 slotStride, const int* slots, const int* lengths, int rows,
                                            int heads, int kvHeads, int headDim, float scale, int keysPerSplit,
                                            int groupSize, float* partOut, float* partLse, int* arrivals,
                                            float* out, float* lse, void* narrowed, int narrowedType) {
    decode_attention_block<false>(q, kCache, vCache, cacheType, slotStride, slots, lengths, rows, heads, kvHeads,
                                  headDim, scale, keysPerSplit, groupSize, partOut, partLse, arrivals, out, lse,
                                  narrowed, narrowedType);
}

extern "C" __global__ void decode_attention_split(const float* q, const void* kCache, const void* vCache,
                                                  int cacheType, i64 slotStride, const int* slots, const int* lengths,
                                                  int rows, int heads, int kvHeads, int headDim, float scale,
                                                  int keysPerSplit, int groupSize, float* partOut, float* partLse,
                                                  int* arrivals, float* out, float* lse, void* narrowed,
                                                  int narrowedType) {
    decode_attention_block<true>(q, kCache, vCache, cacheType, slotStride, slots, lengths, rows, heads, kvHeads,
                                 headDim, scale, keysPerSplit, groupSize, partOut, partLse, arrivals, out, lse,
                                 narrowed, narrowedType);
}

extern "C" __global__ void merge_partials(const float* partOut, const float* partLse, int parts, int pairs,
                                          int headDim, float* out, float* lse, void* narrowed, int narrowedType) {
    for (int pair = blockIdx.x; pair < pairs; pair += gridDim.x) {
        merge_pair(partOut, partLse, parts, pairs, pair, headDim, out, lse, narrowed, narrowedType);
    }
}
