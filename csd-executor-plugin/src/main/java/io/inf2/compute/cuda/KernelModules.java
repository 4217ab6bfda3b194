package io.inf2.compute.cuda;

import io.inf2.nativeio.CudaException;
import io.inf2.nativeio.Nvrtc;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The CUDA C kernels shipped as resources ({@code io/inf2/compute/cuda/*.cu}), compiled by NVRTC
 * for the device's real architecture when a module is first used and loaded into the context.
 * Compiled images are cached on disk under a name that carries a hash of the source, the options,
 * the architecture and the NVRTC version, so a changed kernel, GPU or compiler never reuses a stale
 * image, and a second process skips compilation.
 */
final class KernelModules implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(KernelModules.class.getName());
    private static final String RESOURCE_DIR = "/io/inf2/compute/cuda/";
    private static final String COMMON = "common.cuh";

    private final CudaContext context;
    private final Path cacheDir;
    private final Map<String, MemorySegment> modules = new LinkedHashMap<>();
    private final Map<String, MemorySegment> functions = new LinkedHashMap<>();

    KernelModules(CudaContext context, Path cacheDir) {
        this.context = context;
        this.cacheDir = cacheDir;
    }

    /** Kernel {@code name} of module {@code module} ("attention" for attention.cu). */
    synchronized MemorySegment function(String module, String name) {
        String key = module + "." + name;
        MemorySegment f = functions.get(key);
        if (f == null) {
            f = context.driver().moduleGetFunction(module(module), name);
            functions.put(key, f);
        }
        return f;
    }

    private MemorySegment module(String module) {
        MemorySegment m = modules.get(module);
        if (m == null) {
            m = load(module);
            modules.put(module, m);
        }
        return m;
    }

    private MemorySegment load(String module, byte[] image) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment copy = a.allocate(image.length + 1L);
            MemorySegment.copy(image, 0, copy, ValueLayout.JAVA_BYTE, 0, image.length);
            return context.driver().moduleLoadData(copy, module + ".cu for " + context.architecture());
        }
    }

    /** Loads a module's compiled image: from the disk cache, or compiled now and cached. */
    private MemorySegment load(String module) {
        Nvrtc nvrtc = context.nvrtc();
        String arch = context.architecture();
        String source = resource(COMMON) + "\n#line 1 \"" + module + ".cu\"\n" + resource(module + ".cu");
        List<String> options = List.of("--gpu-architecture=" + arch, "--std=c++17");
        String version = nvrtc.version();
        Path cached = cacheDir.resolve(module + "-" + arch + "-nvrtc" + version + "-"
                + hash(source, String.join(" ", options), arch, version) + ".cubin");
        if (Files.isRegularFile(cached)) {
            try {
                return load(module, Files.readAllBytes(cached));
            } catch (IOException e) {
                LOG.log(System.Logger.Level.WARNING, "cannot read cached kernel " + cached + ": " + e.getMessage()
                        + "; compiling again");
            } catch (CudaException e) {
                // A cached image that does not load (truncated, or not for this driver) would fail every run.
                LOG.log(System.Logger.Level.WARNING, "cached kernel " + cached + " does not load: " + e.getMessage()
                        + "; deleting it and compiling again");
                delete(cached);
            }
        }
        long started = System.nanoTime();
        Nvrtc.Output out = nvrtc.compile(source, module + ".cu", options, true);
        LOG.log(System.Logger.Level.INFO, "compiled " + module + ".cu for " + arch + " with NVRTC " + version + " in "
                + (System.nanoTime() - started) / 1_000_000 + " ms");
        if (!out.log().isBlank()) {
            LOG.log(System.Logger.Level.WARNING, "NVRTC warnings for " + module + ".cu: " + out.log().strip());
        }
        store(cached, out.image());
        return load(module, out.image());
    }

    private static void store(Path cached, byte[] image) {
        try {
            Files.createDirectories(cached.getParent());
            Path tmp = Files.createTempFile(cached.getParent(), cached.getFileName().toString(), ".tmp");
            try {
                Files.write(tmp, image);
                try {
                    Files.move(tmp, cached, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(tmp, cached, StandardCopyOption.REPLACE_EXISTING);
                }
            } finally {
                // Gone after the move; left behind by a failed write or move.
                delete(tmp);
            }
        } catch (IOException e) {
            // A cache that cannot be written costs a compilation per process, nothing more.
            LOG.log(System.Logger.Level.WARNING, "cannot cache compiled kernel at " + cached + ": " + e.getMessage());
        }
    }

    private static void delete(Path file) {
        try {
            Files.deleteIfExists(file);
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot delete " + file + ": " + e.getMessage());
        }
    }

    static String resource(String name) {
        try (InputStream in = KernelModules.class.getResourceAsStream(RESOURCE_DIR + name)) {
            if (in == null) {
                throw new CudaException("KERNEL_SOURCE_MISSING", "kernel source " + RESOURCE_DIR + name + " is not on the class path");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("reading kernel source " + RESOURCE_DIR + name, e);
        }
    }

    private static String hash(String... parts) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            for (String p : parts) {
                sha.update(p.getBytes(StandardCharsets.UTF_8));
                sha.update((byte) 0);
            }
            return HexFormat.of().formatHex(sha.digest(), 0, 12);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 missing from the JDK", e);
        }
    }

    @Override
    public synchronized void close() {
        context.makeCurrent();
        RuntimeException failure = null;
        for (MemorySegment m : modules.values()) {
            try {
                context.driver().moduleUnload(m);
            } catch (RuntimeException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        modules.clear();
        functions.clear();
        if (failure != null) {
            throw failure;
        }
    }
}
