package io.inf2.compute.cpu;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed team of threads for the CPU backend's parallel loops: the calling thread plus
 * {@code threads − 1} workers that stay alive between loops. A decode step at batch 1 runs a few
 * hundred short loops (tens to hundreds of microseconds each); a fork-join pool parks its workers
 * between them and forks a task tree per loop, which at that scale costs as much as the loop. Here
 * a loop is published with one volatile write, workers that are still spinning from the previous
 * loop pick it up at once, and pieces of the index range are handed out by one atomic counter, so
 * items of very different cost (causal attention rows) still balance.
 *
 * <p>Workers spin for {@link #SPIN_NANOS} after their last piece, then park until the next loop.
 * One loop runs at a time: a loop started while another is running (from another thread, or from
 * inside a loop body) runs on its calling thread alone, which is correct, only not parallel.
 */
final class WorkerTeam implements AutoCloseable {

    /**
     * How long an idle worker spins before parking: longer than the gap between two operations of a
     * decode step (a few microseconds), short enough that an idle engine leaves the cores alone.
     */
    private static final long SPIN_NANOS = 50_000;

    /** One published loop: the body, its range cut into pieces, and how far it has got. */
    private static final class Loop {
        final CpuBackend.RangeBody body;
        final int n;
        final int grain;
        final int pieces;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger finished = new AtomicInteger();
        final AtomicReference<Throwable> failure = new AtomicReference<>();

        Loop(CpuBackend.RangeBody body, int n, int grain) {
            this.body = body;
            this.n = n;
            this.grain = grain;
            this.pieces = (n + grain - 1) / grain;
        }

        /** Runs pieces until none are left. */
        void work() {
            int piece;
            while ((piece = next.getAndIncrement()) < pieces) {
                try {
                    if (failure.get() == null) {
                        int from = piece * grain;
                        body.run(from, Math.min(n, from + grain));
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                } finally {
                    finished.incrementAndGet();
                }
            }
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
            workers[i] = Thread.ofPlatform().daemon().name(name + "-" + (i + 1)).start(this::workerLoop);
        }
    }

    int threads() {
        return workers.length + 1;
    }

    /** Runs body over [0, n) in pieces of {@code grain} indices across the team; returns when all are done. */
    void run(int n, int grain, CpuBackend.RangeBody body) {
        if (n <= 0) {
            return;
        }
        if (workers.length == 0 || n <= grain || !busy.compareAndSet(false, true)) {
            body.run(0, n);
            return;
        }
        Loop loop = new Loop(body, n, grain);
        try {
            current = loop;
            generation++;
            for (Thread w : workers) {
                LockSupport.unpark(w);
            }
            loop.work();
            int spins = 0;
            while (loop.finished.get() < loop.pieces) {
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

    private void workerLoop() {
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
                loop.work();
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
