package io.inf2.notebook;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.dflib.jjava.jupyter.kernel.BaseKernel;

/**
 * Helpers every cell can call without a prefix (the kernel imports them statically).
 */
public final class Notebook {
    /** Environment variable naming the folder notebooks write models, devices and output to. */
    public static final String WORK_ENV = "INF2_NOTEBOOK_WORK";
    /** The folder used when {@link #WORK_ENV} is not set, relative to the notebook's folder. */
    public static final String DEFAULT_WORK = ".out";

    private Notebook() {
    }

    /**
     * Shows {@code value} now, in its richest form (a table for Datasets and Arrow tables, an image for
     * charts), without waiting for the end of the cell; for several results from one cell.
     */
    public static void display(Object value) {
        BaseKernel kernel = BaseKernel.notebookKernel();
        kernel.display(kernel.getRenderer().render(value));
    }

    /**
     * The notebooks' scratch folder, created if needed: {@code $INF2_NOTEBOOK_WORK}, or {@code .out}
     * next to the notebook (ignored by git). Models, emulated devices and output go under it.
     */
    public static Path workDirectory() {
        String configured = System.getenv(WORK_ENV);
        Path dir = Path.of(configured == null || configured.isBlank() ? DEFAULT_WORK : configured).toAbsolutePath().normalize();
        try {
            return Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the notebook work folder " + dir + " (set " + WORK_ENV
                    + " to a writable folder): " + e.getMessage(), e);
        }
    }
}
