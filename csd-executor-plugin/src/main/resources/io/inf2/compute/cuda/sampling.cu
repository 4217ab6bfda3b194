// Token selection for one row of logits per block (blockDim.x == SELECT_THREADS).
//
// Greedy (temperature <= 0): the arg max, lowest token id on ties.
// Sampled: weights w_i = exp((logit_i − max) / temperature). Top-k keeps token i when fewer than
// k tokens have a larger weight (ties at the boundary are all kept, as torch.topk + "< k-th value"
// filtering does). Top-p then keeps token i when the weight of the top-k survivors strictly larger
// than w_i is below p times their total. The token is the inverse CDF of the survivors in
// ascending token-id order at u · (their total), u being the row's given uniform number in [0, 1).
// Both filters are thresholds on w, found by bisection over the bit patterns of floats in [0, 1]
// (a non-negative float's bits order like its value), so no sort is needed.
// Writes -1 for a row with no finite logit.

#define SELECT_THREADS 1024

__device__ __forceinline__ float token_weight(const float* x, int i, float maxLogit, float temperature) {
    return expf((x[i] - maxLogit) / temperature);
}

// The largest value across the warp and its index, the lowest index among equal values; every lane
// ends with the answer.
__device__ __forceinline__ void warp_argmax(float& best, int& bestAt) {
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(FULL_MASK, best, o);
        int oi = __shfl_xor_sync(FULL_MASK, bestAt, o);
        if (ov > best || (ov == best && oi < bestAt)) {
            best = ov;
            bestAt = oi;
        }
    }
}

extern "C" __global__ void select_tokens(const float* logits, int vocab, const float* temperature,
                                         const int* topK, const float* topP, const float* uniform, int* tokens) {
    __shared__ float scratch[32];
    __shared__ float warpBest[32];
    __shared__ int warpBestIndex[32];
    __shared__ float chunkMass[SELECT_THREADS];
    __shared__ int chunkLast[SELECT_THREADS];
    __shared__ float bestValue;
    __shared__ int bestIndex;
    __shared__ int pickedChunk;
    __shared__ float massBefore;
    __shared__ float target;

    int row = blockIdx.x;
    const float* x = logits + (i64) row * vocab;
    int lane = threadIdx.x & 31;
    int warp = threadIdx.x >> 5;

    float best = NEG_INF;
    int bestAt = 0x7fffffff;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        float v = x[i];
        if (v > best) { // strided ascending i: the first strict maximum is the lowest id
            best = v;
            bestAt = i;
        }
    }
    warp_argmax(best, bestAt);
    if (lane == 0) {
        warpBest[warp] = best;
        warpBestIndex[warp] = bestAt;
    }
    __syncthreads();
    if (warp == 0) {
        best = lane < (blockDim.x >> 5) ? warpBest[lane] : NEG_INF;
        bestAt = lane < (blockDim.x >> 5) ? warpBestIndex[lane] : 0x7fffffff;
        warp_argmax(best, bestAt);
        if (lane == 0) {
            bestValue = best;
            bestIndex = bestAt;
        }
    }
    __syncthreads();
    float maxLogit = bestValue;
    float t = temperature[row];
    if (bestIndex == 0x7fffffff || !isfinite(maxLogit)) {
        if (threadIdx.x == 0) {
            tokens[row] = -1;
        }
        return;
    }
    if (t <= 0.0f) {
        if (threadIdx.x == 0) {
            tokens[row] = bestIndex;
        }
        return;
    }

    float tau = 0.0f;
    int k = topK[row];
    if (k > 0 && k < vocab) {
        unsigned lo = 0u;
        unsigned hi = 0x3f800000u; // 1.0f: no weight exceeds it
        while (lo < hi) {
            unsigned mid = (lo + hi) >> 1;
            float bound = __uint_as_float(mid);
            float count = 0.0f; // exact: counts stay far below 2^24
            for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
                count += token_weight(x, i, maxLogit, t) > bound ? 1.0f : 0.0f;
            }
            if (block_sum(count, scratch) < (float) k) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        tau = __uint_as_float(lo);
    }
    float p = topP[row];
    if (p < 1.0f) {
        float kept = 0.0f;
        for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
            float w = token_weight(x, i, maxLogit, t);
            kept += w >= tau ? w : 0.0f;
        }
        float limit = p * block_sum(kept, scratch);
        unsigned lo = 0u;
        unsigned hi = 0x3f800000u;
        while (lo < hi) {
            unsigned mid = (lo + hi) >> 1;
            float bound = __uint_as_float(mid);
            float above = 0.0f;
            for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
                float w = token_weight(x, i, maxLogit, t);
                above += (w >= tau && w > bound) ? w : 0.0f;
            }
            if (block_sum(above, scratch) < limit) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        tau = fmaxf(tau, __uint_as_float(lo));
    }

    // Inverse CDF in token order: each thread owns a contiguous chunk of ids.
    int chunk = (vocab + blockDim.x - 1) / blockDim.x;
    int from = threadIdx.x * chunk;
    int to = min(vocab, from + chunk);
    float mine = 0.0f;
    int last = -1;
    for (int i = from; i < to; i++) {
        float w = token_weight(x, i, maxLogit, t);
        if (w >= tau) {
            mine += w;
            last = i;
        }
    }
    chunkMass[threadIdx.x] = mine;
    chunkLast[threadIdx.x] = last;
    __syncthreads();
    if (threadIdx.x == 0) {
        float total = 0.0f;
        for (int c = 0; c < blockDim.x; c++) {
            total += chunkMass[c];
        }
        float goal = uniform[row] * total;
        float before = 0.0f;
        int picked = -1;
        int lastNonEmpty = -1;
        for (int c = 0; c < blockDim.x; c++) {
            if (chunkMass[c] > 0.0f) {
                lastNonEmpty = c;
                if (picked < 0 && before + chunkMass[c] > goal) {
                    picked = c;
                    break;
                }
            }
            before += chunkMass[c];
        }
        if (picked < 0) { // u·total rounded up to the total: take the last survivor
            tokens[row] = chunkLast[lastNonEmpty];
        }
        pickedChunk = picked;
        massBefore = before;
        target = goal;
    }
    __syncthreads();
    if (threadIdx.x == pickedChunk) {
        float running = massBefore;
        int chosen = last;
        for (int i = from; i < to; i++) {
            float w = token_weight(x, i, maxLogit, t);
            if (w >= tau) {
                running += w;
                if (running > target) {
                    chosen = i;
                    break;
                }
            }
        }
        tokens[row] = chosen;
    }
}
