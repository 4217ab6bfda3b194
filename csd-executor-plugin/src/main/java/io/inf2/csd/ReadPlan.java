package io.inf2.csd;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * How a device reads the pages of a set of tasks (a region and how many of its pages) in few, large
 * I/Os. Tasks whose pages lie close together on the media share one read (the bytes between them are
 * read too, at most a quarter of the next task's size), so a decode step over regions allocated one
 * after the other becomes a stream of reads of up to the device's largest I/O; a task larger than
 * that is read in several consecutive reads.
 *
 * <p>The plan is cut into {@link WorkItem}s, each done by one thread in order: either one read holding
 * several whole tasks, or the reads of one large task. So a task's pages are always folded by one
 * thread, in page order.
 */
public final class ReadPlan {

    /** Pages {@code [firstPage, firstPage + pages)} of task {@code task}, at byte {@code offset} of its read. */
    public record Slice(int task, int firstPage, int pages, long offset) {
    }

    /**
     * One I/O: {@code bytes} bytes (block aligned) at device position {@code position}.
     *
     * @param what the regions concerned, for error messages
     */
    public record Read(long position, long bytes, List<Slice> slices, String what) {
    }

    /** Reads that one thread performs in order. */
    public record WorkItem(List<Read> reads) {
    }

    private final List<WorkItem> items;
    private final long largestRead;

    private ReadPlan(List<WorkItem> items) {
        this.items = List.copyOf(items);
        this.largestRead = items.stream().flatMap(i -> i.reads().stream()).mapToLong(Read::bytes).max().orElse(0);
    }

    public List<WorkItem> items() {
        return items;
    }

    /** The size of the largest read, to size a destination buffer. */
    public long largestRead() {
        return largestRead;
    }

    /** Bytes the plan reads, gaps and alignment included. */
    public long bytes() {
        return items.stream().flatMap(i -> i.reads().stream()).mapToLong(Read::bytes).sum();
    }

    /**
     * Plans reads of pages {@code [0, pages[t])} for each task t whose region's pages start at byte
     * {@code starts[t]} of the device, {@code pageBytes[t]} bytes each.
     *
     * @param names    describes task t's region in messages
     * @param maxRead  largest single read, a multiple of {@code align}
     * @param align    the device's block size (reads start and end on it)
     */
    static ReadPlan plan(long[] starts, long[] pageBytes, int[] pages, String[] names, long maxRead, long align) {
        Integer[] order = new Integer[starts.length];
        for (int t = 0; t < order.length; t++) {
            order[t] = t;
        }
        Arrays.sort(order, Comparator.comparingLong(t -> starts[t]));
        List<WorkItem> items = new ArrayList<>();
        Builder open = null;
        for (int t : order) {
            if (pages[t] == 0) {
                continue;
            }
            long start = starts[t];
            long end = start + pages[t] * pageBytes[t];
            if (alignUp(end, align) - alignDown(start, align) > maxRead) {
                if (open != null) {
                    items.add(open.build());
                    open = null;
                }
                items.add(split(t, start, pageBytes[t], pages[t], names[t], maxRead, align));
                continue;
            }
            if (open != null && open.accepts(start, end, maxRead, align)) {
                open.add(t, start, end, pages[t], names[t]);
            } else {
                if (open != null) {
                    items.add(open.build());
                }
                open = new Builder(alignDown(start, align), align);
                open.add(t, start, end, pages[t], names[t]);
            }
        }
        if (open != null) {
            items.add(open.build());
        }
        return new ReadPlan(items);
    }

    /** One large task as consecutive reads of whole pages. */
    private static WorkItem split(int task, long start, long pageBytes, int pages, String name, long maxRead, long align) {
        int perRead = (int) Math.max(1, (maxRead - 2 * align) / pageBytes);
        List<Read> reads = new ArrayList<>();
        for (int p = 0; p < pages; p += perRead) {
            int n = Math.min(perRead, pages - p);
            long from = start + p * pageBytes;
            long blockStart = alignDown(from, align);
            long bytes = alignUp(from + n * pageBytes, align) - blockStart;
            reads.add(new Read(blockStart, bytes, List.of(new Slice(task, p, n, from - blockStart)),
                    name + " pages " + p + ".." + (p + n - 1)));
        }
        return new WorkItem(reads);
    }

    /** A read being filled with whole tasks. */
    private static final class Builder {
        private final long blockStart;
        private final long align;
        private final List<Slice> slices = new ArrayList<>();
        private long end;
        private String first;

        Builder(long blockStart, long align) {
            this.blockStart = blockStart;
            this.align = align;
        }

        /** Whether a task at [start, end) joins this read: close enough behind, and the read stays small enough. */
        boolean accepts(long start, long taskEnd, long maxRead, long align) {
            long gap = start - this.end;
            return gap >= 0 && gap <= Math.max(align, (taskEnd - start) / 4)
                    && alignUp(taskEnd, align) - blockStart <= maxRead;
        }

        void add(int task, long start, long taskEnd, int pages, String name) {
            slices.add(new Slice(task, 0, pages, start - blockStart));
            end = taskEnd;
            if (first == null) {
                first = name + " pages 0.." + (pages - 1);
            }
        }

        WorkItem build() {
            String what = slices.size() == 1 ? first : first + " and " + (slices.size() - 1) + " more region(s)";
            return new WorkItem(List.of(new Read(blockStart, alignUp(end, align) - blockStart, List.copyOf(slices), what)));
        }
    }

    static long alignDown(long v, long align) {
        return v - Math.floorMod(v, align);
    }

    static long alignUp(long v, long align) {
        return alignDown(v + align - 1, align);
    }
}
