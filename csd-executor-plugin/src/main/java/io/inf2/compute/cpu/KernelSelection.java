package io.inf2.compute.cpu;

/** Picks {@link CpuKernels#fastest()} once per JVM. */
final class KernelSelection {
    static final CpuKernels FASTEST = select();

    private KernelSelection() {
    }

    private static CpuKernels select() {
        System.Logger log = System.getLogger(CpuKernels.class.getName());
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            log.log(System.Logger.Level.WARNING, "jdk.incubator.vector is not in the boot layer (start the JVM with "
                    + "--add-modules=jdk.incubator.vector): CPU kernels fall back to the scalar ReferenceKernels, several times slower");
            return new ReferenceKernels();
        }
        try {
            return new VectorKernels();
        } catch (LinkageError | UnsupportedOperationException e) {
            log.log(System.Logger.Level.WARNING, "the Vector API kernels cannot run on this JVM (" + e
                    + "): CPU kernels fall back to the scalar ReferenceKernels, several times slower");
            return new ReferenceKernels();
        }
    }
}
