package io.inf2.modelcache;

import io.inf2.modelcache.RemoteDirectory.RemoteFile;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.stream.Stream;
import java.util.zip.CRC32C;

/**
 * A host-local copy of model directories that live on remote file systems. Each source is copied
 * once per host into its own entry under the cache root and reused by every executor and every later
 * job on that host, as long as the source's file sizes and modification times are unchanged and the
 * local copy passes verification.
 *
 * <p>Several executors (processes) and tasks (threads) may ask for the same model at once: a lock
 * file serialises them per entry, the first one copies into a temporary directory, writes the
 * manifest last and renames the directory into place atomically; the others wait for the lock and
 * find a complete entry. A reader therefore never sees a half-copied model.
 */
public final class ModelCache {

    /** How much of a cached copy is checked before it is reused. */
    public enum Verification {
        /** Every file's size (cheap; catches truncation and missing files). */
        SIZE,
        /** Every file's size and CRC32C (reads the whole copy; catches any corruption). */
        CHECKSUM
    }

    /**
     * A model ready to open from local disk.
     *
     * @param filled      whether this call copied it (false: an existing entry was reused)
     * @param bytesCopied bytes copied by this call
     */
    public record CachedModel(Path directory, boolean filled, long bytesCopied) {
    }

    private static final System.Logger LOG = System.getLogger(ModelCache.class.getName());
    private static final int COPY_BUFFER_BYTES = 1 << 20;
    private static final String FILLING = ".filling-";
    private static final String REPLACED = ".replaced-";
    /** FileChannel.lock is held per process, so threads of one process queue on this first. */
    private static final Map<Path, ReentrantLock> IN_PROCESS_LOCKS = new ConcurrentHashMap<>();

    private final Path root;
    private final Verification verification;

    public ModelCache(Path root, Verification verification) {
        this.root = root.toAbsolutePath().normalize();
        this.verification = verification;
    }

    public Path root() {
        return root;
    }

    /** The directory an entry for {@code source} has (or will have) under the cache root. */
    public Path entryFor(RemoteDirectory source) {
        return root.resolve(entryName(source.uri()));
    }

    /**
     * Returns a complete, verified local copy of {@code source}, copying it first when the cache holds
     * none, holds a stale one (the source changed) or holds a damaged one (verification failed).
     */
    public CachedModel materialize(RemoteDirectory source) throws IOException {
        List<RemoteFile> remote = source.listFiles();
        if (remote.isEmpty()) {
            throw new IOException("model " + source.uri() + ": no files to copy (is it the model directory?)");
        }
        Files.createDirectories(root);
        Path entry = entryFor(source);
        try (EntryLock ignored = EntryLock.acquire(root.resolve(entry.getFileName() + ".lock"))) {
            Optional<String> stale = staleness(entry, source.uri(), remote);
            if (stale.isEmpty()) {
                LOG.log(Level.INFO, "model {0}: using cached copy {1}", source.uri(), entry);
                return new CachedModel(entry, false, 0);
            }
            LOG.log(Level.INFO, "model {0}: copying into {1} ({2})", source.uri(), entry, stale.get());
            removeLeftovers(entry);
            checkFreeSpace(source, remote);
            Path filling = Files.createTempDirectory(root, entry.getFileName() + FILLING);
            long copied = fill(source, remote, filling);
            if (Files.exists(entry)) {
                // Moved aside first so the final rename is a plain atomic move onto a free name.
                Path replaced = Files.createTempDirectory(root, entry.getFileName() + REPLACED);
                Files.move(entry, replaced.resolve("entry"), StandardCopyOption.ATOMIC_MOVE);
                deleteTree(replaced);
            }
            Files.move(filling, entry, StandardCopyOption.ATOMIC_MOVE);
            LOG.log(Level.INFO, "model {0}: cached {1} bytes in {2}", source.uri(), copied, entry);
            return new CachedModel(entry, true, copied);
        }
    }

    /** Why the entry cannot be used as it is, or empty when it is current and intact. */
    private Optional<String> staleness(Path entry, String uri, List<RemoteFile> remote) throws IOException {
        if (!Files.isDirectory(entry)) {
            return Optional.of("not cached yet");
        }
        Path manifestFile = entry.resolve(CacheManifest.FILE_NAME);
        CacheManifest manifest;
        try {
            manifest = CacheManifest.read(manifestFile);
        } catch (IOException e) {
            return Optional.of("cache manifest unreadable: " + oneLine(e));
        }
        if (!manifest.source().equals(uri)) {
            return Optional.of("entry was filled from " + manifest.source());
        }
        Map<String, CacheManifest.FileEntry> cached = new LinkedHashMap<>();
        manifest.files().forEach(f -> cached.put(f.path(), f));
        for (RemoteFile r : remote) {
            CacheManifest.FileEntry c = cached.get(r.relativePath());
            if (c == null) {
                return Optional.of("source has a new file " + r.relativePath());
            }
            if (c.size() != r.size() || c.modifiedMillis() != r.modifiedMillis()) {
                return Optional.of("source file " + r.relativePath() + " changed (size " + c.size() + " -> " + r.size()
                        + ", modified " + c.modifiedMillis() + " -> " + r.modifiedMillis() + ")");
            }
        }
        if (cached.size() != remote.size()) {
            return Optional.of("files were removed from the source");
        }
        for (CacheManifest.FileEntry c : manifest.files()) {
            Path local = entry.resolve(c.path());
            if (!Files.isRegularFile(local)) {
                return Optional.of("cached file " + local + " is missing");
            }
            long size = Files.size(local);
            if (size != c.size()) {
                return Optional.of("cached file " + local + " has " + size + " bytes, expected " + c.size());
            }
            if (verification == Verification.CHECKSUM) {
                String crc = crc32c(local);
                if (!crc.equals(c.crc32c())) {
                    return Optional.of("cached file " + local + " fails its CRC32C check (" + crc + ", expected "
                            + c.crc32c() + ")");
                }
            }
        }
        return Optional.empty();
    }

