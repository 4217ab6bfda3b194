package io.inf2.engine;

import io.inf2.compute.ComputeBackend;
import io.inf2.compute.cpu.CpuBackend;
import java.util.logging.Logger;

/** Chooses the compute backend named in the options. */
final class Backends {
    private static final Logger LOG = Logger.getLogger(Backends.class.getName());

    private Backends() {
    }

    /** "cpu" gives {@code host}; "cuda" a GPU backend or an error saying why none is available; "auto" the GPU when present. */
    static ComputeBackend select(String name, CpuBackend host) {
        return switch (name) {
            case "cpu" -> host;
            case "cuda" -> throw new IllegalArgumentException("backend=cuda: this build has no CUDA backend yet");
            case "auto" -> {
                LOG.info("backend=auto: using the CPU (no CUDA backend in this build)");
                yield host;
            }
            default -> throw new IllegalArgumentException("unknown backend " + name + " (cpu, cuda, auto)");
        };
    }
}
