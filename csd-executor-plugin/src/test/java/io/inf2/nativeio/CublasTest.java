package io.inf2.nativeio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.compute.cuda.RequiresCuda;
import io.inf2.tensor.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * cuBLAS through its binding alone: batched products in F32, F16 and BF16 against a double
 * reference of the same (already rounded) inputs, so only the fp32 accumulation differs. cuBLAS
 * may sum in any order; the bound k · 2⁻²³ · Σ|a·b| covers any order of fp32 additions.
 */
@RequiresCuda
class CublasTest {
    private static CudaDriver driver;
    private static Cublas cublas;
    private static int device;
    private static MemorySegment handle;
    private static MemorySegment stream;

    @BeforeAll
    static void open() {
        CudaLibraryLocator locator = CudaLibraryLocator.create("");
        driver = CudaDriver.load(locator);
        device = driver.device(0);
        driver.ctxSetCurrent(driver.primaryContextRetain(device));
        cublas = Cublas.load(locator);
        handle = cublas.create();
        stream = driver.streamCreate(CudaDriver.CU_STREAM_NON_BLOCKING);
        cublas.setStream(handle, stream);
    }

    @AfterAll
    static void close() {
        if (handle != null) {
            cublas.destroy(handle);
            driver.streamDestroy(stream);
            driver.primaryContextRelease(device);
        }
    }

    @Test
    void reportsVersion13() {
        assertTrue(cublas.version(handle) >= 130000, "cuBLAS version " + cublas.version(handle));
    }

    @Test
    void stridedBatchedProductsMatchTheReferenceInEachType() {
        checkBatched(DType.F32, Cublas.CUDA_R_32F);
        checkBatched(DType.F16, Cublas.CUDA_R_16F);
        checkBatched(DType.BF16, Cublas.CUDA_R_16BF);
    }

    @Test
    void invalidArgumentsAreReportedWithTheStatusName() {
        CudaException e = assertThrows(CudaException.class, () -> cublas.gemmEx(handle, Cublas.CUBLAS_OP_N, Cublas.CUBLAS_OP_N,
                4, 4, 4, 1f, 0L, Cublas.CUDA_R_32F, 1, 0L, Cublas.CUDA_R_32F, 4, 0f, 0L, Cublas.CUDA_R_32F, 4,
                Cublas.CUBLAS_COMPUTE_32F, "lda too small"));
        assertEquals("CUBLAS_STATUS_INVALID_VALUE", e.errorName());
        assertTrue(e.getMessage().startsWith("CUBLAS_STATUS_INVALID_VALUE in cublasGemmEx(lda too small, m=4 n=4 k=4)"), e.getMessage());
    }

    /** Column-major C_b[m, n] = A_b[m, k] · B_b[k, n] for b in [0, batch). */
    private static void checkBatched(DType type, int cudaType) {
        int m = 37;
        int n = 19;
        int k = 200;
        int batch = 3;
        SplittableRandom random = new SplittableRandom(42 + cudaType);
        float[] a = randomRounded(random, batch * m * k, type);
        float[] b = randomRounded(random, batch * k * n, type);
        long aBytes = (long) a.length * type.byteSize();
        long bBytes = (long) b.length * type.byteSize();
        long cBytes = (long) batch * m * n * Float.BYTES;
        long dA = driver.memAlloc(aBytes);
        long dB = driver.memAlloc(bBytes);
        long dC = driver.memAlloc(cBytes);
        MemorySegment pinned = driver.memAllocHost(aBytes + bBytes + cBytes);
        try {
            for (int i = 0; i < a.length; i++) {
                type.setFloat(pinned, i, a[i]);
            }
            MemorySegment bHost = pinned.asSlice(aBytes);
            for (int i = 0; i < b.length; i++) {
                type.setFloat(bHost, i, b[i]);
            }
            driver.memcpyHtoDAsync(dA, pinned, aBytes, stream);
            driver.memcpyHtoDAsync(dB, bHost, bBytes, stream);
            cublas.gemmStridedBatchedEx(handle, Cublas.CUBLAS_OP_N, Cublas.CUBLAS_OP_N, m, n, k, 1f,
                    dA, cudaType, m, (long) m * k, dB, cudaType, k, (long) k * n, 0f,
                    dC, Cublas.CUDA_R_32F, m, (long) m * n, batch, Cublas.CUBLAS_COMPUTE_32F, "test " + type);
            MemorySegment cHost = pinned.asSlice(aBytes + bBytes, cBytes);
            driver.memcpyDtoHAsync(cHost, dC, cBytes, stream);
            driver.streamSynchronize(stream);
            float[] c = cHost.toArray(ValueLayout.JAVA_FLOAT);
            for (int bi = 0; bi < batch; bi++) {
                for (int col = 0; col < n; col++) {
                    for (int row = 0; row < m; row++) {
                        double exact = 0;
                        double magnitude = 0;
                        for (int kk = 0; kk < k; kk++) {
                            double p = (double) a[bi * m * k + kk * m + row] * b[bi * k * n + col * k + kk];
                            exact += p;
                            magnitude += Math.abs(p);
                        }
                        float got = c[bi * m * n + col * m + row];
                        double bound = k * Math.ulp(1f) * magnitude + 1e-30;
                        assertTrue(Math.abs(got - exact) <= bound, type + " batch " + bi + " (" + row + ", " + col + "): "
                                + got + " vs " + exact + " (bound " + bound + ")");
                    }
                }
            }
        } finally {
            driver.memFree(dA);
            driver.memFree(dB);
            driver.memFree(dC);
            driver.memFreeHost(pinned);
        }
    }

    private static float[] randomRounded(SplittableRandom random, int n, DType type) {
        float[] v = new float[n];
        MemorySegment one = MemorySegment.ofArray(new float[1]);
        for (int i = 0; i < n; i++) {
            type.setFloat(one, 0, (float) (random.nextDouble() * 2 - 1));
            v[i] = type.getFloat(one, 0);
        }
        return v;
    }
}
