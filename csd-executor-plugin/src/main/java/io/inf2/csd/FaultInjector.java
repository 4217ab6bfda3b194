package io.inf2.csd;

import io.inf2.nativeio.LibC;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Test hook of {@link EmulatedCsd}: makes a chosen device I/O fail as the kernel would report it
 * (the Nth read, write or space reservation after arming returns an errno), or makes the file system
 * refuse {@code O_DIRECT}. Package-private on purpose: no user setting reaches it.
 */
final class FaultInjector {
    private final AtomicInteger readsUntilFault = new AtomicInteger(-1);
    private final AtomicInteger writesUntilFault = new AtomicInteger(-1);
    private final AtomicInteger reservationsUntilFault = new AtomicInteger(-1);
    private volatile int reserveErrno;
    private volatile int readErrno;
    private volatile int writeErrno;
    private volatile boolean refuseDirectIo;

    /** The {@code nth} media read from now on (1 = the next) fails with {@code errno}. */
    FaultInjector failRead(int nth, int errno) {
        readErrno = errno;
        readsUntilFault.set(nth);
        return this;
    }

    /** The {@code nth} media write from now on (1 = the next) fails with {@code errno} (ENOSPC: disk full). */
    FaultInjector failWrite(int nth, int errno) {
        writeErrno = errno;
        writesUntilFault.set(nth);
        return this;
    }

    /** The {@code nth} space reservation (fallocate) from now on fails with {@code errno} (ENOSPC: disk full). */
    FaultInjector failReserve(int nth, int errno) {
        reserveErrno = errno;
        reservationsUntilFault.set(nth);
        return this;
    }

    /** Opening with O_DIRECT fails with EINVAL, as on file systems without direct I/O. */
    FaultInjector refuseDirectIo() {
        refuseDirectIo = true;
        return this;
    }

    boolean directIoRefused() {
        return refuseDirectIo;
    }

    void beforeRead(String file, long offset, long length) throws LibC.ErrnoException {
        if (readsUntilFault.get() > 0 && readsUntilFault.decrementAndGet() == 0) {
            throw new LibC.ErrnoException("pread", file + " at offset " + offset + " (" + length + " bytes)", readErrno);
        }
    }

    void beforeReserve(String file, long offset, long length) throws LibC.ErrnoException {
        if (reservationsUntilFault.get() > 0 && reservationsUntilFault.decrementAndGet() == 0) {
            throw new LibC.ErrnoException("fallocate", file + " [" + offset + ", +" + length + ")", reserveErrno);
        }
    }

    void beforeWrite(String file, long offset, long length) throws LibC.ErrnoException {
        if (writesUntilFault.get() > 0 && writesUntilFault.decrementAndGet() == 0) {
            throw new LibC.ErrnoException("pwrite", file + " at offset " + offset + " (" + length + " bytes)", writeErrno);
        }
    }
}
