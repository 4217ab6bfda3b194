package io.inf2.csd;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * A computational storage device as the KV cache sees it: storage for KV regions plus a compute unit
 * next to that storage that answers attention over them. Real hardware implements this (a Samsung
 * SmartSSD through its vendor runtime: see docs/csd.md); {@link EmulatedCsd} implements it with a
 * directory, direct I/O and the device's own threads.
 *
 * <p>A device is opened by its implementation's factory method and owned by one
 * {@link CsdKvCacheFactory}. Methods are thread-safe. Operations on one region are applied in the
 * order they were submitted (appends, then its free). Any I/O failure marks the device failed
 * ({@link #health()}); later operations fail fast with the first reason. Failures surface as
 * {@link CsdException} with a one-line message naming the device and operation.
 */
public interface ComputationalStorageDevice extends AutoCloseable {

    /** Short name used in messages, statistics and results ("csd0"). */
    String name();

    /** One line: kind, location, I/O mode, compute threads. */
    String describe();

    /** Reserves space for a region of {@code spec.capacityPages()} pages. */
    DeviceRegion allocate(RegionSpec spec);

    /**
     * Releases a region once its pending appends are done. The caller must not use the region after
     * this; its pages are never read again.
     */
    void free(DeviceRegion region);

    /**
     * Appends {@code pageCount} pages (page layout in {@link RegionSpec}) from {@code pages}, which the
     * caller leaves unchanged until the returned future completes. {@code firstPage} must equal the
     * number of pages submitted to the region before; the pages become durable (visible to
     * {@link #attend} and {@link #planReads}) when the future completes. The pages cross the host link.
     */
    CompletableFuture<IoReport> append(DeviceRegion region, int firstPage, MemorySegment pages, int pageCount);

    /**
     * Attention near storage: the device reads each task's pages from its own media (one read serves
     * all query heads of the group) and computes the partial attention of every query head. The raw
     * pages never leave the device. Fills the batch's outputs and log-sum-exps.
     */
    CompletableFuture<IoReport> attend(AttentionBatch batch);

    /**
     * Plans plain block reads (all an ordinary SSD offers) of pages {@code [0, pages[t])} of each region
     * t: few large reads, regions close together on the media sharing one. Used by the storage
     * (FlexGen-style) baseline, where the bytes cross the host link.
     */
    ReadPlan planReads(List<? extends DeviceRegion> regions, int[] pages);

    /**
     * Performs one read of a plan from this device into {@code destination} (at least
     * {@code read.bytes()} bytes); runs on the calling thread. Slices locate each region's pages in it.
     */
    IoReport read(ReadPlan.Read read, MemorySegment destination);

    /**
     * Measures the read bandwidth the device's compute unit gets from its media (bytes per second),
     * over at least {@code bytes} bytes written for the purpose; used to choose the X-cache fraction.
     */
    double probeReadBandwidth(long bytes);

    DeviceStatistics statistics();

    DeviceHealth health();

    /** Stops the compute unit, drops pending work, frees the device's memory and its on-media cache. */
    @Override
    void close();
}
