package io.inf2.nativeio;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Finds the CUDA libraries (driver, cuBLAS, NVRTC) by their sonames. Directories are searched in
 * order: the configured path (the {@code cudaLibraryPath} setting), the system property
 * {@value #PATH_PROPERTY}, then the places a standard CUDA install and the NVIDIA container runtime
 * put them; last, the bare soname goes to the dynamic loader, which consults LD_LIBRARY_PATH and
 * the ldconfig cache. Libraries are loaded into the global arena: a loaded CUDA library stays
 * loaded for the life of the process, as the driver expects.
 */
public final class CudaLibraryLocator {

    /** Colon-separated directories searched before the standard ones. */
    public static final String PATH_PROPERTY = "inf2.cudaLibraryPath";

    static final List<Path> STANDARD_DIRECTORIES = List.of(
            Path.of("/usr/local/cuda/targets/x86_64-linux/lib"),
            Path.of("/usr/local/cuda/lib64"),
            Path.of("/usr/local/nvidia/lib64"),
            Path.of("/usr/lib/x86_64-linux-gnu"),
            Path.of("/usr/lib64"));

    private final List<Path> directories;

    private CudaLibraryLocator(List<Path> directories) {
        this.directories = List.copyOf(directories);
    }

    /**
     * @param configuredPath colon-separated directories from the configuration; null or blank for none
     */
    public static CudaLibraryLocator create(String configuredPath) {
        List<Path> dirs = new ArrayList<>();
        addAll(dirs, configuredPath);
        addAll(dirs, System.getProperty(PATH_PROPERTY));
        dirs.addAll(STANDARD_DIRECTORIES);
        return new CudaLibraryLocator(dirs);
    }

    private static void addAll(List<Path> dirs, String pathList) {
        if (pathList == null) {
            return;
        }
        for (String part : pathList.split(":")) {
            if (!part.isBlank()) {
                dirs.add(Path.of(part.trim()));
            }
        }
    }

    public List<Path> directories() {
        return directories;
    }

    /**
     * Loads {@code soname} (for example {@code libcublas.so.13}). {@code companions} are glob patterns
     * of libraries loaded first from the same directory (cuBLAS needs cuBLASLt; NVRTC opens its
     * builtins library by soname at run time), so a library found outside the loader's path still
     * resolves its dependencies.
     *
     * @throws CudaException naming the soname and where it was looked for
     */
    public SymbolLookup load(String soname, String... companions) {
        for (Path dir : directories) {
            Path candidate = dir.resolve(soname);
            if (Files.isRegularFile(candidate)) {
                for (String pattern : companions) {
                    loadMatching(dir, pattern);
                }
                try {
                    return SymbolLookup.libraryLookup(candidate, Arena.global());
                } catch (IllegalArgumentException e) {
                    throw new CudaException("LIBRARY_LOAD_FAILED", candidate + " cannot be loaded: " + e.getMessage());
                }
            }
        }
        try {
            return SymbolLookup.libraryLookup(soname, Arena.global());
        } catch (IllegalArgumentException notFound) {
            throw new CudaException("LIBRARY_NOT_FOUND", soname + " not found (searched " + directories
                    + " and the dynamic loader's path; set -D" + PATH_PROPERTY + " or cudaLibraryPath)");
        }
    }

    private static void loadMatching(Path dir, String pattern) {
        try (DirectoryStream<Path> matches = Files.newDirectoryStream(dir, pattern)) {
            for (Path p : matches) {
                if (Files.isRegularFile(p)) {
                    SymbolLookup.libraryLookup(p, Arena.global());
                    return;
                }
            }
        } catch (IOException | IllegalArgumentException e) {
            // The companion is a convenience for the loader; if it cannot be preloaded, the main
            // library's own load reports what is really missing.
        }
    }
}
