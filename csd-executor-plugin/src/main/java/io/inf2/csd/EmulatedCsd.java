package io.inf2.csd;

import io.inf2.nativeio.LibC;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;

/**
 * A computational storage device emulated on a directory: the KV cache lives in one file per device
 * opening, read and written with O_DIRECT into aligned native memory (buffered I/O only where the file
 * system refuses O_DIRECT, recorded in the statistics); the device's own threads are its compute unit:
 * they read a region's pages through the device's I/O path and compute attention over them, so the raw
 * cache never reaches the caller.
 *
 * <h2>Layout</h2>
 * A 4 KiB header (magic, format version, the opening's random epoch) followed by extents, one per
 * region, each reserved contiguously for the region's full capacity when it is allocated. A region's
 * pages are packed back to back in its extent and a layer's regions are allocated one after another,
 * so a decode step's reads ({@link ReadPlan}: nearby regions share a read of up to
 * {@link #MAX_IO_BYTES}) sweep forward through the file. Appends whose start is not block aligned
 * read the partly filled block back first (read-modify-write), which is what small pages cost on a
 * block device.
 *
 * <h2>Crash leftovers</h2>
 * The file's name carries a random epoch drawn at each opening, region validity lives only in memory,
 * and files an earlier process left in the directory are removed at open: nothing a crashed run wrote
 * can be read as valid.
 */
public final class EmulatedCsd implements ComputationalStorageDevice {
    private static final System.Logger LOG = System.getLogger(EmulatedCsd.class.getName());

    static final String FILE_PREFIX = "inf2-csd-";
    static final String FILE_SUFFIX = ".kv";
    /** "INF2CSD1" read as a little-endian long. */
    private static final long MAGIC = 0x31445343_32464E49L;
    private static final int FORMAT_VERSION = 1;
    private static final long HEADER_BYTES = DirectFile.ALIGNMENT;
    /** Largest single read or write the device issues. */
    static final int MAX_IO_BYTES = 4 << 20;
    private static final ValueLayout.OfLong LONG_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final String name;
    private final Path directory;
    private final Path dataPath;
    private final long epoch;
    private final int threads;
    private final FaultInjector faults;
    private final DirectFile file;
    private final ExecutorService compute;
    /** Single thread: appends and frees of a region are applied in submission order. */
    private final ExecutorService writer;
    private final LibC.AlignedBuffer writeBuffer;
    private final ConcurrentLinkedQueue<Scratch> scratches = new ConcurrentLinkedQueue<>();
    private final ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(this::newScratch);

    private final Object extentLock = new Object();
    private long extentEnd = HEADER_BYTES;
    private final Map<Long, ArrayDeque<Long>> freeExtents = new HashMap<>();

    private final LongAdder bytesRead = new LongAdder();
    private final LongAdder bytesWritten = new LongAdder();
    private final LongAdder pagesWritten = new LongAdder();
    private final LongAdder attentionCalls = new LongAdder();
    private final LongAdder attentionTasks = new LongAdder();
    private final LongAdder busyNanos = new LongAdder();
    private final LongAdder ioNanos = new LongAdder();
    private final AtomicLong liveRegions = new AtomicLong();
    private final AtomicLong allocatedBytes = new AtomicLong();
    private final AtomicReference<DeviceHealth> health = new AtomicReference<>(DeviceHealth.OK);
    private volatile boolean closed;

    private EmulatedCsd(String name, Path directory, Path dataPath, long epoch, int threads, FaultInjector faults,
                        DirectFile file, LibC.AlignedBuffer writeBuffer) {
        this.name = name;
        this.directory = directory;
        this.dataPath = dataPath;
        this.epoch = epoch;
        this.threads = threads;
        this.faults = faults;
        this.file = file;
        this.writeBuffer = writeBuffer;
        this.compute = Executors.newFixedThreadPool(threads, namedThreads(name + "-compute"));
        this.writer = Executors.newSingleThreadExecutor(namedThreads(name + "-writer"));
    }

