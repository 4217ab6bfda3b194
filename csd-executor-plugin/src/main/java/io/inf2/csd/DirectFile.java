package io.inf2.csd;

import io.inf2.nativeio.LibC;
import io.inf2.nativeio.LibC.ErrnoException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * A file read and written with O_DIRECT through aligned native buffers, or with buffered I/O where
 * the file system refuses O_DIRECT. Offsets, lengths and buffers must be multiples of
 * {@link #ALIGNMENT} (also in buffered mode, so both modes run the same code).
 */
final class DirectFile implements AutoCloseable {
    /** Alignment that satisfies O_DIRECT on 512-byte and 4 KiB-sector devices alike. */
    static final int ALIGNMENT = 4096;

    private final Path path;
    private final String name;
    private final FaultInjector faults;
    private final boolean direct;
    private int fd;

    private DirectFile(Path path, int fd, boolean direct, FaultInjector faults) {
        this.path = path;
        this.name = path.toString();
        this.fd = fd;
        this.direct = direct;
        this.faults = faults;
    }

    /** Creates a new file (it must not exist), trying O_DIRECT first. */
    static DirectFile create(Path path, FaultInjector faults) throws ErrnoException {
        int base = LibC.O_RDWR | LibC.O_CREAT | LibC.O_CLOEXEC;
        try {
            if (faults.directIoRefused()) {
                throw new ErrnoException("open", path.toString(), LibC.EINVAL);
            }
            return new DirectFile(path, LibC.open(path, base | LibC.O_EXCL | LibC.O_DIRECT, 0600), true, faults);
        } catch (ErrnoException e) {
            if (e.errno() != LibC.EINVAL) {
                throw e;
            }
            // The kernel may have created the file before refusing O_DIRECT, so no O_EXCL this time.
            return new DirectFile(path, LibC.open(path, base | LibC.O_TRUNC, 0600), false, faults);
        }
    }

    boolean direct() {
        return direct;
    }

    Path path() {
        return path;
    }

    static long alignDown(long v) {
        return v & -ALIGNMENT;
    }

    static long alignUp(long v) {
        return (v + ALIGNMENT - 1) & -ALIGNMENT;
    }

    /** Fills {@code buffer} from {@code offset}; a short read (file shorter than expected) is an error. */
    void readFully(MemorySegment buffer, long offset) throws IOException {
        faults.beforeRead(name, offset, buffer.byteSize());
        long done = 0;
        long size = buffer.byteSize();
        while (done < size) {
            long n = LibC.pread(fd, buffer.asSlice(done), offset + done, name);
            if (n == 0) {
                throw new IOException("short read of " + name + " at offset " + offset + ": got " + done + " of " + size
                        + " bytes (file truncated or read past its end)");
            }
            done += n;
        }
    }

    void writeFully(MemorySegment buffer, long offset) throws IOException {
        faults.beforeWrite(name, offset, buffer.byteSize());
        long done = 0;
        long size = buffer.byteSize();
        while (done < size) {
            long n = LibC.pwrite(fd, buffer.asSlice(done), offset + done, name);
            if (n == 0) {
                throw new IOException("pwrite " + name + " at offset " + (offset + done) + " wrote nothing");
            }
            done += n;
        }
    }

    /**
     * Reserves [offset, offset + length) so the space is there (disk full shows up now, not mid-run) and
     * the range is laid out contiguously where the file system can; extends the file over it.
     */
    void reserve(long offset, long length) throws ErrnoException {
        faults.beforeReserve(name, offset, length);
        try {
            LibC.fallocate(fd, offset, length, name);
        } catch (ErrnoException e) {
            if (e.errno() != LibC.EOPNOTSUPP) {
                throw e;
            }
            LibC.ftruncate(fd, offset + length, name);
        }
    }

    void sync() throws ErrnoException {
        LibC.fdatasync(fd, name);
    }

    @Override
    public void close() throws ErrnoException {
        if (fd >= 0) {
            int closing = fd;
            fd = -1;
            LibC.close(closing, name);
        }
    }
}
