package io.inf2.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The machine's sustainable read bandwidth from main memory: every thread streams its own slice of a
 * native buffer much larger than the caches, with vector loads. This is the physical bound of CPU
 * decode at small batch, where each step reads every weight once: tokens/s cannot exceed
 * bandwidth / weight bytes, and a kernel's GB/s is best judged as a fraction of this figure.
 */
public final class MemoryBandwidth {

    /** 1 GiB: far beyond any L3, small enough for a laptop. */
    public static final long DEFAULT_BYTES = 1L << 30;
    public static final int DEFAULT_PASSES = 5;

    private static final VectorSpecies<Long> LONGS = LongVector.SPECIES_PREFERRED;
    /** Bytes each thread reads per inner-loop iteration (four independent vector loads). */
    private static final int STEP = 4 * LONGS.vectorByteSize();

    /** Keeps the sums observable so the reads are not optimised away. */
    @SuppressWarnings("unused")
    private static volatile long sink;

    /**
     * The result of one measurement.
     *
     * @param bytes       size of the buffer read in each pass
     * @param threads     threads reading it together
     * @param passes      timed passes (after one untimed warm-up pass)
     * @param bestGBps    the fastest pass, in 10⁹ bytes per second
     * @param medianGBps  the median pass
     */
    public record Result(long bytes, int threads, int passes, double bestGBps, double medianGBps) {
    }

    private MemoryBandwidth() {
    }

    /** {@link #measure(long, int, int)} with a 1 GiB buffer, every available processor and 5 passes. */
    public static Result measure() {
        return measure(DEFAULT_BYTES, Runtime.getRuntime().availableProcessors(), DEFAULT_PASSES);
    }

    /**
     * Allocates and fills a {@code bytes} native buffer, then times {@code passes} passes in which
     * {@code threads} threads each read a contiguous slice of it once.
     */
    public static Result measure(long bytes, int threads, int passes) {
        if (threads < 1 || passes < 1) {
            throw new IllegalArgumentException("memory bandwidth needs threads >= 1 and passes >= 1, got " + threads + " and " + passes);
        }
        long slice = bytes / threads / STEP * STEP;
        if (slice == 0) {
            throw new IllegalArgumentException("a " + bytes + "-byte buffer is too small for " + threads + " threads");
        }
        try (Arena arena = Arena.ofShared()) {
            MemorySegment buffer = arena.allocate(slice * threads, 4096);
            // Each thread fills (and so first-touches) its own slice: on NUMA machines the pages land
            // near the thread that will read them.
            runParallel(threads, t -> buffer.asSlice(t * slice, slice).fill((byte) (t + 1)));
            double[] gbps = new double[passes];
            long[] sums = new long[threads];
            for (int pass = -1; pass < passes; pass++) {
                long elapsed = runParallel(threads, t -> sums[t] = read(buffer.asSlice(t * slice, slice)));
                if (pass >= 0) {
                    gbps[pass] = slice * threads / (double) elapsed;
                }
            }
            sink = Arrays.stream(sums).sum();
            double[] sorted = gbps.clone();
            Arrays.sort(sorted);
            return new Result(slice * threads, threads, passes, sorted[passes - 1], sorted[passes / 2]);
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

    /** Runs body(t) for t in [0, threads) on fresh threads released together; returns the nanoseconds until all finish. */
    private static long runParallel(int threads, ThreadBody body) {
        CyclicBarrier start = new CyclicBarrier(threads + 1);
        List<Thread> workers = new ArrayList<>(threads);
        Throwable[] failure = new Throwable[1];
        for (int t = 0; t < threads; t++) {
            int id = t;
            workers.add(Thread.ofPlatform().name("inf2-bandwidth-" + t).start(() -> {
                try {
                    start.await();
                    body.run(id);
                } catch (InterruptedException | BrokenBarrierException e) {
                    Thread.currentThread().interrupt();
                } catch (Throwable e) {
                    synchronized (failure) {
                        failure[0] = e;
                    }
                }
            }));
        }
        try {
            start.await();
            long t0 = System.nanoTime();
            for (Thread w : workers) {
                w.join();
            }
            long elapsed = System.nanoTime() - t0;
            synchronized (failure) {
                if (failure[0] != null) {
                    throw new IllegalStateException("memory bandwidth worker failed: " + failure[0], failure[0]);
                }
            }
            return elapsed;
        } catch (InterruptedException | BrokenBarrierException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while measuring memory bandwidth", e);
        }
    }

    @FunctionalInterface
    private interface ThreadBody {
        void run(int thread);
    }
}
