package io.inf2.nativeio;

/**
 * A failed call into the CUDA driver, cuBLAS or NVRTC, or a CUDA library that cannot be loaded. The
 * message is one line naming the library's error name and the call, for example
 * {@code CUDA_ERROR_OUT_OF_MEMORY in cuMemAlloc_v2(1073741824 bytes)}.
 */
public class CudaException extends RuntimeException {
    private final String errorName;

    public CudaException(String errorName, String message) {
        super(message);
        this.errorName = errorName;
    }

    /** The library's name for the error (CUDA_ERROR_*, CUBLAS_STATUS_*, NVRTC_ERROR_*), or a short tag. */
    public String errorName() {
        return errorName;
    }
}
