package io.inf2.compute.cuda;

import io.inf2.config.Inf2Config;
import io.inf2.config.Setting;
import io.inf2.config.Settings;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Function;

/**
 * The CUDA backend's settings. A catalog of its own, so front ends add it next to
 * {@link Settings#all()} when they offer the cuda backend.
 */
public final class CudaSettings {

    private CudaSettings() {
    }

    public static final Setting<String> CUDA_LIBRARY_PATH = new Setting<>("cuda", "cudaLibraryPath",
            "colon-separated directories", "",
            "Directories searched first for libcuda.so.1, libcublas.so.13 and libnvrtc.so.13 (before the system "
                    + "property inf2.cudaLibraryPath, the standard CUDA install directories and the loader's path).",
            Function.identity(), v -> true, "directories");
    public static final Setting<Integer> CUDA_DEVICE = Settings.integer("cuda", "cudaDevice", "0",
            "Ordinal of the GPU the cuda backend uses.", 0, 1023);
    public static final Setting<String> CUDA_KERNEL_CACHE = new Setting<>("cuda", "cudaKernelCache", "path", "",
            "Directory for compiled CUDA kernels, keyed by source hash, GPU architecture and NVRTC version; "
                    + "empty means ~/.cache/inf2/cuda-kernels.",
            Function.identity(), v -> true, "a directory");

    private static final List<Setting<?>> ALL = List.of(CUDA_LIBRARY_PATH, CUDA_DEVICE, CUDA_KERNEL_CACHE);

    public static List<Setting<?>> all() {
        return ALL;
    }

    /** The backend's options from a config; settings absent from its catalog take their defaults. */
    public static CudaBackend.Options options(Inf2Config config) {
        String libraryPath = config.isSet(CUDA_LIBRARY_PATH) ? config.get(CUDA_LIBRARY_PATH) : "";
        int device = config.isSet(CUDA_DEVICE) ? config.get(CUDA_DEVICE) : 0;
        String cache = config.isSet(CUDA_KERNEL_CACHE) ? config.get(CUDA_KERNEL_CACHE) : "";
        return new CudaBackend.Options(libraryPath, device, cache.isBlank() ? defaultKernelCache() : Path.of(cache));
    }

    public static Path defaultKernelCache() {
        return Path.of(System.getProperty("user.home"), ".cache", "inf2", "cuda-kernels");
    }
}
