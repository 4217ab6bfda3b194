package io.inf2.nativeio;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * Typed bindings to cuBLAS (libcublas.so.13): a handle bound to a stream, and the mixed-precision
 * matrix products {@code cublasGemmEx} / {@code cublasGemmStridedBatchedEx}. Matrices are
 * column-major as cuBLAS defines them; device pointers are longs. Every status is checked and
 * turned into a {@link CudaException} carrying cuBLAS's status name and the call.
 *
 * <p>cuBLAS runs on the CUDA runtime, which uses the calling thread's current driver context:
 * make the device's primary context current before creating a handle and before each call.
 */
public final class Cublas {

    public static final String SONAME = "libcublas.so.13";

    public static final int CUBLAS_OP_N = 0;
    public static final int CUBLAS_OP_T = 1;
    /** cudaDataType values. */
    public static final int CUDA_R_32F = 0;
    public static final int CUDA_R_16F = 2;
    public static final int CUDA_R_16BF = 14;
    /** Plain fp32 accumulation: no TF32 and no reduced-precision reductions. */
    public static final int CUBLAS_COMPUTE_32F = 68;
    public static final int CUBLAS_GEMM_DEFAULT = -1;

    private static final int CUBLAS_STATUS_SUCCESS = 0;
    /** alpha = 1 and beta = 0, the common case, read by cuBLAS from host memory on every call. */
    private static final MemorySegment ONE = Arena.global().allocateFrom(JAVA_FLOAT, 1f);
    private static final MemorySegment ZERO = Arena.global().allocateFrom(JAVA_FLOAT, 0f);

    private final MethodHandle create;
    private final MethodHandle destroy;
    private final MethodHandle setStream;
    private final MethodHandle gemmEx;
    private final MethodHandle gemmStridedBatchedEx;
    private final MethodHandle getStatusName;
    private final MethodHandle getVersion;

    private Cublas(NativeSymbols s) {
        create = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS), "cublasCreate_v2");
        destroy = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS), "cublasDestroy_v2");
        setStream = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "cublasSetStream_v2");
        getStatusName = s.bind(FunctionDescriptor.of(ADDRESS, JAVA_INT), "cublasGetStatusName");
        getVersion = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "cublasGetVersion_v2");
        gemmEx = s.bind(FunctionDescriptor.of(JAVA_INT,
                ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                ADDRESS,
                JAVA_LONG, JAVA_INT, JAVA_INT,
                JAVA_LONG, JAVA_INT, JAVA_INT,
                ADDRESS,
                JAVA_LONG, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT), "cublasGemmEx");
        gemmStridedBatchedEx = s.bind(FunctionDescriptor.of(JAVA_INT,
                ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                ADDRESS,
                JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG,
                JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG,
                ADDRESS,
                JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG,
                JAVA_INT, JAVA_INT, JAVA_INT), "cublasGemmStridedBatchedEx");
    }

    public static Cublas load(CudaLibraryLocator locator) {
        // cuBLAS needs cuBLASLt; preloading it from the same directory resolves the dependency even
        // when that directory is not on the dynamic loader's path.
        return new Cublas(new NativeSymbols(locator.load(SONAME, "libcublasLt.so.13*"), SONAME));
    }

    /** A new cuBLAS handle in the current context; destroy it with {@link #destroy}. */
    public MemorySegment create() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment h = a.allocate(ADDRESS);
            check((int) create.invokeExact(h), "cublasCreate_v2");
            return h.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public void destroy(MemorySegment handle) {
        try {
            check((int) destroy.invokeExact(handle), "cublasDestroy_v2");
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public void setStream(MemorySegment handle, MemorySegment stream) {
        try {
            check((int) setStream.invokeExact(handle, stream), "cublasSetStream_v2");
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    /** cuBLAS's version as major * 10000 + minor * 100 + patch. */
    public int version(MemorySegment handle) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            check((int) getVersion.invokeExact(handle, v), "cublasGetVersion_v2");
            return v.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    /**
     * C = alpha · op(A) · op(B) + beta · C in column-major terms, with fp32 alpha and beta and
     * {@code computeType} accumulation. {@code what} names the operation in errors.
     */
    public void gemmEx(MemorySegment handle, int transA, int transB, int m, int n, int k, float alpha,
                       long a, int aType, int lda, long b, int bType, int ldb, float beta,
                       long c, int cType, int ldc, int computeType, String what) {
        try {
            int rc;
            if (alpha == 1f && beta == 0f) {
                rc = (int) gemmEx.invokeExact(handle, transA, transB, m, n, k, ONE, a, aType, lda, b, bType, ldb, ZERO,
                        c, cType, ldc, computeType, CUBLAS_GEMM_DEFAULT);
            } else {
                try (Arena arena = Arena.ofConfined()) {
                    rc = (int) gemmEx.invokeExact(handle, transA, transB, m, n, k, arena.allocateFrom(JAVA_FLOAT, alpha),
                            a, aType, lda, b, bType, ldb, arena.allocateFrom(JAVA_FLOAT, beta), c, cType, ldc,
                            computeType, CUBLAS_GEMM_DEFAULT);
                }
            }
            if (rc != CUBLAS_STATUS_SUCCESS) {
                check(rc, "cublasGemmEx(" + what + ", m=" + m + " n=" + n + " k=" + k + ")");
            }
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    /** {@link #gemmEx} over {@code batch} matrix triples, each {@code stride*} elements after the last. */
    public void gemmStridedBatchedEx(MemorySegment handle, int transA, int transB, int m, int n, int k, float alpha,
                                     long a, int aType, int lda, long strideA, long b, int bType, int ldb, long strideB,
                                     float beta, long c, int cType, int ldc, long strideC, int batch, int computeType,
                                     String what) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment al = arena.allocateFrom(JAVA_FLOAT, alpha);
            MemorySegment be = arena.allocateFrom(JAVA_FLOAT, beta);
            check((int) gemmStridedBatchedEx.invokeExact(handle, transA, transB, m, n, k, al, a, aType, lda, strideA,
                    b, bType, ldb, strideB, be, c, cType, ldc, strideC, batch, computeType, CUBLAS_GEMM_DEFAULT),
                    "cublasGemmStridedBatchedEx(" + what + ", m=" + m + " n=" + n + " k=" + k + " batch=" + batch + ")");
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public String statusName(int status) {
        try {
            String name = NativeSymbols.cString((MemorySegment) getStatusName.invokeExact(status));
            return name == null ? "cublasStatus " + status : name;
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    private void check(int status, String call) {
        if (status != CUBLAS_STATUS_SUCCESS) {
            String name = statusName(status);
            throw new CudaException(name, name + " in " + call);
        }
    }
}
