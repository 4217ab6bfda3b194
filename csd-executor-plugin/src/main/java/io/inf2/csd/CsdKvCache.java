package io.inf2.csd;

import io.inf2.compute.cpu.CpuBackend;
import io.inf2.kv.KvCache;
import io.inf2.kv.KvProjector;
import io.inf2.kv.KvTraffic;
import io.inf2.kv.PartialAttention;
import io.inf2.model.ModelConfig;
import io.inf2.tensor.FloatMatrix;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * One engine batch's KV cache on computational storage devices, composing INF²'s three techniques:
 * <ol>
 *   <li><b>attention near storage</b>: each layer's cache is partitioned over (sequence × KV head)
 *       across the devices; per decode step the queries go to the devices, which read their regions
 *       and return partial outputs with log-sum-exps, merged here exactly
 *       ({@link PartialAttention});</li>
 *   <li><b>delayed writeback</b>: new keys and values wait in a host page buffer until
 *       {@code pageTokens} tokens fill a page; the host attends over the buffered tokens itself and
 *       merges; full pages are written asynchronously; pages whose write has not completed are served
 *       from their host copy, so no step waits for a write or reads a page that is not durable;</li>
 *   <li><b>cooperative X-cache</b>: for a fraction of the sequences the layer input X is kept in host
 *       memory instead of K and V; their keys and values are recomputed by the engine's projector each
 *       step and attended on the host while the devices work on the rest.</li>
 * </ol>
 * With {@link CsdKvCacheFactory.Placement#STORAGE} the same pages live on the same devices but are read
 * back to the host, which computes attention: the FlexGen-style baseline.
 *
 * <p>Keys and values are stored as fp16; scores, softmax and outputs accumulate in f32. Queries and
 * device outputs cross the (emulated) host link as fp16. Calls come from one engine thread; page
 * write completions arrive on device threads.
 */
final class CsdKvCache implements KvCache {
    private static final long CLOSE_WAIT_SECONDS = 60;

    private final CsdKvCacheFactory.Placement placement;
    private final List<ComputationalStorageDevice> devices;
    private final CpuBackend host;
    private final KvProjector projector;
    private final KvTraffic traffic;
    private final Consumer<CsdKvCache> onClose;
    private final int layers;
    private final int slots;
    private final int maxTokens;
    private final int pageTokens;
    private final int heads;
    private final int kvHeads;
    private final int group;
    private final int headDim;
    private final int hidden;
    private final int kvDim;
    private final int capacityPages;
    private final long pageBytes;
    private final boolean[] xSlot;
    /** [layer][slot]; null until the sequence's first write, again after release. */
    private final SequenceLayer[][] sequences;
    private final Set<CompletableFuture<?>> pendingWrites = ConcurrentHashMap.newKeySet();
    private final AtomicReference<CsdException> failure = new AtomicReference<>();
    private final ThreadLocal<HostScratch> hostScratch;
    private float[] recomputeX = new float[0];
    private float[] recomputeK = new float[0];
    private float[] recomputeV = new float[0];
    private boolean closed;

    CsdKvCache(CsdKvCacheFactory.Placement placement, List<ComputationalStorageDevice> devices, CpuBackend host,
               ModelConfig model, int slots, int maxTokens, int pageTokens, double xcacheFraction, KvProjector projector,
               KvTraffic traffic, Consumer<CsdKvCache> onClose) {
        if (slots <= 0 || maxTokens <= 0) {
            throw new IllegalArgumentException("a KV cache needs at least one slot and one token, got " + slots
                    + " slots of " + maxTokens + " tokens");
        }
        this.placement = placement;
        this.devices = devices;
        this.host = host;
        this.projector = projector;
        this.traffic = traffic;
        this.onClose = onClose;
        this.layers = model.layers();
        this.slots = slots;
        this.maxTokens = maxTokens;
        this.pageTokens = pageTokens;
        this.heads = model.heads();
        this.kvHeads = model.kvHeads();
        this.group = model.queriesPerKvHead();
        this.headDim = model.headDim();
        this.hidden = model.hidden();
        this.kvDim = model.kvDim();
        this.capacityPages = (maxTokens + pageTokens - 1) / pageTokens;
        this.pageBytes = 4L * pageTokens * headDim;
        this.xSlot = assignXSlots(slots, xcacheFraction);
        this.sequences = new SequenceLayer[layers][slots];
        this.hostScratch = ThreadLocal.withInitial(() -> new HostScratch(new GroupPartials(group, headDim)));
    }

    /** Spreads the X-cache slots evenly: slot s keeps X when ⌊(s+1)·α⌋ > ⌊s·α⌋. */
    static boolean[] assignXSlots(int slots, double fraction) {
        boolean[] x = new boolean[slots];
        for (int s = 0; s < slots; s++) {
            x[s] = Math.floor((s + 1) * fraction) > Math.floor(s * fraction);
        }
        return x;
    }

    /** Whether {@code slot} keeps X instead of K and V. */
    boolean keepsX(int slot) {
        return xSlot[slot];
    }

    /** Which device holds (layer, slot, kvHead): round robin over sequence × KV head, rotated per layer. */
    int deviceOf(int layer, int slot, int kvHead) {
        return (int) (((long) slot * kvHeads + kvHead + layer) % devices.size());
    }

    // ---- per-sequence state

    /** One sequence's cache in one layer. */
    private final class SequenceLayer {
        int length;
        final RegionState[] regions;
        final XStore x;

        SequenceLayer(int layer, int slot) {
            if (xSlot[slot]) {
                regions = null;
                x = new XStore();
            } else {
                regions = new RegionState[kvHeads];
                x = null;
                try {
                    for (int h = 0; h < kvHeads; h++) {
                        int d = deviceOf(layer, slot, h);
                        DeviceRegion region = devices.get(d).allocate(
                                new RegionSpec(layer, slot, h, headDim, pageTokens, capacityPages));
                        regions[h] = new RegionState(d, region);
                    }
                } catch (RuntimeException e) {
                    freeRegions();
                    throw e;
                }
            }
        }

        void freeRegions() {
            if (regions == null) {
                return;
            }
            for (RegionState r : regions) {
                if (r != null) {
                    traffic.changeWritebackBuffered(-(long) r.buffered * 4 * headDim);
                    r.buffered = 0;
                    devices.get(r.device).free(r.region);
                }
            }
        }
    }

    /** Pages submitted to a device whose write has not completed yet; the host serves them meanwhile. */
    private record InflightPages(int firstPage, int pages, short[] image) {
    }

    /** One (layer, sequence, KV head) region: its device, the host page buffer and the pages in flight. */
    private final class RegionState {
        final int device;
        final DeviceRegion region;
        short[] buffer = new short[2 * pageTokens * headDim];
        int buffered;
        int submittedPages;
        // Guarded by this: updated by write completions on device threads.
        int durablePages;
        final ArrayDeque<InflightPages> inflight = new ArrayDeque<>();

        RegionState(int device, DeviceRegion region) {
            this.device = device;
            this.region = region;
        }

        /** Copies one token's key and value (f32) into the page buffer as fp16. */
        void bufferToken(float[] k, int kOffset, float[] v, int vOffset) {
            int at = buffered * 2 * headDim;
            for (int i = 0; i < headDim; i++) {
                buffer[at + i] = Float.floatToFloat16(k[kOffset + i]);
                buffer[at + headDim + i] = Float.floatToFloat16(v[vOffset + i]);
            }
            buffered++;
            traffic.changeWritebackBuffered(4L * headDim);
        }

        /**
         * Sends pages to the device without waiting; until durable they stay in {@link #inflight}. The
         * caller has counted their bytes in the writeback level; completion takes them out.
         */
        void submit(short[] image, int pages) {
            InflightPages entry = new InflightPages(submittedPages, pages, image);
            synchronized (this) {
                inflight.add(entry);
            }
            submittedPages += pages;
            long bytes = pages * pageBytes;
            traffic.addLinkBytes(bytes);
            CompletableFuture<IoReport> write = devices.get(device).append(region, entry.firstPage(),
                    MemorySegment.ofArray(image), pages);
            // Waiters hold the stage after the bookkeeping: the device's future completes before its
            // callbacks run, so waiting on it alone could read the counters half-updated.
            CompletableFuture<IoReport> settled = write.whenComplete((report, error) -> {
                if (error != null) {
                    recordFailure(error);
                    return;
                }
                synchronized (this) {
                    inflight.remove(entry);
                    durablePages = entry.firstPage() + pages;
                }
                traffic.changeWritebackBuffered(-bytes);
                traffic.addDeviceWriteBytes(report.bytesWritten());
                traffic.addDeviceReadBytes(report.bytesRead());
                traffic.addPagesWritten(pages);
            });
            pendingWrites.add(settled);
            settled.whenComplete((report, error) -> pendingWrites.remove(settled));
        }

        void flushIfFull() {
            if (buffered == pageTokens) {
                short[] full = buffer;
                buffer = new short[full.length];
                buffered = 0;
                // Its bytes stay in the writeback level, now as a page in flight, until the write completes.
                submit(full, 1);
            }
        }

        synchronized Snapshot snapshot() {
            return new Snapshot(durablePages, inflight.toArray(new InflightPages[0]));
        }
    }

    /** What one step sees of a region: pages durable on the device, and host copies of the rest. */
    private record Snapshot(int durablePages, InflightPages[] inflight) {
    }

    /** A sequence's layer inputs, fp16, for the X-cache. */
    private final class XStore {
        short[] data = new short[0];
        int tokens;

        void append(float[] x, int offset, int rows) {
            int need = (tokens + rows) * hidden;
            if (data.length < need) {
                data = Arrays.copyOf(data, Math.max(need, Math.min(maxTokens * hidden, Math.max(16 * hidden, data.length * 2))));
            }
            int at = tokens * hidden;
            for (int i = 0; i < rows * hidden; i++) {
                data[at + i] = Float.floatToFloat16(x[offset + i]);
            }
            tokens += rows;
        }
    }

    /** A host thread's attention state and read buffer. */
    private static final class HostScratch {
        final GroupPartials attention;
        short[] pages = new short[0];

        HostScratch(GroupPartials attention) {
            this.attention = attention;
        }
    }

    private SequenceLayer sequence(int layer, int slot) {
        SequenceLayer s = sequences[layer][slot];
        if (s == null) {
            s = new SequenceLayer(layer, slot);
            sequences[layer][slot] = s;
        }
        return s;
    }

    // ---- KvCache

    @Override
    public void writePrompt(int layer, int slot, FloatMatrix keys, FloatMatrix values, FloatMatrix layerInput) {
        checkUsable();
        checkIndices(layer, slot);
        int tokens = keys.rows();
        checkShape("keys", keys, tokens, kvDim);
        checkShape("values", values, tokens, kvDim);
        if (tokens == 0 || tokens > maxTokens) {
            throw new IllegalArgumentException("prompt of " + tokens + " tokens for slot " + slot
                    + " (the cache holds 1 to " + maxTokens + " tokens per sequence)");
        }
        if (sequences[layer][slot] != null && sequences[layer][slot].length > 0) {
            throw new IllegalStateException("slot " + slot + " of layer " + layer + " already holds a prompt");
        }
        try {
            SequenceLayer s = sequence(layer, slot);
            if (s.x != null) {
                checkShape("layer input", layerInput, tokens, hidden);
                s.x.append(layerInput.data(), 0, tokens);
            } else {
                writePromptPages(s, keys, values, tokens);
            }
            s.length = tokens;
        } catch (CsdException e) {
            throw recordFailure(e);
        }
    }

    /** Full pages go to the devices in one sequential write per region; the rest waits in the buffer. */
    private void writePromptPages(SequenceLayer s, FloatMatrix keys, FloatMatrix values, int tokens) {
        int fullPages = tokens / pageTokens;
        for (int h = 0; h < kvHeads; h++) {
            RegionState r = s.regions[h];
            if (fullPages > 0) {
                short[] image = new short[fullPages * pageTokens * 2 * headDim];
                for (int t = 0; t < fullPages * pageTokens; t++) {
                    int at = t * 2 * headDim;
                    int src = keys.offset(t) + h * headDim;
                    int vsrc = values.offset(t) + h * headDim;
                    for (int i = 0; i < headDim; i++) {
                        image[at + i] = Float.floatToFloat16(keys.data()[src + i]);
                        image[at + headDim + i] = Float.floatToFloat16(values.data()[vsrc + i]);
                    }
                }
                traffic.changeWritebackBuffered(fullPages * pageBytes);
                r.submit(image, fullPages);
            }
            for (int t = fullPages * pageTokens; t < tokens; t++) {
                r.bufferToken(keys.data(), keys.offset(t) + h * headDim, values.data(), values.offset(t) + h * headDim);
            }
        }
    }

    @Override
    public void appendAndAttend(int layer, int[] slotIds, FloatMatrix queries, FloatMatrix keys, FloatMatrix values,
                                FloatMatrix layerInput, FloatMatrix out) {
        checkUsable();
        int n = slotIds.length;
        checkShape("queries", queries, n, heads * headDim);
        checkShape("keys", keys, n, kvDim);
        checkShape("values", values, n, kvDim);
        checkShape("out", out, n, heads * headDim);
        try {
            step(layer, slotIds, queries, keys, values, layerInput, out);
        } catch (CsdException e) {
            throw recordFailure(e);
        }
    }

    private void step(int layer, int[] slotIds, FloatMatrix queries, FloatMatrix keys, FloatMatrix values,
                      FloatMatrix layerInput, FloatMatrix out) {
        int n = slotIds.length;
        SequenceLayer[] rows = new SequenceLayer[n];
        int[] xLengths = new int[n];
        for (int i = 0; i < n; i++) {
            checkIndices(layer, slotIds[i]);
            SequenceLayer s = sequence(layer, slotIds[i]);
            if (s.length + 1 > maxTokens) {
                throw new IllegalStateException("slot " + slotIds[i] + " would exceed the cache's " + maxTokens
                        + " tokens per sequence");
            }
            if (s.x != null) {
                checkShape("layer input", layerInput, n, hidden);
            }
            rows[i] = s;
        }
        // Checked everything first: from here on a failure can only come from a device.
        for (int i = 0; i < n; i++) {
            SequenceLayer s = rows[i];
            if (s.x != null) {
                xLengths[i] = s.length;
                s.x.append(layerInput.data(), layerInput.offset(i), 1);
            } else {
                for (int h = 0; h < kvHeads; h++) {
                    s.regions[h].bufferToken(keys.data(), keys.offset(i) + h * headDim, values.data(),
                            values.offset(i) + h * headDim);
                }
            }
        }

        // Snapshots fix, per region, which pages the device serves and which the host serves this step.
        Snapshot[][] snapshots = new Snapshot[n][];
        for (int i = 0; i < n; i++) {
            if (rows[i].regions != null) {
                snapshots[i] = new Snapshot[kvHeads];
                for (int h = 0; h < kvHeads; h++) {
                    snapshots[i][h] = rows[i].regions[h].snapshot();
                }
            }
        }

        DeviceWork work = placement == CsdKvCacheFactory.Placement.CSD ? submitDeviceWork(rows, snapshots, queries) : null;

        float[] lse = new float[n * heads];
        Arrays.fill(lse, PartialAttention.EMPTY_LSE);
        hostPartials(rows, snapshots, queries, out, lse);
        for (int i = 0; i < n; i++) {
            if (rows[i].x != null) {
                attendFromX(layer, i, rows[i], xLengths[i], queries, keys, values, out);
            }
        }
        if (work != null) {
            work.mergeInto(out, lse);
        } else {
            readBackAndAttend(rows, snapshots, queries, out, lse);
        }

        for (int i = 0; i < n; i++) {
            SequenceLayer s = rows[i];
            if (s.regions != null) {
                for (RegionState r : s.regions) {
                    r.flushIfFull();
                }
            }
            s.length++;
        }
    }

    /** The device side of one step: per device a batch of (region, query group) tasks. */
    private final class DeviceWork {
        final AttentionBatch[] batches = new AttentionBatch[devices.size()];
        /** Per device, per task: {row, kvHead}. */
        final List<List<int[]>> taskRows = new ArrayList<>();
        final CompletableFuture<?>[] futures = new CompletableFuture<?>[devices.size()];

        DeviceWork(int expectedTasks) {
            for (int d = 0; d < batches.length; d++) {
                batches[d] = new AttentionBatch(group, headDim, expectedTasks / batches.length + 1);
                taskRows.add(new ArrayList<>());
            }
        }

        void mergeInto(FloatMatrix out, float[] lse) {
            float[] partial = new float[headDim];
            for (int d = 0; d < batches.length; d++) {
                if (futures[d] == null) {
                    continue;
                }
                try {
                    IoReport report = (IoReport) futures[d].join();
                    traffic.addDeviceReadBytes(report.bytesRead());
                } catch (CompletionException e) {
                    throw unwrap(e);
                }
                AttentionBatch batch = batches[d];
                for (int t = 0; t < batch.size(); t++) {
                    int[] rowHead = taskRows.get(d).get(t);
                    int i = rowHead[0];
                    int h = rowHead[1];
                    for (int g = 0; g < group; g++) {
                        int head = h * group + g;
                        for (int k = 0; k < headDim; k++) {
                            partial[k] = batch.output(t, g, k);
                        }
                        PartialAttention.accumulate(out.data(), out.offset(i) + head * headDim, lse, i * heads + head,
                                partial, 0, batch.lse(t, g), headDim);
                    }
                }
            }
        }
    }

    private DeviceWork submitDeviceWork(SequenceLayer[] rows, Snapshot[][] snapshots, FloatMatrix queries) {
        DeviceWork work = new DeviceWork(rows.length * kvHeads);
        for (int i = 0; i < rows.length; i++) {
            if (rows[i].regions == null) {
                continue;
            }
            for (int h = 0; h < kvHeads; h++) {
                int pages = snapshots[i][h].durablePages();
                if (pages > 0) {
                    RegionState r = rows[i].regions[h];
                    work.batches[r.device].add(r.region, pages, queries.data(), queries.offset(i) + h * group * headDim);
                    work.taskRows.get(r.device).add(new int[] {i, h});
                }
            }
        }
        for (int d = 0; d < devices.size(); d++) {
            AttentionBatch batch = work.batches[d];
            if (batch.size() > 0) {
                traffic.addLinkBytes(batch.linkBytes());
                work.futures[d] = devices.get(d).attend(batch);
            }
        }
        return work;
    }

    /** The host's share for every (sequence, KV head) on the devices: pages in flight and the page buffer. */
    private void hostPartials(SequenceLayer[] rows, Snapshot[][] snapshots, FloatMatrix queries, FloatMatrix out,
                              float[] lse) {
        int n = rows.length;
        host.parallelFor(n * kvHeads, 8, (from, to) -> {
            HostScratch scratch = hostScratch.get();
            GroupPartials attention = scratch.attention;
            for (int task = from; task < to; task++) {
                int i = task / kvHeads;
                int h = task % kvHeads;
                if (rows[i].regions == null) {
                    continue;
                }
                RegionState r = rows[i].regions[h];
                Snapshot snap = snapshots[i][h];
                attention.begin(queries.data(), queries.offset(i) + h * group * headDim);
                for (InflightPages p : snap.inflight()) {
                    attention.addPageTokens(MemorySegment.ofArray(p.image()), 0, p.pages() * pageTokens);
                }
                attention.addPageTokens(MemorySegment.ofArray(r.buffer), 0, r.buffered);
                for (int g = 0; g < group; g++) {
                    int head = h * group + g;
                    lse[i * heads + head] = attention.finish(g, out.data(), out.offset(i) + head * headDim);
                }
            }
        });
    }

    /**
     * The storage baseline: each device's durable pages cross the link to the host in the device's
     * planned reads and are attended there, then merged with the host's other partials.
     */
    private void readBackAndAttend(SequenceLayer[] rows, Snapshot[][] snapshots, FloatMatrix queries, FloatMatrix out,
                                   float[] lse) {
        List<int[]> taskRows = new ArrayList<>();
        List<ComputationalStorageDevice> itemDevices = new ArrayList<>();
        List<ReadPlan.WorkItem> items = new ArrayList<>();
        List<Integer> itemTaskBase = new ArrayList<>();
        for (int d = 0; d < devices.size(); d++) {
            List<DeviceRegion> regions = new ArrayList<>();
            List<Integer> pages = new ArrayList<>();
            int base = taskRows.size();
            for (int i = 0; i < rows.length; i++) {
                if (rows[i].regions == null) {
                    continue;
                }
                for (int h = 0; h < kvHeads; h++) {
                    RegionState r = rows[i].regions[h];
                    int durable = snapshots[i][h].durablePages();
                    if (r.device == d && durable > 0) {
                        regions.add(r.region);
                        pages.add(durable);
                        taskRows.add(new int[] {i, h});
                    }
                }
            }
            if (regions.isEmpty()) {
                continue;
            }
            ComputationalStorageDevice device = devices.get(d);
            ReadPlan plan = device.planReads(regions, pages.stream().mapToInt(Integer::intValue).toArray());
            for (ReadPlan.WorkItem item : plan.items()) {
                items.add(item);
                itemDevices.add(device);
                itemTaskBase.add(base);
            }
        }
        int width = group * headDim;
        float[] partOut = new float[taskRows.size() * width];
        float[] partLse = new float[taskRows.size() * group];
        Arrays.fill(partLse, PartialAttention.EMPTY_LSE);
        host.parallelFor(items.size(), 1, (from, to) -> {
            HostScratch scratch = hostScratch.get();
            GroupPartials attention = scratch.attention;
            for (int k = from; k < to; k++) {
                int base = itemTaskBase.get(k);
                int current = -1;
                for (ReadPlan.Read read : items.get(k).reads()) {
                    if (scratch.pages.length * 2L < read.bytes()) {
                        scratch.pages = new short[(int) (read.bytes() / 2)];
                    }
                    MemorySegment landed = MemorySegment.ofArray(scratch.pages);
                    IoReport report = itemDevices.get(k).read(read, landed);
                    traffic.addDeviceReadBytes(report.bytesRead());
                    traffic.addLinkBytes(read.bytes());
                    for (ReadPlan.Slice slice : read.slices()) {
                        int task = base + slice.task();
                        if (task != current) {
                            if (current >= 0) {
                                finishPartial(attention, current, partOut, partLse);
                            }
                            current = task;
                            int[] rowHead = taskRows.get(task);
                            attention.begin(queries.data(), queries.offset(rowHead[0]) + rowHead[1] * width);
                        }
                        attention.addPageTokens(landed, slice.offset() / 2, slice.pages() * pageTokens);
                    }
                }
                if (current >= 0) {
                    finishPartial(attention, current, partOut, partLse);
                }
            }
        });
        for (int task = 0; task < taskRows.size(); task++) {
            int i = taskRows.get(task)[0];
            int h = taskRows.get(task)[1];
            for (int g = 0; g < group; g++) {
                int head = h * group + g;
                PartialAttention.accumulate(out.data(), out.offset(i) + head * headDim, lse, i * heads + head,
                        partOut, (task * group + g) * headDim, partLse[task * group + g], headDim);
            }
        }
    }

    private void finishPartial(GroupPartials attention, int task, float[] partOut, float[] partLse) {
        for (int g = 0; g < group; g++) {
            partLse[task * group + g] = attention.finish(g, partOut, (task * group + g) * headDim);
        }
    }

    /** X-cache: recompute the sequence's earlier keys and values from X, then attend on the host. */
    private void attendFromX(int layer, int row, SequenceLayer s, int earlier, FloatMatrix queries, FloatMatrix keys,
                             FloatMatrix values, FloatMatrix out) {
        if (earlier > 0) {
            int xSize = earlier * hidden;
            int kvSize = earlier * kvDim;
            if (recomputeX.length < xSize) {
                recomputeX = new float[Math.max(xSize, Math.min(maxTokens * hidden, recomputeX.length * 2))];
            }
            if (recomputeK.length < kvSize) {
                int grown = Math.max(kvSize, Math.min(maxTokens * kvDim, recomputeK.length * 2));
                recomputeK = new float[grown];
                recomputeV = new float[grown];
            }
            short[] x = s.x.data;
            for (int i = 0; i < xSize; i++) {
                recomputeX[i] = Float.float16ToFloat(x[i]);
            }
            projector.project(layer, new FloatMatrix(recomputeX, earlier, hidden), 0,
                    new FloatMatrix(recomputeK, earlier, kvDim), new FloatMatrix(recomputeV, earlier, kvDim));
            traffic.addRecomputedXBytes(2L * xSize);
        }
        float[] k = recomputeK;
        float[] v = recomputeV;
        host.parallelFor(kvHeads, 1, (from, to) -> {
            GroupPartials attention = hostScratch.get().attention;
            for (int h = from; h < to; h++) {
                attention.begin(queries.data(), queries.offset(row) + h * group * headDim);
                attention.addRows(k, h * headDim, v, h * headDim, kvDim, earlier);
                attention.addRows(keys.data(), keys.offset(row) + h * headDim, values.data(),
                        values.offset(row) + h * headDim, kvDim, 1);
                for (int g = 0; g < group; g++) {
                    int head = h * group + g;
                    attention.finish(g, out.data(), out.offset(row) + head * headDim);
                }
            }
        });
    }

    @Override
    public int length(int slot) {
        SequenceLayer s = sequences[layers - 1][slot];
        return s == null ? 0 : s.length;
    }

    @Override
    public void release(int slot) {
        if (slot < 0 || slot >= slots) {
            throw new IndexOutOfBoundsException("slot " + slot + " of a cache with " + slots + " slots");
        }
        for (int layer = 0; layer < layers; layer++) {
            SequenceLayer s = sequences[layer][slot];
            if (s != null) {
                sequences[layer][slot] = null;
                s.freeRegions();
            }
        }
    }

    @Override
    public KvTraffic traffic() {
        return traffic;
    }

    /** Waits until every page submitted so far is durable (or failed); for tests and benchmarks. */
    void awaitWrites() {
        for (CompletableFuture<?> w : List.copyOf(pendingWrites)) {
            try {
                w.join();
            } catch (CompletionException e) {
                throw recordFailure(unwrap(e));
            }
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            for (int slot = 0; slot < slots; slot++) {
                release(slot);
            }
            // Writes still in flight touch this cache's counters; let them finish so figures settle.
            CompletableFuture.allOf(pendingWrites.toArray(new CompletableFuture<?>[0]))
                    .get(CLOSE_WAIT_SECONDS, TimeUnit.SECONDS);
        } catch (ExecutionException | TimeoutException | RuntimeException e) {
            // A failed write was reported to the engine by the step that saw it; closing must still finish.
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            onClose.accept(this);
        }
    }

    // ---- checks and failures

    private void checkUsable() {
        if (closed) {
            throw new IllegalStateException("the KV cache is closed");
        }
        CsdException f = failure.get();
        if (f != null) {
            throw new CsdException(f.getMessage(), f);
        }
    }

    /** Records the cache's first failure and returns it: later errors are consequences of that one. */
    private CsdException recordFailure(Throwable error) {
        CsdException e = error instanceof CsdException c ? c : unwrap(error);
        failure.compareAndSet(null, e);
        return failure.get();
    }

    private static CsdException unwrap(Throwable error) {
        Throwable cause = error;
        while ((cause instanceof CompletionException || cause instanceof ExecutionException) && cause.getCause() != null) {
            cause = cause.getCause();
        }
        if (cause instanceof CsdException c) {
            return c;
        }
        return new CsdException("storage tier failure: " + cause, cause);
    }

    private void checkIndices(int layer, int slot) {
        if (layer < 0 || layer >= layers) {
            throw new IndexOutOfBoundsException("layer " + layer + " of a model with " + layers + " layers");
        }
        if (slot < 0 || slot >= slots) {
            throw new IndexOutOfBoundsException("slot " + slot + " of a cache with " + slots + " slots");
        }
    }

    private static void checkShape(String what, FloatMatrix m, int rows, int cols) {
        if (m == null || m.rows() != rows || m.cols() != cols) {
            throw new IllegalArgumentException(what + " must be [" + rows + ", " + cols + "], got "
                    + (m == null ? "none" : "[" + m.rows() + ", " + m.cols() + "]"));
        }
    }
}
