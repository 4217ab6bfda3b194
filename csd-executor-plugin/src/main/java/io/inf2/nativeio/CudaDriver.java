package io.inf2.nativeio;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * Typed bindings to the CUDA driver API (libcuda.so.1). Handles (contexts, streams, events, modules,
 * functions) are opaque pointers; device pointers ({@code CUdeviceptr}) are longs. Every call checks
 * its {@code CUresult} and throws {@link CudaException} carrying the driver's error name and the
 * call. Where cuda.h redirects a name to a versioned symbol ({@code cuMemAlloc} to
 * {@code cuMemAlloc_v2}), the versioned symbol is bound, as a C program compiled against the
 * header would.
 *
 * <p>Driver calls act on the calling thread's current context: callers make their context current
 * ({@link #ctxSetCurrent}) on every thread that uses it.
 */
public final class CudaDriver {

    public static final String SONAME = "libcuda.so.1";

    public static final int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
    public static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
    public static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
    public static final int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;
    public static final int CU_STREAM_NON_BLOCKING = 1;
    public static final int CU_EVENT_DEFAULT = 0;
    public static final int CU_EVENT_DISABLE_TIMING = 2;
    public static final int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;

    private static final int CUDA_SUCCESS = 0;

    private final MethodHandle cuInit;
    private final MethodHandle cuDriverGetVersion;
    private final MethodHandle cuDeviceGetCount;
    private final MethodHandle cuDeviceGet;
    private final MethodHandle cuDeviceGetName;
    private final MethodHandle cuDeviceGetAttribute;
    private final MethodHandle cuDeviceTotalMem;
    private final MethodHandle cuDevicePrimaryCtxRetain;
    private final MethodHandle cuDevicePrimaryCtxRelease;
    private final MethodHandle cuCtxSetCurrent;
    private final MethodHandle cuMemGetInfo;
    private final MethodHandle cuMemAlloc;
    private final MethodHandle cuMemFree;
    private final MethodHandle cuMemAllocHost;
    private final MethodHandle cuMemFreeHost;
    private final MethodHandle cuMemHostRegister;
    private final MethodHandle cuMemHostUnregister;
    private final MethodHandle cuMemcpyHtoDAsync;
    private final MethodHandle cuMemcpyDtoHAsync;
    private final MethodHandle cuMemcpyDtoDAsync;
    private final MethodHandle cuStreamCreate;
    private final MethodHandle cuStreamSynchronize;
    private final MethodHandle cuStreamDestroy;
    private final MethodHandle cuStreamWaitEvent;
    private final MethodHandle cuEventCreate;
    private final MethodHandle cuEventRecord;
    private final MethodHandle cuEventSynchronize;
    private final MethodHandle cuEventElapsedTime;
    private final MethodHandle cuEventDestroy;
    private final MethodHandle cuModuleLoadData;
    private final MethodHandle cuModuleUnload;
    private final MethodHandle cuModuleGetFunction;
    private final MethodHandle cuFuncSetAttribute;
    private final MethodHandle cuLaunchKernel;
    private final MethodHandle cuGetErrorName;
    private final MethodHandle cuGetErrorString;

    private CudaDriver(NativeSymbols s) {
        FunctionDescriptor intInt = FunctionDescriptor.of(JAVA_INT, JAVA_INT);
        FunctionDescriptor intPtr = FunctionDescriptor.of(JAVA_INT, ADDRESS);
        FunctionDescriptor intPtrPtr = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS);
        cuGetErrorName = s.bind(FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS), "cuGetErrorName");
        cuGetErrorString = s.bind(FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS), "cuGetErrorString");
        cuInit = s.bind(intInt, "cuInit");
        cuDriverGetVersion = s.bind(intPtr, "cuDriverGetVersion");
        cuDeviceGetCount = s.bind(intPtr, "cuDeviceGetCount");
        cuDeviceGet = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuDeviceGet");
        cuDeviceGetName = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), "cuDeviceGetName");
        cuDeviceGetAttribute = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), "cuDeviceGetAttribute");
        cuDeviceTotalMem = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuDeviceTotalMem_v2");
        cuDevicePrimaryCtxRetain = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuDevicePrimaryCtxRetain");
        cuDevicePrimaryCtxRelease = s.bind(intInt, "cuDevicePrimaryCtxRelease_v2");
        cuCtxSetCurrent = s.bind(intPtr, "cuCtxSetCurrent");
        cuMemGetInfo = s.bind(intPtrPtr, "cuMemGetInfo_v2");
        cuMemAlloc = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG), "cuMemAlloc_v2");
        cuMemFree = s.bind(FunctionDescriptor.of(JAVA_INT, JAVA_LONG), "cuMemFree_v2");
        cuMemAllocHost = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG), "cuMemAllocHost_v2");
        cuMemFreeHost = s.bind(intPtr, "cuMemFreeHost");
        cuMemHostRegister = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT), "cuMemHostRegister_v2");
        cuMemHostUnregister = s.bind(intPtr, "cuMemHostUnregister");
        cuMemcpyHtoDAsync = s.bind(FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS),
                "cuMemcpyHtoDAsync_v2");
        cuMemcpyDtoHAsync = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS),
                "cuMemcpyDtoHAsync_v2");
        cuMemcpyDtoDAsync = s.bind(FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS),
                "cuMemcpyDtoDAsync_v2");
        cuStreamCreate = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuStreamCreate");
        cuStreamSynchronize = s.bind(intPtr, "cuStreamSynchronize");
        cuStreamDestroy = s.bind(intPtr, "cuStreamDestroy_v2");
        cuStreamWaitEvent = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT), "cuStreamWaitEvent");
        cuEventCreate = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuEventCreate");
        cuEventRecord = s.bind(intPtrPtr, "cuEventRecord");
        cuEventSynchronize = s.bind(intPtr, "cuEventSynchronize");
        // CUDA 12.8 added cuEventElapsedTime_v2 and newer headers redirect to it.
        cuEventElapsedTime = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS),
                "cuEventElapsedTime_v2", "cuEventElapsedTime");
        cuEventDestroy = s.bind(intPtr, "cuEventDestroy_v2");
        cuModuleLoadData = s.bind(intPtrPtr, "cuModuleLoadData");
        cuModuleUnload = s.bind(intPtr, "cuModuleUnload");
        cuModuleGetFunction = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS), "cuModuleGetFunction");
        cuFuncSetAttribute = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), "cuFuncSetAttribute");
        cuLaunchKernel = s.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS), "cuLaunchKernel");
    }

    /** Loads libcuda.so.1 and calls cuInit(0). */
    public static CudaDriver load(CudaLibraryLocator locator) {
        CudaDriver driver = new CudaDriver(new NativeSymbols(locator.load(SONAME), SONAME));
        driver.init();
        return driver;
    }

    private void init() {
        try {
            check((int) cuInit.invokeExact(0), "cuInit(0)");
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    /** The driver's CUDA version as major * 1000 + minor * 10 (13000 for CUDA 13.0). */
    public int driverVersion() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            check((int) cuDriverGetVersion.invokeExact(v), "cuDriverGetVersion");
            return v.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public int deviceCount() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(JAVA_INT);
            check((int) cuDeviceGetCount.invokeExact(n), "cuDeviceGetCount");
            return n.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    /** The {@code CUdevice} of ordinal {@code ordinal}. */
    public int device(int ordinal) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment d = a.allocate(JAVA_INT);
            check((int) cuDeviceGet.invokeExact(d, ordinal), "cuDeviceGet(" + ordinal + ")");
            return d.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public String deviceName(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment name = a.allocate(256);
            check((int) cuDeviceGetName.invokeExact(name, 256, device), "cuDeviceGetName(device " + device + ")");
            return name.getString(0);
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public int deviceAttribute(int attribute, int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            check((int) cuDeviceGetAttribute.invokeExact(v, attribute, device),
                    "cuDeviceGetAttribute(" + attribute + ", device " + device + ")");
            return v.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public long deviceTotalMemory(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_LONG);
            check((int) cuDeviceTotalMem.invokeExact(v, device), "cuDeviceTotalMem_v2(device " + device + ")");
            return v.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    /** Retains the device's primary context; balance with {@link #primaryContextRelease}. */
    public MemorySegment primaryContextRetain(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ctx = a.allocate(ADDRESS);
            check((int) cuDevicePrimaryCtxRetain.invokeExact(ctx, device), "cuDevicePrimaryCtxRetain(device " + device + ")");
            return ctx.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public void primaryContextRelease(int device) {
        try {
            check((int) cuDevicePrimaryCtxRelease.invokeExact(device), "cuDevicePrimaryCtxRelease_v2(device " + device + ")");
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public void ctxSetCurrent(MemorySegment context) {
        try {
            check((int) cuCtxSetCurrent.invokeExact(context), "cuCtxSetCurrent");
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    /** {free, total} bytes of the current context's device. */
    public long[] memoryInfo() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment free = a.allocate(JAVA_LONG);
            MemorySegment total = a.allocate(JAVA_LONG);
            check((int) cuMemGetInfo.invokeExact(free, total), "cuMemGetInfo_v2");
            return new long[] {free.get(JAVA_LONG, 0), total.get(JAVA_LONG, 0)};
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    /** Device memory of {@code bytes} bytes in the current context. */
    public long memAlloc(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(JAVA_LONG);
            check((int) cuMemAlloc.invokeExact(p, bytes), "cuMemAlloc_v2(" + bytes + " bytes)");
            return p.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public void memFree(long devicePointer) {
        try {
            check((int) cuMemFree.invokeExact(devicePointer), "cuMemFree_v2(0x" + Long.toHexString(devicePointer) + ")");
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    /** Page-locked host memory of {@code bytes} bytes, usable by asynchronous copies. */
    public MemorySegment memAllocHost(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check((int) cuMemAllocHost.invokeExact(p, bytes), "cuMemAllocHost_v2(" + bytes + " bytes)");
            return p.get(ADDRESS, 0).reinterpret(bytes);
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public void memFreeHost(MemorySegment pinned) {
        try {
            check((int) cuMemFreeHost.invokeExact(pinned), "cuMemFreeHost");
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    /**
     * Page-locks existing host memory in place so that asynchronous copies read it directly (no staging).
     * The range should cover whole pages; a page may be registered only once.
     */
    public void memHostRegister(MemorySegment range) {
        try {
            check((int) cuMemHostRegister.invokeExact(range, range.byteSize(), 0),
                    "cuMemHostRegister_v2(" + range.byteSize() + " bytes at 0x" + Long.toHexString(range.address()) + ")");
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public void memHostUnregister(MemorySegment range) {
        try {
            check((int) cuMemHostUnregister.invokeExact(range),
                    "cuMemHostUnregister(0x" + Long.toHexString(range.address()) + ")");
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    /** Copies {@code bytes} from host memory to the device; {@code src} must stay valid until the stream passes it. */
    public void memcpyHtoDAsync(long dst, MemorySegment src, long bytes, MemorySegment stream) {
        if (src.byteSize() < bytes) {
            throw new IllegalArgumentException("cuMemcpyHtoDAsync_v2: " + bytes + " bytes from a " + src.byteSize() + "-byte host buffer");
        }
        try {
            int rc = (int) cuMemcpyHtoDAsync.invokeExact(dst, src, bytes, stream);
            if (rc != CUDA_SUCCESS) {
                throw failure(rc, "cuMemcpyHtoDAsync_v2(" + bytes + " bytes)");
            }
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public void memcpyDtoHAsync(MemorySegment dst, long src, long bytes, MemorySegment stream) {
        if (dst.byteSize() < bytes) {
            throw new IllegalArgumentException("cuMemcpyDtoHAsync_v2: " + bytes + " bytes into a " + dst.byteSize() + "-byte host buffer");
        }
        try {
            int rc = (int) cuMemcpyDtoHAsync.invokeExact(dst, src, bytes, stream);
            if (rc != CUDA_SUCCESS) {
                throw failure(rc, "cuMemcpyDtoHAsync_v2(" + bytes + " bytes)");
            }
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public void memcpyDtoDAsync(long dst, long src, long bytes, MemorySegment stream) {
        try {
            int rc = (int) cuMemcpyDtoDAsync.invokeExact(dst, src, bytes, stream);
            if (rc != CUDA_SUCCESS) {
                throw failure(rc, "cuMemcpyDtoDAsync_v2(" + bytes + " bytes)");
            }
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public MemorySegment streamCreate(int flags) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(ADDRESS);
            check((int) cuStreamCreate.invokeExact(s, flags), "cuStreamCreate");
            return s.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public void streamSynchronize(MemorySegment stream) {
        try {
            check((int) cuStreamSynchronize.invokeExact(stream), "cuStreamSynchronize");
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public void streamDestroy(MemorySegment stream) {
        try {
            check((int) cuStreamDestroy.invokeExact(stream), "cuStreamDestroy_v2");
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    /** Work submitted to {@code stream} after this call waits until {@code event} completes. */
    public void streamWaitEvent(MemorySegment stream, MemorySegment event) {
        try {
            check((int) cuStreamWaitEvent.invokeExact(stream, event, 0), "cuStreamWaitEvent");
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public MemorySegment eventCreate(int flags) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment e = a.allocate(ADDRESS);
            check((int) cuEventCreate.invokeExact(e, flags), "cuEventCreate");
            return e.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public void eventRecord(MemorySegment event, MemorySegment stream) {
        try {
            check((int) cuEventRecord.invokeExact(event, stream), "cuEventRecord");
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public void eventSynchronize(MemorySegment event) {
        try {
            check((int) cuEventSynchronize.invokeExact(event), "cuEventSynchronize");
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    /** Milliseconds between two completed events created without CU_EVENT_DISABLE_TIMING. */
    public float eventElapsedMillis(MemorySegment start, MemorySegment end) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ms = a.allocate(JAVA_FLOAT);
            check((int) cuEventElapsedTime.invokeExact(ms, start, end), "cuEventElapsedTime");
            return ms.get(JAVA_FLOAT, 0);
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public void eventDestroy(MemorySegment event) {
        try {
            check((int) cuEventDestroy.invokeExact(event), "cuEventDestroy_v2");
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    /** Loads a cubin or PTX image into the current context. */
    public MemorySegment moduleLoadData(MemorySegment image, String what) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment m = a.allocate(ADDRESS);
            check((int) cuModuleLoadData.invokeExact(m, image), "cuModuleLoadData(" + what + ")");
            return m.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public void moduleUnload(MemorySegment module) {
        try {
            check((int) cuModuleUnload.invokeExact(module), "cuModuleUnload");
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public MemorySegment moduleGetFunction(MemorySegment module, String name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment f = a.allocate(ADDRESS);
            check((int) cuModuleGetFunction.invokeExact(f, module, a.allocateFrom(name)), "cuModuleGetFunction(" + name + ")");
            return f.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public void funcSetAttribute(MemorySegment function, int attribute, int value, String what) {
        try {
            check((int) cuFuncSetAttribute.invokeExact(function, attribute, value),
                    "cuFuncSetAttribute(" + what + ", " + attribute + ", " + value + ")");
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    /**
     * Launches {@code function}. {@code params} is the C array of pointers to each argument
     * ({@code void**}); it is read during this call only.
     */
    public void launchKernel(MemorySegment function, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
                             int sharedBytes, MemorySegment stream, MemorySegment params, String what) {
        try {
            int rc = (int) cuLaunchKernel.invokeExact(function, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes,
                    stream, params, MemorySegment.NULL);
            if (rc != CUDA_SUCCESS) {
                throw failure(rc, "cuLaunchKernel(" + what + ", grid " + gridX + "x" + gridY + "x" + gridZ + ", block "
                        + blockX + "x" + blockY + "x" + blockZ + ", " + sharedBytes + " B shared)");
            }
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    /** The driver's name for a CUresult ("CUDA_ERROR_OUT_OF_MEMORY"), or the number if it has none. */
    public String errorName(int result) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            int rc = (int) cuGetErrorName.invokeExact(result, p);
            String name = rc == CUDA_SUCCESS ? NativeSymbols.cString(p.get(ADDRESS, 0)) : null;
            return name == null ? "CUresult " + result : name;
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    public String errorString(int result) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            int rc = (int) cuGetErrorString.invokeExact(result, p);
            String text = rc == CUDA_SUCCESS ? NativeSymbols.cString(p.get(ADDRESS, 0)) : null;
            return text == null ? "" : text;
        } catch (Throwable t) {
            throw NativeSymbols.rethrow(t);
        }
    }

    private void check(int result, String call) {
        if (result != CUDA_SUCCESS) {
            throw failure(result, call);
        }
    }

    /** Calls on the hot path test the result themselves, so their message is built only on failure. */
    private CudaException failure(int result, String call) {
        String name = errorName(result);
        return new CudaException(name, name + " in " + call + ": " + errorString(result));
    }
}
