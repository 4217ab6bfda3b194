package io.inf2.kv;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * Where KV-cache bytes went. Counters only grow, except the writeback buffer, which is a level.
 * Thread-safe; one instance is shared by a cache, its places and the engine statistics.
 */
public final class KvTraffic {
    private final LongAdder linkBytes = new LongAdder();
    private final LongAdder deviceReadBytes = new LongAdder();
    private final LongAdder deviceWriteBytes = new LongAdder();
    private final LongAdder pagesWritten = new LongAdder();
    private final LongAdder recomputedXBytes = new LongAdder();
    private final AtomicLong writebackBufferedBytes = new AtomicLong();
    private final AtomicLong writebackBufferedPeakBytes = new AtomicLong();

    /** Bytes that crossed the host interconnect between storage devices and the host or accelerator. */
    public void addLinkBytes(long bytes) {
        linkBytes.add(bytes);
    }

    /** Bytes a storage device read from its own media. */
    public void addDeviceReadBytes(long bytes) {
        deviceReadBytes.add(bytes);
    }

    /** Bytes a storage device wrote to its own media. */
    public void addDeviceWriteBytes(long bytes) {
        deviceWriteBytes.add(bytes);
    }

    public void addPagesWritten(long pages) {
        pagesWritten.add(pages);
    }

    /** Bytes of X (layer input) from which K and V were recomputed instead of being read. */
    public void addRecomputedXBytes(long bytes) {
        recomputedXBytes.add(bytes);
    }

    /** Changes the level of bytes waiting in host writeback buffers. */
    public void changeWritebackBuffered(long delta) {
        long now = writebackBufferedBytes.addAndGet(delta);
        writebackBufferedPeakBytes.accumulateAndGet(now, Math::max);
    }

    public Snapshot snapshot() {
        return new Snapshot(linkBytes.sum(), deviceReadBytes.sum(), deviceWriteBytes.sum(), pagesWritten.sum(),
                recomputedXBytes.sum(), writebackBufferedBytes.get(), writebackBufferedPeakBytes.get());
    }

    /** A consistent-enough copy of the counters for reporting. */
    public record Snapshot(long linkBytes, long deviceReadBytes, long deviceWriteBytes, long pagesWritten,
                           long recomputedXBytes, long writebackBufferedBytes, long writebackBufferedPeakBytes) {

        public static final Snapshot ZERO = new Snapshot(0, 0, 0, 0, 0, 0, 0);

        public Snapshot plus(Snapshot o) {
            return new Snapshot(linkBytes + o.linkBytes, deviceReadBytes + o.deviceReadBytes,
                    deviceWriteBytes + o.deviceWriteBytes, pagesWritten + o.pagesWritten,
                    recomputedXBytes + o.recomputedXBytes, writebackBufferedBytes + o.writebackBufferedBytes,
                    Math.max(writebackBufferedPeakBytes, o.writebackBufferedPeakBytes));
        }
    }
}
