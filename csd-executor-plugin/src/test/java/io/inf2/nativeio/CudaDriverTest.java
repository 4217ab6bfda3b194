package io.inf2.nativeio;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.compute.cuda.RequiresCuda;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

@RequiresCuda
class CudaDriverTest {
    private static CudaDriver driver;
    private static int device;

    @BeforeAll
    static void open() {
        driver = CudaDriver.load(CudaLibraryLocator.create(""));
        device = driver.device(0);
        driver.ctxSetCurrent(driver.primaryContextRetain(device));
    }

    @AfterAll
    static void close() {
        if (driver != null) {
            driver.primaryContextRelease(device);
        }
    }

    @Test
    void reportsTheDevice() {
        assertTrue(driver.deviceCount() >= 1);
        assertTrue(driver.driverVersion() >= 12000, "driver CUDA version " + driver.driverVersion());
        assertTrue(!driver.deviceName(device).isBlank());
        assertTrue(driver.deviceAttribute(CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device) >= 7);
        long[] info = driver.memoryInfo();
        assertTrue(info[0] > 0 && info[0] <= info[1] && info[1] == driver.deviceTotalMemory(device));
    }

    @Test
    void aFailedCallNamesTheErrorAndTheCall() {
        long bytes = 1L << 50;
        CudaException e = assertThrows(CudaException.class, () -> driver.memAlloc(bytes));
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", e.errorName());
        assertTrue(e.getMessage().startsWith("CUDA_ERROR_OUT_OF_MEMORY in cuMemAlloc_v2(" + bytes + " bytes)"), e.getMessage());
    }

    @Test
    void copiesRoundTripThroughPinnedAndDeviceMemoryOnTwoStreamsOrderedByAnEvent() {
        int n = 1 << 20;
        long bytes = (long) n * Float.BYTES;
        MemorySegment pinnedIn = driver.memAllocHost(bytes);
        MemorySegment pinnedOut = driver.memAllocHost(bytes);
        long a = driver.memAlloc(bytes);
        long b = driver.memAlloc(bytes);
        MemorySegment copy = driver.streamCreate(CudaDriver.CU_STREAM_NON_BLOCKING);
        MemorySegment other = driver.streamCreate(CudaDriver.CU_STREAM_NON_BLOCKING);
        MemorySegment start = driver.eventCreate(CudaDriver.CU_EVENT_DEFAULT);
        MemorySegment copied = driver.eventCreate(CudaDriver.CU_EVENT_DEFAULT);
        try {
            float[] data = new float[n];
            for (int i = 0; i < n; i++) {
                data[i] = i * 0.5f - 7;
            }
            MemorySegment.copy(data, 0, pinnedIn, ValueLayout.JAVA_FLOAT, 0, n);
            driver.eventRecord(start, copy);
            driver.memcpyHtoDAsync(a, pinnedIn, bytes, copy);
            driver.memcpyDtoDAsync(b, a, bytes, copy);
            driver.eventRecord(copied, copy);
            // The second stream reads b only after the first stream's copies.
            driver.streamWaitEvent(other, copied);
            driver.memcpyDtoHAsync(pinnedOut, b, bytes, other);
            driver.streamSynchronize(other);
            driver.eventSynchronize(copied);
            assertArrayEquals(data, pinnedOut.toArray(ValueLayout.JAVA_FLOAT));
            assertTrue(driver.eventElapsedMillis(start, copied) >= 0f);
        } finally {
            driver.eventDestroy(start);
            driver.eventDestroy(copied);
            driver.streamDestroy(copy);
            driver.streamDestroy(other);
            driver.memFree(a);
            driver.memFree(b);
            driver.memFreeHost(pinnedIn);
            driver.memFreeHost(pinnedOut);
        }
    }
}
