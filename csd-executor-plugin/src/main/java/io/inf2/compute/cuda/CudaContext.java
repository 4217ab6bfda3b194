package io.inf2.compute.cuda;

import io.inf2.nativeio.Cublas;
import io.inf2.nativeio.CudaDriver;
import io.inf2.nativeio.CudaLibraryLocator;
import io.inf2.nativeio.Nvrtc;
import java.lang.foreign.MemorySegment;

/**
 * One GPU and its primary context, with the loaded CUDA libraries. The primary context is the one
 * the CUDA runtime (and so cuBLAS) uses, so driver calls and cuBLAS calls see the same memory.
 * Every operation on another thread starts with {@link #makeCurrent}, because the driver keeps the
 * current context per thread.
 */
public final class CudaContext implements AutoCloseable {
    private final CudaDriver driver;
    private final CudaLibraryLocator locator;
    private final int ordinal;
    private final int device;
    private final MemorySegment context;
    private final String deviceName;
    private final int computeMajor;
    private final int computeMinor;
    private final int multiprocessors;
    private final int maxSharedPerBlockOptIn;
    private final long totalMemory;
    private Cublas cublas;
    private Nvrtc nvrtc;
    private boolean closed;

    private CudaContext(CudaDriver driver, CudaLibraryLocator locator, int ordinal) {
        this.driver = driver;
        this.locator = locator;
        this.ordinal = ordinal;
        int count = driver.deviceCount();
        if (ordinal < 0 || ordinal >= count) {
            throw new IllegalArgumentException("CUDA device " + ordinal + " does not exist (" + count + " found)");
        }
        this.device = driver.device(ordinal);
        this.deviceName = driver.deviceName(device);
        this.computeMajor = driver.deviceAttribute(CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
        this.computeMinor = driver.deviceAttribute(CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device);
        this.multiprocessors = driver.deviceAttribute(CudaDriver.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device);
        this.maxSharedPerBlockOptIn = driver.deviceAttribute(CudaDriver.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, device);
        this.totalMemory = driver.deviceTotalMemory(device);
        this.context = driver.primaryContextRetain(device);
        try {
            driver.ctxSetCurrent(context);
        } catch (RuntimeException e) {
            try {
                driver.primaryContextRelease(device);
            } catch (RuntimeException r) {
                e.addSuppressed(r);
            }
            throw e;
        }
    }

    /** Loads the driver through {@code locator} and retains device {@code ordinal}'s primary context. */
    public static CudaContext open(CudaLibraryLocator locator, int ordinal) {
        return new CudaContext(CudaDriver.load(locator), locator, ordinal);
    }

    /** Makes this context current on the calling thread. */
    public void makeCurrent() {
        if (closed) {
            throw new IllegalStateException("CUDA context of device " + ordinal + " is closed");
        }
        driver.ctxSetCurrent(context);
    }

    public CudaDriver driver() {
        return driver;
    }

    /** cuBLAS, loaded on first use. */
    public synchronized Cublas cublas() {
        if (cublas == null) {
            cublas = Cublas.load(locator);
        }
        return cublas;
    }

    /** NVRTC, loaded on first use. */
    public synchronized Nvrtc nvrtc() {
        if (nvrtc == null) {
            nvrtc = Nvrtc.load(locator);
        }
        return nvrtc;
    }

    public int ordinal() {
        return ordinal;
    }

    public String deviceName() {
        return deviceName;
    }

    /** The real architecture NVRTC compiles for, e.g. "sm_90". */
    public String architecture() {
        return "sm_" + computeMajor + computeMinor;
    }

    public int multiprocessors() {
        return multiprocessors;
    }

    public int maxSharedPerBlockOptIn() {
        return maxSharedPerBlockOptIn;
    }

    public long totalMemory() {
        return totalMemory;
    }

    public DeviceBuffer allocate(long bytes, String what) {
        return new DeviceBuffer(this, bytes, what);
    }

    public PinnedBuffer allocatePinned(long bytes) {
        return new PinnedBuffer(this, bytes);
    }

    public CudaStream createStream() {
        return new CudaStream(this);
    }

    public CudaEvent createEvent(boolean timing) {
        return new CudaEvent(this, timing);
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            driver.primaryContextRelease(device);
        }
    }

    @Override
    public String toString() {
        return "cuda:" + ordinal + " (" + deviceName + ", " + architecture() + ", " + multiprocessors + " SMs, "
                + (totalMemory >> 20) + " MiB)";
    }
}
