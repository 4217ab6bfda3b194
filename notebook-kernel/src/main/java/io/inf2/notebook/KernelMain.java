package io.inf2.notebook;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.dflib.jjava.jupyter.channels.JupyterConnection;
import org.dflib.jjava.jupyter.kernel.KernelConnectionProperties;
import org.slf4j.LoggerFactory;

/**
 * The kernel process Jupyter starts: {@code java ... io.inf2.notebook.KernelMain CONNECTION_FILE}
 * (the kernelspec bin/inf2-jupyter-install writes). Serves one notebook until Jupyter shuts it down.
 */
public final class KernelMain {
    private KernelMain() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: io.inf2.notebook.KernelMain CONNECTION_FILE (Jupyter passes it; see bin/inf2-jupyter-install)");
            System.exit(2);
        }
        bindLoggingToProcessStreams();
        String connection;
        try {
            connection = Files.readString(Path.of(args[0]));
        } catch (IOException e) {
            System.err.println("inf2 kernel: cannot read the connection file " + args[0] + ": " + e.getMessage());
            System.exit(2);
            return;
        }
        JupyterConnection jupyter = new JupyterConnection(KernelConnectionProperties.parse(connection));
        Inf2Kernel kernel = Inf2Kernel.create(System.getProperty("java.class.path"));
        kernel.becomeHandlerForConnection(jupyter);
        kernel.onStartup();
        jupyter.connect();
        jupyter.waitUntilClose();
        // Spark and engine threads are not daemons; the kernel's life ends with the connection.
        System.exit(0);
    }

    /**
     * Starts Log4j (Spark's logging) and java.util.logging (the engine's) now, so their console
     * handlers write to this process's stderr, which Jupyter keeps in its log. Started later, inside a
     * cell, they would capture the cell's output stream instead and spill log lines into whichever
     * cell runs next.
     */
    private static void bindLoggingToProcessStreams() {
        LoggerFactory.getLogger(KernelMain.class);
        java.util.logging.Logger.getLogger("").getHandlers();
    }
}
