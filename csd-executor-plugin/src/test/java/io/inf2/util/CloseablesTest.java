package io.inf2.util;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

class CloseablesTest {

    /** A resource that records its close in {@code closed} and then throws {@code failure}, if any. */
    private record Resource(String name, List<String> closed, Throwable failure) implements AutoCloseable {
        @Override
        public void close() throws Exception {
            closed.add(name);
            if (failure instanceof Exception e) {
                throw e;
            }
            if (failure instanceof Error e) {
                throw e;
            }
        }

        @Override
        public String toString() {
            return name;
        }
    }

    @Test
    void everyResourceIsClosedAndTheFirstFailureNamesItsResource() {
        List<String> closed = new ArrayList<>();
        RuntimeException failure = Closeables.closeAll(Arrays.asList(new Resource("a", closed, null), null,
                new Resource("b", closed, new java.io.IOException("disk gone")),
                new Resource("c", closed, new IllegalStateException("twice"))), null);
        assertEquals(List.of("a", "b", "c"), closed);
        assertEquals("closing b failed: disk gone", failure.getMessage());
        assertEquals("twice", failure.getSuppressed()[0].getMessage());
        assertNull(Closeables.closeAll(List.of(new Resource("d", closed, null)), null));
    }

    @Test
    void closeFailuresAreSuppressedIntoTheErrorThatStartedTheShutdown() {
        List<String> closed = new ArrayList<>();
        RuntimeException primary = new IllegalArgumentException("bad batch");
        RuntimeException failure = Closeables.closeAll(List.of(new Resource("a", closed, new IllegalStateException("x"))),
                primary);
        assertSame(primary, failure);
        assertEquals("x", primary.getSuppressed()[0].getMessage());
    }

    @Test
    void anErrorFromOneCloseStillLetsTheOthersRunAndIsThrownAfterThem() {
        List<String> closed = new ArrayList<>();
        OutOfMemoryError oom = new OutOfMemoryError("native");
        OutOfMemoryError thrown = assertThrows(OutOfMemoryError.class, () -> Closeables.closeAll(List.of(
                new Resource("a", closed, oom), new Resource("b", closed, new IllegalStateException("y")),
                new Resource("c", closed, null)), null));
        assertSame(oom, thrown);
        assertEquals(List.of("a", "b", "c"), closed);
        assertEquals("closing b failed: y", thrown.getSuppressed()[0].getMessage());
    }
}