    /**
     * Opens a device on {@code directory} (which must exist and be writable) with {@code threads}
     * near-storage compute threads. Removes cache files an earlier process left there.
     */
    public static EmulatedCsd open(String name, Path directory, int threads) {
        return open(name, directory, threads, new FaultInjector());
    }

    static EmulatedCsd open(String name, Path directory, int threads, FaultInjector faults) {
        if (threads < 1) {
            throw new IllegalArgumentException(name + ": near-storage compute threads must be at least 1, got " + threads);
        }
        Path dir = directory.toAbsolutePath().normalize();
        if (!Files.exists(dir)) {
            throw new CsdException(name + ": device directory " + dir + " does not exist");
        }
        if (!Files.isDirectory(dir)) {
            throw new CsdException(name + ": device directory " + dir + " is not a directory");
        }
        removeLeftovers(name, dir);
        long epoch = new SecureRandom().nextLong();
        Path data = dir.resolve(FILE_PREFIX + String.format("%016x", epoch) + FILE_SUFFIX);
        DirectFile file;
        try {
            file = DirectFile.create(data, faults);
        } catch (LibC.ErrnoException e) {
            throw new CsdException(name + ": cannot create the device's cache file in " + dir + ": " + e.getMessage(), e);
        }
        LibC.AlignedBuffer writeBuffer = null;
        try {
            writeBuffer = LibC.allocateAligned(DirectFile.ALIGNMENT, MAX_IO_BYTES);
            writeHeader(file, writeBuffer.segment(), epoch);
            if (!file.direct()) {
                LOG.log(System.Logger.Level.WARNING, name + ": the file system of " + dir
                        + " refuses O_DIRECT; using buffered I/O (this device's figures include the page cache)");
            }
            return new EmulatedCsd(name, dir, data, epoch, threads, faults, file, writeBuffer);
        } catch (IOException | RuntimeException e) {
            if (writeBuffer != null) {
                writeBuffer.close();
            }
            closeQuietly(file);
            deleteQuietly(data);
            throw new CsdException(name + ": cannot initialise the device's cache file " + data + ": " + e.getMessage(), e);
        }
    }

    private static void writeHeader(DirectFile file, MemorySegment buffer, long epoch) throws IOException {
        MemorySegment header = buffer.asSlice(0, HEADER_BYTES);
        header.fill((byte) 0);
        header.set(LONG_LE, 0, MAGIC);
        header.set(LONG_LE, 8, FORMAT_VERSION);
        header.set(LONG_LE, 16, epoch);
        header.set(LONG_LE, 24, System.currentTimeMillis());
        header.set(LONG_LE, 32, ProcessHandle.current().pid());
        file.writeFully(header, 0);
        file.sync();
    }

