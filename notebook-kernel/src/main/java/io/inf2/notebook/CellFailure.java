package io.inf2.notebook;

/**
 * Carries a checked exception or an Error that a cell threw through the kernel, which reports only
 * unchecked exceptions; the report shows the cause, not this wrapper. Unchecked exceptions travel
 * as themselves.
 */
final class CellFailure extends RuntimeException {
    private static final long serialVersionUID = 1L;

    CellFailure(Throwable cause) {
        super(ErrorReport.headline(cause), cause, false, false);
    }
}
