package io.inf2.csd;

import io.inf2.engine.TestOptions;
import static io.inf2.csd.CsdTestSupport.freshDirectory;
import static io.inf2.csd.CsdTestSupport.gaussian;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.compute.cpu.CpuBackend;
import io.inf2.csd.CsdKvCacheFactory.Placement;
import io.inf2.engine.EngineOptions;
import io.inf2.kv.KvCache;
import io.inf2.kv.KvTraffic;
import io.inf2.model.ModelConfig;
import io.inf2.nativeio.LibC;
import io.inf2.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Random;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Device faults end the request with one clear line naming the device and the operation, free native
 * memory, and never let a wrong answer through.
 */
class CsdFaultTest {
    private static final ModelConfig MODEL = CsdTestSupport.model(2, 4, 2, 64, 128);
    private static CpuBackend host;

    @BeforeAll
    static void startHost() {
        host = new CpuBackend(2);
    }

    @AfterAll
    static void stopHost() {
        host.close();
    }

    private static final class Driver {
        final KvCache cache;
        final Random random = new Random(1);

        Driver(KvCache cache) {
            this.cache = cache;
        }

        void prompt(int slot, int tokens) {
            for (int layer = 0; layer < MODEL.layers(); layer++) {
                cache.writePrompt(layer, slot, matrix(tokens, MODEL.kvDim()), matrix(tokens, MODEL.kvDim()),
                        matrix(tokens, MODEL.hidden()));
            }
        }

        void step(int... slots) {
            int n = slots.length;
            for (int layer = 0; layer < MODEL.layers(); layer++) {
                cache.appendAndAttend(layer, slots, matrix(n, MODEL.qDim()), matrix(n, MODEL.kvDim()),
                        matrix(n, MODEL.kvDim()), matrix(n, MODEL.hidden()), new FloatMatrix(n, MODEL.qDim()));
            }
        }

        FloatMatrix matrix(int rows, int cols) {
            return new FloatMatrix(gaussian(random, rows * cols), rows, cols);
        }
    }

