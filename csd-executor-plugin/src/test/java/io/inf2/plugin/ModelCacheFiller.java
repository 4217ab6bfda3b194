package io.inf2.plugin;

import io.inf2.modelcache.ModelCache;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A second process for {@link HadoopModelCacheTest}: says it is ready (creates a file), waits for a
 * start file, fills the cache from a file: URI through Hadoop, prints whether it copied and where the
 * entry is.
 */
public final class ModelCacheFiller {
    private ModelCacheFiller() {
    }

    public static void main(String[] args) throws Exception {
        Path root = Path.of(args[0]);
        org.apache.hadoop.fs.Path model = new org.apache.hadoop.fs.Path(args[1]);
        Path go = Path.of(args[2]);
        Files.createFile(Path.of(args[3]));
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (!Files.exists(go)) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("start file " + go + " never appeared");
            }
            Thread.sleep(5);
        }
        ModelCache.CachedModel cached = new ModelCache(root, ModelCache.Verification.CHECKSUM)
                .materialize(new HadoopModelDirectory(model, new org.apache.hadoop.conf.Configuration()));
        System.out.println("filled=" + cached.filled() + " dir=" + cached.directory());
    }
}