    /**
     * Deletes cache files of earlier openings (crashed or killed processes). A file with our name
     * pattern whose header is not ours is left alone, with a warning: it is not ours to delete.
     */
    private static void removeLeftovers(String name, Path dir) {
        int removed = 0;
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir, FILE_PREFIX + "*" + FILE_SUFFIX)) {
            for (Path leftover : entries) {
                if (!Files.isRegularFile(leftover)) {
                    continue;
                }
                if (isOurs(leftover)) {
                    Files.delete(leftover);
                    removed++;
                } else {
                    LOG.log(System.Logger.Level.WARNING, name + ": leaving " + leftover
                            + " alone: named like a device cache file but without its header");
                }
            }
        } catch (IOException e) {
            throw new CsdException(name + ": cannot clean device directory " + dir + " of earlier cache files: " + e, e);
        }
        if (removed > 0) {
            LOG.log(System.Logger.Level.INFO, name + ": removed " + removed + " cache file(s) an earlier run left in " + dir);
        }
    }

    private static boolean isOurs(Path candidate) throws IOException {
        long size = Files.size(candidate);
        if (size < 8) {
            return true; // died before its header was written
        }
        try (var in = Files.newInputStream(candidate)) {
            byte[] head = in.readNBytes(8);
            return MemorySegment.ofArray(head).get(LONG_LE, 0) == MAGIC;
        }
    }

    private static ThreadFactory namedThreads(String prefix) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, prefix + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }

    @Override
    public String name() {
        return name;
    }

    public Path directory() {
        return directory;
    }

    /** The random id of this opening, also in the cache file's name and header. */
    public long epoch() {
        return epoch;
    }

    public boolean directIo() {
        return file.direct();
    }

    @Override
    public String describe() {
        return name + " (emulated: " + directory + ", " + (file.direct() ? "direct I/O" : "buffered I/O, O_DIRECT refused")
                + ", " + threads + " compute threads)";
    }

    // ---- regions

    /** A region of this device: an extent of the cache file. */
    private final class Region implements DeviceRegion {
        final RegionSpec spec;
        final long offset;
        final long extentBytes;
        volatile int durable;
        int submitted;
        boolean freed;

        Region(RegionSpec spec, long offset, long extentBytes) {
            this.spec = spec;
            this.offset = offset;
            this.extentBytes = extentBytes;
        }

        @Override
        public RegionSpec spec() {
            return spec;
        }

        @Override
        public int durablePages() {
            return durable;
        }

        EmulatedCsd owner() {
            return EmulatedCsd.this;
        }
    }

    private Region own(DeviceRegion region, String operation) {
        if (region instanceof Region r && r.owner() == this) {
            return r;
        }
        throw new IllegalArgumentException(name + ": " + operation + " of a region that belongs to another device: " + region.spec());
    }

    @Override
    public DeviceRegion allocate(RegionSpec spec) {
        checkUsable("allocate region " + spec);
        long size = DirectFile.alignUp(spec.capacityBytes());
        long offset;
        synchronized (extentLock) {
            ArrayDeque<Long> reusable = freeExtents.get(size);
            if (reusable != null && !reusable.isEmpty()) {
                offset = reusable.pop();
            } else {
                offset = extentEnd;
                try {
                    file.reserve(offset, size);
                } catch (LibC.ErrnoException e) {
                    // Not a device fault: the request needs more space than the device has.
                    throw new CsdException(name + " (" + directory + "): allocate region " + spec + " ("
                            + size / 1024 + " KiB): " + e.getMessage(), e);
                }
                extentEnd += size;
            }
        }
        liveRegions.incrementAndGet();
        allocatedBytes.addAndGet(size);
        return new Region(spec, offset, size);
    }

    @Override
    public void free(DeviceRegion region) {
        Region r = own(region, "free");
        synchronized (r) {
            if (r.freed) {
                return;
            }
            r.freed = true;
        }
        Runnable release = () -> {
            synchronized (extentLock) {
                freeExtents.computeIfAbsent(r.extentBytes, k -> new ArrayDeque<>()).push(r.offset);
            }
            liveRegions.decrementAndGet();
            allocatedBytes.addAndGet(-r.extentBytes);
        };
        try {
            writer.execute(release);
        } catch (RejectedExecutionException closing) {
            // The device is closing: its whole file goes away, extents with it.
        }
    }

    // ---- appends

    @Override
    public CompletableFuture<IoReport> append(DeviceRegion region, int firstPage, MemorySegment pages, int pageCount) {
        Region r = own(region, "append");
        RegionSpec spec = r.spec;
        String what = "append to region " + spec + " pages " + firstPage + ".." + (firstPage + pageCount - 1);
        synchronized (r) {
            if (r.freed) {
                throw new IllegalStateException(name + ": " + what + ": the region was freed");
            }
            if (pageCount <= 0 || firstPage != r.submitted) {
                throw new IllegalArgumentException(name + ": " + what + ": the region has " + r.submitted
                        + " pages; appends must continue it with at least one page");
            }
            if (firstPage + pageCount > spec.capacityPages()) {
                throw new CsdException(name + ": " + what + ": the region holds only " + spec.capacityPages() + " pages");
            }
            if (pages.byteSize() < pageCount * spec.pageBytes()) {
                throw new IllegalArgumentException(name + ": " + what + ": " + pages.byteSize() + " bytes given, "
                        + pageCount * spec.pageBytes() + " needed");
            }
            r.submitted = firstPage + pageCount;
        }
        try {
            return CompletableFuture.supplyAsync(() -> writePages(r, firstPage, pages, pageCount, what), writer);
        } catch (RejectedExecutionException e) {
            return CompletableFuture.failedFuture(new CsdException(name + ": " + what + ": the device is closed"));
        }
    }

    /** Runs on the writer thread. */
    private IoReport writePages(Region r, int firstPage, MemorySegment pages, int pageCount, String what) {
        checkUsable(what);
        long pageBytes = r.spec.pageBytes();
        long start = r.offset + firstPage * pageBytes;
        long length = pageCount * pageBytes;
        long t0 = System.nanoTime();
        try {
            IoReport report = writeRange(start, pages, length);
            r.durable = firstPage + pageCount;
            pagesWritten.add(pageCount);
            return report;
        } catch (IOException e) {
            throw fail(what, e);
        } finally {
            busyNanos.add(System.nanoTime() - t0);
        }
    }

    /**
     * Writes {@code length} bytes of {@code source} at byte {@code position} of the file in aligned
     * I/Os through the writer buffer; reads back the partly filled first block when {@code position}
     * is not block aligned.
     */
    private IoReport writeRange(long position, MemorySegment source, long length) throws IOException {
        MemorySegment buffer = writeBuffer.segment();
        long read = 0;
        long written = 0;
        long done = 0;
        while (done < length) {
            long pos = position + done;
            long blockStart = DirectFile.alignDown(pos);
            int head = (int) (pos - blockStart);
            long chunk = Math.min(length - done, MAX_IO_BYTES - head);
            long ioBytes = DirectFile.alignUp(head + chunk);
            long t0 = System.nanoTime();
            if (head > 0) {
                file.readFully(buffer.asSlice(0, DirectFile.ALIGNMENT), blockStart);
                read += DirectFile.ALIGNMENT;
            }
            long t1 = System.nanoTime();
            MemorySegment.copy(source, done, buffer, head, chunk);
            if (head + chunk < ioBytes) {
                buffer.asSlice(head + chunk, ioBytes - head - chunk).fill((byte) 0);
            }
            long t2 = System.nanoTime();
            file.writeFully(buffer.asSlice(0, ioBytes), blockStart);
            ioNanos.add(t1 - t0 + System.nanoTime() - t2);
            written += ioBytes;
            done += chunk;
        }
        bytesRead.add(read);
        bytesWritten.add(written);
        return new IoReport(read, written);
    }

    // ---- attention near storage

    @Override
    public CompletableFuture<IoReport> attend(AttentionBatch batch) {
        checkUsable("attention batch of " + batch.size() + " tasks");
        int tasks = batch.size();
        List<DeviceRegion> regions = new ArrayList<>(tasks);
        int[] pages = new int[tasks];
        for (int t = 0; t < tasks; t++) {
            regions.add(batch.region(t));
            pages[t] = batch.pages(t);
        }
        ReadPlan plan = plan(regions, pages, "attention over region");
        batch.prepareResults();
        attentionCalls.increment();
        attentionTasks.add(tasks);
        // Tasks with no pages read nothing; their (empty) partial is written here.
        for (int t = 0; t < tasks; t++) {
            if (pages[t] == 0) {
                finishTask(batch, t, new GroupPartials(batch.groupSize(), batch.headDim()));
            }
        }
        CompletableFuture<IoReport> result = new CompletableFuture<>();
        List<ReadPlan.WorkItem> items = plan.items();
        if (items.isEmpty()) {
            result.complete(IoReport.NONE);
            return result;
        }
        int runners = Math.min(threads, items.size());
        AtomicInteger next = new AtomicInteger();
        AtomicInteger remaining = new AtomicInteger(runners);
        LongAdder read = new LongAdder();
        AtomicReference<CsdException> error = new AtomicReference<>();
        Runnable runner = () -> {
            long t0 = System.nanoTime();
            try {
                int i;
                while (error.get() == null && (i = next.getAndIncrement()) < items.size()) {
                    read.add(attendItem(batch, items.get(i)));
                }
            } catch (CsdException e) {
                error.compareAndSet(null, e);
            } catch (RuntimeException | Error e) {
                error.compareAndSet(null, new CsdException(name + ": attention failed: " + e, e));
            } finally {
                busyNanos.add(System.nanoTime() - t0);
                if (remaining.decrementAndGet() == 0) {
                    if (error.get() != null) {
                        result.completeExceptionally(error.get());
                    } else {
                        result.complete(new IoReport(read.sum(), 0));
                    }
                }
            }
        };
        for (int k = 0; k < runners; k++) {
            try {
                compute.execute(runner);
            } catch (RejectedExecutionException e) {
                error.compareAndSet(null, new CsdException(name + ": attention batch: the device is closed"));
                runner.run();
            }
        }
        return result;
    }

    /** Checks the requests and plans their reads; {@code operation} prefixes messages. */
    private ReadPlan plan(List<? extends DeviceRegion> regions, int[] pages, String operation) {
        int tasks = regions.size();
        long[] starts = new long[tasks];
        long[] pageBytes = new long[tasks];
        String[] names = new String[tasks];
        for (int t = 0; t < tasks; t++) {
            Region r = own(regions.get(t), operation);
            if (r.freed) {
                throw new IllegalStateException(name + ": " + operation + " " + r.spec + ": the region was freed");
            }
            if (pages[t] < 0 || pages[t] > r.durable) {
                throw new CsdException(name + " (" + directory + "): " + operation + " " + r.spec + " pages 0.."
                        + (pages[t] - 1) + ": read past the end of the region (" + r.durable + " pages written)");
            }
            starts[t] = r.offset;
            pageBytes[t] = r.spec.pageBytes();
            names[t] = r.spec.toString();
        }
        return ReadPlan.plan(starts, pageBytes, pages, names, MAX_IO_BYTES, DirectFile.ALIGNMENT);
    }

    /**
     * One work item on a compute thread: read, and fold each slice into its task's group attention; a
     * task ends when the next slice belongs to another task or the item ends.
     */
    private long attendItem(AttentionBatch batch, ReadPlan.WorkItem item) {
        Scratch s = scratch.get();
        GroupPartials attention = s.attention(batch.groupSize(), batch.headDim());
        int width = batch.groupSize() * batch.headDim();
        int current = -1;
        long bytes = 0;
        for (ReadPlan.Read read : item.reads()) {
            String what = "attention over region " + read.what();
            checkRunning(what);
            MemorySegment buffer = s.buffer(read.bytes());
            try {
                readFully(buffer.asSlice(0, read.bytes()), read.position());
            } catch (IOException e) {
                throw fail(what, e);
            }
            bytes += read.bytes();
            for (ReadPlan.Slice slice : read.slices()) {
                if (slice.task() != current) {
                    if (current >= 0) {
                        finishTask(batch, current, attention);
                    }
                    current = slice.task();
                    attention.beginHalf(batch.queries(), current * width);
                }
                int pageTokens = batch.region(current).spec().pageTokens();
                attention.addPageTokens(buffer, slice.offset() / 2, slice.pages() * pageTokens);
            }
        }
        if (current >= 0) {
            finishTask(batch, current, attention);
        }
        return bytes;
    }

    private static void finishTask(AttentionBatch batch, int task, GroupPartials attention) {
        int group = batch.groupSize();
        int headDim = batch.headDim();
        short[] out = batch.outputs();
        float[] lse = batch.lseArray();
        for (int g = 0; g < group; g++) {
            lse[task * group + g] = attention.finishHalf(g, out, (task * group + g) * headDim);
        }
    }

    /** A timed, counted media read into {@code buffer} (aligned) at {@code position}. */
    private void readFully(MemorySegment buffer, long position) throws IOException {
        long t0 = System.nanoTime();
        file.readFully(buffer, position);
        ioNanos.add(System.nanoTime() - t0);
        bytesRead.add(buffer.byteSize());
    }

    // ---- plain reads (the storage baseline)

    @Override
    public ReadPlan planReads(List<? extends DeviceRegion> regions, int[] pages) {
        checkUsable("read planning for " + regions.size() + " regions");
        return plan(regions, pages, "read region");
    }

    @Override
    public IoReport read(ReadPlan.Read read, MemorySegment destination) {
        String what = "read region " + read.what();
        checkUsable(what);
        long end;
        synchronized (extentLock) {
            end = extentEnd;
        }
        if (read.position() < HEADER_BYTES || read.position() % DirectFile.ALIGNMENT != 0 || read.bytes() <= 0
                || read.bytes() % DirectFile.ALIGNMENT != 0 || read.position() + read.bytes() > end) {
            throw new IllegalArgumentException(name + ": " + what + ": not a read this device planned (" + read.bytes()
                    + " bytes at " + read.position() + ")");
        }
        if (destination.byteSize() < read.bytes()) {
            throw new IllegalArgumentException(name + ": " + what + ": destination of " + destination.byteSize()
                    + " bytes is smaller than the read's " + read.bytes());
        }
        MemorySegment buffer = scratch.get().buffer(read.bytes()).asSlice(0, read.bytes());
        try {
            readFully(buffer, read.position());
        } catch (IOException e) {
            throw fail(what, e);
        }
        MemorySegment.copy(buffer, 0, destination, 0, read.bytes());
        return new IoReport(read.bytes(), 0);
    }

    // ---- bandwidth probe

    @Override
    public double probeReadBandwidth(long bytes) {
        checkUsable("bandwidth probe");
        long size = Math.max(MAX_IO_BYTES, (bytes + MAX_IO_BYTES - 1) / MAX_IO_BYTES * MAX_IO_BYTES);
        try {
            return CompletableFuture.supplyAsync(() -> probe(size), writer).join();
        } catch (java.util.concurrent.CompletionException e) {
            throw e.getCause() instanceof CsdException c ? c : new CsdException(name + ": bandwidth probe: " + e.getCause(), e);
        }
    }

    /**
     * Writes a scratch extent, then times reading it back in {@link #MAX_IO_BYTES} reads (fresh from the
     * media under O_DIRECT). Not counted in the statistics. Runs on the writer thread.
     */
    private double probe(long size) {
        String what = "bandwidth probe (" + size / 1048576 + " MiB)";
        long offset;
        synchronized (extentLock) {
            offset = extentEnd;
            try {
                file.reserve(offset, size);
            } catch (LibC.ErrnoException e) {
                throw new CsdException(name + " (" + directory + "): " + what + ": " + e.getMessage(), e);
            }
            extentEnd += size;
        }
        MemorySegment buffer = writeBuffer.segment();
        try {
            for (long pos = 0; pos < size; pos += MAX_IO_BYTES) {
                buffer.fill((byte) (pos / MAX_IO_BYTES + 1));
                file.writeFully(buffer, offset + pos);
            }
            long t0 = System.nanoTime();
            for (long pos = 0; pos < size; pos += MAX_IO_BYTES) {
                file.readFully(buffer, offset + pos);
            }
            long nanos = Math.max(1, System.nanoTime() - t0);
            return size * 1e9 / nanos;
        } catch (IOException e) {
            throw fail(what, e);
        } finally {
            synchronized (extentLock) {
                freeExtents.computeIfAbsent(size, k -> new ArrayDeque<>()).push(offset);
            }
        }
    }

    // ---- health, statistics, close

    /** Throws if the device cannot serve {@code operation}: closed, failed, or its cache file vanished. */
    private void checkUsable(String operation) {
        checkRunning(operation);
        // An open descriptor keeps working on an unlinked file, so a vanished directory must be looked for.
        if (!Files.exists(dataPath)) {
            throw fail(operation, new IOException("the device's cache file " + dataPath
                    + " no longer exists (device directory removed or unmounted)"));
        }
    }

    /** The cheap part of {@link #checkUsable}, for each task of a batch that was checked as a whole. */
    private void checkRunning(String operation) {
        if (closed) {
            throw new CsdException(name + ": " + operation + ": the device is closed");
        }
        DeviceHealth h = health.get();
        if (!h.ok()) {
            throw new CsdException(name + " (" + directory + "): " + operation + " refused: the device failed earlier: " + h.reason());
        }
    }

    /** Marks the device failed (first reason wins) and returns the exception to throw. */
    private CsdException fail(String operation, Exception cause) {
        String reason = operation + ": " + cause.getMessage();
        if (health.compareAndSet(DeviceHealth.OK, DeviceHealth.failed(reason))) {
            LOG.log(System.Logger.Level.ERROR, name + " (" + directory + ") failed: " + reason);
        }
        return new CsdException(name + " (" + directory + "): " + reason, cause);
    }

    @Override
    public DeviceStatistics statistics() {
        return new DeviceStatistics(name, directory.toString(), file.direct(), bytesRead.sum(), bytesWritten.sum(),
                pagesWritten.sum(), attentionCalls.sum(), attentionTasks.sum(), busyNanos.sum(), ioNanos.sum(), liveRegions.get(),
                allocatedBytes.get(), health.get());
    }

    @Override
    public DeviceHealth health() {
        return health.get();
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        compute.shutdown();
        writer.shutdown();
        boolean idle;
        try {
            idle = compute.awaitTermination(1, TimeUnit.MINUTES) && writer.awaitTermination(1, TimeUnit.MINUTES);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            idle = false;
        }
        if (!idle) {
            // A read or write still running would go on with a descriptor number the kernel may hand to
            // another file once closed, and with freed buffers: leave both to the process's end.
            LOG.log(System.Logger.Level.WARNING, name + ": device threads still busy after a minute; its file "
                    + "descriptor and buffers stay open");
            deleteQuietly(dataPath);
            return;
        }
        List<Scratch> all = new ArrayList<>(scratches);
        scratches.clear();
        for (Scratch s : all) {
            s.close();
        }
        writeBuffer.close();
        closeQuietly(file);
        deleteQuietly(dataPath);
    }

    private static void closeQuietly(DirectFile f) {
        try {
            f.close();
        } catch (LibC.ErrnoException e) {
            LOG.log(System.Logger.Level.WARNING, e.getMessage());
        }
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot delete " + p + ": " + e);
        }
    }

    // ---- per-thread scratch

    private Scratch newScratch() {
        Scratch s = new Scratch();
        scratches.add(s);
        return s;
    }

    /** A thread's aligned read buffer and attention state, freed when the device closes. */
    private final class Scratch {
        private LibC.AlignedBuffer buffer;
        private GroupPartials attention;

        MemorySegment buffer(long bytes) {
            long size = DirectFile.alignUp(bytes);
            if (buffer == null || buffer.byteSize() < size) {
                if (buffer != null) {
                    buffer.close();
                }
                buffer = LibC.allocateAligned(DirectFile.ALIGNMENT, Math.max(size, MAX_IO_BYTES));
            }
            return buffer.segment();
        }

        GroupPartials attention(int groupSize, int headDim) {
            if (attention == null || attention.group() != groupSize || attention.headDim() != headDim) {
                attention = new GroupPartials(groupSize, headDim);
            }
            return attention;
        }

        void close() {
            if (buffer != null) {
                buffer.close();
                buffer = null;
            }
        }
    }
}
