package io.inf2.csd;

import java.util.Arrays;

/**
 * One request to a device: for each task, the queries of one GQA group (the {@code groupSize} query
 * heads that share a KV head) and the region holding that KV head's cache, attended over its first
 * {@code pages} pages. The device answers every task with the group's attention outputs over those
 * pages and the log-sum-exp of the scaled scores, to be merged with other places' partials.
 *
 * <p>Queries and outputs travel as fp16, as they would over the host interconnect to real hardware;
 * the log-sum-exps as f32. Everything else (the pages) stays in the device.
 */
public final class AttentionBatch {
    private final int groupSize;
    private final int headDim;
    private DeviceRegion[] regions;
    private int[] pages;
    private short[] queries;
    private short[] outputs;
    private float[] lse;
    private int size;

    public AttentionBatch(int groupSize, int headDim, int expectedTasks) {
        if (groupSize <= 0 || headDim <= 0) {
            throw new IllegalArgumentException("attention batch needs a positive group size and head size");
        }
        this.groupSize = groupSize;
        this.headDim = headDim;
        int capacity = Math.max(1, expectedTasks);
        this.regions = new DeviceRegion[capacity];
        this.pages = new int[capacity];
        this.queries = new short[capacity * groupSize * headDim];
    }

    /**
     * Adds a task: the {@code groupSize × headDim} query values at {@code q[qOffset...]} (f32, rounded
     * to fp16 here) against pages [0, pages) of {@code region}.
     *
     * @return the task's index, for {@link #output} and {@link #lse}
     */
    public int add(DeviceRegion region, int pageCount, float[] q, int qOffset) {
        if (region.spec().headDim() != headDim) {
            throw new IllegalArgumentException("region " + region.spec() + " has head size " + region.spec().headDim()
                    + ", batch has " + headDim);
        }
        if (size == regions.length) {
            int grown = size * 2;
            regions = Arrays.copyOf(regions, grown);
            pages = Arrays.copyOf(pages, grown);
            queries = Arrays.copyOf(queries, grown * groupSize * headDim);
        }
        int width = groupSize * headDim;
        int base = size * width;
        for (int i = 0; i < width; i++) {
            queries[base + i] = Float.floatToFloat16(q[qOffset + i]);
        }
        regions[size] = region;
        pages[size] = pageCount;
        return size++;
    }

    public int size() {
        return size;
    }

    public int groupSize() {
        return groupSize;
    }

    public int headDim() {
        return headDim;
    }

    public DeviceRegion region(int task) {
        return regions[task];
    }

    public int pages(int task) {
        return pages[task];
    }

    /** fp16 queries, {@code [task][groupHead][headDim]}. */
    public short[] queries() {
        return queries;
    }

    /** Allocates the result arrays; the device calls this once before answering. */
    public void prepareResults() {
        outputs = new short[size * groupSize * headDim];
        lse = new float[size * groupSize];
    }

    /** fp16 outputs, {@code [task][groupHead][headDim]}, written by the device. */
    public short[] outputs() {
        return outputs;
    }

    /** Log-sum-exps, {@code [task][groupHead]}, written by the device. */
    public float[] lseArray() {
        return lse;
    }

    /** Output element {@code i} of group head {@code g} of a task, widened to f32. */
    public float output(int task, int g, int i) {
        return Float.float16ToFloat(outputs[(task * groupSize + g) * headDim + i]);
    }

    public float lse(int task, int g) {
        return lse[task * groupSize + g];
    }

    /** Bytes that cross the host interconnect for this batch: queries in, outputs and log-sum-exps out. */
    public long linkBytes() {
        long perTask = (long) groupSize * headDim * 2 * 2 + (long) groupSize * Float.BYTES;
        return perTask * size;
    }
}
