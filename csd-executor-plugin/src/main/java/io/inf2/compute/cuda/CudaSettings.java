package io.inf2.compute.cuda;

import java.nio.file.Path;

/**
 * The CUDA backend's options as the engine settings give them (cudaLibraryPath, cudaDevice and
 * cudaKernelCache in {@link io.inf2.config.Settings}).
 */
public final class CudaSettings {

    private CudaSettings() {
    }

    /** The backend's options from the engine's ({@link io.inf2.config.Settings#CUDA_LIBRARY_PATH} and the rest). */
    public static CudaBackend.Options options(String libraryPath, int device, String kernelCache) {
        return new CudaBackend.Options(libraryPath, device, kernelCache.isBlank() ? defaultKernelCache() : Path.of(kernelCache));
    }

    public static Path defaultKernelCache() {
        return Path.of(System.getProperty("user.home"), ".cache", "inf2", "cuda-kernels");
    }
}