    private long fill(RemoteDirectory source, List<RemoteFile> remote, Path filling) throws IOException {
        List<CacheManifest.FileEntry> entries = new ArrayList<>();
        long total = 0;
        byte[] buffer = new byte[COPY_BUFFER_BYTES];
        for (RemoteFile r : remote) {
            Path target = filling.resolve(r.relativePath());
            Files.createDirectories(target.getParent());
            CRC32C crc = new CRC32C();
            long copied = 0;
            try (InputStream in = source.open(r);
                 FileChannel out = FileChannel.open(target, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                int n;
                while ((n = in.read(buffer)) > 0) {
                    crc.update(buffer, 0, n);
                    ByteBuffer chunk = ByteBuffer.wrap(buffer, 0, n);
                    while (chunk.hasRemaining()) {
                        out.write(chunk);
                    }
                    copied += n;
                }
                out.force(true);
            }
            if (copied != r.size()) {
                throw new IOException("model " + source.uri() + ": " + r.relativePath() + " was listed with " + r.size()
                        + " bytes but " + copied + " were read (did it change during the copy?)");
            }
            entries.add(new CacheManifest.FileEntry(r.relativePath(), r.size(), r.modifiedMillis(), hex(crc.getValue())));
            total += copied;
        }
        Path manifestFile = filling.resolve(CacheManifest.FILE_NAME);
        new CacheManifest(CacheManifest.FORMAT, source.uri(), entries).write(manifestFile);
        try (FileChannel ch = FileChannel.open(manifestFile, StandardOpenOption.WRITE)) {
            ch.force(true);
        }
        return total;
    }

    private void checkFreeSpace(RemoteDirectory source, List<RemoteFile> remote) throws IOException {
        long needed = remote.stream().mapToLong(RemoteFile::size).sum();
        long usable = Files.getFileStore(root).getUsableSpace();
        if (usable < needed) {
            throw new IOException("model cache " + root + ": " + usable + " bytes free, model " + source.uri() + " needs "
                    + needed + " (set spark.inf2.modelCacheDir to a larger disk)");
        }
    }

    /** Temporary directories that an interrupted filler (a killed executor) left behind. */
    private void removeLeftovers(Path entry) throws IOException {
        String name = entry.getFileName().toString();
        try (DirectoryStream<Path> siblings = Files.newDirectoryStream(root, name + ".*")) {
            for (Path p : siblings) {
                String n = p.getFileName().toString();
                if (n.startsWith(name + FILLING) || n.startsWith(name + REPLACED)) {
                    deleteTree(p);
                }
            }
        }
    }

    static String crc32c(Path file) throws IOException {
        CRC32C crc = new CRC32C();
        ByteBuffer buffer = ByteBuffer.allocateDirect(COPY_BUFFER_BYTES);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            while (ch.read(buffer) >= 0) {
                buffer.flip();
                crc.update(buffer);
                buffer.clear();
            }
        }
        return hex(crc.getValue());
    }

    private static String hex(long crc) {
        return String.format("%08x", crc);
    }

    /** A readable, collision-safe directory name: the source's last path segment plus a hash of its URI. */
    static String entryName(String uri) {
        String trimmed = uri.replaceAll("/+$", "");
        String last = trimmed.substring(trimmed.lastIndexOf('/') + 1).replaceAll("[^A-Za-z0-9._-]", "_");
        if (last.length() > 64) {
            last = last.substring(0, 64);
        }
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(trimmed.getBytes(StandardCharsets.UTF_8));
            return (last.isEmpty() || last.startsWith(".") ? "model" : last) + "-" + HexFormat.of().formatHex(digest, 0, 8);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JDK", e);
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> tree = Files.walk(dir)) {
            for (Path p : tree.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    private static String oneLine(Exception e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return m.lines().findFirst().orElse(m);
    }

    /** Exclusive use of one cache entry across the threads of this process and the processes of this host. */
    private static final class EntryLock implements AutoCloseable {
        private final ReentrantLock inProcess;
        private final FileChannel channel;

        private EntryLock(ReentrantLock inProcess, FileChannel channel) {
            this.inProcess = inProcess;
            this.channel = channel;
        }

        static EntryLock acquire(Path lockFile) throws IOException {
            ReentrantLock inProcess = IN_PROCESS_LOCKS.computeIfAbsent(lockFile, k -> new ReentrantLock());
            try {
                inProcess.lockInterruptibly();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while waiting for model cache lock " + lockFile);
            }
            FileChannel channel = null;
            try {
                channel = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                // Released when the channel closes; a killed process's lock dies with it.
                channel.lock();
                return new EntryLock(inProcess, channel);
            } catch (IOException | RuntimeException e) {
                if (channel != null) {
                    channel.close();
                }
                inProcess.unlock();
                throw e;
            }
        }

        @Override
        public void close() throws IOException {
            try {
                channel.close();
            } finally {
                inProcess.unlock();
            }
        }
    }
}
