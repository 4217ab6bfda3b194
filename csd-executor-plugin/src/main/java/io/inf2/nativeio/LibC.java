package io.inf2.nativeio;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The few libc calls the storage tier needs, typed: file descriptors opened with {@code O_DIRECT},
 * positioned reads and writes, space reservation, and page-aligned native buffers. Every call checks
 * its return code; a failure becomes an {@link ErrnoException} carrying errno, its strerror text, the
 * operation and the file. Linux only (x86-64 and AArch64, whose flag values differ).
 *
 * <p>This class is where the storage tier's restricted FFM calls live (the JVM needs
 * {@code --enable-native-access=ALL-UNNAMED}).
 */
@SuppressWarnings("restricted")
public final class LibC {

    public static final int O_RDONLY = 0;
    public static final int O_WRONLY = 1;
    public static final int O_RDWR = 2;
    public static final int O_CREAT = 0100;
    public static final int O_EXCL = 0200;
    public static final int O_TRUNC = 01000;
    public static final int O_CLOEXEC = 02000000;
    /** Bypass the page cache. The value depends on the architecture (asm-generic vs x86). */
    public static final int O_DIRECT = isAarch64() ? 0200000 : 040000;

    public static final int EINTR = 4;
    public static final int EIO = 5;
    public static final int EINVAL = 22;
    public static final int ENOSPC = 28;
    public static final int EOPNOTSUPP = 95;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    private static final MethodHandle OPEN = downcall("open",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), Linker.Option.firstVariadicArg(2), CAPTURE_ERRNO);
    private static final MethodHandle PREAD = downcall("pread",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle PWRITE = downcall("pwrite",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle FSYNC = downcall("fsync", FunctionDescriptor.of(JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle FDATASYNC = downcall("fdatasync", FunctionDescriptor.of(JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle CLOSE = downcall("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle FTRUNCATE = downcall("ftruncate",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle FALLOCATE = downcall("fallocate",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG), CAPTURE_ERRNO);
    // posix_memalign reports its error as the return value, not through errno.
    private static final MethodHandle POSIX_MEMALIGN = downcall("posix_memalign",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle FREE = downcall("free", FunctionDescriptor.ofVoid(ADDRESS));
    private static final MethodHandle STRERROR = downcall("strerror", FunctionDescriptor.of(ADDRESS, JAVA_INT));

    /** errno capture space: one small segment per thread, freed by the GC with the thread's automatic arena. */
    private static final ThreadLocal<MemorySegment> CAPTURE = ThreadLocal.withInitial(
            () -> Arena.ofAuto().allocate(CAPTURE_LAYOUT));

    private static final AtomicLong LIVE_BUFFERS = new AtomicLong();
    private static final AtomicLong LIVE_BUFFER_BYTES = new AtomicLong();

    private LibC() {
    }

    private static boolean isAarch64() {
        String arch = System.getProperty("os.arch", "");
        return arch.equals("aarch64") || arch.equals("arm64");
    }

    private static MethodHandle downcall(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        MemorySegment symbol = LINKER.defaultLookup().find(name)
                .orElseThrow(() -> new UnsatisfiedLinkError("libc has no symbol " + name));
        return LINKER.downcallHandle(symbol, descriptor, options);
    }

    /** A failed libc call: errno with its text, the operation and the file it concerned. */
    public static final class ErrnoException extends IOException {
        private final int errno;
        private final String operation;
        private final String file;

        public ErrnoException(String operation, String file, int errno) {
            super(operation + " " + file + ": " + strerror(errno) + " (errno " + errno + ")");
            this.errno = errno;
            this.operation = operation;
            this.file = file;
        }

        public int errno() {
            return errno;
        }

        public String operation() {
            return operation;
        }

        public String file() {
            return file;
        }
    }

    /** The C library's text for an error number ("No space left on device"). */
    public static String strerror(int errno) {
        try {
            MemorySegment text = (MemorySegment) STRERROR.invokeExact(errno);
            if (text.equals(MemorySegment.NULL)) {
                return "error " + errno;
            }
            return text.reinterpret(1024).getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static int errno(MemorySegment capture) {
        return (int) ERRNO.get(capture, 0L);
    }

    /**
     * open(2) with a creation mode. Flags combine the O_ constants of this class.
     *
     * @return the file descriptor
     */
    public static int open(Path path, int flags, int mode) throws ErrnoException {
        String file = path.toString();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment name = arena.allocateFrom(file);
            MemorySegment capture = CAPTURE.get();
            while (true) {
                int fd = (int) OPEN.invokeExact(capture, name, flags, mode);
                if (fd >= 0) {
                    return fd;
                }
                int err = errno(capture);
                if (err != EINTR) {
                    throw new ErrnoException("open", file, err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * One pread(2) into {@code buffer} (a native segment), retried on EINTR.
     *
     * @return bytes read; 0 at end of file
     */
    public static long pread(int fd, MemorySegment buffer, long fileOffset, String file) throws ErrnoException {
        MemorySegment capture = CAPTURE.get();
        try {
            while (true) {
                long n = (long) PREAD.invokeExact(capture, fd, buffer, buffer.byteSize(), fileOffset);
                if (n >= 0) {
                    return n;
                }
                int err = errno(capture);
                if (err != EINTR) {
                    throw new ErrnoException("pread", file + " at offset " + fileOffset + " (" + buffer.byteSize() + " bytes)", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** One pwrite(2) of {@code buffer} (a native segment), retried on EINTR; returns the bytes written. */
    public static long pwrite(int fd, MemorySegment buffer, long fileOffset, String file) throws ErrnoException {
        MemorySegment capture = CAPTURE.get();
        try {
            while (true) {
                long n = (long) PWRITE.invokeExact(capture, fd, buffer, buffer.byteSize(), fileOffset);
                if (n >= 0) {
                    return n;
                }
                int err = errno(capture);
                if (err != EINTR) {
                    throw new ErrnoException("pwrite", file + " at offset " + fileOffset + " (" + buffer.byteSize() + " bytes)", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void fsync(int fd, String file) throws ErrnoException {
        checked(FSYNC, "fsync", fd, file);
    }

    public static void fdatasync(int fd, String file) throws ErrnoException {
        checked(FDATASYNC, "fdatasync", fd, file);
    }

    /** close(2). Not retried on EINTR: on Linux the descriptor is released even then. */
    public static void close(int fd, String file) throws ErrnoException {
        MemorySegment capture = CAPTURE.get();
        try {
            if ((int) CLOSE.invokeExact(capture, fd) != 0) {
                throw new ErrnoException("close", file, errno(capture));
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void ftruncate(int fd, long length, String file) throws ErrnoException {
        MemorySegment capture = CAPTURE.get();
        try {
            while ((int) FTRUNCATE.invokeExact(capture, fd, length) != 0) {
                int err = errno(capture);
                if (err != EINTR) {
                    throw new ErrnoException("ftruncate", file + " to " + length + " bytes", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** fallocate(2) with mode 0: reserves [offset, offset + length) and extends the file if needed. */
    public static void fallocate(int fd, long offset, long length, String file) throws ErrnoException {
        MemorySegment capture = CAPTURE.get();
        try {
            while ((int) FALLOCATE.invokeExact(capture, fd, 0, offset, length) != 0) {
                int err = errno(capture);
                if (err != EINTR) {
                    throw new ErrnoException("fallocate", file + " [" + offset + ", +" + length + ")", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static void checked(MethodHandle call, String operation, int fd, String file) throws ErrnoException {
        MemorySegment capture = CAPTURE.get();
        try {
            while ((int) call.invokeExact(capture, fd) != 0) {
                int err = errno(capture);
                if (err != EINTR) {
                    throw new ErrnoException(operation, file, err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Native memory aligned for direct I/O, from posix_memalign. Closing frees it; the segment is then
     * unusable (access throws instead of touching freed memory). Thread-safe close, idempotent.
     */
    public static final class AlignedBuffer implements AutoCloseable {
        private final Arena arena;
        private final MemorySegment segment;
        private final AtomicBoolean closed = new AtomicBoolean();

        private AlignedBuffer(Arena arena, MemorySegment segment) {
            this.arena = arena;
            this.segment = segment;
        }

        /** The buffer; valid until {@link #close()}. */
        public MemorySegment segment() {
            return segment;
        }

        public long byteSize() {
            return segment.byteSize();
        }

        @Override
        public void close() {
            if (closed.compareAndSet(false, true)) {
                arena.close();
                LIVE_BUFFERS.decrementAndGet();
                LIVE_BUFFER_BYTES.addAndGet(-segment.byteSize());
            }
        }
    }

    /** {@code size} bytes aligned to {@code alignment} (a power of two, at least the pointer size). */
    public static AlignedBuffer allocateAligned(long alignment, long size) {
        if (size <= 0 || Long.bitCount(alignment) != 1 || alignment < ADDRESS.byteSize()) {
            throw new IllegalArgumentException("aligned allocation of " + size + " bytes at alignment " + alignment);
        }
        long address;
        try (Arena scratch = Arena.ofConfined()) {
            MemorySegment slot = scratch.allocate(ADDRESS);
            int rc = (int) POSIX_MEMALIGN.invokeExact(slot, alignment, size);
            if (rc != 0) {
                throw new OutOfMemoryError("posix_memalign of " + size + " bytes (alignment " + alignment + "): "
                        + strerror(rc));
            }
            address = slot.get(ADDRESS, 0).address();
        } catch (OutOfMemoryError e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
        // A shared arena owns the block: closing it calls free() and invalidates every view, so a late
        // access fails with an exception instead of reading freed memory.
        Arena arena = Arena.ofShared();
        MemorySegment segment = MemorySegment.ofAddress(address).reinterpret(size, arena, LibC::free);
        LIVE_BUFFERS.incrementAndGet();
        LIVE_BUFFER_BYTES.addAndGet(size);
        return new AlignedBuffer(arena, segment);
    }

    private static void free(MemorySegment block) {
        try {
            FREE.invokeExact(block);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Aligned buffers allocated and not yet closed, process-wide (for leak checks). */
    public static long liveAlignedBuffers() {
        return LIVE_BUFFERS.get();
    }

    /** Bytes held by aligned buffers not yet closed, process-wide. */
    public static long liveAlignedBytes() {
        return LIVE_BUFFER_BYTES.get();
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        throw new IllegalStateException("native call failed: " + t, t);
    }
}
