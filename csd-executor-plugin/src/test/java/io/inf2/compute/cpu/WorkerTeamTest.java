package io.inf2.compute.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class WorkerTeamTest {

    @Test
    void everyIndexRunsExactlyOnceInWholeUnitsOverManyBackToBackLoops() {
        try (WorkerTeam team = new WorkerTeam(3, "test-team")) {
            for (int loop = 0; loop < 2000; loop++) {
                int n = 1 + loop % 97;
                int unit = 1 + loop % 7;
                AtomicIntegerArray hits = new AtomicIntegerArray(n);
                team.run(n, unit, (from, to) -> {
                    assertTrue(from < to && from % unit == 0 && (to % unit == 0 || to == n), "range [" + from + ", " + to + ")");
                    for (int i = from; i < to; i++) {
                        hits.incrementAndGet(i);
                    }
                });
                for (int i = 0; i < n; i++) {
                    assertEquals(1, hits.get(i), "loop " + loop + " index " + i);
                }
            }
        }
    }

    @Test
    void piecesRunOnMoreThanOneThread() throws InterruptedException {
        try (WorkerTeam team = new WorkerTeam(2, "test-team")) {
            Set<Thread> seen = ConcurrentHashMap.newKeySet();
            // Each piece waits until two threads have arrived, so one thread alone cannot finish.
            CountDownLatch both = new CountDownLatch(2);
            team.run(2, 1, (from, to) -> {
                seen.add(Thread.currentThread());
                both.countDown();
                try {
                    assertTrue(both.await(10, TimeUnit.SECONDS), "the second thread never took a piece");
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            });
            assertEquals(2, seen.size());
        }
    }

    @Test
    void aThreadThatStallsHasTheRestOfItsRegionTakenOver() {
        try (WorkerTeam team = new WorkerTeam(2, "test-team")) {
            int n = 100;
            Thread caller = Thread.currentThread();
            AtomicIntegerArray hits = new AtomicIntegerArray(n);
            AtomicInteger doneElsewhere = new AtomicInteger();
            AtomicInteger stalledRange = new AtomicInteger(-1);
            team.run(n, 1, (from, to) -> {
                for (int i = from; i < to; i++) {
                    hits.incrementAndGet(i);
                }
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                if (Thread.currentThread() == caller && stalledRange.compareAndSet(-1, to - from)) {
                    // The caller's first range (the front of its own region) stalls until the worker has
                    // done everything else: its own region and the rest of the caller's.
                    while (doneElsewhere.get() < n - (to - from) && System.nanoTime() < deadline) {
                        Thread.onSpinWait();
                    }
                } else {
                    // The worker starts only once the caller holds its first range, so it cannot finish first.
                    while (stalledRange.get() < 0 && System.nanoTime() < deadline) {
                        Thread.onSpinWait();
                    }
                    doneElsewhere.addAndGet(to - from);
                }
            });
            assertEquals(n - stalledRange.get(), doneElsewhere.get(), "indices the worker ran while the caller stalled");
            assertTrue(stalledRange.get() < n / 2, "the caller's first range held " + stalledRange.get() + " of its 50");
            for (int i = 0; i < n; i++) {
                assertEquals(1, hits.get(i), "index " + i);
            }
        }
    }

    @Test
    void aFailingPieceIsRethrownToTheCallerAndTheTeamStaysUsable() {
        try (WorkerTeam team = new WorkerTeam(4, "test-team")) {
            IllegalArgumentException boom = new IllegalArgumentException("index 37 failed");
            IllegalArgumentException thrown = assertThrows(IllegalArgumentException.class, () -> team.run(100, 1, (from, to) -> {
                if (from <= 37 && 37 < to) {
                    throw boom;
                }
            }));
            assertSame(boom, thrown);
            AtomicIntegerArray hits = new AtomicIntegerArray(50);
            team.run(50, 3, (from, to) -> {
                for (int i = from; i < to; i++) {
                    hits.incrementAndGet(i);
                }
            });
            for (int i = 0; i < 50; i++) {
                assertEquals(1, hits.get(i));
            }
        }
    }

    @Test
    void aLoopInsideALoopAndLoopsFromTwoCallersBothComplete() throws InterruptedException {
        try (WorkerTeam team = new WorkerTeam(3, "test-team")) {
            AtomicIntegerArray hits = new AtomicIntegerArray(40 * 30);
            team.run(40, 2, (from, to) -> {
                for (int i = from; i < to; i++) {
                    int row = i;
                    team.run(30, 4, (f, t) -> {
                        for (int j = f; j < t; j++) {
                            hits.incrementAndGet(row * 30 + j);
                        }
                    });
                }
            });
            for (int i = 0; i < hits.length(); i++) {
                assertEquals(1, hits.get(i), "nested index " + i);
            }
            AtomicIntegerArray shared = new AtomicIntegerArray(2 * 500);
            Thread[] callers = new Thread[2];
            for (int c = 0; c < 2; c++) {
                int base = c * 500;
                callers[c] = Thread.ofPlatform().start(() -> {
                    for (int round = 0; round < 200; round++) {
                        team.run(500, 7, (f, t) -> {
                            for (int j = f; j < t; j++) {
                                shared.incrementAndGet(base + j);
                            }
                        });
                    }
                });
            }
            for (Thread t : callers) {
                t.join();
            }
            for (int i = 0; i < shared.length(); i++) {
                assertEquals(200, shared.get(i), "concurrent index " + i);
            }
        }
    }
}
