package io.inf2.compute;

/** Where a layer weight lives between uses: FlexGen's three tiers. */
public enum WeightTier {
    /** In the compute device's own memory for the engine's life (GPU memory; the CPU has none of its own). */
    DEVICE,
    /** In host memory (mapped or allocated; pinned when a GPU copies it in per layer). */
    HOST,
    /** On storage, read per layer with direct I/O. */
    STORAGE
}
