package io.inf2.notebook;

import java.util.List;

/**
 * A cell that does not compile. The message is one line (the first problem, with its line in the
 * cell); {@link #details} holds every problem with the source line it points at.
 */
public final class CompilationException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final transient List<String> details;

    CompilationException(String message, List<String> details) {
        super(message, null, false, false);
        this.details = List.copyOf(details);
    }

    /** Every problem, one or more lines each, ready to print. */
    public List<String> details() {
        return details;
    }
}
