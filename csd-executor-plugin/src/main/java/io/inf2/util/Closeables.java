package io.inf2.util;

/** Shutdown paths that must close every resource even when some fail. */
public final class Closeables {

    private Closeables() {
    }

    /**
     * Closes each non-null resource in iteration order, whatever the others do. With {@code failure}
     * given (the error that started the shutdown), every close failure is suppressed into it; without,
     * the first becomes an {@link IllegalStateException} naming the resource and the later ones are
     * suppressed into that. An {@link Error} thrown by a close does not stop the others either; it is
     * thrown once all have run, carrying the other failures as suppressed.
     *
     * @return the failure to throw, or null when there is none
     */
    public static RuntimeException closeAll(Iterable<? extends AutoCloseable> resources, RuntimeException failure) {
        Error fatal = null;
        for (AutoCloseable c : resources) {
            if (c == null) {
                continue;
            }
            try {
                c.close();
            } catch (Exception e) {
                if (failure == null) {
                    failure = new IllegalStateException("closing " + c + " failed: " + e.getMessage(), e);
                } else {
                    failure.addSuppressed(e);
                }
            } catch (Error e) {
                if (fatal == null) {
                    fatal = e;
                } else {
                    fatal.addSuppressed(e);
                }
            }
        }
        if (fatal != null) {
            if (failure != null) {
                fatal.addSuppressed(failure);
            }
            throw fatal;
        }
        return failure;
    }

    /**
     * For a close method of its own: {@link #closeAll}, then throws the failure it returns, if any.
     * {@code pending} is a failure from an earlier step of the same close (null if none), thrown
     * first with the close failures suppressed into it.
     */
    public static void closeAllOrThrow(Iterable<? extends AutoCloseable> resources, RuntimeException pending) {
        RuntimeException failure = closeAll(resources, pending);
        if (failure != null) {
            throw failure;
        }
    }
}
