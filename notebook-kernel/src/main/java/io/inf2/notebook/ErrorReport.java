package io.inf2.notebook;

import io.inf2.config.ConfigException;
import io.inf2.model.ModelFormatException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * How a failed cell reads. The first line is the error in one line, as the batch job prints it
 * ({@code ConfigException: promptColumn "text": no such column in the input (columns: id, prompt)});
 * an error wrapped by Spark or a future adds its root cause on a second line. Bad input
 * (configuration, model files) stops there: its message names what is wrong and where. Anything
 * else is followed by its stack trace, cut where the cell's own frames end, since the frames below
 * them are JShell's machinery.
 */
final class ErrorReport {
    /** Frames shown per exception when none of them is the cell's own. */
    static final int MAX_FRAMES = 25;
    /** Classes JShell generates for cells live in this package. */
    private static final String CELL_CLASS_PREFIX = "REPL.";

    private ErrorReport() {
    }

    static List<String> lines(Throwable thrown) {
        if (thrown instanceof CompilationException c) {
            return c.details();
        }
        Throwable t = thrown instanceof CellFailure f ? f.getCause() : thrown;
        List<String> lines = new ArrayList<>();
        lines.add(headline(t));
        Throwable root = rootCause(t);
        if (root != t) {
            lines.add("root cause: " + headline(root));
        }
        if (isBadInput(t) || isBadInput(root)) {
            return lines;
        }
        lines.add("");
        lines.addAll(trace(t));
        return lines;
    }

    /** {@code SimpleName: first line of the message}. */
    static String headline(Throwable t) {
        String message = t.getMessage();
        String name = t.getClass().getSimpleName().isEmpty() ? t.getClass().getName() : t.getClass().getSimpleName();
        return message == null || message.isBlank() ? name : name + ": " + firstLine(message);
    }

    static Throwable rootCause(Throwable t) {
        Set<Throwable> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        Throwable current = t;
        while (current.getCause() != null && seen.add(current)) {
            current = current.getCause();
        }
        return current;
    }

    private static boolean isBadInput(Throwable t) {
        return t instanceof ConfigException || t instanceof ModelFormatException;
    }

    /** The stack trace with causes, each cut after the cell's last frame. */
    static List<String> trace(Throwable t) {
        List<String> lines = new ArrayList<>();
        Set<Throwable> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        Throwable current = t;
        boolean first = true;
        while (current != null && seen.add(current)) {
            if (!first) {
                lines.add("Caused by: " + current.getClass().getName()
                        + (current.getMessage() == null ? "" : ": " + firstLine(current.getMessage())));
            }
            StackTraceElement[] frames = current.getStackTrace();
            int lastCellFrame = -1;
            for (int i = 0; i < frames.length; i++) {
                if (frames[i].getClassName().startsWith(CELL_CLASS_PREFIX)) {
                    lastCellFrame = i;
                }
            }
            int shown = lastCellFrame >= 0 ? lastCellFrame + 1 : Math.min(frames.length, MAX_FRAMES);
            for (int i = 0; i < shown; i++) {
                lines.add("    at " + frames[i]);
            }
            if (shown < frames.length) {
                lines.add("    ... " + (frames.length - shown) + (lastCellFrame >= 0 ? " frames of the kernel" : " more"));
            }
            current = current.getCause();
            first = false;
        }
        return lines;
    }

    private static String firstLine(String message) {
        String m = message.strip();
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl).strip() + " …";
    }
}
