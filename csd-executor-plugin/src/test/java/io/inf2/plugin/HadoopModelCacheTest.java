package io.inf2.plugin;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.modelcache.ModelCache;
import io.inf2.modelcache.ModelCache.CachedModel;
import io.inf2.modelcache.RemoteDirectory.RemoteFile;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The model cache filled from real files through Hadoop's LocalFileSystem (file: URIs). */
class HadoopModelCacheTest {
    private static final int SHARD_BYTES = 3 << 20;

    @TempDir
    Path tmp;

    private final Configuration hadoop = new Configuration();

    private HadoopModelDirectory remote(Path dir) throws IOException {
        return new HadoopModelDirectory(new org.apache.hadoop.fs.Path(dir.toUri()), hadoop);
    }

    @Test
    void listsEveryDataFileRecursivelyAndSkipsHiddenOnes() throws IOException {
        Path model = TestModels.write(tmp.resolve("opt"), 100, 1);
        List<String> names = remote(model).listFiles().stream().map(RemoteFile::relativePath).toList();
        assertEquals(List.of("config.json", "extra/generation_config.json", "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors", "tokenizer.json"), names);
        assertEquals(ModelLocator.qualify(model.toString(), hadoop), remote(model).uri(),
                "a trailing slash must not make a second cache entry");
    }

    @Test
    void copiesOnceThenReusesTheVerifiedCopy() throws IOException {
        Path model = TestModels.write(tmp.resolve("opt"), SHARD_BYTES, 1);
        ModelCache cache = new ModelCache(tmp.resolve("cache"), ModelCache.Verification.CHECKSUM);

        CachedModel first = cache.materialize(remote(model));
        assertTrue(first.filled());
        assertEquals(sizeOfDataFiles(model), first.bytesCopied());
        assertSameContent(model, first.directory());
        assertFalse(Files.exists(first.directory().resolve("_SUCCESS")));

        CachedModel second = cache.materialize(remote(model));
        assertFalse(second.filled());
        assertEquals(first.directory(), second.directory());
    }

    @Test
    void detectsACorruptedCopyAndRefillsIt() throws IOException {
        Path model = TestModels.write(tmp.resolve("opt"), SHARD_BYTES, 2);
        ModelCache cache = new ModelCache(tmp.resolve("cache"), ModelCache.Verification.CHECKSUM);
        Path cached = cache.materialize(remote(model)).directory();

        Path shard = cached.resolve("model-00002-of-00002.safetensors");
        byte[] bytes = Files.readAllBytes(shard);
        bytes[bytes.length / 2] ^= 0x40;
        Files.write(shard, bytes);

        CachedModel again = cache.materialize(remote(model));
        assertTrue(again.filled(), "a flipped bit must fail the CRC32C check");
        assertSameContent(model, again.directory());
    }

    @Test
    void sizeVerificationCatchesATruncatedCopy() throws IOException {
        Path model = TestModels.write(tmp.resolve("opt"), SHARD_BYTES, 3);
        ModelCache cache = new ModelCache(tmp.resolve("cache"), ModelCache.Verification.SIZE);
        Path cached = cache.materialize(remote(model)).directory();
        Path shard = cached.resolve("model-00001-of-00002.safetensors");
        Files.write(shard, new byte[10]);

        assertTrue(cache.materialize(remote(model)).filled());
        assertSameContent(model, cached);
    }

    @Test
    void refillsWhenTheSourceChangesOrTheManifestIsGone() throws IOException {
        Path model = TestModels.write(tmp.resolve("opt"), SHARD_BYTES, 4);
        ModelCache cache = new ModelCache(tmp.resolve("cache"), ModelCache.Verification.SIZE);
        Path cached = cache.materialize(remote(model)).directory();

        Path config = model.resolve("config.json");
        Files.writeString(config, "{\"model_type\": \"opt\", \"hidden_size\": 96}");
        Files.setLastModifiedTime(config, FileTime.fromMillis(Files.getLastModifiedTime(config).toMillis() + 60_000));
        assertTrue(cache.materialize(remote(model)).filled());
        assertEquals(Files.readString(config), Files.readString(cached.resolve("config.json")));

        try (Stream<Path> files = Files.list(cached)) {
            Path manifest = files.filter(p -> p.getFileName().toString().endsWith("manifest.json"))
                    .findFirst().orElseThrow();
            Files.delete(manifest);
        }
        assertTrue(cache.materialize(remote(model)).filled());
        assertFalse(cache.materialize(remote(model)).filled());
    }

