package io.inf2.csd;

/**
 * A device's counters since it was opened.
 *
 * @param directIo         false when the file system refused O_DIRECT and the device fell back to
 *                         buffered I/O (figures then include the page cache)
 * @param bytesRead        bytes read from the device's media, alignment overhead included
 * @param bytesWritten     bytes written to the device's media, read-modify-write overhead included
 * @param pagesWritten     KV pages appended
 * @param attentionCalls   attention batches served
 * @param attentionTasks   (region, query group) tasks in those batches
 * @param busyNanos        time the device's threads spent serving appends and attention (I/O included),
 *                         summed over threads
 * @param ioNanos          time spent waiting for media reads and writes: the device's threads', and the
 *                         caller's for plain reads ({@link ComputationalStorageDevice#read})
 * @param liveRegions      regions allocated and not yet freed
 * @param allocatedBytes   space reserved for live regions
 */
public record DeviceStatistics(String name, String location, boolean directIo, long bytesRead, long bytesWritten,
                               long pagesWritten, long attentionCalls, long attentionTasks, long busyNanos, long ioNanos,
                               long liveRegions, long allocatedBytes, DeviceHealth health) {

    /** One line for logs and results. */
    public String describe() {
        return String.format("%s (%s, %s): read %.1f MiB, wrote %.1f MiB, %d pages, %d attention calls, busy %.2f s"
                        + " (%.2f s waiting for I/O), %s",
                name, location, directIo ? "direct I/O" : "buffered I/O (O_DIRECT refused)", bytesRead / 1048576.0,
                bytesWritten / 1048576.0, pagesWritten, attentionCalls, busyNanos / 1e9, ioNanos / 1e9,
                health.ok() ? "ok" : "FAILED: " + health.reason());
    }
}
