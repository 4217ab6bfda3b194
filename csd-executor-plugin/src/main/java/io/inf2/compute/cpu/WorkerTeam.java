package io.inf2.compute.cpu;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed team of threads for the CPU backend's parallel loops: the calling thread plus
 * {@code threads − 1} workers that stay alive between loops. A decode step at batch 1 runs a few
 * hundred short loops (tens to hundreds of microseconds each); a fork-join pool parks its workers
 * between them and forks a task tree per loop, which at that scale costs as much as the loop. Here
 * a loop is published with one volatile write and workers that are still spinning from the previous
 * loop pick it up at once.
 *
 * <p>The index range is cut into one contiguous region per thread. Each thread works through its own
 * region from the front in claims of a quarter of what is left (at least one unit), then takes work
 * from the back of the other regions the same way. A thread at batch-1 decode therefore reads one
 * weight stream front to back (the prefetchers' best case), and a thread that is slow (descheduled
 * on a shared machine, or given costlier items such as long causal attention rows) loses the back of
 * its region to the others down to one unit, so the loop ends with every thread busy to within a unit
 * instead of waiting for a whole piece.
 *
 * <p>Workers spin for {@link #SPIN_NANOS} after their last claim, then park until the next loop.
 * One loop runs at a time: a loop started while another is running (from another thread, or from
 * inside a loop body) runs on its calling thread alone, which is correct, only not parallel.
 */
final class WorkerTeam implements AutoCloseable {

    /**
     * How long an idle worker spins before parking: longer than the gap between two operations of a
     * decode step (a few microseconds), short enough that an idle engine leaves the cores alone.
     */
    private static final long SPIN_NANOS = 50_000;
    /** A claim takes this fraction of what is left of a region: few claims, and little stuck behind a slow thread. */
    private static final int CLAIM_DIVISOR = 4;
    /** Longs between two regions' states, so that claims on different regions do not share a cache line. */
    private static final int STATE_STRIDE = 16;

    /**
     * One published loop. A region's state packs its next unclaimed unit (high half) and the end of its
     * unclaimed units (low half); owners advance the first, others pull back the second.
     */
    private static final class Loop {
        final CpuBackend.RangeBody body;
        final int n;
        final int unit;
        final int units;
        final int regions;
        final AtomicLongArray states;
        final AtomicInteger finishedUnits = new AtomicInteger();
        final AtomicReference<Throwable> failure = new AtomicReference<>();

        Loop(CpuBackend.RangeBody body, int n, int unit, int regions) {
            this.body = body;
            this.n = n;
            this.unit = unit;
            this.units = (int) ((n + (long) unit - 1) / unit);
            this.regions = Math.min(regions, units);
            this.states = new AtomicLongArray(this.regions * STATE_STRIDE);
            for (int r = 0; r < this.regions; r++) {
                states.set(r * STATE_STRIDE, pack((int) ((long) units * r / this.regions), (int) ((long) units * (r + 1) / this.regions)));
            }
        }

        /**
         * Works through thread {@code self}'s own region (a thread with none has loops of fewer units than
         * threads), then the others' from their backs, until every unit is claimed.
         */
        void work(int self) {
            if (self < regions) {
                for (long units; (units = claim(self, true)) != NONE; ) {
                    runUnits(first(units), end(units));
                }
            }
            for (int i = 0; i < regions; i++) {
                int region = (self + i) % regions;
                for (long units; (units = claim(region, false)) != NONE; ) {
                    runUnits(first(units), end(units));
                }
            }
        }

        /** Claims units of a region, from its front or its back, packed as a state is; {@link #NONE} once it has none left. */
        private long claim(int region, boolean front) {
            int at = region * STATE_STRIDE;
            while (true) {
                long state = states.get(at);
                int first = first(state);
                int end = end(state);
                int left = end - first;
                if (left <= 0) {
                    return NONE;
                }
                int take = Math.max(1, left / CLAIM_DIVISOR);
                long next = front ? pack(first + take, end) : pack(first, end - take);
                if (states.compareAndSet(at, state, next)) {
                    return front ? pack(first, first + take) : pack(end - take, end);
                }
            }
        }

        /** What {@link #claim} returns for a region with nothing left: no claim has an empty range. */
        private static final long NONE = pack(0, 0);

        private void runUnits(int firstUnit, int endUnit) {
            try {
                if (failure.get() == null) {
                    body.run(firstUnit * unit, (int) Math.min(n, (long) endUnit * unit));
                }
            } catch (Throwable e) {
                failure.compareAndSet(null, e);
            } finally {
                finishedUnits.addAndGet(endUnit - firstUnit);
            }
        }

        private static long pack(int first, int end) {
            return (long) first << 32 | (end & 0xFFFFFFFFL);
        }

        private static int first(long units) {
            return (int) (units >>> 32);
        }

        private static int end(long units) {
            return (int) units;
        }
    }

    private final Thread[] workers;
    private final AtomicBoolean busy = new AtomicBoolean();
    private volatile Loop current;
    /** Bumped for every published loop; workers compare it with the last one they saw. */
    private volatile long generation;
    private volatile boolean closed;

    WorkerTeam(int threads, String name) {
        workers = new Thread[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            int self = i + 1;
            workers[i] = Thread.ofPlatform().daemon().name(name + "-" + self).start(() -> workerLoop(self));
        }
    }

    int threads() {
        return workers.length + 1;
    }

    /**
     * Runs body over [0, n) across the team and returns when all of it is done. Every range body gets
     * starts and ends on a multiple of {@code unit} (the last may end at n), so a body's own blocks of
     * {@code unit} indices are never split between threads.
     */
    void run(int n, int unit, CpuBackend.RangeBody body) {
        if (n <= 0) {
            return;
        }
        if (unit < 1) {
            throw new IllegalArgumentException("parallel loop unit must be at least 1, got " + unit);
        }
        if (workers.length == 0 || n <= unit || !busy.compareAndSet(false, true)) {
            body.run(0, n);
            return;
        }
        Loop loop = new Loop(body, n, unit, threads());
        try {
            current = loop;
            generation++;
            for (Thread w : workers) {
                LockSupport.unpark(w);
            }
            loop.work(0);
            int spins = 0;
            while (loop.finishedUnits.get() < loop.units) {
                // A worker still on its last piece: spin, but on an oversubscribed machine give it the core.
                if (++spins < 1 << 12) {
                    Thread.onSpinWait();
                } else {
                    Thread.yield();
                }
            }
        } finally {
            current = null;
            busy.set(false);
        }
        Throwable failure = loop.failure.get();
        if (failure instanceof RuntimeException e) {
            throw e;
        }
        if (failure instanceof Error e) {
            throw e;
        }
        if (failure != null) {
            throw new IllegalStateException("CPU worker failed: " + failure, failure);
        }
    }

    private void workerLoop(int self) {
        long seen = 0;
        while (!closed) {
            long spinUntil = System.nanoTime() + SPIN_NANOS;
            while (generation == seen && !closed) {
                if (System.nanoTime() < spinUntil) {
                    Thread.onSpinWait();
                } else {
                    // unpark() before park() leaves a permit, so a loop published in between is not missed.
                    LockSupport.park(this);
                }
            }
            seen = generation;
            Loop loop = current;
            if (loop != null) {
                loop.work(self);
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
    }
}