    @Test
    void removesWhatAKilledFillerLeftBehind() throws IOException {
        Path model = TestModels.write(tmp.resolve("opt"), 1000, 5);
        Path root = tmp.resolve("cache");
        ModelCache cache = new ModelCache(root, ModelCache.Verification.SIZE);
        Path entry = cache.entryFor(remote(model));
        Path leftover = root.resolve(entry.getFileName() + ".filling-123");
        Files.createDirectories(leftover);
        Files.writeString(leftover.resolve("config.json"), "{");

        cache.materialize(remote(model));
        assertFalse(Files.exists(leftover));
        try (Stream<Path> children = Files.list(root)) {
            assertEquals(Set.of(entry.getFileName().toString(), entry.getFileName() + ".lock"),
                    children.map(p -> p.getFileName().toString()).collect(Collectors.toSet()));
        }
    }

    @Test
    void namesTheMissingDirectory() {
        IOException e = assertThrows(IOException.class, () -> new ModelCache(tmp.resolve("cache"),
                ModelCache.Verification.SIZE).materialize(remote(tmp.resolve("no-such-model"))));
        assertTrue(e.getMessage().contains("no-such-model") && e.getMessage().contains("no such directory"), e.getMessage());
    }

    @Test
    void twoThreadsFillingAtOnceCopyOnce() throws Exception {
        Path model = TestModels.write(tmp.resolve("opt"), SHARD_BYTES, 6);
        Path root = tmp.resolve("cache");
        CountDownLatch start = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            List<Future<CachedModel>> results = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                results.add(pool.submit(() -> {
                    start.await();
                    return new ModelCache(root, ModelCache.Verification.CHECKSUM).materialize(remote(model));
                }));
            }
            start.countDown();
            CachedModel a = results.get(0).get(60, TimeUnit.SECONDS);
            CachedModel b = results.get(1).get(60, TimeUnit.SECONDS);
            assertEquals(1, (a.filled() ? 1 : 0) + (b.filled() ? 1 : 0));
            assertEquals(a.directory(), b.directory());
            assertSameContent(model, a.directory());
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void twoProcessesFillingAtOnceCopyOnce() throws Exception {
        Path model = TestModels.write(tmp.resolve("opt"), 8 << 20, 7);
        Path root = tmp.resolve("cache");
        Path go = tmp.resolve("go");
        List<Process> fillers = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            List<String> command = new ArrayList<>();
            command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            command.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
            command.addAll(List.of("-cp", System.getProperty("java.class.path"), ModelCacheFiller.class.getName(),
                    root.toString(), model.toUri().toString(), go.toString(), tmp.resolve("ready" + i).toString()));
            fillers.add(new ProcessBuilder(command).redirectErrorStream(true)
                    .redirectOutput(tmp.resolve("filler" + i + ".log").toFile()).start());
        }
        // Both JVMs are up and waiting before either starts, so their fills overlap.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!(Files.exists(tmp.resolve("ready0")) && Files.exists(tmp.resolve("ready1")))) {
            assertTrue(System.nanoTime() < deadline && fillers.stream().allMatch(Process::isAlive), "fillers did not start");
            Thread.sleep(10);
        }
        Files.createFile(go);
        List<String> outcomes = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            assertTrue(fillers.get(i).waitFor(120, TimeUnit.SECONDS), "filler " + i + " did not finish");
            String log = Files.readString(tmp.resolve("filler" + i + ".log"));
            assertEquals(0, fillers.get(i).exitValue(), log);
            outcomes.add(log.lines().filter(l -> l.startsWith("filled=")).findFirst().orElseThrow(() -> new AssertionError(log)));
        }
        assertEquals(1, outcomes.stream().filter(o -> o.startsWith("filled=true")).count(), outcomes.toString());
        Path dir = Path.of(outcomes.get(0).substring(outcomes.get(0).indexOf(" dir=") + 5));
        assertEquals(outcomes.get(0).substring(outcomes.get(0).indexOf(" dir=")),
                outcomes.get(1).substring(outcomes.get(1).indexOf(" dir=")));
        assertSameContent(model, dir);
    }

    private static long sizeOfDataFiles(Path model) throws IOException {
        try (Stream<Path> files = Files.walk(model)) {
            return files.filter(Files::isRegularFile)
                    .filter(p -> !p.getFileName().toString().startsWith("_") && !p.getFileName().toString().startsWith("."))
                    .mapToLong(p -> p.toFile().length()).sum();
        }
    }

    private static void assertSameContent(Path source, Path copy) throws IOException {
        try (Stream<Path> files = Files.walk(source)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                String name = f.getFileName().toString();
                if (name.startsWith("_") || name.startsWith(".")) {
                    continue;
                }
                assertArrayEquals(Files.readAllBytes(f), Files.readAllBytes(copy.resolve(source.relativize(f).toString())),
                        "content of " + source.relativize(f));
            }
        }
    }
}
