// Row normalisations: one block per row, fp32 statistics. Gamma and beta are checkpoint
// tensors in their stored type; betaType < 0 means no beta.

extern "C" __global__ void layer_norm(const float* x, float* out, int rows, int cols, const void* gamma,
                                      int gammaType, const void* beta, int betaType, float eps) {
    __shared__ float scratch[32];
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* in = x + (i64) r * cols;
        float* o = out + (i64) r * cols;
        float s = 0.0f;
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            s += in[c];
        }
        float mean = block_sum(s, scratch) / cols;
        // Two passes (mean, then squared deviations) rather than E[x²] − E[x]², which cancels badly
        // for the large-mean rows OPT produces.
        float sq = 0.0f;
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            float d = in[c] - mean;
            sq += d * d;
        }
        float inv = rsqrtf(block_sum(sq, scratch) / cols + eps);
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            float b = betaType < 0 ? 0.0f : load_elem(beta, betaType, c);
            o[c] = (in[c] - mean) * inv * load_elem(gamma, gammaType, c) + b;
        }
    }
}

extern "C" __global__ void rms_norm(const float* x, float* out, int rows, int cols, const void* gamma,
                                    int gammaType, float eps) {
    __shared__ float scratch[32];
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* in = x + (i64) r * cols;
        float* o = out + (i64) r * cols;
        float sq = 0.0f;
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            sq += in[c] * in[c];
        }
        float inv = rsqrtf(block_sum(sq, scratch) / cols + eps);
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            o[c] = load_elem(gamma, gammaType, c) * (in[c] * inv);
        }
    }
}