    /**
     * Runs a cache on one device with {@code faults}, a prompt and two steps, then {@code trouble}, and
     * returns the error the next steps (at most 16, a page for every region) raise; checks the error repeats, native memory is freed and the
     * device directory is left empty.
     */
    private static CsdException faultDuringDecode(String name, Placement placement, FaultInjector faults,
                                                  Consumer<EmulatedCsd> trouble) {
        Path dir = freshDirectory(name);
        long buffersBefore = LibC.liveAlignedBuffers();
        EmulatedCsd device = EmulatedCsd.open("csd0", dir, 2, faults);
        CsdException error;
        try (CsdKvCacheFactory factory = CsdKvCacheFactory.withDevices(placement, List.of(device), 16,
                XCachePolicy.configured(0), host);
             KvCache cache = factory.create(MODEL, 2, 256, (l, x, p, k, v) -> {
                 throw new AssertionError("no X-cache here");
             }, new KvTraffic())) {
            Driver driver = new Driver(cache);
            driver.prompt(0, 64);
            driver.prompt(1, 40);
            ((CsdKvCache) cache).awaitWrites();
            driver.step(0, 1);
            driver.step(0, 1);
            trouble.accept(device);
            error = assertThrows(CsdException.class, () -> {
                for (int step = 0; step < 16; step++) {
                    driver.step(0, 1);
                }
                ((CsdKvCache) cache).awaitWrites();
            });
            CsdException again = assertThrows(CsdException.class, () -> driver.step(0, 1));
            assertEquals(error.getMessage(), again.getMessage(), "a failed cache keeps refusing with the same reason");
            assertFalse(device.health().ok());
        }
        assertEquals(buffersBefore, LibC.liveAlignedBuffers(), "native buffers freed after the fault");
        try (Stream<Path> files = Files.exists(dir) ? Files.list(dir) : Stream.empty()) {
            assertEquals(0, files.count(), "nothing left in the device directory");
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        assertFalse(error.getMessage().contains("\n"), "one line: " + error.getMessage());
        assertTrue(error.getMessage().startsWith("csd0 (" + dir.toAbsolutePath()), error.getMessage());
        return error;
    }

    @Test
    void readErrorDuringAttentionNearStorage() {
        CsdException e = faultDuringDecode("fault-read-ans", Placement.CSD, new FaultInjector(),
                device -> armRead(device, LibC.EIO));
        assertTrue(e.getMessage().contains("attention over region layer 0"), e.getMessage());
        assertTrue(e.getMessage().contains("pread"), e.getMessage());
        assertTrue(e.getMessage().endsWith("Input/output error (errno 5)"), e.getMessage());
    }

    @Test
    void readErrorInTheStorageBaseline() {
        CsdException e = faultDuringDecode("fault-read-storage", Placement.STORAGE, new FaultInjector(),
                device -> armRead(device, LibC.EIO));
        assertTrue(e.getMessage().contains(": read region layer "), e.getMessage());
        assertTrue(e.getMessage().endsWith("Input/output error (errno 5)"), e.getMessage());
    }

    private static FaultInjector faultsOf(EmulatedCsd device) {
        try {
            var field = EmulatedCsd.class.getDeclaredField("faults");
            field.setAccessible(true);
            return (FaultInjector) field.get(device);
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }

    private static void armRead(EmulatedCsd device, int errno) {
        faultsOf(device).failRead(1, errno);
    }

    @Test
    void diskFullWhileWritingAPage() {
        // Within 16 steps every region fills a page; the first of those page writes finds the disk full.
        CsdException e = faultDuringDecode("fault-enospc", Placement.CSD, new FaultInjector(),
                device -> faultsOf(device).failWrite(1, LibC.ENOSPC));
        assertTrue(e.getMessage().contains("No space left on device (errno 28)"), e.getMessage());
        assertTrue(e.getMessage().contains("append to region layer"), e.getMessage());
    }

    @Test
    void diskFullWhenAllocatingARegion() throws IOException {
        Path dir = freshDirectory("fault-enospc-allocate");
        long buffersBefore = LibC.liveAlignedBuffers();
        // Layer 0 of the first sequence takes two regions; the third reservation finds the disk full.
        EmulatedCsd device = EmulatedCsd.open("csd0", dir, 1, new FaultInjector().failReserve(3, LibC.ENOSPC));
        try (CsdKvCacheFactory factory = CsdKvCacheFactory.withDevices(Placement.CSD, List.of(device), 16,
                XCachePolicy.configured(0), host);
             KvCache cache = factory.create(MODEL, 1, 256, (l, x, p, k, v) -> {
             }, new KvTraffic())) {
            Driver driver = new Driver(cache);
            CsdException e = assertThrows(CsdException.class, () -> driver.prompt(0, 32));
            assertTrue(e.getMessage().startsWith("csd0 (" + dir.toAbsolutePath() + "): allocate region layer 1 sequence 0 kv head 0 ("),
                    e.getMessage());
            assertTrue(e.getMessage().endsWith("No space left on device (errno 28)"), e.getMessage());
            assertTrue(device.health().ok(), "a full disk refuses the request; the device itself is fine");
            assertEquals(e.getMessage(), assertThrows(CsdException.class, () -> driver.step(0)).getMessage());
        }
        assertEquals(buffersBefore, LibC.liveAlignedBuffers());
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(0, files.count());
        }
    }

    @Test
    void deviceDirectoryRemovedMidRun() {
        CsdException e = faultDuringDecode("fault-vanished", Placement.CSD, new FaultInjector(),
                device -> CsdTestSupport.deleteRecursively(device.directory()));
        assertTrue(e.getMessage().contains("no longer exists (device directory removed or unmounted)"), e.getMessage());
    }

    @Test
    void cacheFileTruncatedUnderTheDevice() {
        CsdException e = faultDuringDecode("fault-truncated", Placement.CSD, new FaultInjector(), device -> {
            try (Stream<Path> files = Files.list(device.directory());
                 FileChannel channel = FileChannel.open(files.findFirst().orElseThrow(), StandardOpenOption.WRITE)) {
                channel.truncate(4096);
            } catch (IOException ex) {
                throw new AssertionError(ex);
            }
        });
        assertTrue(e.getMessage().contains("short read"), e.getMessage());
        assertTrue(e.getMessage().contains("read past its end"), e.getMessage());
    }

    @Test
    void aMissingDeviceDirectoryFailsTheFactoryAndClosesTheDevicesAlreadyOpened() throws IOException {
        Path good = freshDirectory("factory-good");
        Path missing = CsdTestSupport.ROOT.resolve("factory-missing");
        CsdTestSupport.deleteRecursively(missing);
        EngineOptions options = TestOptions.of("model", "model", "threads", 1, "batchSize", 4, "maxNewTokens", 4,
                "kvCache", "csd", "csd", List.of(good, missing), "xcacheFraction", 0.5, "csdThreads", 1);
        CsdException e = assertThrows(CsdException.class, () -> CsdKvCacheFactory.open(options, MODEL));
        assertEquals("csd1: device directory " + missing + " does not exist", e.getMessage());
        try (Stream<Path> files = Files.list(good)) {
            assertEquals(0, files.count(), "csd0 was closed and its cache file removed");
        }
    }
}
