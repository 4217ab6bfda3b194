package io.inf2.bench;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicLong;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The machine's sustainable read bandwidth from main memory: threads stream chunks of a
 * native buffer much larger than the last-level cache, with vector loads. This is the physical bound
 * of CPU decode at small batch, where each step reads every weight once: tokens/s cannot exceed
 * bandwidth / weight bytes, and a kernel's GB/s is best judged as a fraction of this figure.
 *
 * <p>A probe keeps its buffer and its reading threads between {@link #sample samples}, so that a
 * benchmark can measure the bandwidth right before and after each timed round: on a shared machine
 * the bandwidth it gets moves from one minute to the next, and a round is fairly held only to what
 * the memory gave in the same minute. The threads stay parked between passes, so a pass times the
 * reading and not the starting of threads. In a pass the threads take {@link #CHUNK_BYTES} chunks
 * from one counter, as the CPU backend hands out the pieces of a parallel loop: a thread slowed by
 * a neighbour does not hold the pass back while the others idle, and the threads read neighbouring
 * addresses rather than slices a power of two apart, which can crowd onto the same memory channel.
 */
public final class MemoryBandwidth implements AutoCloseable {

    /** The smallest buffer: far beyond the L3 of a desktop or a laptop's memory budget. */
    public static final long MIN_BYTES = 1L << 30;
    /**
     * The buffer is at least this many times the last-level cache: server L3s reach hundreds of MiB,
     * and a non-inclusive one with adaptive replacement can serve part of a buffer only a few times
     * its size (a 1 GiB probe measured 782 GB/s best and 324 GB/s median under a 300 MiB L3).
     */
    public static final int CACHE_MULTIPLE = 8;
    public static final int DEFAULT_PASSES = 5;

    private static final VectorSpecies<Long> LONGS = LongVector.SPECIES_PREFERRED;
    /** Bytes each thread reads per inner-loop iteration (four independent vector loads). */
    private static final int STEP = 4 * LONGS.vectorByteSize();
    /** What a thread takes at a time: long enough for the prefetchers, short against a pass. */
    static final long CHUNK_BYTES = 1L << 20;
    /** Untimed passes after filling run at least this long, so the read loop is compiled before a pass is timed. */
    private static final long WARMUP_NANOS = 300_000_000L;

    /** Keeps the sums observable so the reads are not optimised away. */
    @SuppressWarnings("unused")
    private static volatile long sink;

    /**
     * Passes of one or more samples.
     *
     * @param bytes    size of the buffer read in each pass
     * @param threads  threads reading it together
     * @param passGBps every timed pass, in 10⁹ bytes per second, in the order run
     */
    public record Result(long bytes, int threads, double[] passGBps) {
        public Result {
            if (passGBps.length == 0) {
                throw new IllegalArgumentException("a bandwidth result needs at least one pass");
            }
            passGBps = passGBps.clone();
        }

        @JsonProperty("passes")
        public int passes() {
            return passGBps.length;
        }

        /** The fastest pass. */
        @JsonProperty("bestGBps")
        public double bestGBps() {
            return Arrays.stream(passGBps).max().orElseThrow();
        }

        /** The median pass (the mean of the middle two for an even count). */
        @JsonProperty("medianGBps")
        public double medianGBps() {
            return median(passGBps);
        }

        /** This result's passes followed by {@code other}'s, which must come from the same probe. */
        public Result with(Result other) {
            if (other.bytes != bytes || other.threads != threads) {
                throw new IllegalArgumentException("bandwidth passes of different probes cannot be pooled");
            }
            double[] both = Arrays.copyOf(passGBps, passGBps.length + other.passGBps.length);
            System.arraycopy(other.passGBps, 0, both, passGBps.length, other.passGBps.length);
            return new Result(bytes, threads, both);
        }
    }

    private final long chunks;
    private final int threads;
    private final Arena arena;
    private final MemorySegment buffer;
    private final long[] sums;
    /** The next chunk of the current pass. */
    private final AtomicLong nextChunk = new AtomicLong();
    private final CyclicBarrier start;
    private final CyclicBarrier done;
    private final List<Thread> workers;
    /** What the workers do when released; written by the caller before the start barrier, read after it. */
    private volatile Task task = Task.FILL;
    private volatile Throwable failure;
    private boolean closed;

    private enum Task { FILL, READ }

    /**
     * Allocates a buffer of {@code bytes} rounded down to whole chunks, starts {@code threads} reading
     * threads, has them fill it and read it untimed until the read loop is compiled.
     */
    public static MemoryBandwidth open(long bytes, int threads) {
        return new MemoryBandwidth(bytes, threads);
    }

    /** {@link #open}, one {@link #sample} of {@code passes} passes, close. */
    public static Result measure(long bytes, int threads, int passes) {
        try (MemoryBandwidth probe = open(bytes, threads)) {
            return probe.sample(passes, 0);
        }
    }

    private MemoryBandwidth(long bytes, int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("memory bandwidth needs threads >= 1, got " + threads);
        }
        this.threads = threads;
        this.chunks = bytes / CHUNK_BYTES;
        if (chunks < threads) {
            throw new IllegalArgumentException("a " + bytes + "-byte buffer is too small for " + threads
                    + " threads (at least one " + CHUNK_BYTES + "-byte chunk each)");
        }
        this.arena = Arena.ofShared();
        this.sums = new long[threads];
        this.start = new CyclicBarrier(threads + 1);
        this.done = new CyclicBarrier(threads + 1);
        this.workers = new ArrayList<>(threads);
        try {
            buffer = arena.allocate(chunks * CHUNK_BYTES, 4096);
            for (int t = 0; t < threads; t++) {
                int id = t;
                // Daemon: a probe its owner failed to close must not keep the JVM alive.
                workers.add(Thread.ofPlatform().daemon().name("inf2-bandwidth-" + t).start(() -> work(id)));
            }
            runPass(Task.FILL);
            // Untimed passes: the first ones run the read loop interpreted or half-compiled, and the
            // first after filling can still find the last chunks in cache.
            long warmUntil = System.nanoTime() + WARMUP_NANOS;
            for (int pass = 0; pass < 2 || System.nanoTime() - warmUntil < 0; pass++) {
                runPass(Task.READ);
            }
        } catch (RuntimeException | Error e) {
            try {
                close();
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    /** Bytes in the buffer (whole chunks). */
    public long bytes() {
        return chunks * CHUNK_BYTES;
    }

    public int threads() {
        return threads;
    }

    /**
     * Times passes over the whole buffer, the threads sharing out its chunks, until at least
     * {@code minPasses} passes have run and at least {@code minSeconds} have passed.
     */
    public Result sample(int minPasses, double minSeconds) {
        if (minPasses < 1 || !(minSeconds >= 0)) {
            throw new IllegalArgumentException("a bandwidth sample needs minPasses >= 1 and minSeconds >= 0, got "
                    + minPasses + " and " + minSeconds);
        }
        if (closed) {
            throw new IllegalStateException("the memory bandwidth probe is closed");
        }
        long until = System.nanoTime() + (long) (minSeconds * 1e9);
        List<Double> gbps = new ArrayList<>();
        while (gbps.size() < minPasses || System.nanoTime() - until < 0) {
            gbps.add(bytes() / (double) runPass(Task.READ));
        }
        sink = Arrays.stream(sums).sum();
        return new Result(bytes(), threads, gbps.stream().mapToDouble(Double::doubleValue).toArray());
    }

    /** Releases the workers on {@code next} and returns the nanoseconds until the last one finished. */
    private long runPass(Task next) {
        task = next;
        nextChunk.set(0);
        try {
            start.await();
            long t0 = System.nanoTime();
            done.await();
            long elapsed = System.nanoTime() - t0;
            Throwable failed = failure;
            if (failed != null) {
                throw new IllegalStateException("memory bandwidth worker failed: " + failed, failed);
            }
            return elapsed;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while measuring memory bandwidth", e);
        } catch (BrokenBarrierException e) {
            throw new IllegalStateException("a memory bandwidth worker stopped", e);
        }
    }

    private void work(int id) {
        try {
            while (true) {
                start.await();
                Task now = task;
                try {
                    long sum = 0;
                    for (long chunk; (chunk = nextChunk.getAndIncrement()) < chunks; ) {
                        MemorySegment mine = buffer.asSlice(chunk * CHUNK_BYTES, CHUNK_BYTES);
                        if (now == Task.FILL) {
                            mine.fill((byte) chunk);
                        } else {
                            sum += read(mine);
                        }
                    }
                    sums[id] = sum;
                } catch (RuntimeException | Error e) {
                    failure = e;
                }
                done.await();
            }
        } catch (InterruptedException | BrokenBarrierException e) {
            // The probe is closing, or its caller gave up on a pass: nothing more to read.
        }
    }

    /** Stops the threads and frees the buffer; the threads are gone when this returns. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        // An interrupt ends a worker wherever it is: parked at either barrier, or at the next one
        // when a pass its caller gave up on is still reading.
        workers.forEach(Thread::interrupt);
        boolean interrupted = false;
        for (Thread w : workers) {
            while (w.isAlive()) {
                try {
                    w.join();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        arena.close();
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private static long read(MemorySegment s) {
        LongVector a0 = LongVector.zero(LONGS);
        LongVector a1 = a0;
        LongVector a2 = a0;
        LongVector a3 = a0;
        int width = LONGS.vectorByteSize();
        for (long off = 0, end = s.byteSize(); off < end; off += STEP) {
            a0 = a0.add(LongVector.fromMemorySegment(LONGS, s, off, ByteOrder.nativeOrder()));
            a1 = a1.add(LongVector.fromMemorySegment(LONGS, s, off + width, ByteOrder.nativeOrder()));
            a2 = a2.add(LongVector.fromMemorySegment(LONGS, s, off + 2L * width, ByteOrder.nativeOrder()));
            a3 = a3.add(LongVector.fromMemorySegment(LONGS, s, off + 3L * width, ByteOrder.nativeOrder()));
        }
        return a0.add(a1).add(a2).add(a3).reduceLanes(VectorOperators.ADD);
    }

    /**
     * The probe's buffer size on this machine: {@link #CACHE_MULTIPLE} times the largest CPU cache
     * the kernel reports, and at least {@link #MIN_BYTES}.
     */
    public static long defaultBytes() {
        return Math.max(MIN_BYTES, CACHE_MULTIPLE * lastLevelCacheBytes());
    }

    /**
     * The largest cache of CPU 0 as Linux reports it under /sys (the last level: per socket on most
     * machines, per core complex on AMD's chiplets); 0 where the kernel does not say.
     */
    public static long lastLevelCacheBytes() {
        long largest = 0;
        try (DirectoryStream<Path> caches = Files.newDirectoryStream(Path.of("/sys/devices/system/cpu/cpu0/cache"), "index*")) {
            for (Path cache : caches) {
                Path size = cache.resolve("size");
                if (Files.isReadable(size)) {
                    largest = Math.max(largest, parseCacheSize(Files.readString(size).trim()));
                }
            }
        } catch (IOException | RuntimeException e) {
            return largest;
        }
        return largest;
    }

    /** A sysfs cache size such as {@code 32768K}, {@code 300M} or {@code 512}; 0 when it is none of these. */
    static long parseCacheSize(String text) {
        if (!text.matches("\\d{1,12}[KMG]?")) {
            return 0;
        }
        char unit = text.charAt(text.length() - 1);
        long scale = switch (unit) {
            case 'K' -> 1L << 10;
            case 'M' -> 1L << 20;
            case 'G' -> 1L << 30;
            default -> 1;
        };
        String digits = scale == 1 ? text : text.substring(0, text.length() - 1);
        return Long.parseLong(digits) * scale;
    }

    /** The median of {@code values} (the mean of the middle two for an even count); they need not be sorted. */
    public static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
