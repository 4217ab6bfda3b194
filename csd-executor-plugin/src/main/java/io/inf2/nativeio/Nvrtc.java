package io.inf2.nativeio;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.List;

/**
 * Typed bindings to NVRTC (libnvrtc.so.13), the run-time CUDA C++ compiler. {@link #compile}
 * wraps the create / compile / get-output / destroy sequence so a program handle never escapes;
 * every result is checked and turned into a {@link CudaException} carrying NVRTC's error name, and a
 * failed compilation carries the compiler's log.
 */
public final class Nvrtc {

    public static final String SONAME = "libnvrtc.so.13";

    private static final int NVRTC_SUCCESS = 0;
    private static final int NVRTC_ERROR_COMPILATION = 6;

    private final MethodHandle version;
    private final MethodHandle createProgram;
    private final MethodHandle compileProgram;
    private final MethodHandle getPtxSize;
    private final MethodHandle getPtx;
    private final MethodHandle getCubinSize;
    private final MethodHandle getCubin;
    private final MethodHandle getProgramLogSize;
    private final MethodHandle getProgramLog;
    private final MethodHandle destroyProgram;
    private final MethodHandle getErrorString;

    private Nvrtc(NativeSymbols s) {
        FunctionDescriptor intPtrPtr = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS);
        version = s.bind(intPtrPtr, "nvrtcVersion");
        createProgram = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS),
                "nvrtcCreateProgram");
        compileProgram = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS), "nvrtcCompileProgram");
        getPtxSize = s.bind(intPtrPtr, "nvrtcGetPTXSize");
        getPtx = s.bind(intPtrPtr, "nvrtcGetPTX");
        getCubinSize = s.bind(intPtrPtr, "nvrtcGetCUBINSize");
        getCubin = s.bind(intPtrPtr, "nvrtcGetCUBIN");
        getProgramLogSize = s.bind(intPtrPtr, "nvrtcGetProgramLogSize");
        getProgramLog = s.bind(intPtrPtr, "nvrtcGetProgramLog");
        destroyProgram = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS), "nvrtcDestroyProgram");
        getErrorString = s.bind(FunctionDescriptor.of(ADDRESS, JAVA_INT), "nvrtcGetErrorString");
    }

    public static Nvrtc load(CudaLibraryLocator locator) {
        // NVRTC opens its builtins library by soname when it compiles; loading it first from the same
        // directory makes that work when the directory is not on the loader's path.
        return new Nvrtc(new NativeSymbols(locator.load(SONAME, "libnvrtc-builtins.so.13*"), SONAME));
    }

    /** NVRTC's version as "major.minor". */
    public String version() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment major = a.allocate(JAVA_INT);
            MemorySegment minor = a.allocate(JAVA_INT);
            check((int) version.invokeExact(major, minor), "nvrtcVersion");
            return major.get(JAVA_INT, 0) + "." + minor.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    /** What a compilation produced: the machine code or PTX, and the compiler's log (warnings). */
    public record Output(byte[] image, String log) {
    }

    /**
     * Compiles CUDA C++ {@code source}. With a real architecture among the options
     * ({@code --gpu-architecture=sm_90}) the image is a CUBIN; with a virtual one
     * ({@code compute_90}) it is PTX text, NUL-terminated as {@code cuModuleLoadData} expects.
     *
     * @param name    the program's file name, shown in the log
     * @param options compiler options
     */
    public Output compile(String source, String name, List<String> options, boolean cubin) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment programOut = a.allocate(ADDRESS);
            check((int) createProgram.invokeExact(programOut, a.allocateFrom(source), a.allocateFrom(name), 0,
                    MemorySegment.NULL, MemorySegment.NULL), "nvrtcCreateProgram(" + name + ")");
            MemorySegment program = programOut.get(ADDRESS, 0);
            Throwable failure = null;
            try {
                MemorySegment optionArray = a.allocate(ADDRESS, Math.max(1, options.size()));
                for (int i = 0; i < options.size(); i++) {
                    optionArray.setAtIndex(ADDRESS, i, a.allocateFrom(options.get(i)));
                }
                int rc = (int) compileProgram.invokeExact(program, options.size(), optionArray);
                String log = programLog(program, a);
                if (rc == NVRTC_ERROR_COMPILATION) {
                    throw new CudaException(errorName(rc), errorName(rc) + " in nvrtcCompileProgram(" + name + ", "
                            + String.join(" ", options) + "): " + log.strip().replace('\n', ' '));
                }
                check(rc, "nvrtcCompileProgram(" + name + ")");
                return new Output(cubin ? cubin(program, a, name) : ptx(program, a, name), log);
            } catch (Throwable t) {
                failure = t;
                throw t;
            } finally {
                MemorySegment holder = a.allocate(ADDRESS);
                holder.set(ADDRESS, 0, program);
                try {
                    check((int) destroyProgram.invokeExact(holder), "nvrtcDestroyProgram(" + name + ")");
                } catch (Throwable t) {
                    // The compile error and its log say what went wrong; a failed destroy only adds to it.
                    if (failure == null) {
                        throw t;
                    }
                    failure.addSuppressed(t);
                }
            }
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    private String programLog(MemorySegment program, Arena a) throws Throwable {
        MemorySegment size = a.allocate(JAVA_LONG);
        check((int) getProgramLogSize.invokeExact(program, size), "nvrtcGetProgramLogSize");
        MemorySegment log = a.allocate(Math.max(1, size.get(JAVA_LONG, 0)));
        check((int) getProgramLog.invokeExact(program, log), "nvrtcGetProgramLog");
        return log.getString(0);
    }

    private byte[] cubin(MemorySegment program, Arena a, String name) throws Throwable {
        MemorySegment size = a.allocate(JAVA_LONG);
        check((int) getCubinSize.invokeExact(program, size), "nvrtcGetCUBINSize(" + name + ")");
        MemorySegment image = a.allocate(size.get(JAVA_LONG, 0));
        check((int) getCubin.invokeExact(program, image), "nvrtcGetCUBIN(" + name + ")");
        return image.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
    }

    private byte[] ptx(MemorySegment program, Arena a, String name) throws Throwable {
        MemorySegment size = a.allocate(JAVA_LONG);
        check((int) getPtxSize.invokeExact(program, size), "nvrtcGetPTXSize(" + name + ")");
        MemorySegment image = a.allocate(size.get(JAVA_LONG, 0));
        check((int) getPtx.invokeExact(program, image), "nvrtcGetPTX(" + name + ")");
        return image.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
    }

    public String errorName(int result) {
        try {
            String name = NativeSymbols.cString((MemorySegment) getErrorString.invokeExact(result));
            return name == null ? "nvrtcResult " + result : name;
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    private void check(int result, String call) {
        if (result != NVRTC_SUCCESS) {
            String name = errorName(result);
            throw new CudaException(name, name + " in " + call);
        }
    }
}
