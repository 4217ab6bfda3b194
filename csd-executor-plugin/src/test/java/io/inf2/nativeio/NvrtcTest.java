package io.inf2.nativeio;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.compute.cuda.RequiresCuda;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

@RequiresCuda
class NvrtcTest {
    private static final String SCALE = """
            extern "C" __global__ void scale(float* x, float factor, int n) {
                int i = blockIdx.x * blockDim.x + threadIdx.x;
                if (i < n) x[i] *= factor;
            }
            """;
    private static CudaDriver driver;
    private static Nvrtc nvrtc;
    private static int device;
    private static String arch;

    @BeforeAll
    static void open() {
        CudaLibraryLocator locator = CudaLibraryLocator.create("");
        driver = CudaDriver.load(locator);
        nvrtc = Nvrtc.load(locator);
        device = driver.device(0);
        driver.ctxSetCurrent(driver.primaryContextRetain(device));
        arch = driver.deviceAttribute(CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device) + ""
                + driver.deviceAttribute(CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device);
    }

    @AfterAll
    static void close() {
        if (driver != null) {
            driver.primaryContextRelease(device);
        }
    }

    @Test
    void cubinForTheDeviceLoadsAndRuns() {
        Nvrtc.Output out = nvrtc.compile(SCALE, "scale.cu", List.of("--gpu-architecture=sm_" + arch), true);
        assertTrue(nvrtc.version().startsWith("13."), nvrtc.version());
        assertEquals(3f * 2.5f, runScale(out.image(), 3f, 2.5f));
    }

    @Test
    void ptxForTheVirtualArchitectureLoadsAndRuns() {
        Nvrtc.Output out = nvrtc.compile(SCALE, "scale.cu", List.of("--gpu-architecture=compute_" + arch), false);
        assertTrue(new String(out.image(), StandardCharsets.US_ASCII).contains(".entry scale"));
        assertEquals(-4f, runScale(out.image(), 2f, -2f));
    }

    @Test
    void compileErrorCarriesTheLogOnOneLine() {
        CudaException e = assertThrows(CudaException.class, () -> nvrtc.compile(
                "extern \"C\" __global__ void broken(float* x) { x[0] = undefined_name; }", "broken.cu",
                List.of("--gpu-architecture=sm_" + arch), true));
        assertEquals("NVRTC_ERROR_COMPILATION", e.errorName());
        assertTrue(e.getMessage().startsWith("NVRTC_ERROR_COMPILATION in nvrtcCompileProgram(broken.cu"), e.getMessage());
        assertTrue(e.getMessage().contains("undefined_name"), e.getMessage());
        assertTrue(!e.getMessage().contains("\n"), e.getMessage());
    }

    private static float runScale(byte[] image, float value, float factor) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment img = a.allocate(image.length + 1L);
            MemorySegment.copy(image, 0, img, ValueLayout.JAVA_BYTE, 0, image.length);
            MemorySegment module = driver.moduleLoadData(img, "scale");
            long x = driver.memAlloc(Float.BYTES);
            MemorySegment pinned = driver.memAllocHost(Float.BYTES);
            try {
                pinned.set(JAVA_FLOAT, 0, value);
                MemorySegment stream = driver.streamCreate(CudaDriver.CU_STREAM_NON_BLOCKING);
                driver.memcpyHtoDAsync(x, pinned, Float.BYTES, stream);
                MemorySegment params = a.allocate(ADDRESS, 3);
                params.setAtIndex(ADDRESS, 0, a.allocateFrom(JAVA_LONG, x));
                params.setAtIndex(ADDRESS, 1, a.allocateFrom(JAVA_FLOAT, factor));
                params.setAtIndex(ADDRESS, 2, a.allocateFrom(JAVA_INT, 1));
                driver.launchKernel(driver.moduleGetFunction(module, "scale"), 1, 1, 1, 32, 1, 1, 0, stream, params, "scale");
                driver.memcpyDtoHAsync(pinned, x, Float.BYTES, stream);
                driver.streamSynchronize(stream);
                driver.streamDestroy(stream);
                return pinned.get(JAVA_FLOAT, 0);
            } finally {
                driver.memFree(x);
                driver.memFreeHost(pinned);
                driver.moduleUnload(module);
            }
        }
    }
}
