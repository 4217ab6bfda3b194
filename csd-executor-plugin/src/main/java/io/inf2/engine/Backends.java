package io.inf2.engine;

import io.inf2.compute.ComputeBackend;
import io.inf2.compute.cpu.CpuBackend;
import io.inf2.compute.cuda.CudaBackend;
import java.util.logging.Logger;

/** Chooses the compute backend named in the options. */
public final class Backends {
    private static final Logger LOG = Logger.getLogger(Backends.class.getName());

    private Backends() {
    }

    /** "cpu" gives {@code host}; "cuda" the GPU or an error saying why there is none; "auto" the GPU when one is usable. */
    public static ComputeBackend select(EngineOptions options, CpuBackend host) {
        return switch (options.backend()) {
            case "cpu" -> host;
            case "cuda" -> {
                CudaBackend.Availability a = CudaBackend.availability(options.cuda().libraryPath());
                if (!a.available()) {
                    throw new IllegalArgumentException("backend=cuda: " + a.reason());
                }
                yield CudaBackend.open(options.cuda());
            }
            case "auto" -> {
                CudaBackend.Availability a = CudaBackend.availability(options.cuda().libraryPath());
                if (a.available()) {
                    yield CudaBackend.open(options.cuda());
                }
                LOG.info("backend=auto: using the CPU (" + a.reason() + ")");
                yield host;
            }
            default -> throw new IllegalArgumentException("unknown backend " + options.backend() + " (cpu, cuda, auto)");
        };
    }
}
