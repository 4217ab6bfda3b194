package io.inf2.csd;

import static io.inf2.csd.CsdTestSupport.freshDirectory;
import static io.inf2.csd.CsdTestSupport.gaussian;
import static io.inf2.csd.CsdTestSupport.half;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.kv.PartialAttention;
import io.inf2.nativeio.LibC;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class EmulatedCsdTest {
    private static final int HEAD_DIM = 64;

    /** A region's tokens in f32 (already rounded to fp16 values) and as fp16 pages. */
    private record RegionData(DeviceRegion region, float[] keys, float[] values, short[] pages, int tokens) {
    }

    private static RegionData fill(ComputationalStorageDevice device, Random random, int sequence, int pages,
                                   int pageTokens, int capacityPages) {
        DeviceRegion region = device.allocate(new RegionSpec(0, sequence, 0, HEAD_DIM, pageTokens, capacityPages));
        int tokens = pages * pageTokens;
        float[] k = gaussian(random, tokens * HEAD_DIM);
        float[] v = gaussian(random, tokens * HEAD_DIM);
        short[] image = new short[pages * 2 * pageTokens * HEAD_DIM];
        int half = pageTokens * HEAD_DIM;
        for (int t = 0; t < tokens; t++) {
            int at = t * 2 * HEAD_DIM;
            for (int i = 0; i < HEAD_DIM; i++) {
                k[t * HEAD_DIM + i] = half(k[t * HEAD_DIM + i]);
                v[t * HEAD_DIM + i] = half(v[t * HEAD_DIM + i]);
                image[at + i] = Float.floatToFloat16(k[t * HEAD_DIM + i]);
                image[at + HEAD_DIM + i] = Float.floatToFloat16(v[t * HEAD_DIM + i]);
            }
        }
        // First half in one large append (a prompt), the rest page by page (decode-time flushes).
        int bulk = pages / 2;
        if (bulk > 0) {
            device.append(region, 0, MemorySegment.ofArray(image), bulk).join();
        }
        for (int p = bulk; p < pages; p++) {
            device.append(region, p, MemorySegment.ofArray(image).asSlice(p * 2L * half * 2, 2L * half * 2), 1).join();
        }
        assertEquals(pages, region.durablePages());
        return new RegionData(region, k, v, image, tokens);
    }

    @ParameterizedTest(name = "page tokens {0}, group {1}")
    @CsvSource({"1, 1", "1, 4", "16, 1", "16, 4", "64, 2"})
    void attentionNearStorageMatchesNaiveAttention(int pageTokens, int group) {
        Path dir = freshDirectory("attention-" + pageTokens + "-" + group);
        Random random = new Random(pageTokens * 31L + group);
        try (EmulatedCsd device = EmulatedCsd.open("csd0", dir, 2)) {
            assertTrue(device.directIo(), "target/ is on a disk that takes O_DIRECT");
            int[] pageCounts = {1, 3, 17, 40, 2};
            List<RegionData> regions = new ArrayList<>();
            for (int r = 0; r < pageCounts.length; r++) {
                regions.add(fill(device, random, r, pageCounts[r], pageTokens, 48));
            }
            AttentionBatch batch = new AttentionBatch(group, HEAD_DIM, 2);
            List<float[]> queries = new ArrayList<>();
            List<Integer> attended = new ArrayList<>();
            for (int r = 0; r < regions.size(); r++) {
                float[] q = gaussian(random, group * HEAD_DIM);
                for (int i = 0; i < q.length; i++) {
                    q[i] = half(q[i]);
                }
                // The last region is attended over a prefix only: a partial view of its pages.
                int pages = r == regions.size() - 1 ? 1 : pageCounts[r];
                batch.add(regions.get(r).region(), pages, q, 0);
                queries.add(q);
                attended.add(pages * pageTokens);
            }
            IoReport report = device.attend(batch).join();
            assertTrue(report.bytesRead() >= 0);
            for (int task = 0; task < batch.size(); task++) {
                RegionData data = regions.get(task);
                for (int g = 0; g < group; g++) {
                    double[] expected = CsdTestSupport.naiveAttention(queries.get(task), g * HEAD_DIM, data.keys(),
                            data.values(), 0, HEAD_DIM, attended.get(task), HEAD_DIM);
                    for (int i = 0; i < HEAD_DIM; i++) {
                        assertEquals(expected[i], batch.output(task, g, i), 2e-3,
                                "task " + task + " head " + g + " element " + i);
                    }
                    assertEquals(expected[HEAD_DIM], batch.lse(task, g), 1e-4, "log-sum-exp of task " + task);
                }
            }
            DeviceStatistics stats = device.statistics();
            assertEquals(1, stats.attentionCalls());
            assertEquals(pageCounts.length, stats.attentionTasks());
            assertTrue(stats.health().ok());
        }
    }

    /** Pages [0, pages) of a region through the plain read path (plan, then reads). */
    private static short[] readBack(ComputationalStorageDevice device, DeviceRegion region, int pages) {
        ReadPlan plan = device.planReads(List.of(region), new int[] {pages});
        short[] out = new short[(int) (pages * region.spec().pageBytes() / 2)];
        short[] landed = new short[(int) (plan.largestRead() / 2)];
        for (ReadPlan.WorkItem item : plan.items()) {
            for (ReadPlan.Read read : item.reads()) {
                IoReport report = device.read(read, MemorySegment.ofArray(landed));
                assertEquals(read.bytes(), report.bytesRead());
                assertEquals(0, read.bytes() % 4096, "reads are whole aligned blocks");
                for (ReadPlan.Slice slice : read.slices()) {
                    int shortsPerPage = (int) (region.spec().pageBytes() / 2);
                    System.arraycopy(landed, (int) (slice.offset() / 2), out, slice.firstPage() * shortsPerPage,
                            slice.pages() * shortsPerPage);
                }
            }
        }
        return out;
    }

    @Test
    void emptyTaskGivesEmptyPartial() {
        try (EmulatedCsd device = EmulatedCsd.open("csd0", freshDirectory("empty-task"), 1)) {
            DeviceRegion region = device.allocate(new RegionSpec(0, 0, 0, HEAD_DIM, 16, 4));
            AttentionBatch batch = new AttentionBatch(1, HEAD_DIM, 1);
            batch.add(region, 0, new float[HEAD_DIM], 0);
            device.attend(batch).join();
            assertEquals(PartialAttention.EMPTY_LSE, batch.lse(0, 0));
        }
    }

    @ParameterizedTest(name = "page tokens {0}")
    @CsvSource({"1", "3", "16"})
    void readPagesReturnsExactlyTheAppendedPages(int pageTokens) {
        Random random = new Random(pageTokens);
        try (EmulatedCsd device = EmulatedCsd.open("csd0", freshDirectory("read-" + pageTokens), 1)) {
            // Two regions side by side (the first full): unaligned pages of one must not disturb the other.
            RegionData a = fill(device, random, 0, 12, pageTokens, 12);
            RegionData b = fill(device, random, 1, 5, pageTokens, 12);
            for (RegionData data : List.of(a, b)) {
                int pages = data.region().durablePages();
                assertArrayEquals(data.pages(), readBack(device, data.region(), pages));
                short[] prefix = readBack(device, data.region(), 2);
                assertArrayEquals(java.util.Arrays.copyOf(data.pages(), prefix.length), prefix);
            }
            // Both regions in one plan: they lie next to each other, so one read serves both.
            ReadPlan both = device.planReads(List.of(a.region(), b.region()), new int[] {12, 5});
            assertEquals(1, both.items().size());
            assertEquals(2, both.items().get(0).reads().get(0).slices().size());
            DeviceStatistics stats = device.statistics();
            assertEquals(17, stats.pagesWritten());
            assertEquals(0, stats.bytesWritten() % 4096, "writes are whole aligned blocks");
        }
    }

    @Test
    void refusedDirectIoFallsBackToBufferedIoWithTheSameAnswers() {
        Random random = new Random(7);
        FaultInjector refuse = new FaultInjector().refuseDirectIo();
        try (EmulatedCsd direct = EmulatedCsd.open("csd0", freshDirectory("mode-direct"), 1);
             EmulatedCsd buffered = EmulatedCsd.open("csd1", freshDirectory("mode-buffered"), 1, refuse)) {
            assertTrue(direct.directIo());
            assertFalse(buffered.directIo());
            assertFalse(buffered.statistics().directIo(), "the fallback is recorded in the statistics");
            assertTrue(buffered.describe().contains("buffered"));
            RegionData a = fill(direct, new Random(1), 0, 7, 16, 8);
            RegionData b = fill(buffered, new Random(1), 0, 7, 16, 8);
            float[] q = gaussian(random, HEAD_DIM);
            AttentionBatch x = new AttentionBatch(1, HEAD_DIM, 1);
            x.add(a.region(), 7, q, 0);
            AttentionBatch y = new AttentionBatch(1, HEAD_DIM, 1);
            y.add(b.region(), 7, q, 0);
            direct.attend(x).join();
            buffered.attend(y).join();
            assertArrayEquals(x.outputs(), y.outputs());
            assertArrayEquals(x.lseArray(), y.lseArray());
        }
    }

    @Test
    void tmpfsDeviceUsesWhateverIoModeTheKernelAllows() throws IOException {
        Path shm = Path.of("/dev/shm");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isDirectory(shm) && Files.isWritable(shm), "no /dev/shm");
        Path dir = shm.resolve("inf2-csd-test-" + ProcessHandle.current().pid());
        CsdTestSupport.deleteRecursively(dir);
        Files.createDirectories(dir);
        try {
            boolean kernelTakesODirect;
            Path probe = dir.resolve("probe");
            try {
                int fd = LibC.open(probe, LibC.O_RDWR | LibC.O_CREAT | LibC.O_DIRECT, 0600);
                LibC.close(fd, probe.toString());
                kernelTakesODirect = true;
            } catch (LibC.ErrnoException e) {
                assertEquals(LibC.EINVAL, e.errno());
                kernelTakesODirect = false;
            }
            Files.deleteIfExists(probe);
            try (EmulatedCsd device = EmulatedCsd.open("csd0", dir, 1)) {
                assertEquals(kernelTakesODirect, device.directIo());
                RegionData data = fill(device, new Random(3), 0, 4, 16, 4);
                assertArrayEquals(data.pages(), readBack(device, data.region(), 4));
            }
        } finally {
            CsdTestSupport.deleteRecursively(dir);
        }
    }

    @Test
    void leftoversOfACrashedRunAreRemovedAndNeverReadAsValid() throws IOException {
        Path dir = freshDirectory("crash");
        Path saved = CsdTestSupport.ROOT.resolve("crash-saved.kv");
        String leftoverName;
        long crashedEpoch;
        RegionSpec spec = new RegionSpec(0, 0, 0, HEAD_DIM, 16, 8);
        try (EmulatedCsd crashed = EmulatedCsd.open("csd0", dir, 1)) {
            fill(crashed, new Random(11), 0, 8, 16, 8);
            crashedEpoch = crashed.epoch();
            try (Stream<Path> files = Files.list(dir)) {
                Path file = files.filter(p -> p.getFileName().toString().startsWith(EmulatedCsd.FILE_PREFIX)).findFirst().orElseThrow();
                leftoverName = file.getFileName().toString();
                Files.copy(file, saved, StandardCopyOption.REPLACE_EXISTING);
            }
        }
        // What a killed process leaves behind: its cache file, full of valid-looking pages.
        Files.move(saved, dir.resolve(leftoverName));
        Path foreign = dir.resolve(EmulatedCsd.FILE_PREFIX + "not-ours" + EmulatedCsd.FILE_SUFFIX);
        Files.writeString(foreign, "someone else's file that happens to match the pattern");

        try (EmulatedCsd fresh = EmulatedCsd.open("csd0", dir, 1)) {
            assertFalse(Files.exists(dir.resolve(leftoverName)), "the crashed run's file is removed at open");
            assertTrue(Files.exists(foreign), "a file without the device header is not ours to delete");
            assertNotEquals(crashedEpoch, fresh.epoch());
            DeviceRegion region = fresh.allocate(spec);
            assertEquals(0, region.durablePages());
            AttentionBatch batch = new AttentionBatch(1, HEAD_DIM, 1);
            batch.add(region, 1, new float[HEAD_DIM], 0);
            CsdException e = assertThrows(CsdException.class, () -> fresh.attend(batch));
            assertTrue(e.getMessage().contains("read past the end"), e.getMessage());
            assertThrows(CsdException.class, () -> fresh.planReads(List.of(region), new int[] {1}));
        }
    }

    @Test
    void missingOrUnusableDirectoriesAreRefusedWithTheirPath() throws IOException {
        Path missing = CsdTestSupport.ROOT.resolve("no-such-device");
        CsdTestSupport.deleteRecursively(missing);
        CsdException e1 = assertThrows(CsdException.class, () -> EmulatedCsd.open("csd3", missing, 1));
        assertTrue(e1.getMessage().startsWith("csd3: device directory " + missing), e1.getMessage());
        assertTrue(e1.getMessage().contains("does not exist"));

        Path file = freshDirectory("plain-file").resolve("file");
        Files.writeString(file, "x");
        CsdException e2 = assertThrows(CsdException.class, () -> EmulatedCsd.open("csd0", file, 1));
        assertTrue(e2.getMessage().contains("is not a directory"), e2.getMessage());

        // sysfs accepts no new files, whoever asks (even root).
        Path unwritable = Path.of("/sys");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isDirectory(unwritable));
        CsdException e3 = assertThrows(CsdException.class, () -> EmulatedCsd.open("csd1", unwritable, 1));
        assertTrue(e3.getMessage().startsWith("csd1: cannot create the device's cache file in /sys"), e3.getMessage());
        assertFalse(e3.getMessage().contains("\n"));
    }

    @Test
    void closingFreesNativeMemoryAndRemovesTheCacheFile() throws IOException {
        Path dir = freshDirectory("close");
        long before = LibC.liveAlignedBuffers();
        EmulatedCsd device = EmulatedCsd.open("csd0", dir, 3);
        RegionData data = fill(device, new Random(5), 0, 20, 16, 20);
        AttentionBatch batch = new AttentionBatch(2, HEAD_DIM, 1);
        batch.add(data.region(), 20, gaussian(new Random(6), 2 * HEAD_DIM), 0);
        device.attend(batch).join();
        readBack(device, data.region(), 1);
        assertTrue(LibC.liveAlignedBuffers() > before);
        assertTrue(device.statistics().allocatedBytes() > 0);
        device.close();
        assertEquals(before, LibC.liveAlignedBuffers(), "every aligned buffer of the device is freed");
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(0, files.count(), "the device's cache file is removed at close");
        }
        CsdException e = assertThrows(CsdException.class, () -> device.allocate(new RegionSpec(0, 0, 0, HEAD_DIM, 16, 1)));
        assertTrue(e.getMessage().contains("closed"));
    }

    @Test
    void probeMeasuresAPositiveBandwidth() {
        try (EmulatedCsd device = EmulatedCsd.open("csd0", freshDirectory("probe"), 1)) {
            double bandwidth = device.probeReadBandwidth(8 << 20);
            assertTrue(bandwidth > 1e6 && bandwidth < 1e12, "bytes/s: " + bandwidth);
            assertEquals(0, device.statistics().bytesRead(), "the probe is not counted as cache traffic");
        }
    }
}
